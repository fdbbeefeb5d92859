"""A proposed target file, read from an application's catalogue (synthetics.target.catalog): the
event tables found by name and shape, the account table through their foreign keys, each column
guessed by its type and name, and a comment on every guess. `manage.py target inspect` prints it.

The proposal follows the published schema (synthetics/target.schema.json). What cannot be attached
(no table for an event kind, no time column, a key type Synthetics cannot make) is said in a
PROBLEM comment at the top; `target check` is the judge of a file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from synthetics.engine.types import EVENT_TYPES
from synthetics.models import SYNTHETIC_EMAIL_DOMAIN
from synthetics.target.catalog import Column, Table

TIME_NAMES = ("created_at", "occurred_at", "inserted_at", "timestamp", "event_time", "time", "at")
SESSION_TIME_NAMES = ("started_at", "start_time", "started", "begun_at", *TIME_NAMES)
# A sessions table: one of these names, or one ending so (user_sessions, app_visits); never one
# of sign-ins or tokens (auth.sessions, login_sessions, session_tokens).
SESSION_NAMES = ("sessions", "session", "visits", "visit")
SESSION_ENDINGS = ("_sessions", "_visits")
NOT_SESSIONS = ("auth", "login", "signin", "sign_in", "token")
TYPE_NAMES = ("event_type", "type", "kind", "event", "action", "name")
PAYLOAD_NAMES = ("event_payload", "payload", "properties", "data", "metadata", "meta", "context")
ACCOUNT_NAMES = ("user_id", "account_id", "member_id", "profile_id", "owner_id", "person_id")
JOURNEY_NAMES = ("journey_id", "journey", "session_id", "session", "flow")
SCENE_NAMES = ("scene_id", "scene", "scene_slug", "screen", "page", "step")
MINDBLOCK_NAMES = ("mindblock_type", "mindblock_id", "mindblock", "blocker", "block_type", "reason")
PASSWORD_NAMES = ("encrypted_password", "password", "password_hash", "hashed_password")
NEVER_LOGS_IN = "9999-12-31T00:00:00Z"
TEXT_TYPES = ("text", "character varying", "character", "citext")
INTEGER_TYPES = ("bigint", "integer", "smallint")


@dataclass
class Proposal:
    """A target document, the comment on each of its places, and what keeps it from attaching."""

    document: dict
    notes: dict[tuple, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def proposal(catalog: dict[str, Table]) -> Proposal:
    """The target file proposed for the tables of `catalog`."""
    found = Proposal(document={"version": 1})
    mindblock = _event_table(catalog, ("mindblock_events", "mindblock", "blocker", "block"))
    scene = _event_table(catalog, ("journey_scene_events", "scene", "event", "activity"))
    if (
        scene is None
    ):  # a table that points at another and that nothing points at, with a time first
        referenced = {key.references for table in catalog.values() for key in table.foreign_keys}
        leaves = [
            table
            for table in catalog.values()
            if table.foreign_keys and table.qualified not in referenced and table is not mindblock
        ]
        leaves.sort(key=lambda table: not any(_is_time(column) for column in table.columns))
        scene = leaves[0] if leaves else None
    if scene is None:
        found.problems.append("no table for scene events: one with a foreign key to the accounts")
    if mindblock is None or mindblock is scene:
        mindblock = None
        found.problems.append("no table for mindblock events: one with a foreign key to accounts")
    link = _account_link(scene or mindblock)
    accounts = catalog.get(link.references) if link is not None else None
    if accounts is None:
        found.problems.append("no account table: the event tables have no foreign key to one")
        return found
    found.document["accounts"] = _accounts(accounts, link.referenced_columns[0], catalog, found)
    found.document["events"] = {}
    session = _session_table(catalog, (scene or mindblock).schema, accounts, (scene, mindblock))
    for kind, table in (("scene", scene), ("mindblock", mindblock), ("session", session)):
        if table is not None:
            found.document["events"][kind] = _events(kind, table, accounts, found)
    unsupported = sorted({name for name in _names(found.document) if "%" in name})
    if unsupported:
        found.problems.append(
            f"names with % are not supported ({', '.join(unsupported)}): Synthetics' SQL passes "
            "values as %s parameters"
        )
    return found


def _names(document: dict) -> list[str]:
    """Every table and column name the proposed file writes."""
    names: list[str] = []
    accounts = document.get("accounts", {})
    mappings = [accounts, *accounts.get("profiles", []), *document.get("events", {}).values()]
    for mapping in mappings:
        for key in ("table", "key", "account", "time", "type", "payload"):
            if isinstance(mapping.get(key), str):
                names.append(mapping[key])
        names += [
            mapping[key]["column"] for key in ("journey", "scene", "mindblock") if key in mapping
        ]
        names += list(mapping.get("columns", {}))
    return names


def _session_table(
    catalog: dict[str, Table], schema: str, accounts: Table, taken: tuple
) -> Table | None:
    """An application's sessions table, if it has one: in the event tables' schema (never another
    schema's: Supabase's auth.sessions are logins), named so, with a foreign key to the accounts
    and a time column. Optional: without one the file maps no sessions."""
    tables = [
        table
        for table in catalog.values()
        if table.schema == schema
        and table not in taken
        and any(
            key.references == accounts.qualified and len(key.columns) == 1
            for key in table.foreign_keys
        )
        and any(_is_time(column) for column in table.columns)
    ]
    for table in sorted(tables, key=lambda table: table.name.lower() not in SESSION_NAMES):
        name = table.name.lower()
        if any(word in name for word in NOT_SESSIONS):
            continue
        if name in SESSION_NAMES or name.endswith(SESSION_ENDINGS):
            return table
    return None


def _event_table(catalog: dict[str, Table], hints: tuple[str, ...]) -> Table | None:
    """The table whose name fits the first hint it can (exactly, then in part), with a foreign key."""
    tables = [table for table in catalog.values() if table.foreign_keys]
    for hint in hints:
        for table in tables:
            if table.name == hint or (hint in table.name and hint != hints[0]):
                return table
    return None


def _account_link(table: Table | None):
    if table is None or not table.foreign_keys:
        return None
    for key in table.foreign_keys:
        if len(key.columns) == 1 and key.columns[0] in ACCOUNT_NAMES:
            return key
    return next((key for key in table.foreign_keys if len(key.columns) == 1), None)


def _named(table: Table, names: tuple[str, ...], *, kinds=None) -> Column | None:
    """The first column of `names` (its exact name, else in any case: "Type", "createdAt")."""
    for name in names:
        column = table.column(name) or next(
            (column for column in table.columns if column.name.lower() == name), None
        )
        if column is not None and (kinds is None or _base(column.type) in kinds):
            return column
    return None


def _base(kind: str) -> str:
    return kind.split("(")[0].strip()


def _is_time(column: Column) -> bool:
    return column.type.startswith("timestamp")


def _accounts(table: Table, key: str, catalog: dict[str, Table], found: Proposal) -> dict:
    place = ("accounts",)
    column = table.column(key)
    key_type = {"uuid": "uuid", "bigint": "bigint", "integer": "integer"}.get(column.type)
    if key_type is None and _base(column.type) in TEXT_TYPES:
        key_type = "text"
    if key_type is None:
        found.problems.append(f"{table.qualified}.{key}: a key of type {column.type}")
        key_type = "text"
    if not column.fills_itself and key_type in ("bigint", "integer"):
        found.problems.append(
            f"{table.qualified}.{key}: the key ({column.type}) has no default or identity "
            "(Synthetics makes uuid and text keys; a number must come from the database)"
        )
    accounts = {
        "table": table.qualified,
        "key": key,
        "key_type": key_type,
        "key_source": "database" if column.fills_itself else "synthetics",
        "columns": {},
    }
    found.notes[(*place, "table")] = "found through the event tables' foreign key"
    found.notes[(*place, "key_source")] = (
        "the column's default or identity makes each key"
        if column.fills_itself
        else "no default: Synthetics makes each key"
    )
    for other in table.columns:
        if other.name == key or other.generated:
            continue
        value, note = _account_value(other)
        if value is not None:
            accounts["columns"][other.name] = value
            found.notes[(*place, "columns", other.name)] = note
    profiles = [
        profile
        for profile in catalog.values()
        if profile is not table
        and any(
            link.references == table.qualified and link.columns == profile.primary_key
            for link in profile.foreign_keys
        )
    ]
    entries = []
    for profile in profiles:
        entry = {"table": profile.qualified, "account": profile.primary_key[0], "columns": {}}
        notes = {}
        for other in profile.columns:
            if other.name == profile.primary_key[0] or other.generated:
                continue
            value, note = _account_value(other)
            if value is not None:
                entry["columns"][other.name] = value
                notes[other.name] = note
        if not entry["columns"]:  # keyed by the account but nothing of a profile (a counter)
            continue
        index = len(entries)
        found.notes[(*place, "profiles", index, "table")] = "keyed by the account: a profile"
        for name, note in notes.items():
            found.notes[(*place, "profiles", index, "columns", name)] = note
        entries.append(entry)
    if entries:
        accounts["profiles"] = entries
    return accounts


def _account_value(column: Column) -> tuple[dict | None, str]:
    """What a synthetic account writes into `column`, and why; (None, "") to leave it alone."""
    name, kind = column.name.lower(), _base(column.type)
    if "email" in name and kind in TEXT_TYPES:
        return {"template": f"{{username}}@{SYNTHETIC_EMAIL_DOMAIN}"}, "no mail reaches .invalid"
    if name in PASSWORD_NAMES:
        if column.not_null:
            return {"constant": "!"}, "no password hashes to it: the account cannot log in"
        return {"constant": None}, "no password: the account cannot log in"
    if name in ("banned_until", "locked_until", "disabled_until") and _is_time(column):
        return {"constant": NEVER_LOGS_IN}, "banned for good: the account cannot log in"
    if name in ("is_synthetic", "synthetic", "is_test", "is_bot", "is_fake") and kind == "boolean":
        return {"constant": True}, "marks the account as Synthetics'"
    if name in ("is_active", "active", "enabled", "can_login") and kind == "boolean":
        return {"constant": False}, "inactive: the account cannot log in"
    if name in ("username", "user_name", "handle", "login"):
        return {"template": "{username}"}, "guessed by name: the sim account's name"
    if name in ("display_name", "full_name", "name"):
        return {"sim_user": "display_name"}, "guessed by name"
    if name in ("first_name", "last_name", "timezone", "locale"):
        return {"sim_user": name}, "guessed by name"
    if name in ("time_zone", "tz"):
        return {"sim_user": "timezone"}, "guessed by name"
    if name in ("language", "lang"):
        return {"sim_user": "locale"}, "guessed by name"
    if _is_time(column) and any(word in name for word in ("created", "joined", "signed_up")):
        return {"sim_user": "joined_at"}, "guessed by name: when the sim user signed up"
    if kind in ("json", "jsonb") and "meta" in name:
        return {"json": {"synthetics": True}}, "marks the account as Synthetics'"
    if not column.not_null or column.fills_itself:
        return None, ""
    return _required_value(column)


def _required_value(column: Column) -> tuple[dict, str]:
    """A value for a NOT NULL column without a default, guessed by its type."""
    kind = _base(column.type)
    why = "guessed: NOT NULL without a default"
    if column.enum_labels:
        return {"constant": column.enum_labels[0]}, f"{why}; the enum's first label"
    if kind == "boolean":
        return {"constant": False}, why
    if kind in TEXT_TYPES:
        longest = column.type.partition("(")[2].rstrip(")")
        text = "synthetics"[: int(longest)] if longest.isdigit() else "synthetics"
        return {"constant": text}, why
    if _is_time(column) or kind == "date":
        return {"sim_user": "joined_at"}, why
    if kind in ("json", "jsonb"):
        return {"json": {}}, why
    return {"constant": 0}, why


def _events(kind: str, table: Table, accounts: Table, found: Proposal) -> dict:
    place = ("events", kind)
    mapped: set[str] = set()
    link = next(key for key in table.foreign_keys if key.references == accounts.qualified)
    events: dict = {"table": table.qualified, "account": link.columns[0]}
    mapped.add(link.columns[0])
    time = _named(table, SESSION_TIME_NAMES if kind == "session" else TIME_NAMES)
    if time is None or not _is_time(time):
        time = next((column for column in table.columns if _is_time(column)), None)
    if time is None:
        found.problems.append(f"{table.qualified}: no time column (timestamp) for the events")
        events["time"] = "?"
    else:
        events["time"] = time.name
        mapped.add(time.name)
    types = EVENT_TYPES[kind]
    # A sessions table's "kind" or "name" is the app's own (a device, a channel): never guessed.
    type_column = None if kind == "session" else _named(table, TYPE_NAMES)
    if type_column is not None and (
        _base(type_column.type) in TEXT_TYPES or type_column.enum_labels is not None
    ):
        events["type"] = type_column.name
        mapped.add(type_column.name)
        if type_column.enum_labels is not None and not set(types) <= set(type_column.enum_labels):
            missing = sorted(set(types) - set(type_column.enum_labels))
            found.problems.append(
                f"{table.qualified}.{type_column.name}: its enum has no {', '.join(missing)}"
            )
    else:
        events["type"] = None
        found.notes[(*place, "type")] = (
            "not guessed for sessions: the app's own columns; null"
            if kind == "session"
            else "no column for the event type"
        )
    payload = _named(table, PAYLOAD_NAMES, kinds=("jsonb",)) or next(
        (column for column in table.columns if column.type == "jsonb"), None
    )
    if payload is None:
        events["payload"] = None
        found.notes[(*place, "payload")] = (
            "no jsonb column: Synthetics keeps each row's origin in a table of its own"
        )
    else:
        events["payload"] = payload.name
        mapped.add(payload.name)
        found.notes[(*place, "payload")] = "carries the tag, the run id and key"
    references = [("journey", JOURNEY_NAMES)]
    if kind != "session":
        references.append(("scene", SCENE_NAMES))
    if kind == "mindblock":
        references.append(("mindblock", MINDBLOCK_NAMES))
    for reference, names in references:
        # the first column so named that is free: not mapped yet, not the table's own key
        column = next(
            (
                column
                for column in map(table.column, names)
                if column is not None
                and column.name not in mapped
                and column.name not in table.primary_key
            ),
            None,
        )
        if column is None:
            continue
        foreign = next((key for key in table.foreign_keys if column.name in key.columns), None)
        if foreign is not None:  # the app's own journeys, scenes or mindblocks: not mapped yet
            mapped.add(column.name)
            if column.not_null:
                found.problems.append(
                    f"{table.qualified}.{column.name}: NOT NULL and references "
                    f"{foreign.references} (mapping the app's own {reference}s is not supported yet)"
                )
            continue
        base = _base(column.type)
        if base in INTEGER_TYPES or base == "uuid":
            way = "id"
        elif reference == "journey" and column.name.endswith("_id"):
            way = "id"  # a journey's id is a uuid: its text fits a text column named *_id
        else:
            way = "slug"
        events[reference] = {"column": column.name, "as": way}
        mapped.add(column.name)
        found.notes[(*place, reference)] = f"guessed by name; as its {way} ({column.type})"
    events["columns"] = {}
    for column in table.columns:
        if column.name in mapped or not column.not_null or column.fills_itself:
            continue
        if column.name in table.primary_key:
            found.problems.append(
                f"{table.qualified}.{column.name}: a primary key without a default or identity "
                "(each event needs the database to make its key)"
            )
            continue
        if kind == "session" and (_is_time(column) or _base(column.type) == "date"):
            found.problems.append(
                f"{table.qualified}.{column.name}: NOT NULL without a default, and a session row "
                "is written as the journey starts (its end is not known then): give the column a "
                "default or make it nullable"
            )
            continue
        value, note = _required_value(column)
        events["columns"][column.name] = value
        found.notes[(*place, "columns", column.name)] = note
    return events


# --- the file --------------------------------------------------------------------------------------


def rendered(found: Proposal, *, source: str) -> str:
    """The proposal as a YAML file with its comments (every value written as JSON writes it,
    which YAML reads the same)."""
    lines = [
        "# Synthetics target file (attach mode), proposed by `manage.py target inspect` from",
        f"# {source}.",
        "# Every guess has a comment: read them before using it.",
    ]
    lines += [f"# PROBLEM: {problem}" for problem in found.problems]
    _emit(found.document, (), 0, found.notes, lines)
    return "\n".join(lines) + "\n"


def _emit(value: dict | list, place: tuple, depth: int, notes: dict, lines: list[str]) -> None:
    pad = "  " * depth
    if isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict) and item:
                _emit_item(item, (*place, index), depth, notes, lines)
            else:
                lines.append(f"{pad}- {json.dumps(item)}")
        return
    for key, item in value.items():
        here = (*place, key)
        note = f"  # {notes[here]}" if here in notes else ""
        head = f"{pad}{_key(key)}:"
        if (isinstance(item, list) and item) or (
            isinstance(item, dict) and item and not _is_leaf(place, key)
        ):
            lines.append(head + note)
            _emit(item, here, depth + 1, notes, lines)
        else:
            lines.append(f"{head} {json.dumps(item)}{note}")


def _emit_item(item: dict, place: tuple, depth: int, notes: dict, lines: list[str]) -> None:
    """One item of a list of maps: its first key on the dash's line, the others under it."""
    inner: list[str] = []
    _emit(item, place, depth + 1, notes, inner)
    inner[0] = "  " * depth + "- " + inner[0].lstrip()
    lines.extend(inner)


# Words YAML 1.1 reads as something other than text (PyYAML does): such a key is quoted.
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def _key(key: object) -> str:
    text = str(key)
    plain = text.isidentifier() and text.isascii() and text.lower() not in _YAML_WORDS
    return text if plain else json.dumps(text)


def _is_leaf(place: tuple, key: object) -> bool:
    """A value source, or a reference: written on one line."""
    if place and place[-1] == "columns":
        return True
    return len(place) == 2 and place[0] == "events" and key in ("journey", "scene", "mindblock")
