"""The application's CHECK constraints held against the values Synthetics would write (`target
check`, and `migrate` before it creates anything): for each CHECK on a table the file writes whose
columns are all columns Synthetics fills, the database evaluates the CHECK's own expression over
every combination of the values those columns would get — the event types of the kind, the
catalogue's ids, slugs and names, the constants, and the templates and sim user fields rendered
for a sample of sim users. A combination the CHECK refuses is a problem, named by its place in the
file, with the values. Read-only: a SELECT over a VALUES list, in a savepoint rolled back."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from django.db import DatabaseError, transaction

from synthetics.engine.types import EVENT_TYPES
from synthetics.services.scenario_files import path_of
from synthetics.target.catalog import Table
from synthetics.target.mapping import Written, person_fields, quoted

# Sim users whose templates and fields are tried (their names, e-mails, time zones, ...).
SAMPLE_PEOPLE = 25
# At most this many combinations per CHECK (the product of its columns' values).
MOST_COMBINATIONS = 5_000
SAMPLE_PAYLOAD = orjson.dumps({"synthetic": True, "run_id": 1, "run_key": "k0000000000000000"})


def _people() -> list[dict[str, Any]]:
    from datetime import date

    from synthetics.engine.population import make_profile

    today = date(2026, 1, 1)
    return [
        person_fields(
            index=index,
            profile_or_user=make_profile(
                index=index, seed=20260109, today=today, email_domain="synthetics.invalid"
            ),
            joined_at=None,
        )
        for index in range(1, SAMPLE_PEOPLE + 1)
    ]


def _catalogue() -> dict[str, list[tuple[Any, str, str]]]:
    """(id, slug, name) of the journeys, scenes and mindblocks: the live catalogue when Synthetics'
    tables are there, else the one `migrate` installs."""
    from synthetics.models import JourneyTemplate, MindblockType, Scene

    try:
        with transaction.atomic():
            return {
                name: list(model.objects.values_list("pk", "slug", "name"))
                for name, model in (
                    ("journey", JourneyTemplate),
                    ("scene", Scene),
                    ("mindblock", MindblockType),
                )
            }
    except DatabaseError:  # not migrated yet: the catalogue migration 0002 installs
        import importlib

        data = importlib.import_module("synthetics.migrations.0002_default_settings_and_catalogue")
        scenes = [scene for _, _, _, steps in data.JOURNEYS for scene in steps]
        return {
            "journey": [(i, slug, name) for i, (slug, name, *_) in enumerate(data.JOURNEYS, 1)],
            "scene": [(i, slug, name) for i, (slug, name, *_) in enumerate(scenes, 1)],
            "mindblock": [(i, slug, name) for i, (slug, name, *_) in enumerate(data.MINDBLOCKS, 1)],
        }


def _written_values(written: Written, people: list[dict]) -> list:
    if written.per_person:
        return [written.value(person) for person in people]
    return [written.value(None)]


def _key_values(mapping: dict, people: list[dict]) -> list | None:
    """The account keys Synthetics makes, or None where the database makes them (unknown here)."""
    if mapping.get("key_source") != "synthetics":
        return None
    if mapping["key_type"] == "uuid":
        return [str(uuid.uuid4()) for _ in people[:3]]
    return [person["username"] for person in people]


def _values(
    mapping: dict, kind: str | None, people: list[dict], catalogue: dict
) -> dict[str, tuple[tuple, list]]:
    """Each column the mapping fills: (its place in the mapping, the values it would get)."""
    values: dict[str, tuple[tuple, list]] = {}
    if kind is None:  # the account table or a profile table
        key = mapping.get("key") or mapping.get("account")
        keys = _key_values(mapping, people) if "key" in mapping else None
        if keys is not None:
            values[key] = (("key",), keys)
    else:
        values[mapping["time"]] = (("time",), [datetime(2026, 1, 1, 12, tzinfo=UTC)])
        if mapping.get("type"):
            types = EVENT_TYPES[kind]
            values[mapping["type"]] = (("type",), list(types))
        if mapping.get("payload"):
            values[mapping["payload"]] = (("payload",), [SAMPLE_PAYLOAD.decode()])
        for name in ("journey", "scene", "mindblock"):
            if name not in mapping:
                continue
            way, column = mapping[name]["as"], mapping[name]["column"]
            if name == "journey" and way == "id":
                found = [str(uuid.uuid4())]
            else:
                position = {"id": 0, "slug": 1, "text": 2}[way]
                found = [entry[position] for entry in catalogue[name]]
                if name == "scene" and kind == "mindblock":
                    found.append(None)  # a mindblock reported outside a scene
            values[column] = ((name, "column"), found)
    for column, source in mapping["columns"].items():
        values[column] = (("columns", column), _written_values(Written(column, source), people))
    return values


def _definition(definition: str) -> str:
    """The CHECK's expression from pg_get_constraintdef's text: CHECK (…) [NOT VALID]."""
    body = definition.strip()
    if body.upper().endswith(" NOT VALID"):
        body = body[: -len(" NOT VALID")]
    return body[len("CHECK") :].strip() if body.upper().startswith("CHECK") else body


def check_violations(connection, document: dict, catalog: dict[str, Table]) -> list[str]:
    """Every CHECK of a written table that a value Synthetics would write breaks: one problem
    each, with its place in the file and the values."""
    people, catalogue = _people(), _catalogue()
    tables: list[tuple[tuple, dict, str | None]] = [(("accounts",), document["accounts"], None)]
    tables += [
        (("accounts", "profiles", index), profile, None)
        for index, profile in enumerate(document["accounts"].get("profiles", []))
    ]
    tables += [(("events", kind), mapping, kind) for kind, mapping in document["events"].items()]
    problems = []
    for place, mapping, kind in tables:
        table = catalog.get(mapping["table"])
        if table is None:
            continue
        values = _values(mapping, kind, people, catalogue)
        definitions = dict(table.checks)
        for name, columns in table.check_columns:
            if not columns or any(column not in values for column in columns):
                continue  # a column the database fills (a default): the note says so
            problem = _violated(
                connection,
                table,
                columns,
                [values[column][1] for column in columns],
                _definition(definitions[name]),
            )
            if problem is not None:
                where = path_of((*place, *values[columns[0]][0]))
                problems.append(
                    f"{where}: {problem} would break {table.qualified}'s {name}: "
                    f"{definitions[name]}"
                )
    return problems


def _violated(
    connection, table: Table, columns: tuple[str, ...], choices: list[list], expression: str
) -> str | None:
    """The first combination of `choices` (one list per column) the expression refuses, as text;
    None when every one passes."""
    combos = list(itertools.islice(itertools.product(*choices), MOST_COMBINATIONS))
    if not combos:
        return None
    types = [table.column(column).type for column in columns]
    row = "(" + ", ".join(f"%s::{kind}" for kind in types) + ")"
    names = ", ".join(quoted(column) for column in columns).replace("%", "%%")
    expression = expression.replace("%", "%%")
    sql = (  # the names' and the expression's own % doubled: the values go as parameters
        f"SELECT {names} FROM (VALUES {', '.join([row] * len(combos))}) AS v({names}) "
        f"WHERE NOT ({expression}) LIMIT 1"
    )
    params = [value for combo in combos for value in combo]
    # A savepoint: Django's connection, or a psycopg one (the tests hold an app's database so).
    savepoint = getattr(connection, "transaction", None) or transaction.atomic
    try:
        with savepoint(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            refused = cursor.fetchone()
    except (DatabaseError, psycopg.Error) as error:  # a value the column's type refuses
        first = str(error).strip().splitlines()[0]
        return f"a value Synthetics writes ({first})"
    if refused is None:
        return None
    return ", ".join(f"{column}={_shown(value)}" for column, value in _pairs(columns, refused))


def _shown(value: Any) -> str:
    """A value as the file or the database would write it: times in ISO 8601, the rest repr."""
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)


def _pairs(columns: Iterable[str], values: Iterable) -> list[tuple[str, Any]]:
    return list(zip(columns, values, strict=True))
