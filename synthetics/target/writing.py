"""The rows an attached application gets, built through its target file: its accounts (and profile
rows) for new sim users, and each run's scene and mindblock events in the mapped columns, tagged
as the demo tables' are (the payload's `synthetic`, `run_id` and `run_key`). Every write is a COPY,
or one INSERT … RETURNING per batch where the database makes the account keys, in the caller's
transaction. PostgreSQL only."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection

from synthetics.target.mapping import (
    KEY_ARRAYS,
    AccountMapping,
    EventMapping,
    Target,
    Written,
    qualified,
    quoted,
)

ACCOUNTS_BATCH = 1000
# A pool up to this size has all its account keys read at the first miss (about 100 bytes each).
ACCOUNT_KEYS_AT_ONCE = 200_000


@dataclass(frozen=True, slots=True)
class TableRows:
    """Rows for one table: its quoted name, quoted columns and the rows' values in that order.
    For a table whose rows' origin Synthetics keeps in its own table (no payload column), also
    its name as the target file gives it, its key column (quoted) and each row's (run id, run
    key, time)."""

    table: str
    columns: tuple[str, ...]
    rows: list[tuple]
    origin_table: str = ""
    key_column: str = ""
    origins: list[tuple] | None = None


def _copy(rows: TableRows) -> None:
    if not rows.rows:
        return
    sql = f"COPY {rows.table} ({', '.join(rows.columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows.rows:
            copy.write_row(row)


def table_rows_write(rows: TableRows) -> None:
    """Write rows built by event_rows, in the caller's transaction: one COPY, or for a table whose
    rows' origin we keep, one INSERT … RETURNING per batch (the keys the table gives them) and one
    COPY of their origin rows."""
    if not rows.origin_table:
        _copy(rows)
        return
    from synthetics.models import RowOrigin

    keys: list[str] = []
    row_sql = "(" + ", ".join(["%s"] * len(rows.columns)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(rows.rows), ACCOUNTS_BATCH):
            batch = rows.rows[start : start + ACCOUNTS_BATCH]
            cursor.execute(
                f"INSERT INTO {rows.table} ({', '.join(rows.columns)}) VALUES "
                f"{', '.join([row_sql] * len(batch))} RETURNING {rows.key_column}::text",
                [value for row in batch for value in row],
            )
            returned = [key for (key,) in cursor.fetchall()]
            if len(returned) != len(batch):
                raise RuntimeError(
                    f"expected {len(batch)} rows in {rows.table}, got {len(returned)}"
                )
            keys += returned
    origin_columns = ("table", "row_key", "run_id", "run_key", "created_at")
    _copy(
        TableRows(
            quoted(RowOrigin._meta.db_table),
            tuple(quoted(column) for column in origin_columns),
            [
                (rows.origin_table, key, run_id, run_key, created_at)
                for key, (run_id, run_key, created_at) in zip(keys, rows.origins, strict=True)
            ],
        )
    )


@dataclass(slots=True)
class AccountRows:
    """The account rows of some people and their profile rows, built before their write (keys
    Synthetics makes are known ahead: a seeding thread builds them while a writer writes the batch
    before)."""

    keys: list[str]
    accounts: TableRows
    profiles: list[TableRows]


def account_rows_ahead(
    target: Target, people: Sequence[dict[str, Any]], keys: Sequence[str] | None = None
) -> AccountRows | None:
    """The rows accounts_write would write for `people`, built now, with `keys` had ahead
    (account_keys_reserve) or, where Synthetics makes the keys, drawn now; None where the database
    makes them and none are given (they are known only once the rows are in)."""
    accounts = target.accounts
    if keys is None:
        if accounts.key_source != "synthetics":
            return None
        keys = _new_keys(accounts, people)
    keys = list(keys)
    if len(keys) != len(people):
        raise RuntimeError(f"{len(people)} accounts to make with {len(keys)} keys")
    return AccountRows(
        keys,
        TableRows(
            qualified(accounts.table),
            (quoted(accounts.key), *(quoted(w.column) for w in accounts.columns)),
            [
                (key, *(w.value(person) for w in accounts.columns))
                for key, person in zip(keys, people, strict=True)
            ],
        ),
        _profile_rows(accounts, keys, people),
    )


def _profile_rows(
    accounts: AccountMapping, keys: Sequence[str], people: Sequence[dict[str, Any]]
) -> list[TableRows]:
    return [
        TableRows(
            qualified(profile.table),
            (quoted(profile.account), *(quoted(w.column) for w in profile.columns)),
            [
                (key, *(w.value(person) for w in profile.columns))
                for key, person in zip(keys, people, strict=True)
            ],
        )
        for profile in accounts.profiles
    ]


def accounts_write(
    target: Target,
    people: Sequence[dict[str, Any]],
    ahead: AccountRows | None = None,
    *,
    keys: Sequence[str] | None = None,
) -> list[str]:
    """Create the application accounts (and profile rows) of `people` (mapping.person_fields),
    in the caller's transaction; their keys as text, in the same order. `ahead`: their rows as
    account_rows_ahead built them; `keys`: the keys had ahead (account_keys_ahead), written as
    they are (one COPY, whoever makes the keys)."""
    accounts = target.accounts
    if not people:
        return []
    if ahead is None and (keys is not None or accounts.key_source == "synthetics"):
        ahead = account_rows_ahead(target, people, keys)
    if ahead is not None:
        keys = ahead.keys
        _copy(ahead.accounts)
        profiles = ahead.profiles
    else:
        keys = []
        for start in range(0, len(people), ACCOUNTS_BATCH):
            keys += _accounts_insert(accounts, people[start : start + ACCOUNTS_BATCH])
        profiles = _profile_rows(accounts, keys, people)
    # A profile row an app trigger made with the account (Supabase's handle_new_user) is our
    # account's: replaced by ours, not duplicated. Without a trigger on the account table there is
    # none to replace.
    made_by_trigger = bool(profiles) and _insert_triggers(accounts.table)
    for profile, rows in zip(accounts.profiles, profiles, strict=True):
        if made_by_trigger:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"DELETE FROM {qualified(profile.table)} WHERE {quoted(profile.account)} = "
                    f"ANY(%s::{KEY_ARRAYS[accounts.key_type]})",
                    [keys],
                )
        _copy(rows)
    return keys


def _insert_triggers(table: str) -> bool:
    """Whether the application's table has a trigger of its own that fires on INSERT (not a
    foreign key's internal one), read now: a trigger added since is seen."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = %s::regclass "
            "AND NOT tgisinternal AND tgtype & 4 = 4)",
            [qualified(table)],
        )
        return cursor.fetchone()[0]


