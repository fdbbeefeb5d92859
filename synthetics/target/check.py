"""A target file held against the live database (`manage.py target check`): every problem that would
keep a run from writing — a missing table or column, a type that cannot hold the engine's values, a
NOT NULL column nobody fills, a key Synthetics cannot make, an enum without the engine's event
types, a foreign key the mapping cannot satisfy, a privilege the role lacks, row-level security that
would hide or refuse our rows — each one line with its place in the file; the notes (triggers that
fire for our rows, CHECKs our values must meet); and the plan: what Synthetics writes, deletes and
reads in the application's tables, and the privileges that takes. Read-only."""

from __future__ import annotations

from dataclasses import dataclass, field

from synthetics.engine.types import EVENT_TYPES
from synthetics.services.scenario_files import path_of
from synthetics.target.catalog import Column, Role, Table
from synthetics.target.files import mapped_columns

TEXT_TYPES = ("text", "character varying", "character", "citext")
INTEGER_TYPES = ("smallint", "integer", "bigint")
NUMBER_TYPES = (*INTEGER_TYPES, "numeric", "real", "double precision")
TIME_TYPES = ("timestamp with time zone", "timestamp without time zone")
KEY_TYPES = {"uuid": ("uuid",), "bigint": ("bigint",), "integer": ("integer",), "text": TEXT_TYPES}
# What a sim user's fields are, as a column must take them.
SIM_USER_TIME_FIELDS = ("joined_at",)
LONGEST_SLUG = 64
NEEDED = ("SELECT", "INSERT", "DELETE")  # write our rows, read them back, clean them up


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)


def schemas_named(document: dict) -> set[str]:
    """The schemas of every table the file names (what to read of the catalogue)."""
    tables = [document["accounts"]["table"]]
    tables += [profile["table"] for profile in document["accounts"].get("profiles", [])]
    tables += [mapping["table"] for mapping in document["events"].values()]
    return {table.split(".", 1)[0] for table in tables}


def target_report(document: dict, catalog: dict[str, Table], role: Role) -> Report:
    """The file at `document` (already read by files.target_loads) against `catalog`, for `role`."""
    report = Report()
    accounts_place = ("accounts",)
    accounts = _table(document["accounts"]["table"], (*accounts_place, "table"), catalog, report)
    written: list[tuple[Table, dict, tuple, bool]] = []
    if accounts is not None:
        _accounts(document["accounts"], accounts, report)
        written.append((accounts, document["accounts"], accounts_place, False))
    for index, profile in enumerate(document["accounts"].get("profiles", [])):
        place = (*accounts_place, "profiles", index)
        table = _table(profile["table"], (*place, "table"), catalog, report)
        if table is not None:
            _profile(profile, table, accounts, place, report)
            written.append((table, profile, place, False))
    for kind, mapping in document["events"].items():
        place = ("events", kind)
        table = _table(mapping["table"], (*place, "table"), catalog, report)
        if table is not None:
            _events(kind, mapping, table, accounts, place, report)
            written.append((table, mapping, place, True))
    events = list(document["events"].items())
    for index, (kind, mapping) in enumerate(events):
        for other, shared in events[:index]:
            if mapping["table"] == shared["table"] and not (mapping["type"] and shared["type"]):
                report.problems.append(
                    f"{path_of(('events', kind, 'type'))}: {other} and {kind} events share "
                    f"{mapping['table']}: each needs its type column to tell them apart"
                )
    for table, mapping, place, event in written:
        _written_columns(table, mapping, place, event, report)
        _access(table, place, role, report)
    _plan(written, document, report)
    return report


def _table(name: str, place: tuple, catalog: dict[str, Table], report: Report) -> Table | None:
    table = catalog.get(name)
    if table is None:
        report.problems.append(f"{path_of(place)}: no table {name} in the database")
    return table


def _column(table: Table, name: str, place: tuple, report: Report) -> Column | None:
    column = table.column(name)
    if column is None:
        report.problems.append(f"{path_of(place)}: {table.qualified} has no column {name!r}")
    elif column.generated:
        report.problems.append(
            f"{path_of(place)}: {table.qualified}.{name} is generated: it cannot be written"
        )
        return None
    return column


