"""Which test modules run code of ours that only runs on SQLite: the list CI's SQLite pass runs
(`SQLITE_RELEVANT` in tests/conftest.py, the `sqlite` marker; docs/testing.md "CI").

    .venv/bin/python scripts/sqlite_relevant_tests.py --postgres postgres://postgres@127.0.0.1:5432/synth_rel

It needs coverage.py (`pip install coverage`; for this analysis only, not a dependency of the
project). Two runs of the suite under coverage, one after the other, each spread over the cores:
1. on PostgreSQL (the URL given: pytest-django makes its test_<name> databases), every test but
   `once`: the lines of `synthetics/` and `synthetics_site/` that run there;
2. on SQLite (DATABASE_URL unset, a throwaway SYNTHETICS_LOCAL_DIR), every test that reaches the
   database but `once` (`nodb` tests cannot: CI runs them once, on PostgreSQL), each line recorded
   with the test that ran it (coverage's dynamic contexts, switched per test by the
   plugin below; session fixtures such as the migrations in a context of their own, no test's).
A line (inside a function; migrations aside: every SQLite run migrates) that runs on SQLite and never
on PostgreSQL is SQLite-only: a `connection.vendor` branch, an `as_sqlite` expression, SQLite's
inserts, deletes by id and lock waits. `once` tests are left out of both runs: their SQLite is a
subprocess's (not measured), and CI runs them on PostgreSQL.

It prints each module that runs SQLite-only lines (nearly every database module: the writers and
the synthetic tag are on almost every path), then a greedy cover: the modules that together run
every SQLite-only line (first those a line needs alone, then the most lines not yet run per test).
It exits 1 when tests/conftest.py's `SQLITE_RELEVANT` leaves a SQLite-only line to no listed module,
naming the line and the modules that run it. `--data DIR` keeps the coverage data (default: a
temporary directory); `--report-only` reads it again without running the suite; `--sqlite-only`
runs the SQLite half only (with the PostgreSQL half's data already in DIR); `-n` workers (2);
arguments after `--` go to both pytest runs.

Also a pytest plugin (`-p sqlite_relevant_tests` with scripts/ on PYTHONPATH): with
SQLITE_RELEVANT_DATA set, each pytest process (xdist workers too) records coverage there.
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ["synthetics", "synthetics_site"]
SESSION_CONTEXT = "session"  # session-scoped fixtures (the test database, its migrations)

# ---------------------------------------------------------------- the plugin (each pytest process)

_coverage = None


def pytest_configure(config):
    global _coverage
    data = os.environ.get("SQLITE_RELEVANT_DATA")
    if not data or _coverage is not None:
        return
    import coverage

    _coverage = coverage.Coverage(
        data_file=str(Path(data) / ".coverage"),
        data_suffix=True,
        source=[str(ROOT / name) for name in SOURCES],
        branch=False,
    )
    _coverage.start()


def pytest_unconfigure(config):
    global _coverage
    if _coverage is not None:
        _coverage.stop()
        _coverage.save()
        _coverage = None


def _switch(context: str) -> None:
    if _coverage is not None and os.environ.get("SQLITE_RELEVANT_CONTEXTS"):
        _coverage.switch_context(context)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _switch(item.nodeid)
    try:
        return (yield)
    finally:
        _switch("")


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    if fixturedef.scope != "session":
        return (yield)
    node = getattr(request, "_pyfuncitem", None)
    _switch(SESSION_CONTEXT)
    try:
        return (yield)
    finally:
        _switch(node.nodeid if node is not None else "")


# ---------------------------------------------------------------- the runs


def _run(data: Path, env: dict[str, str], marks: str, workers: int, extra: list[str]) -> None:
    data.mkdir(parents=True, exist_ok=True)
    env = {
        **env,
        "SQLITE_RELEVANT_DATA": str(data),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "scripts"), env.get("PYTHONPATH")])),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "sqlite_relevant_tests",
        "-q", "-n", str(workers), "--dist", "load", "-m", marks, "--durations=30", *extra,
    ]  # fmt: skip
    print("$", " ".join(command), flush=True)
    # Failures do not stop the analysis (a flaky test still ran its lines); the summary shows them.
    subprocess.run(command, cwd=ROOT, env=env, check=False)


def _function_lines(path: Path) -> set[int]:
    """The lines inside a function or method: the only ones a vendor can decide (a module's own
    lines run when it is imported, which happens wherever the first import happens)."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for statement in node.body:
                lines.update(range(statement.lineno, statement.end_lineno + 1))
    return lines