def _new_keys(accounts: AccountMapping, people: Sequence[dict[str, Any]]) -> list[str]:
    """Keys Synthetics makes: random version-4 uuids (from one read of the system's randomness,
    as uuid.uuid4 makes each), or the sim account's name for a text key."""
    if accounts.key_type != "uuid":
        return [str(person["username"]) for person in people]
    count = len(people)
    raw = bytearray(os.urandom(16 * count))
    raw[6::16] = bytes((b & 0x0F) | 0x40 for b in raw[6::16])  # version 4
    raw[8::16] = bytes((b & 0x3F) | 0x80 for b in raw[8::16])  # RFC 4122 variant
    h = raw.hex()
    return [
        f"{h[j : j + 8]}-{h[j + 8 : j + 12]}-{h[j + 12 : j + 16]}-{h[j + 16 : j + 20]}-{h[j + 20 : j + 32]}"
        for j in range(0, 32 * count, 32)
    ]


# What makes an account's key, where it can be had before the account is written (the history's
# pipeline simulates sign-ups a span ahead of their write): Synthetics itself (a uuid drawn, or the
# account's name), or the application's sequence, reserved a block at a time with nextval.
DRAWN = "drawn"


@dataclass(frozen=True, slots=True)
class KeysAhead:
    """How an account's key is had ahead: DRAWN by us, or from `sequence` (a regclass's text)."""

    source: str
    sequence: str = ""


# A column default that draws a random uuid, as Synthetics draws one (uuid.uuid4).
_RANDOM_UUID_DEFAULTS = ("gen_random_uuid()", "uuid_generate_v4()")