def _base(kind: str) -> str:
    return kind.split("(")[0].strip()


def _length(kind: str) -> int | None:
    inside = kind.partition("(")[2].rstrip(")")
    return int(inside) if inside.isdigit() else None


def _accounts(mapping: dict, table: Table, report: Report) -> None:
    place = ("accounts", "key")
    key = _column(table, mapping["key"], place, report)
    if key is None:
        return
    if _base(key.type) not in KEY_TYPES[mapping["key_type"]]:
        report.problems.append(
            f"{path_of(('accounts', 'key_type'))}: {mapping['key_type']}, but "
            f"{table.qualified}.{key.name} is {key.type}"
        )
    if mapping["key_source"] == "database" and not key.fills_itself:
        report.problems.append(
            f"{path_of(('accounts', 'key_source'))}: database, but {table.qualified}.{key.name} "
            "has no default or identity to make a key"
        )
    if mapping["key_source"] == "synthetics":
        if mapping["key_type"] in ("bigint", "integer"):
            report.problems.append(
                f"{path_of(('accounts', 'key_source'))}: Synthetics makes uuid and text keys, "
                f"not {mapping['key_type']} ones: the database must make them"
            )
        if key.identity == "always":
            report.problems.append(
                f"{path_of(('accounts', 'key_source'))}: {table.qualified}.{key.name} is "
                "GENERATED ALWAYS: only the database makes its keys"
            )
    if tuple(table.primary_key) != (key.name,):
        report.notes.append(
            f"{path_of(place)}: {table.qualified}.{key.name} is not the table's primary key"
        )


def _profile(
    mapping: dict, table: Table, accounts: Table | None, place: tuple, report: Report
) -> None:
    column = _column(table, mapping["account"], (*place, "account"), report)
    if column is None or accounts is None:
        return
    if not any(
        key.columns == (column.name,) and key.references == accounts.qualified
        for key in table.foreign_keys
    ):
        report.notes.append(
            f"{path_of((*place, 'account'))}: no foreign key from {table.qualified}."
            f"{column.name} to {accounts.qualified}: cleanup removes the profile by its key"
        )


def _events(
    kind: str, mapping: dict, table: Table, accounts: Table | None, place: tuple, report: Report
) -> None:
    account = _column(table, mapping["account"], (*place, "account"), report)
    if account is not None and accounts is not None:
        linked = any(
            key.columns == (account.name,) and key.references == accounts.qualified
            for key in table.foreign_keys
        )
        if not linked:
            report.notes.append(
                f"{path_of((*place, 'account'))}: no foreign key from {table.qualified}."
                f"{account.name} to {accounts.qualified}"
            )
    time = _column(table, mapping["time"], (*place, "time"), report)
    if time is not None and time.type not in TIME_TYPES:
        report.problems.append(
            f"{path_of((*place, 'time'))}: {table.qualified}.{time.name} is {time.type}, "
            "not a timestamp"
        )
    types = EVENT_TYPES[kind]
    if mapping["type"] is not None:
        column = _column(table, mapping["type"], (*place, "type"), report)
        if column is not None:
            _takes_texts(column, table, types, (*place, "type"), report)
    if mapping["payload"] is None and len(table.primary_key) != 1:
        report.problems.append(
            f"{path_of((*place, 'payload'))}: null, but {table.qualified} has no single-column "
            "primary key: Synthetics keeps each row's origin by its key"
        )
    if mapping["payload"] is not None:
        payload = _column(table, mapping["payload"], (*place, "payload"), report)
        if payload is not None and payload.type != "jsonb":
            report.problems.append(
                f"{path_of((*place, 'payload'))}: {table.qualified}.{payload.name} is "
                f"{payload.type}: the tag needs jsonb (or payload: null, and Synthetics keeps "
                "each row's origin in a table of its own)"
            )
    for reference in ("journey", "scene", "mindblock"):
        if reference not in mapping:
            continue
        where = (*place, reference, "column")
        column = _column(table, mapping[reference]["column"], where, report)
        if column is None:
            continue
        foreign = next((key for key in table.foreign_keys if column.name in key.columns), None)
        if foreign is not None:
            report.problems.append(
                f"{path_of(where)}: {table.qualified}.{column.name} references "
                f"{foreign.references}: a {reference} of Synthetics is not a row there (mapping "
                "the app's own journeys, scenes or mindblocks is not supported yet)"
            )
        way, base = mapping[reference]["as"], _base(column.type)
        fits = {
            "id": ("uuid", *TEXT_TYPES) if reference == "journey" else INTEGER_TYPES,
            "slug": TEXT_TYPES,
            "text": TEXT_TYPES,
        }[way]
        if base not in fits:
            report.problems.append(
                f"{path_of(where)}: {table.qualified}.{column.name} is {column.type}: it cannot "
                f"hold a {reference}'s {way}"
            )
        elif base in TEXT_TYPES and (_length(column.type) or LONGEST_SLUG) < LONGEST_SLUG:
            report.problems.append(
                f"{path_of(where)}: {table.qualified}.{column.name} is {column.type}: shorter "
                f"than a {reference}'s {way} may be ({LONGEST_SLUG} characters)"
            )


