"""Batched writes of one run's output: each table's rows built once, then COPY on PostgreSQL or one
executemany elsewhere; never a row at a time."""

from __future__ import annotations

import bisect
import io
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from django.db import connection
from django.utils import timezone
from psycopg import copy as psycopg_copy

from synthetics.db import utc_ms_text
from synthetics.engine import EventRecord, JourneyUpdate, NewJourney
from synthetics.engine.run import next_due, next_due_ms
from synthetics.models import (
    RUN_COUNTS,
    RUN_DURATION_BUCKETS,
    RUN_DURATION_COLUMNS,
    Journey,
    JourneySceneEvent,
    MindblockEvent,
    RunStatus,
    RunTrigger,
    SyntheticCounter,
    SyntheticRun,
    SyntheticRunHour,
    User,
)
from synthetics.target.mapping import target_in_force
from synthetics.target.writing import event_rows_built, table_rows_write

BATCH_SIZE = 1000

# What tags a row: the id and the key of the run that wrote it (SyntheticRun.id, .run_key).
RunTag = tuple[int, str]

_JOURNEY_COLUMNS = (
    "id",
    "user_id",
    "sim_user_id",
    "template_id",
    "status",
    "is_synthetic",
    "started_at",
    "ended_at",
    "plan",
    "next_step",
    "next_at",
    "run_id",
    "updated_at",
)
_SCENE_EVENT_COLUMNS = (
    "user_id",
    "journey_id",
    "scene_id",
    "event_type",
    "created_at",
    "event_payload",
)
_MINDBLOCK_EVENT_COLUMNS = (
    "user_id",
    "journey_id",
    "scene_id",
    "mindblock_id",
    "event_type",
    "created_at",
    "event_payload",
)


def _payload(event: EventRecord, run: RunTag) -> dict:
    run_id, run_key = run
    return {**event.payload, "synthetic": True, "run_id": run_id, "run_key": run_key}


_TAGS = b',"synthetic":true,"run_id":%d,"run_key":"%s"}'


def _payload_text(event: EventRecord, run: RunTag) -> str:
    """_payload as JSON text for a jsonb column, without building the merged dict: the event's own
    payload encoded, the tags appended. jsonb keeps the last of duplicate keys, so the tags win over
    any key of the payload, as they do in _payload; and jsonb keeps no key order or whitespace, so
    the stored value is _payload's (a test compares the two). A run's key is hex after a letter:
    nothing to escape."""
    run_id, run_key = run
    encoded = orjson.dumps(event.payload)
    if encoded == b"{}":
        return f'{{"synthetic":true,"run_id":{run_id:d},"run_key":"{run_key}"}}'
    return (encoded[:-1] + _TAGS % (run_id, run_key.encode())).decode()


def _time(event: EventRecord) -> datetime:
    return event.created_at


def _time_text(event: EventRecord) -> str:
    """The event's time as COPY text (utc_ms_text: cheaper than psycopg formatting a datetime)."""
    return utc_ms_text(event.at_ms)


def _next_due_text(plan, cursor: int) -> str:
    return utc_ms_text(next_due_ms(plan, cursor))


def _plan_json(plan) -> dict:
    return plan.to_json()


def _plan_text(plan) -> str:
    return orjson.dumps(plan.to_json()).decode()


