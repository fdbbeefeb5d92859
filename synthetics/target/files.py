"""Reading a target file (attach mode): YAML or JSON, read as a scenario is (bounded, one line naming
where for a file refused as a whole), then held to the published schema
(synthetics/target.schema.json) and to the rules a schema cannot say: a column mapped twice in one
table, a profile that is the account table. Every problem is one line with its path; nothing is
written. synthetics.target.check then holds the file against the database."""

from __future__ import annotations

import json
from itertools import islice
from pathlib import Path

from jsonschema import Draft202012Validator

from synthetics.errors import ApplicationError
from synthetics.services.scenario_files import DocumentKind, document_loads, limit_problem, path_of
from synthetics.target.mapping import template_problem

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "target.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
TARGET_MAX_BYTES = 256 * 1024  # a real one is 2 KB


class TargetInvalid(ApplicationError):
    """A target file that cannot be used: `errors` holds one "path: message" per problem."""

    def __init__(self, errors: list[str]) -> None:
        shown = "\n".join(f"  {error}" for error in errors)
        count = f"{len(errors)} error{'' if len(errors) == 1 else 's'}"
        super().__init__(f"the target file is not valid ({count}):\n{shown}")
        self.errors = errors


class TargetUnreadable(TargetInvalid):
    """A target file refused as a whole (its size, encoding, syntax or nesting): one line."""

    def __init__(self, problem: str) -> None:
        ApplicationError.__init__(self, problem)
        self.errors = [problem]


TARGET = DocumentKind(
    name="target file",
    schema=SCHEMA,
    max_bytes=TARGET_MAX_BYTES,
    max_depth=8,
    max_items=200,
    max_text=500,
    unreadable=TargetUnreadable,
)

# The columns an event mapping names besides `columns`.
EVENT_COLUMNS = ("account", "time", "type", "payload")
REFERENCES = ("journey", "scene", "mindblock")


def target_loads(data: bytes | str) -> dict:
    """The target file in `data`, checked; a TargetInvalid listing every problem by its path."""
    document = document_loads(data, TARGET)
    if problem := limit_problem(document, TARGET):
        raise TargetUnreadable(problem)
    found = islice(Draft202012Validator(SCHEMA).iter_errors(document), 100)
    errors = [
        f"{path_of(error.absolute_path)}: {error.message}"
        for error in sorted(found, key=lambda e: list(map(str, e.absolute_path)))
    ]
    if errors:
        raise TargetInvalid(errors)
    errors = _mapped_twice(document) + _templates(document)
    if errors:
        raise TargetInvalid(errors)
    return document


def target_read(path: str | Path) -> dict:
    """The target file at `path` (target_loads); a TargetUnreadable when it cannot be opened."""
    try:
        with open(path, "rb") as file:
            data = file.read(TARGET_MAX_BYTES + 1)
    except OSError as error:
        raise TargetUnreadable(f"$: cannot read {path}: {error.strerror or error}") from None
    return target_loads(data)


def mapped_columns(mapping: dict, *, event: bool) -> list[tuple[tuple, str]]:
    """Each column a table's mapping writes, with the place in the file that names it."""
    named: list[tuple[tuple, str]] = []
    if event:
        named += [((key,), mapping[key]) for key in EVENT_COLUMNS if mapping.get(key)]
        named += [((key, "column"), mapping[key]["column"]) for key in REFERENCES if key in mapping]
    else:
        key = mapping.get("key") or mapping.get("account")
        named.append((("key",) if "key" in mapping else ("account",), key))
    named += [(("columns", name), name) for name in mapping["columns"]]
    return named


def _templates(document: dict) -> list[str]:
    """Every template renders: it names only the sim user's fields."""
    tables = [(("accounts",), document["accounts"])]
    tables += [
        (("accounts", "profiles", index), profile)
        for index, profile in enumerate(document["accounts"].get("profiles", []))
    ]
    tables += [(("events", kind), mapping) for kind, mapping in document["events"].items()]
    errors = []
    for place, mapping in tables:
        for name, source in mapping["columns"].items():
            if "template" in source and (problem := template_problem(source["template"])):
                errors.append(f"{path_of((*place, 'columns', name, 'template'))}: {problem}")
    return errors


def _mapped_twice(document: dict) -> list[str]:
    errors = []
    tables = [(("accounts",), document["accounts"], False)]
    tables += [
        (("accounts", "profiles", index), profile, False)
        for index, profile in enumerate(document["accounts"].get("profiles", []))
    ]
    tables += [(("events", kind), mapping, True) for kind, mapping in document["events"].items()]
    for place, mapping, event in tables:
        seen: dict[str, tuple] = {}
        for where, column in mapped_columns(mapping, event=event):
            if column in seen:
                errors.append(
                    f"{path_of((*place, *where))}: the column {column!r} is mapped twice "
                    f"(also at {path_of((*place, *seen[column]))})"
                )
            else:
                seen[column] = where
    accounts = document["accounts"]["table"]
    for index, profile in enumerate(document["accounts"].get("profiles", [])):
        if profile["table"] == accounts:
            errors.append(
                f"{path_of(('accounts', 'profiles', index, 'table'))}: a profile table is not "
                f"the account table ({accounts})"
            )
    return errors