def _takes_texts(column: Column, table: Table, texts, place: tuple, report: Report) -> None:
    """The column takes each of `texts` (the event types): text long enough, or an enum with them."""
    if column.enum_labels is not None:
        missing = [text for text in texts if text not in column.enum_labels]
        if missing:
            report.problems.append(
                f"{path_of(place)}: {table.qualified}.{column.name} is an enum without "
                f"{', '.join(missing)}"
            )
    elif _base(column.type) not in TEXT_TYPES:
        report.problems.append(
            f"{path_of(place)}: {table.qualified}.{column.name} is {column.type}, not text"
        )
    elif (longest := _length(column.type)) is not None and longest < max(map(len, texts)):
        report.problems.append(
            f"{path_of(place)}: {table.qualified}.{column.name} is {column.type}: shorter than "
            f"{max(texts, key=len)!r}"
        )


def _written_columns(
    table: Table, mapping: dict, place: tuple, event: bool, report: Report
) -> None:
    """Each `columns` value fits its column; no NOT NULL column is left without a value; a foreign
    key on a written column names a table Synthetics writes."""
    mapped = {column for _, column in mapped_columns(mapping, event=event)}
    for name, value in mapping["columns"].items():
        column = _column(table, name, (*place, "columns", name), report)
        if column is not None and column.identity == "always":
            report.problems.append(
                f"{path_of((*place, 'columns', name))}: {table.qualified}.{name} is GENERATED "
                "ALWAYS AS IDENTITY: only the database writes it"
            )
        elif column is not None and event and column.name in table.primary_key:
            report.problems.append(
                f"{path_of((*place, 'columns', name))}: {table.qualified}.{name} is the table's "
                "primary key: each row needs its own, so leave it to the table's default"
            )
        elif column is not None and (problem := _value_problem(value, column)):
            report.problems.append(
                f"{path_of((*place, 'columns', name))}: {table.qualified}.{name} "
                f"({column.type}) {problem}"
            )
    key = mapping.get("key") if not event else None
    for column in table.columns:
        if column.name in mapped or not column.not_null or column.fills_itself:
            continue
        if key is not None and column.name == key:
            continue
        report.problems.append(
            f"{path_of((*place, 'columns'))}: {table.qualified}.{column.name} is NOT NULL "
            "without a default and the file gives it no value"
        )
    for foreign in table.foreign_keys:
        written = [name for name in foreign.columns if name in mapping["columns"]]
        if written:
            report.problems.append(
                f"{path_of((*place, 'columns', written[0]))}: {table.qualified}."
                f"{written[0]} references {foreign.references}: a constant there would name "
                "rows Synthetics did not write"
            )
    for name, definition in table.checks:
        report.notes.append(
            f"{path_of((*place, 'table'))}: our rows must meet {name}: {definition}"
        )
    for name, _ in table.triggers:
        report.notes.append(
            f"{path_of((*place, 'table'))}: the trigger {name} on {table.qualified} fires for "
            "our rows too"
        )


