"""The target file in force (SYNTHETICS_TARGET), read once per process into the shapes the writers
use: the account table and its profile tables, each event kind's table, every mapped column and
the value written into it. `target_in_force()` is None in demo mode."""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import orjson

# What a template may name of the sim user ({username}@synthetics.invalid), and what a `sim_user`
# value may take.
TEMPLATE_FIELDS = ("username", "index", "first_name", "last_name", "display_name", "email")


# The SQL array type a list of account keys (as text) is sent as, by the file's key type.
KEY_ARRAYS = {"uuid": "uuid[]", "bigint": "bigint[]", "integer": "integer[]", "text": "text[]"}


def quoted(name: str) -> str:
    """An SQL identifier, quoted (a name may hold anything but NUL)."""
    return '"' + name.replace('"', '""') + '"'


def qualified(table: str) -> str:
    """schema.table as a quoted SQL name."""
    schema, name = table.split(".", 1)
    return f"{quoted(schema)}.{quoted(name)}"


def template_problem(template: str) -> str | None:
    """Why a template cannot be rendered, or None: only {field} of TEMPLATE_FIELDS, no format
    specs, attributes or indexes (str.format would read attributes of the value)."""
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as error:
        return f"is not a template: {error}"
    for _, field, spec, conversion in parts:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS or spec or conversion:
            return f"names {{{field}}}: a template takes only " + ", ".join(
                f"{{{name}}}" for name in TEMPLATE_FIELDS
            )
    return None


@dataclass(frozen=True, slots=True)
class Written:
    """A mapped column and the value source the file gives it (constant, template, sim_user, json)."""

    column: str
    source: dict

    def value(self, person: dict[str, Any] | None) -> Any:
        """The value for one row; `person` holds the sim user's fields (TEMPLATE_FIELDS and the
        `sim_user` ones) where the source needs them."""
        source = self.source
        if "constant" in source:
            return source["constant"]
        if "json" in source:
            return orjson.dumps(source["json"]).decode()
        if "template" in source:
            return source["template"].format_map(person or {})
        return (person or {}).get(source["sim_user"])

    @property
    def per_person(self) -> bool:
        return "template" in self.source or "sim_user" in self.source


def _written(columns: dict) -> tuple[Written, ...]:
    return tuple(Written(name, source) for name, source in columns.items())


@dataclass(frozen=True, slots=True)
class ProfileMapping:
    table: str
    account: str
    columns: tuple[Written, ...]


@dataclass(frozen=True, slots=True)
class AccountMapping:
    table: str
    key: str
    key_type: str
    key_source: str
    columns: tuple[Written, ...]
    profiles: tuple[ProfileMapping, ...]


@dataclass(frozen=True, slots=True)
class Reference:
    column: str
    way: str  # id, slug or text


@dataclass(frozen=True, slots=True)
class EventMapping:
    kind: str  # scene or mindblock
    table: str
    account: str
    time: str
    type: str | None
    payload: str | None
    references: dict[str, Reference]
    columns: tuple[Written, ...]

    @property
    def per_person(self) -> bool:
        return any(written.per_person for written in self.columns)


@dataclass(frozen=True, slots=True)
class Target:
    path: str
    accounts: AccountMapping
    events: dict[str, EventMapping]

    def app_tables(self) -> list[str]:
        """Every application table the file names: events, profiles, accounts (cleanup's order)."""
        tables = [mapping.table for mapping in self.events.values()]
        tables += [profile.table for profile in self.accounts.profiles]
        return [*dict.fromkeys([*tables, self.accounts.table])]


def target_from(document: dict, *, path: str = "") -> Target:
    """A checked target file (files.target_loads) as a Target."""
    accounts = document["accounts"]
    return Target(
        path=path,
        accounts=AccountMapping(
            table=accounts["table"],
            key=accounts["key"],
            key_type=accounts["key_type"],
            key_source=accounts["key_source"],
            columns=_written(accounts["columns"]),
            profiles=tuple(
                ProfileMapping(p["table"], p["account"], _written(p["columns"]))
                for p in accounts.get("profiles", [])
            ),
        ),
        events={
            kind: EventMapping(
                kind=kind,
                table=mapping["table"],
                account=mapping["account"],
                time=mapping["time"],
                type=mapping["type"],
                payload=mapping["payload"],
                references={
                    name: Reference(mapping[name]["column"], mapping[name]["as"])
                    for name in ("journey", "scene", "mindblock")
                    if name in mapping
                },
                columns=_written(mapping["columns"]),
            )
            for kind, mapping in document["events"].items()
        },
    )


@functools.cache
def target_in_force() -> Target | None:
    """The target of SYNTHETICS_TARGET (read and checked once per process), or None: demo mode.
    A file that is not valid raises TargetInvalid; the system check (synthetics.E002) reports it
    at start, before any command runs."""
    from django.conf import settings

    from synthetics.target.files import target_read

    path = getattr(settings, "SYNTHETICS_TARGET", "")
    if not path:
        return None
    return target_from(target_read(path), path=path)


def person_fields(*, index: int, profile_or_user, joined_at: datetime | None) -> dict[str, Any]:
    """A sim user's fields as templates and `sim_user` values read them."""
    signed_up = joined_at
    if signed_up is None:
        signup_date: date = profile_or_user.signup_date
        signed_up = datetime.combine(signup_date, time(12), tzinfo=UTC)
    return {
        "index": index,
        "username": profile_or_user.username,
        "email": profile_or_user.email,
        "first_name": profile_or_user.first_name,
        "last_name": profile_or_user.last_name,
        "display_name": profile_or_user.display_name,
        "timezone": profile_or_user.timezone,
        "locale": profile_or_user.locale,
        "persona": profile_or_user.persona,
        "joined_at": signed_up,
    }
