"""Batched writes of one run's output: each table's rows built once, then COPY on PostgreSQL or one
executemany elsewhere; never a row at a time."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime

import orjson
from django.db import connection, models

from synthetics.engine import EventRecord, JourneyUpdate, NewJourney
from synthetics.engine.run import next_due
from synthetics.models import (
    Journey,
    JourneySceneEvent,
    MindblockEvent,
    RunStatus,
    SyntheticRun,
    SyntheticRunHour,
)

BATCH_SIZE = 1000

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


def _payload(event: EventRecord, run_id: int) -> dict:
    return {**event.payload, "synthetic": True, "run_id": run_id}


def _copy(table: str, columns: Sequence[str], rows: Iterable[Sequence]) -> None:
    """COPY rows into `table` through psycopg 3 (text format)."""
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor behind Django's wrapper
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


def _insert(
    model, columns: Sequence[str], rows: Sequence[tuple], before_statement: Callable[[], None]
) -> None:
    """Insert `rows` (Python values in `columns` order) into the model's table in one statement.

    PostgreSQL: COPY through psycopg 3 (JSON columns go in as their text, encoded by orjson: the
    same values as json.dumps, faster; jsonb keeps no whitespace). Elsewhere: one
    executemany of the same rows, each value prepared by its model field. Both paths take the
    same rows, so they cannot drift apart.
    """
    if not rows:
        return
    fields = [model._meta.get_field(column) for column in columns]
    table = model._meta.db_table
    before_statement()
    if connection.vendor == "postgresql":
        json_columns = [isinstance(field, models.JSONField) for field in fields]
        _copy(
            table,
            columns,
            (
                [
                    orjson.dumps(value).decode() if is_json else value
                    for value, is_json in zip(row, json_columns, strict=True)
                ]
                for row in rows
            ),
        )
        return
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


def run_output_write(
    *,
    run_id: int,
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
        new_journeys=[(journey, run_id) for journey in new_journeys],
        updates=updates,
        events=[(event, run_id) for event in events],
        written_at=written_at,
        before_statement=before_statement,
    )


def runs_output_write(
    *,
    new_journeys: Sequence[tuple[NewJourney, int]],
    updates: Sequence[JourneyUpdate],
    events: Sequence[tuple[EventRecord, int]],
    written_at: datetime,
    before_statement: Callable[[], None] = lambda: None,
) -> None:
    """The output of several runs at once (a span of history): each journey and event with the id
    of the run that wrote it, in the order given."""
    journeys = [
        (
            j.id, j.user_id, j.sim_user_id, j.template_id, j.status, True, j.started_at,
            j.ended_at, j.plan.to_json(), j.next_step,
            next_due(j.plan, j.next_step) if j.status == "active" else None, run_id, written_at,
        )
        for j, run_id in new_journeys
    ]  # fmt: skip
    scene_events = [
        (e.user_id, e.journey_id, e.scene_id, e.event_type, e.created_at, _payload(e, run_id))
        for e, run_id in events
        if e.kind == "scene"
    ]
    mindblock_events = [
        (
            e.user_id, e.journey_id, e.scene_id, e.mindblock_id, e.event_type, e.created_at,
            _payload(e, run_id),
        )
        for e, run_id in events
        if e.kind == "mindblock"
    ]  # fmt: skip
    _insert(Journey, _JOURNEY_COLUMNS, journeys, before_statement)
    _insert(JourneySceneEvent, _SCENE_EVENT_COLUMNS, scene_events, before_statement)
    _insert(MindblockEvent, _MINDBLOCK_EVENT_COLUMNS, mindblock_events, before_statement)
    if updates:
        _journeys_update(updates, written_at, before_statement)


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
        sql = (
            f"UPDATE {table} SET next_step = v.next_step, status = v.status, "
            f"ended_at = v.ended_at, next_at = v.next_at, updated_at = %s "
            f"FROM unnest(%s::uuid[], %s::integer[], %s::varchar[], %s::timestamptz[], "
            f"%s::timestamptz[]) AS v(id, next_step, status, ended_at, next_at) "
            f"WHERE {table}.id = v.id"
        )
        columns = [
            [u.id for u in updates],
            [u.next_step for u in updates],
            [u.status for u in updates],
            [u.ended_at for u in updates],
            [u.next_at for u in updates],
        ]
        _update_checked(sql, [updated_at, *columns], len(updates), before_statement)
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


def _update_checked(
    sql: str, params: list, expected: int, before_statement: Callable[[], None]
) -> None:
    before_statement()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount != expected:  # a journey vanished mid-run: roll the run back
            raise RuntimeError(f"expected to update {expected} journeys, updated {cursor.rowcount}")


_HOUR_FIELDS = (
    "sessions_started",
    "scene_events_created",
    "mindblock_events_created",
    "journeys_completed",
    "journeys_abandoned",
    "journeys_errored",
)


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