def _value_problem(value: dict, column: Column) -> str | None:
    """Why `value` (a value source) cannot go into `column`, or None."""
    base = _base(column.type)
    if "constant" in value:
        constant = value["constant"]
        if constant is None:
            return "is NOT NULL: null cannot go there" if column.not_null else None
        if column.enum_labels is not None:
            labels = ", ".join(column.enum_labels)
            return None if constant in column.enum_labels else f"takes only {labels}"
        if isinstance(constant, bool):
            return None if base == "boolean" else "does not take true or false"
        if isinstance(constant, int | float):
            return None if base in NUMBER_TYPES else "does not take a number"
        if base in TEXT_TYPES:
            longest = _length(column.type)
            too_long = longest is not None and len(constant) > longest
            return f"takes at most {longest} characters" if too_long else None
        if base in (*TIME_TYPES, "date", "uuid", "json", "jsonb", "inet", "citext"):
            return None  # the database reads the text; a bad one is its error at the first run
        return "does not take text"
    if "json" in value:
        return None if base in ("json", "jsonb") else "is not a json column"
    if value.get("sim_user") in SIM_USER_TIME_FIELDS:
        return None if base in (*TIME_TYPES, "date") else "is not a time"
    if base not in TEXT_TYPES:  # a template, or a sim user's text
        return "is not text"
    return None


def _access(table: Table, place: tuple, role: Role, report: Report) -> None:
    missing = [privilege for privilege in NEEDED if privilege not in table.privileges]
    if missing:
        report.problems.append(
            f"{path_of((*place, 'table'))}: the role {role.name} lacks "
            f"{', '.join(missing)} on {table.qualified}"
        )
    if not table.row_security or role.superuser or role.bypasses_row_security:
        return
    if table.owned and not table.row_security_forced:
        return
    policies = ", ".join(table.policies) or "none"
    report.problems.append(
        f"{path_of((*place, 'table'))}: row-level security is on for {table.qualified} "
        f"(policies: {policies}) and applies to the role {role.name}: it could hide or refuse "
        "our rows (give the role BYPASSRLS, or run as the table's owner)"
    )


def _plan(written: list, document: dict, report: Report) -> None:
    from django.conf import settings

    from synthetics.target.indexes import tag_index_name
    from synthetics.target.own_schema import VERIFICATION_VIEWS, VIEW_SCHEMA

    schema = getattr(settings, "SYNTHETICS_SCHEMA", "synthetics")
    views = ", ".join(f"{VIEW_SCHEMA}.{name}" for name in VERIFICATION_VIEWS)
    report.plan.append(
        f"`migrate` creates Synthetics' own tables (settings, sim users, journey state, the "
        f"ledger, its staff accounts, Django's and django-q2's tables) in the schema {schema} "
        f"(SYNTHETICS_SCHEMA), and the views {views} of two of them for the seed's verification "
        "SQL where those names are free; nothing of the application's"
    )
    for table, mapping, _place, event in written:
        columns = [name for _, name in mapped_columns(mapping, event=event)]
        if not event and "key" in mapping and mapping["key_source"] == "database":
            columns.remove(mapping["key"])
        report.plan.append(f"writes into {table.qualified}: {', '.join(columns)}")
    order = [table.qualified for table, _, _, event in written if event]
    order += [table.qualified for table, _, place, _ in written if "profiles" in place]
    order += [table.qualified for table, _, place, _ in written if place == ("accounts",)]
    report.plan.append(
        f"deletes its own rows only (cleanup: old events; `target detach`: all), in this "
        f"order: {', '.join(order)}"
    )
    report.plan.append(
        "reads its own rows back (status counts, cleanup) through the tag and the ledger"
    )
    report.plan.append(f"needs {', '.join(NEEDED)} on each of these tables")
    for table, mapping, _place, event in written:
        if event and not mapping.get("payload"):
            report.plan.append(
                f"keeps the origin of each row it writes into {table.qualified} (no payload "
                f"column) in {schema}.synthetic_row_origins, by {table.primary_key[0] if table.primary_key else 'its key'}"
            )
        if event and mapping.get("payload"):
            report.plan.append(
                f"`target index` (optional, the one change to an application table) makes "
                f"{table.schema}.{tag_index_name(table.qualified)} on {table.qualified} "
                f"(({mapping['payload']} ->> 'synthetic'), {mapping['time']}) CONCURRENTLY"
            )