def account_keys_ahead(target: Target) -> KeysAhead | None:
    """How the accounts' keys can be had before the accounts are written, or None (then each is
    made as its account is: one sign-up minute after another). Keys Synthetics makes are drawn;
    a key the database makes is reserved from its identity or serial sequence
    (pg_get_serial_sequence, or a default of nextval on a sequence), or drawn where its default
    draws a random uuid. Never where a BEFORE INSERT trigger on the accounts table could set the
    key itself, nor for any other default. Read from PostgreSQL's catalogue."""
    accounts = target.accounts
    if accounts.key_source == "synthetics":
        return KeysAhead(DRAWN)
    table = qualified(accounts.table)
    with connection.cursor() as cursor:
        cursor.execute(
            # tgtype: 1 a row trigger, 2 before, 4 on insert (pg_trigger.h)
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal "
            "AND tgenabled <> 'D' AND tgtype & 7 = 7",
            [table],
        )
        if cursor.fetchone()[0]:
            return None
        cursor.execute("SELECT pg_get_serial_sequence(%s, %s)", [table, accounts.key])
        sequence = cursor.fetchone()[0]
        if sequence:
            return KeysAhead("sequence", sequence)
        cursor.execute(
            "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a "
            "ON a.attrelid = d.adrelid AND a.attnum = d.adnum "
            "WHERE d.adrelid = %s::regclass AND a.attname = %s",
            [table, accounts.key],
        )
        row = cursor.fetchone()
    default = row[0] if row else ""
    if default.startswith("nextval('") and default.endswith("'::regclass)"):
        return KeysAhead(
            "sequence", default[len("nextval('") : -len("'::regclass)")].replace("''", "'")
        )
    if accounts.key_type == "uuid" and default.rsplit(".", 1)[-1] in _RANDOM_UUID_DEFAULTS:
        return KeysAhead(DRAWN)
    return None


def account_keys_reserve(
    target: Target, ahead: KeysAhead, people: Sequence[dict[str, Any]]
) -> list[str]:
    """Keys for the accounts of `people`, had now (account_keys_ahead), in their order: drawn as
    accounts_write would draw them, or the sequence's next values, ascending, as one INSERT of
    the accounts in that order would take them. A key reserved and never written is a gap, as a
    rolled-back insert leaves."""
    if not people:
        return []
    if ahead.source == DRAWN:  # ours, or a uuid key whose default draws one as we do
        return _new_keys(target.accounts, people)
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH keys AS MATERIALIZED (SELECT %s::regclass AS name) "
            "SELECT nextval(keys.name) FROM keys, generate_series(1, %s)",
            [ahead.sequence, len(people)],
        )
        return [str(key) for key in sorted(row[0] for row in cursor.fetchall())]