def _lines(data: Path, contexts: bool) -> dict[str, dict[int, set[str]]]:
    """{file relative to ROOT: {line: {test node id, ...}}} (ids only when `contexts`), for the lines
    inside functions of synthetics/ and synthetics_site/ but their migrations."""
    import coverage

    combined = coverage.CoverageData(no_disk=True)
    for part in sorted(data.glob(".coverage.*")):
        piece = coverage.CoverageData(basename=str(part))
        piece.read()
        combined.update(piece)
    found: dict[str, dict[int, set[str]]] = {}
    for measured in combined.measured_files():
        path = Path(measured).resolve()
        relative = path.relative_to(ROOT).as_posix()
        if "/migrations/" in relative:
            continue
        inside = _function_lines(path)
        if contexts:
            by_line = combined.contexts_by_lineno(measured)
            found[relative] = {
                line: {name for name in names if "::" in name}
                for line, names in by_line.items()
                if line in inside
            }
        else:
            found[relative] = {
                line: set() for line in combined.lines(measured) or () if line in inside
            }
    return found


def listed() -> list[str]:
    """tests/conftest.py's SQLITE_RELEVANT, read without importing Django."""
    tree = ast.parse((ROOT / "tests" / "conftest.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(getattr(t, "id", None) == "SQLITE_RELEVANT" for t in targets):
                return sorted(ast.literal_eval(node.value))
    raise SystemExit("tests/conftest.py has no SQLITE_RELEVANT")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgres", help="postgres://... (its test_<name> databases are used)")
    parser.add_argument("--data", type=Path, help="where the coverage data goes (kept)")
    parser.add_argument("--report-only", action="store_true")
    parser.add_argument("--sqlite-only", action="store_true", help="skip the PostgreSQL run")
    parser.add_argument("-n", "--workers", type=int, default=2)
    parser.add_argument("pytest_args", nargs="*", help="more for pytest (after --)")
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="sqlite_relevant_"))
    if not args.report_only:
        if not args.postgres and not args.sqlite_only:
            parser.error("--postgres is needed to run the suite")
        base = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        with tempfile.TemporaryDirectory() as local_pg, tempfile.TemporaryDirectory() as local_sq:
            if not args.sqlite_only:
                postgres_env = {
                    **base,
                    "DATABASE_URL": args.postgres,
                    "SYNTHETICS_LOCAL_DIR": local_pg,
                }
                _run(data / "postgresql", postgres_env, "not once", args.workers, args.pytest_args)
            sqlite_env = {**base, "SYNTHETICS_LOCAL_DIR": local_sq, "SQLITE_RELEVANT_CONTEXTS": "1"}
            marks = "not once and not nodb"
            _run(data / "sqlite", sqlite_env, marks, args.workers, args.pytest_args)
    postgres = _lines(data / "postgresql", contexts=False)
    sqlite = _lines(data / "sqlite", contexts=True)

    # the SQLite-only lines, each with the modules whose tests ran it
    only: dict[str, set[str]] = {}
    tests: dict[str, set[str]] = defaultdict(set)  # the tests of each module seen on SQLite
    for path, lines in sorted(sqlite.items()):
        for line, nodeids in sorted(lines.items()):
            for nodeid in nodeids:
                tests[nodeid.split("::")[0]].add(nodeid)
            if line not in postgres.get(path, {}) and nodeids:
                only[f"{path}:{line}"] = {nodeid.split("::")[0] for nodeid in nodeids}
    by_module: dict[str, set[str]] = defaultdict(set)
    for place, modules in only.items():
        for module in modules:
            by_module[module].add(place)
    print(f"\ncoverage data: {data}")
    print(f"{len(only)} lines ran on SQLite only; {len(by_module)} test modules ran one or more:")
    for module, places in sorted(by_module.items()):
        shown = ", ".join(sorted(places)[:6]) + (" ..." if len(places) > 6 else "")
        print(f"  {module} ({len(tests[module])} tests, {len(places)} lines): {shown}")

    # The modules CI runs on SQLite: together they run every SQLite-only line. Greedy cover: first
    # each line only one module runs (that module is needed), then, until every line is run, the
    # module that runs the most lines not run yet per test it holds.
    chosen = {next(iter(modules)) for modules in only.values() if len(modules) == 1}
    left = {place for place, modules in only.items() if not modules & chosen}
    while left:
        best = max(
            sorted(by_module),
            key=lambda module: len(by_module[module] & left) / max(1, len(tests[module])),
        )
        chosen.add(best)
        left -= by_module[best]
    print(f"\n{len(chosen)} modules run every one of those lines on SQLite (a greedy cover):")
    for module in sorted(chosen):
        print(f"  {module!r},  # {len(tests[module])} tests")

    current = set(listed())
    missed = {place: modules for place, modules in only.items() if not modules & current}
    if not missed:
        print("tests/conftest.py's SQLITE_RELEVANT runs every SQLite-only line on SQLite.")
        return 0
    print("tests/conftest.py's SQLITE_RELEVANT leaves these lines to no test on SQLite:")
    for place, modules in sorted(missed.items()):
        print(f"  {place}: run by {', '.join(sorted(modules))}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
