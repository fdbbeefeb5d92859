"""CI's SQLite pass runs the modules of tests/conftest.py's SQLITE_RELEVANT (the `sqlite` marker),
derived with coverage by scripts/sqlite_relevant_tests.py. These checks catch, without that run, the
drift that would leave SQLite code of ours untested in CI: a listed module renamed away, and a test
module that imports one of our SQLite-branching functions by name but is not listed."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import SQLITE_RELEVANT

ROOT = Path(__file__).resolve().parent.parent


def _sqlite_branching(tree: ast.Module) -> set[str]:
    """The top-level functions and classes that hold SQLite-only code: a comparison of a
    `.vendor` with "sqlite" or "postgresql" (its other branch is SQLite's), or an `as_sqlite`."""
    found = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef | ast.ClassDef):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.FunctionDef) and inner.name == "as_sqlite":
                found.add(node.name)
            if isinstance(inner, ast.Compare):
                parts = [inner.left, *inner.comparators]
                vendor = any(isinstance(p, ast.Attribute) and p.attr == "vendor" for p in parts)
                named = any(
                    isinstance(p, ast.Constant) and p.value in ("sqlite", "postgresql")
                    for p in parts
                )
                if vendor and named:
                    found.add(node.name)
    return found


def _branching_by_module() -> dict[str, set[str]]:
    modules = {}
    for package in ("synthetics", "synthetics_site"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            names = _sqlite_branching(ast.parse(path.read_text()))
            if names:
                dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                modules[dotted.removesuffix(".__init__")] = names
    return modules


def test_each_listed_module_exists_once():
    assert len(set(SQLITE_RELEVANT)) == len(SQLITE_RELEVANT)
    missing = [module for module in SQLITE_RELEVANT if not (ROOT / module).is_file()]
    assert not missing, f"tests/conftest.py's SQLITE_RELEVANT names no such file: {missing}"


def test_the_static_reading_finds_the_known_sqlite_branches():
    # the check below is only as good as this reading: it must see the branches we know of
    branching = _branching_by_module()
    assert {"SyntheticTag", "SyntheticOrigin"} <= branching["synthetics.db"]
    assert {"is_database_locked", "sqlite_write_wait"} <= branching["synthetics.services.locks"]
    assert "pool_stamp_sql" in branching["synthetics.selectors.run_inputs"]


def test_a_module_importing_a_sqlite_branching_function_is_listed():
    branching = _branching_by_module()
    unlisted = {}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        module = path.relative_to(ROOT).as_posix()
        imported = {
            f"{node.module}.{alias.name}"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.ImportFrom) and node.module in branching
            for alias in node.names
            if alias.name in branching[node.module]
        }
        if imported and module not in SQLITE_RELEVANT:
            unlisted[module] = sorted(imported)
    assert not unlisted, (
        "these modules test code with a SQLite branch but CI would not run them on SQLite: "
        f"{unlisted}; run scripts/sqlite_relevant_tests.py and update SQLITE_RELEVANT"
    )