def _accounts_insert(accounts: AccountMapping, people: Sequence[dict[str, Any]]) -> list[str]:
    """One INSERT … RETURNING for keys the database makes (an identity or a default).

    The rows go in through a numbered VALUES list in its order, and PostgreSQL returns an INSERT's
    rows in the order it inserted them; the numbers come back beside the keys (in a CTE that
    carries them) so the pairing is checked, not assumed."""
    columns = [quoted(w.column) for w in accounts.columns]
    width = len(columns)
    if width == 0:  # every column has a default: one row at a time is all SQL offers
        sql = f"INSERT INTO {qualified(accounts.table)} DEFAULT VALUES RETURNING {quoted(accounts.key)}::text"
        keys = []
        with connection.cursor() as cursor:
            for _ in people:
                cursor.execute(sql)
                keys.append(cursor.fetchone()[0])
        return keys
    row = "(" + ", ".join(["%s"] * width) + ")"
    values: list = []
    for person in people:
        values += [w.value(person) for w in accounts.columns]
    sql = (
        f"INSERT INTO {qualified(accounts.table)} ({', '.join(columns)}) "
        f"VALUES {', '.join([row] * len(people))} RETURNING {quoted(accounts.key)}::text"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        keys = [key for (key,) in cursor.fetchall()]
    if len(keys) != len(people):
        raise RuntimeError(f"expected {len(people)} accounts, the database made {len(keys)}")
    return keys


@dataclass
class Lookups:
    """What an event row needs beyond the engine's record: the account key (and, for templates,
    the person) of each user id, and the catalogue's slugs and names. Filled on a miss."""

    account_keys: dict[int, str]
    people: dict[int, dict[str, Any]]
    journey_templates: dict[Any, int]
    catalogue: dict[str, dict[int, tuple[str, str]]]


def event_rows_built(
    target: Target,
    events: Sequence[tuple[Any, Any]],
    new_journeys: Sequence[tuple[Any, Any]],
    *,
    payload_text: Callable[[Any, Any], str],
    time_text: Callable[[Any], Any],
) -> list[TableRows]:
    """event_rows with the process's lookups, read where they lack anything the events need. With
    a sessions table mapped, each new journey is a row of it too (engine.run.session_started),
    tagged with the run that started it."""
    lookups = _LOOKUPS
    if "session" in target.events and new_journeys:
        from synthetics.engine.run import session_started

        events = [*events, *((session_started(journey), run) for journey, run in new_journeys)]
    if _journey_names(target):
        for journey, _ in new_journeys:
            lookups.journey_templates[journey.id] = journey.template_id

    def fill(records: Sequence[tuple[Any, Any]]) -> None:
        lookups_for(target, records, new_journeys)

    return event_rows(
        target, events, payload_text=payload_text, time_text=time_text, lookups=lookups, fill=fill
    )


def _journey_names(target: Target) -> bool:
    """Whether a mapping names journeys by their template's slug or name (journey_templates)."""
    return any(
        name == "journey" and reference.way != "id"
        for mapping in target.events.values()
        for name, reference in mapping.references.items()
    )


def event_rows(
    target: Target,
    events: Iterable[tuple[Any, Any]],
    *,
    payload_text: Callable[[Any, Any], str],
    time_text: Callable[[Any], Any],
    lookups: Lookups,
    fill: Callable[[Sequence[tuple[Any, Any]]], None] | None = None,
) -> list[TableRows]:
    """The events (engine records with their run tags) as rows of the mapped tables.

    The builders index the lookups, so an account, person, catalogue entry or journey not looked
    up yet raises KeyError: then `fill` reads what the events from there on need (lookups_for)
    and the building goes on. A span of history pays no pass over its events to find what is
    missing unless something is."""
    by_kind: dict[str, list] = {kind: [] for kind in target.events}
    for event, run in events:
        by_kind[event.kind].append((event, run))
    tables = []
    for kind, mapping in target.events.items():
        records = by_kind[kind]
        if not records:
            continue
        columns, rows = _built(mapping, records, payload_text, time_text, lookups, fill)
        if mapping.payload is not None:
            tables.append(TableRows(qualified(mapping.table), columns, rows))
            continue
        from synthetics.target.tables import event_models

        key = event_models()[kind]._meta.pk.column
        tables.append(
            TableRows(
                qualified(mapping.table),
                columns,
                rows,
                origin_table=mapping.table,
                key_column=quoted(key),
                origins=[(r[0], r[1], e.created_at) for e, r in records],
            )
        )
    return tables


def _built(mapping: EventMapping, records: list, payload_text, time_text, lookups: Lookups, fill):
    """The mapped table's quoted columns and its rows for `records`; `fill` once at the first
    miss of a lookup (a second miss raises: something the events name does not exist)."""
    rows: list[tuple] = []
    append = rows.append
    filled = fill is None
    while True:
        try:
            # compiled after a fill too: it binds the catalogue's dicts, which a fill replaces
            columns, build = _event_builder(mapping, payload_text, time_text, lookups)
            for e, r in itertools.islice(records, len(rows), None):
                append(build(e, r))
            return columns, rows
        except KeyError:
            if filled:
                raise
            filled = True
            fill(records[len(rows) :])


def _event_builder(mapping: EventMapping, payload_text, time_text, lookups: Lookups):
    """The quoted columns of one mapped table and a function from (event, run tag) to its row.

    The function is one tuple expression compiled for the mapping (history builds hundreds of
    thousands of rows: a loop over per-column callables cost a tenth of the engine's time). Its
    source is made of fixed fragments only; every value of the file reaches it as a bound name."""
    columns = [quoted(mapping.account), quoted(mapping.time)]
    parts = ["keys[e.user_id]", "time(e)"]
    names: dict[str, Any] = {
        "keys": lookups.account_keys,
        "payload": payload_text,
        "time": time_text,
    }
    if mapping.type is not None:
        columns.append(quoted(mapping.type))
        parts.append("e.event_type")
    if mapping.payload is not None:
        columns.append(quoted(mapping.payload))
        parts.append("payload(e, r)")
    for index, (name, reference) in enumerate(mapping.references.items()):
        columns.append(quoted(reference.column))
        position = 0 if reference.way == "slug" else 1
        if name == "journey":
            if reference.way == "id":
                parts.append("str(e.journey_id)")
            else:
                names["journey_templates"] = lookups.journey_templates
                names["templates"] = lookups.catalogue["journey"]
                parts.append(f"templates[journey_templates[e.journey_id]][{position}]")
            continue
        field = "scene_id" if name == "scene" else "mindblock_id"
        if reference.way == "id":
            parts.append(f"e.{field}")
        else:
            names[f"entries{index}"] = lookups.catalogue[name]
            parts.append(f"(None if e.{field} is None else entries{index}[e.{field}][{position}])")
    for index, written in enumerate(mapping.columns):
        columns.append(quoted(written.column))
        if written.per_person:
            names[f"written{index}"] = written.value
            names["people"] = lookups.people
            parts.append(f"written{index}(people[e.user_id])")
        else:
            names[f"constant{index}"] = written.value(None)
            parts.append(f"constant{index}")
    source = f"lambda e, r: ({', '.join(parts)},)"
    build = eval(source, {"__builtins__": {"str": str}, **names})  # noqa: S307  fixed fragments
    return tuple(columns), build


_LOOKUPS = Lookups(account_keys={}, people={}, journey_templates={}, catalogue={})


def lookups_for(target: Target, events: Sequence[tuple[Any, Any]], new_journeys) -> Lookups:
    """The process's lookups, with what `events` need and it lacks read now (a few indexed
    queries per run at most; an account's key and a catalogue entry's slug never change)."""
    from synthetics.models import Journey, JourneyTemplate, MindblockType, Scene, SimUser

    lookups = _LOOKUPS
    users = {event.user_id for event, _ in events}
    missing = [user for user in users if user not in lookups.account_keys]
    if missing:
        keyed = SimUser.objects.exclude(account_key="")
        if not lookups.account_keys and keyed.count() <= ACCOUNT_KEYS_AT_ONCE:
            # the first miss of a process: every key at once, not a few more every span
            lookups.account_keys.update(keyed.values_list("user_id", "account_key"))
        else:
            lookups.account_keys.update(
                keyed.filter(user_id__in=missing).values_list("user_id", "account_key")
            )
        lacking = [user for user in missing if user not in lookups.account_keys]
        if lacking:  # a sim user made before the target was attached: the run fails, recorded
            raise RuntimeError(
                f"{len(lacking)} sim users have no account in {target.accounts.table} (user ids "
                f"{', '.join(map(str, sorted(lacking)[:5]))}…): they were made without the target "
                "file; `manage.py target detach` and seed again"
            )
    if any(mapping.per_person for mapping in target.events.values()):
        lacking = [user for user in users if user not in lookups.people]
        for sim_user in SimUser.objects.filter(user_id__in=lacking).select_related("user"):
            lookups.people[sim_user.user_id] = sim_user_fields(sim_user)
    references = {
        (name, reference.way)
        for mapping in target.events.values()
        for name, reference in mapping.references.items()
    }
    models = {"journey": JourneyTemplate, "scene": Scene, "mindblock": MindblockType}
    for name, way in references:
        if (
            way == "id"
            or name in lookups.catalogue
            and not _catalogue_missing(name, events, lookups)
        ):
            continue
        lookups.catalogue[name] = {
            pk: (slug, label)
            for pk, slug, label in models[name].objects.values_list("pk", "slug", "name")
        }
    if any(name == "journey" and way != "id" for name, way in references):
        for journey, _ in new_journeys:
            lookups.journey_templates[journey.id] = journey.template_id
        unknown = {e.journey_id for e, _ in events} - lookups.journey_templates.keys()
        if unknown:
            lookups.journey_templates.update(
                Journey.objects.filter(pk__in=unknown).values_list("pk", "template_id")
            )
    return lookups


def lookups_accounts_add(
    target: Target, entries: Sequence[tuple[int, str, dict[str, Any]]]
) -> None:
    """Put accounts made ahead of their write into the process's lookups: (user id, account key,
    the sim user's fields as sim_user_fields reads them back once written), so their events can be
    formatted before the accounts exist. The other keys are read first, as at a first miss."""
    from synthetics.models import SimUser

    if not entries:
        return
    lookups = _LOOKUPS
    if not lookups.account_keys:
        keyed = SimUser.objects.exclude(account_key="")
        if keyed.count() <= ACCOUNT_KEYS_AT_ONCE:
            lookups.account_keys.update(keyed.values_list("user_id", "account_key"))
    for user_id, key, person in entries:
        lookups.account_keys[user_id] = key
        lookups.people[user_id] = person


def _catalogue_missing(name: str, events, lookups: Lookups) -> bool:
    entries = lookups.catalogue[name]
    if name == "scene":
        return any(e.scene_id not in entries for e, _ in events if e.scene_id is not None)
    if name == "mindblock":
        return any(e.mindblock_id not in entries for e, _ in events if e.mindblock_id is not None)
    return False  # journeys: their templates are checked as they are looked up


def sim_user_fields(sim_user) -> dict[str, Any]:
    """A stored sim user's fields as templates read them (mapping.person_fields)."""
    user = sim_user.user
    return stored_person_fields(
        username=user.username,
        email=user.email,
        sim_user_id=sim_user.pk,
        first_name=user.first_name,
        last_name=user.last_name,
        profile=sim_user,
        joined_at=sim_user.joined_at,
    )


def stored_person_fields(
    *,
    username: str,
    email: str,
    sim_user_id: int,
    first_name: str,
    last_name: str,
    profile,
    joined_at,
) -> dict[str, Any]:
    """sim_user_fields of a sim user from its parts: its account's name and address, its id, and
    `profile` (a stored sim user, or the engine's Profile it is made from) for the rest."""
    from synthetics.target.mapping import person_fields

    index = int(username[3:]) if username[3:].isdigit() else sim_user_id

    class _Person:
        pass

    _Person.username = username
    _Person.email = email
    _Person.first_name = first_name
    _Person.last_name = last_name
    _Person.display_name = profile.display_name
    _Person.timezone = profile.timezone
    _Person.locale = profile.locale
    _Person.persona = profile.persona
    _Person.signup_date = profile.signup_date

    return person_fields(index=index, profile_or_user=_Person, joined_at=joined_at)


def lookups_reset() -> None:
    """Forget what was looked up (a test that switches databases or targets)."""
    global _LOOKUPS
    _LOOKUPS = Lookups(account_keys={}, people={}, journey_templates={}, catalogue={})


def accounts_unclaimed(target: Target, people: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`people` with every value they would put into the application's account table free there:
    a person whose rendered value is already in its column (a real account that looks like ours:
    sim000001@synthetics.invalid) gets a suffix on its username and e-mail (sim000001-2), so the
    insert never fails on a unique column and never touches the real row. One indexed query per
    column written from the person, per round."""
    accounts = target.accounts
    personal = [w for w in accounts.columns if w.per_person and "sim_user" not in w.source]
    if accounts.key_source == "synthetics" and accounts.key_type == "text":
        personal.append(Written(accounts.key, {"template": "{username}"}))  # the key: the name
    if not personal or not people:
        return people
    people = [dict(person) for person in people]
    tries = {id(person): 1 for person in people}
    pending = people
    while pending:
        clashing = []
        with connection.cursor() as cursor:
            for written in personal:
                values = [str(written.value(person)) for person in pending]
                cursor.execute(
                    f"SELECT DISTINCT {quoted(written.column)}::text FROM "
                    f"{qualified(accounts.table)} WHERE {quoted(written.column)}::text = ANY(%s)",
                    [values],
                )
                taken = {value for (value,) in cursor.fetchall()}
                clashing += [
                    person for person, value in zip(pending, values, strict=True) if value in taken
                ]
        pending = list({id(person): person for person in clashing}.values())
        for person in pending:
            tries[id(person)] += 1
            base = (
                str(person["username"]).rsplit("-", 1)[0]
                if tries[id(person)] > 2
                else str(person["username"])
            )
            person["username"] = f"{base}-{tries[id(person)]}"
            domain = str(person["email"]).rpartition("@")[2]
            person["email"] = f"{person['username']}@{domain}"
    return people