def _copy(table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """COPY rows into `table` through psycopg 3 (text format). `table` and `columns` as SQL: our
    own tables' plain names, an attached application's quoted ones."""
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor behind Django's wrapper
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _insert(
    model, columns: Sequence[str], rows: Sequence[tuple], before_statement: Callable[[], None]
) -> None:
    """Insert `rows` (values in `columns` order) into the model's table in one statement.

    PostgreSQL: COPY through psycopg 3, the JSON columns already their text (_encoded: orjson, the
    same values as json.dumps, faster; jsonb keeps no whitespace). Elsewhere: one executemany of
    the same rows, each value (JSON columns as Python values) prepared by its model field.
    """
    if not rows:
        return
    table = model._meta.db_table
    before_statement()
    if connection.vendor == "postgresql":
        _copy(table, columns, rows)
        return
    fields = [model._meta.get_field(column) for column in columns]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(table)} ({', '.join(quote(column) for column in columns)}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    prepared = [
        [
            field.get_db_prep_save(value, connection)
            for field, value in zip(fields, row, strict=True)
        ]
        for row in rows
    ]
    with connection.cursor() as cursor:
        for offset in range(0, len(prepared), BATCH_SIZE):
            cursor.executemany(sql, prepared[offset : offset + BATCH_SIZE])


def ledger_write(runs: list[SyntheticRun], write_output: Callable[[list[int]], None]) -> None:
    """Insert ledger rows (unsaved SyntheticRun objects) and, through write_output(run ids), the rows
    that carry their ids, in the caller's transaction.

    PostgreSQL: the ids come from the ledger's sequence (unless set ahead: run_ids_reserve), the
    ledger rows go in by one COPY with finished_at set — written once, not inserted and then updated
    (an UPDATE of finished_at moves an indexed column: a new version of each row and an entry in
    each of the ledger's indexes, left to vacuum) — then the output. finished_at is then when the
    span's rows began to be written, a fraction of a second before they all are; all of them become
    visible together at commit. Elsewhere: bulk_create, the output, then one UPDATE of finished_at.
    """
    if not runs:
        return
    if connection.vendor != "postgresql":
        SyntheticRun.objects.bulk_create(runs)
        write_output([run.id for run in runs])
        finished_at = timezone.now()
        SyntheticRun.objects.filter(id__in=[run.id for run in runs]).update(finished_at=finished_at)
        for run in runs:
            run.finished_at = finished_at
        return
    if any(run.id is None for run in runs):
        for run, run_id in zip(runs, run_ids_reserve(len(runs)), strict=True):
            run.id = run_id
    finished_at = timezone.now()
    for run in runs:  # created, finished and last changed: when it was written
        run.created_at = run.updated_at = run.finished_at = finished_at
    # The ledger's fields are numbers, text and datetimes: COPY takes the Python values as they are.
    fields = SyntheticRun._meta.concrete_fields
    values = operator.attrgetter(*[field.attname for field in fields])
    _copy(SyntheticRun._meta.db_table, [field.column for field in fields], map(values, runs))
    for run in runs:
        run._state.adding = False
        run._state.db = connection.alias
    write_output([run.id for run in runs])


def run_output_write(
    *,
    run_id: int,
    run_key: str,
    new_journeys: Sequence[NewJourney],
    updates: Sequence[JourneyUpdate],
    events: Sequence[EventRecord],
    written_at: datetime,
    before_statement: Callable[[], None] = lambda: None,
) -> None:
    """Insert the run's journeys and events and apply its journey changes, in the caller's transaction.

    Every row is built once, here, per table; `before_statement` runs before each statement (the
    run's deadline: check it, bound the next one).
    """
    runs_output_write(
        new_journeys=[(journey, (run_id, run_key)) for journey in new_journeys],
        updates=updates,
        events=[(event, (run_id, run_key)) for event in events],
        written_at=written_at,
        before_statement=before_statement,
    )


def runs_output_write(
    *,
    new_journeys: Sequence[tuple[NewJourney, RunTag]],
    updates: Sequence[JourneyUpdate],
    events: Sequence[tuple[EventRecord, RunTag]],
    written_at: datetime,
    before_statement: Callable[[], None] = lambda: None,
    rendered: RenderedOutput | None = None,
) -> None:
    """The output of several runs at once (a span of history): each journey and each event with
    the id and key of the run that wrote it, in the order given. `rendered`: the journeys and events formatted
    ahead (output_rendered; PostgreSQL) — sent as they are, `new_journeys` and `events` unused."""
    if rendered is not None:
        for table, columns, data in rendered.tables:
            before_statement()
            copy_data(table, columns, data)
        for rows in rendered.returning:
            before_statement()
            table_rows_write(rows)
        if rendered.updates is not None:
            _journey_changes_write(rendered.updates, written_at, before_statement)
            return
    else:
        for model, _table, columns, rows in _output_rows(new_journeys, events, written_at):
            if model is None:  # an attached application's table (TableRows)
                before_statement()
                table_rows_write(rows)
            else:
                _insert(model, columns, rows, before_statement)
    if updates:
        _journeys_update(updates, written_at, before_statement)


def _output_rows(
    new_journeys: Sequence[tuple[NewJourney, RunTag]],
    events: Sequence[tuple[EventRecord, RunTag]],
    written_at: datetime,
) -> list[tuple[type | None, str, tuple[str, ...], list[tuple]]]:
    """Each table's rows (model, table, columns, rows), built once; the JSON columns as their text
    on PostgreSQL (COPY takes them so), as Python values elsewhere. Journeys always go into our
    own table; events into the demo tables, or in attach mode into the application's through its
    target file (model None: attach mode is PostgreSQL's, always COPY)."""
    if connection.vendor == "postgresql":
        plan_value, payload_value = _plan_text, _payload_text
        time_value, due_value, written_value = _time_text, _next_due_text, str(written_at)
    else:
        plan_value, payload_value, time_value = _plan_json, _payload, _time
        due_value, written_value = next_due, written_at
    journeys = [
        (
            j.id, j.user_id, j.sim_user_id, j.template_id, j.status, True, j.started_at,
            j.ended_at, plan_value(j.plan), j.next_step,
            due_value(j.plan, j.next_step) if j.status == "active" else None, run[0],
            written_value,
        )
        for j, run in new_journeys
    ]  # fmt: skip
    tables: list[tuple[type | None, str, tuple[str, ...], list[tuple]]] = [
        (Journey, Journey._meta.db_table, _JOURNEY_COLUMNS, journeys)
    ]
    target = target_in_force()
    if target is not None:
        tables += [
            (None, rows.table, rows.columns, rows)
            for rows in event_rows_built(
                target, events, new_journeys, payload_text=payload_value, time_text=time_value
            )
        ]
        return tables
    scene_events = [
        (e.user_id, e.journey_id, e.scene_id, e.event_type, time_value(e), payload_value(e, run))
        for e, run in events
        if e.kind == "scene"
    ]
    mindblock_events = [
        (
            e.user_id, e.journey_id, e.scene_id, e.mindblock_id, e.event_type, time_value(e),
            payload_value(e, run),
        )
        for e, run in events
        if e.kind == "mindblock"
    ]  # fmt: skip
    return [
        *tables,
        (
            JourneySceneEvent,
            JourneySceneEvent._meta.db_table,
            _SCENE_EVENT_COLUMNS,
            scene_events,
        ),
        (MindblockEvent, MindblockEvent._meta.db_table, _MINDBLOCK_EVENT_COLUMNS, mindblock_events),
    ]


@dataclass(frozen=True, slots=True)
class RenderedOutput:
    """Journeys and events as COPY data (text format), formatted before the transaction that sends
    them: (table, columns, bytes) per table with rows."""

    tables: tuple[tuple[str, tuple[str, ...], bytes | memoryview], ...]  # a view of its buffer
    # Rows of attached tables whose origin we keep: written with INSERT … RETURNING, not COPY.
    returning: tuple = ()
    # The changes to older journeys (journey_updates_rendered) and the accounts' last logins
    # (last_logins_rendered), their parameters formatted ahead too; None: none given.
    updates: JourneyChanges | None = None
    logins: LastLogins | None = None


def output_rendered(
    *,
    new_journeys: Sequence[tuple[NewJourney, RunTag]],
    events: Sequence[tuple[EventRecord, RunTag]],
    written_at: datetime,
    updates: Sequence[JourneyUpdate] | None = None,
) -> RenderedOutput:
    """The rows runs_output_write would COPY, formatted now by psycopg's own COPY formatter (a Copy
    with a FileWriter: the public way to format COPY data without sending it), in this thread and
    outside any transaction; with `updates`, the parameters of their UPDATE and of the journeys'
    accounts' last logins too. A backfill formats span N+1 in its engine thread while its writer
    thread sends span N, so the writer only ships bytes. PostgreSQL only."""
    tables, returning = [], []
    with connection.cursor() as cursor:
        raw = cursor.cursor
        for model, table, columns, rows in _output_rows(new_journeys, events, written_at):
            if model is None:  # an attached application's table (TableRows)
                if rows.origin_table:
                    returning.append(rows)
                    continue
                rows = rows.rows
            if not rows:
                continue
            buffer = io.BytesIO()
            with psycopg_copy.Copy(raw, writer=psycopg_copy.FileWriter(buffer)) as copy:
                for row in rows:
                    copy.write_row(row)
            tables.append((table, columns, buffer.getbuffer()))  # a view: no copy of the bytes
    if updates is None:
        return RenderedOutput(tuple(tables), tuple(returning))
    return RenderedOutput(
        tuple(tables),
        tuple(returning),
        updates=journey_updates_rendered(updates),
        # attach mode changes no application row: no last logins to send (last_logins_write)
        logins=None
        if target_in_force() is not None
        else last_logins_rendered(journey for journey, _ in new_journeys),
    )


def copy_data(table: str, columns: Sequence[str], data: bytes | memoryview) -> None:
    """COPY data already formatted (output_rendered) into `table`."""
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        view = memoryview(data)
        for offset in range(0, len(data), 1 << 20):
            copy.write(view[offset : offset + (1 << 20)])


def deferred_key_checks_indexed() -> None:
    """Before the commit of a transaction that leaves many deferred foreign-key checks (a span of
    history: every journey names its run, its sim user, its account and its template): the checks
    at commit look each key up by its primary-key index.

    PostgreSQL plans a foreign key's lookup once per connection and keeps the plan. The history's
    writer connection lives for the whole backfill; its first commit plans the journeys' lookup of
    their run while the ledger (synthetic_runs) holds a page or two, which makes a sequential scan,
    and that scan then runs for every journey of every later span over a ledger that keeps growing
    (a third of a span's commit at six hours). With sequential scans off for what is left of this
    transaction (the checks at commit and nothing else) the plan made and kept is the index
    lookup. Elsewhere nothing."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")


def run_ids_reserve(count: int) -> list[int]:
    """`count` new ledger ids from its sequence (PostgreSQL), for rows formatted before their ledger
    rows are written (ledger_write keeps ids already set). An id reserved and never written is a
    gap, as a rolled-back insert leaves. The sequence is looked up once, not once per id."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH ledger_sequence AS MATERIALIZED "
            "(SELECT pg_get_serial_sequence(%s, 'id')::regclass AS name) "
            "SELECT nextval(ledger_sequence.name) FROM ledger_sequence, generate_series(1, %s)",
            [SyntheticRun._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _journeys_update(
    updates: Sequence[JourneyUpdate],
    written_at: datetime,
    before_statement: Callable[[], None],
) -> None:
    """Apply all journey changes: on PostgreSQL one UPDATE ... FROM unnest(five arrays) (five
    parameters however many journeys, so nothing to parse per row); elsewhere one UPDATE ... FROM
    (VALUES ...) per batch."""
    table = connection.ops.quote_name(Journey._meta.db_table)
    updated_at = Journey._meta.get_field("updated_at").get_db_prep_value(
        written_at, connection, prepared=False
    )
    if connection.vendor == "postgresql":
        _journey_changes_write(journey_updates_rendered(updates), written_at, before_statement)
        return
    names = ("id", "next_step", "status", "ended_at", "next_at")
    fields = [Journey._meta.get_field(name) for name in names]
    row_sql = "(" + ", ".join(["%s"] * len(names)) + ")"
    for offset in range(0, len(updates), BATCH_SIZE):
        batch = updates[offset : offset + BATCH_SIZE]
        params: list = []
        for update in batch:
            values = (update.id, update.next_step, update.status, update.ended_at, update.next_at)
            params += [
                field.get_db_prep_value(value, connection, prepared=False)
                for field, value in zip(fields, values, strict=True)
            ]
        sql = (
            f"UPDATE {table} SET next_step = v.column2, status = v.column3, "
            f"ended_at = v.column4, next_at = v.column5, updated_at = %s "
            f"FROM (VALUES {', '.join([row_sql] * len(batch))}) AS v "
            f"WHERE {table}.id = v.column1"
        )
        _update_checked(sql, [updated_at, *params], len(batch), before_statement)


@dataclass(frozen=True, slots=True)
class JourneyChanges:
    """Journey changes as the five array parameters of one UPDATE … FROM unnest (PostgreSQL),
    each already its array's text: psycopg sends a string as it is, where it formats a list
    element by element in Python (a fifth of a history writer's own time at 20,000 sessions a
    minute, in the thread that waits on the database)."""

    count: int
    arrays: tuple[str, str, str, str, str]  # ids, next steps, statuses, ends, next due times


def _array_text(values: Iterable[str]) -> str:
    return "{" + ",".join(values) + "}"


def _timestamp_element(moment: datetime | None) -> str:
    """An aware datetime as an element of a timestamptz[] literal (quoted: ISO text has no quote
    or backslash), None as NULL."""
    return "NULL" if moment is None else f'"{moment.isoformat()}"'


def journey_updates_rendered(updates: Sequence[JourneyUpdate]) -> JourneyChanges:
    """The parameters of _journeys_update's statement for `updates`, made now (a history makes
    them in its engine thread)."""
    return JourneyChanges(
        len(updates),
        (
            _array_text(u.id.hex for u in updates),
            _array_text(str(u.next_step) for u in updates),
            _array_text(u.status for u in updates),  # the engine's own words: [a-z]
            _array_text(_timestamp_element(u.ended_at) for u in updates),
            _array_text(_timestamp_element(u.next_at) for u in updates),
        ),
    )


def _journey_changes_write(
    changes: JourneyChanges, written_at: datetime, before_statement: Callable[[], None]
) -> None:
    """Apply journey changes on PostgreSQL: one UPDATE … FROM unnest(five arrays)."""
    if not changes.count:
        return
    table = connection.ops.quote_name(Journey._meta.db_table)
    sql = (
        f"UPDATE {table} SET next_step = v.next_step, status = v.status, "
        f"ended_at = v.ended_at, next_at = v.next_at, updated_at = %s "
        f"FROM unnest(%s::uuid[], %s::integer[], %s::varchar[], %s::timestamptz[], "
        f"%s::timestamptz[]) AS v(id, next_step, status, ended_at, next_at) "
        f"WHERE {table}.id = v.id"
    )
    _update_checked(sql, [written_at, *changes.arrays], changes.count, before_statement)


def _update_checked(
    sql: str, params: list, expected: int, before_statement: Callable[[], None]
) -> None:
    before_statement()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount != expected:  # a journey vanished mid-run: roll the run back
            raise RuntimeError(f"expected to update {expected} journeys, updated {cursor.rowcount}")


_HOUR_FIELDS = RUN_COUNTS


def run_hours_add(runs: Iterable[SyntheticRun], *, sign: int = 1) -> None:
    """Add succeeded runs to their UTC hour's sums (synthetic_run_hours), in the caller's transaction;
    with sign=-1 take them off (cleanup deleting their ledger rows).

    One INSERT … ON CONFLICT per batch of hours: the sums move with the ledger rows they summarise,
    on PostgreSQL and SQLite alike. An hour left with no run is removed.
    """
    sums: dict[datetime, list[int]] = {}
    for run in runs:
        if run.status != RunStatus.SUCCEEDED:
            continue
        hour = run.window_end.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        row = sums.setdefault(hour, [0] * (1 + len(_HOUR_FIELDS)))
        row[0] += sign
        for position, name in enumerate(_HOUR_FIELDS, start=1):
            row[position] += sign * getattr(run, name)
    if not sums:
        return
    table = connection.ops.quote_name(SyntheticRunHour._meta.db_table)
    columns = ("hour", "runs", *_HOUR_FIELDS)
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    added = ", ".join(f"{name} = {table}.{name} + EXCLUDED.{name}" for name in columns[1:])
    hour_field = SyntheticRunHour._meta.get_field("hour")
    rows = [
        [hour_field.get_db_prep_value(hour, connection), *values]
        for hour, values in sorted(sums.items())
    ]
    with connection.cursor() as cursor:
        for start in range(0, len(rows), BATCH_SIZE // 10):
            batch = rows[start : start + BATCH_SIZE // 10]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                + ", ".join([placeholders] * len(batch))
                + f" ON CONFLICT (hour) DO UPDATE SET {added}",
                [value for row in batch for value in row],
            )
    if sign < 0:
        SyntheticRunHour.objects.filter(hour__in=list(sums), runs__lte=0).delete()


_COUNTED = {
    "sessions_started": "sessions_started",
    "scene_events": "scene_events_created",
    "mindblock_events": "mindblock_events_created",
    "journeys_completed": "journeys_completed",
    "journeys_abandoned": "journeys_abandoned",
    "journeys_errored": "journeys_errored",
}


def run_counters_add(runs: Iterable[SyntheticRun]) -> None:
    """Add recorded runs (any status) to the monotonic counters (synthetic_counters), in the
    caller's transaction: one INSERT … ON CONFLICT per key. Scheduled and manual runs with a
    finished_at also go into the duration histogram (a backfill's minutes share one start)."""
    rows: dict[tuple[str, str, int], list[float]] = {}
    width = 1 + len(_COUNTED) + 2 + len(RUN_DURATION_BUCKETS)
    for run in runs:
        row = rows.setdefault((str(run.trigger), str(run.status), run.shard or 0), [0] * width)
        row[0] += 1
        for position, name in enumerate(_COUNTED.values(), start=1):
            row[position] += getattr(run, name) or 0
        if run.trigger != RunTrigger.BACKFILL and run.finished_at and run.started_at:
            seconds = max(0.0, (run.finished_at - run.started_at).total_seconds())
            timed = 1 + len(_COUNTED)
            row[timed] += 1
            row[timed + 1] += seconds
            bucket = bisect.bisect_left(RUN_DURATION_BUCKETS, seconds)
            if bucket < len(RUN_DURATION_BUCKETS):  # above the last bound: only in +Inf
                row[timed + 2 + bucket] += 1
    if not rows:
        return
    table = connection.ops.quote_name(SyntheticCounter._meta.db_table)
    columns = (
        "trigger",
        "status",
        "shard",
        "runs",
        *_COUNTED,
        "timed",
        "duration_seconds",
        *RUN_DURATION_COLUMNS,
    )
    added = ", ".join(f"{name} = {table}.{name} + EXCLUDED.{name}" for name in columns[3:])
    placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
    with connection.cursor() as cursor:
        for key, values in sorted(rows.items()):  # one order: no two writers deadlock on keys
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES {placeholders} "
                f"ON CONFLICT (trigger, status, shard) DO UPDATE SET {added}",
                [*key, *values],
            )


@dataclass(frozen=True, slots=True)
class LastLogins:
    """Each account's latest session start, as the two array parameters of last_logins_write's
    UPDATE (PostgreSQL; made ahead, as JourneyChanges)."""

    count: int
    arrays: tuple[str, str]  # account ids, times


def _latest_starts(journeys: Iterable[NewJourney]) -> dict[int, datetime]:
    latest: dict[int, datetime] = {}
    for journey in journeys:
        if latest.get(journey.user_id) is None or latest[journey.user_id] < journey.started_at:
            latest[journey.user_id] = journey.started_at
    return latest


def _logins(latest: dict[int, datetime]) -> LastLogins:
    return LastLogins(
        len(latest),
        (
            _array_text(map(str, latest)),
            _array_text(_timestamp_element(moment) for moment in latest.values()),
        ),
    )


def last_logins_rendered(journeys: Iterable[NewJourney]) -> LastLogins:
    """last_logins_write's parameters for `journeys`, made now."""
    return _logins(_latest_starts(journeys))


def last_logins_write(journeys: Iterable[NewJourney] | LastLogins) -> int:
    """Demo mode: each synthetic account's `last_login` moves to the start of its latest session
    (never back). One statement for all of them; attach mode changes no application row, so
    nothing there. `journeys` may come made ahead (last_logins_rendered; PostgreSQL). Returns the
    accounts moved forward (or, on SQLite, considered)."""
    if target_in_force() is not None:
        return 0
    latest: dict[int, datetime] = {}
    if isinstance(journeys, LastLogins):
        logins = journeys
    else:
        latest = _latest_starts(journeys)
        logins = _logins(latest) if connection.vendor == "postgresql" else None
    table = connection.ops.quote_name(User._meta.db_table)
    if logins is not None:
        if not logins.count:
            return 0
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} AS u SET last_login = v.t "  # noqa: S608  a model's table name
                "FROM unnest(%s::bigint[], %s::timestamptz[]) AS v(id, t) "
                "WHERE u.id = v.id AND (u.last_login IS NULL OR u.last_login < v.t)",
                list(logins.arrays),
            )
            return cursor.rowcount
    if not latest:
        return 0
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET last_login = %s "  # noqa: S608  a model's table name
            "WHERE id = %s AND (last_login IS NULL OR last_login < %s)",
            [
                (text, user_id, text)
                for user_id, moment in latest.items()
                for text in [connection.ops.adapt_datetimefield_value(moment)]
            ],
        )
        return len(latest)
