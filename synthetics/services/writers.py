"""Batched writes of one run's output: COPY on PostgreSQL, bulk_create elsewhere; never a row at a time."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from django.db import connection

from synthetics.engine import EventRecord, JourneyUpdate, NewJourney
from synthetics.models import Journey, JourneySceneEvent, MindblockEvent

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


def _copy(table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
    """COPY rows into `table` through psycopg 3 (text format: JSON goes in as its text)."""
    column_list = ", ".join(columns)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg cursor behind Django's wrapper
        with raw.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)


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

    `before_statement` runs before each statement (the run's deadline: check it, bound the next one).
    """
    scene_events = [event for event in events if event.kind == "scene"]
    mindblock_events = [event for event in events if event.kind == "mindblock"]
    if connection.vendor == "postgresql":
        before_statement()
        _copy(
            Journey._meta.db_table,
            _JOURNEY_COLUMNS,
            (
                (
                    j.id,
                    j.user_id,
                    j.sim_user_id,
                    j.template_id,
                    j.status,
                    True,
                    j.started_at,
                    j.ended_at,
                    json.dumps(j.plan.to_json()),
                    j.next_step,
                    run_id,
                    written_at,
                )
                for j in new_journeys
            ),
        )
        before_statement()
        _copy(
            JourneySceneEvent._meta.db_table,
            _SCENE_EVENT_COLUMNS,
            (
                (
                    e.user_id,
                    e.journey_id,
                    e.scene_id,
                    e.event_type,
                    e.created_at,
                    json.dumps(_payload(e, run_id)),
                )
                for e in scene_events
            ),
        )
        before_statement()
        _copy(
            MindblockEvent._meta.db_table,
            _MINDBLOCK_EVENT_COLUMNS,
            (
                (
                    e.user_id,
                    e.journey_id,
                    e.scene_id,
                    e.mindblock_id,
                    e.event_type,
                    e.created_at,
                    json.dumps(_payload(e, run_id)),
                )
                for e in mindblock_events
            ),
        )
    else:
        before_statement()
        Journey.objects.bulk_create(
            [
                Journey(
                    id=j.id,
                    user_id=j.user_id,
                    sim_user_id=j.sim_user_id,
                    template_id=j.template_id,
                    status=j.status,
                    is_synthetic=True,
                    started_at=j.started_at,
                    ended_at=j.ended_at,
                    plan=j.plan.to_json(),
                    next_step=j.next_step,
                    run_id=run_id,
                )
                for j in new_journeys
            ],
            batch_size=BATCH_SIZE,
        )
        before_statement()
        JourneySceneEvent.objects.bulk_create(
            [
                JourneySceneEvent(
                    user_id=e.user_id,
                    journey_id=e.journey_id,
                    scene_id=e.scene_id,
                    event_type=e.event_type,
                    created_at=e.created_at,
                    event_payload=_payload(e, run_id),
                )
                for e in scene_events
            ],
            batch_size=BATCH_SIZE,
        )
        before_statement()
        MindblockEvent.objects.bulk_create(
            [
                MindblockEvent(
                    user_id=e.user_id,
                    journey_id=e.journey_id,
                    scene_id=e.scene_id,
                    mindblock_id=e.mindblock_id,
                    event_type=e.event_type,
                    created_at=e.created_at,
                    event_payload=_payload(e, run_id),
                )
                for e in mindblock_events
            ],
            batch_size=BATCH_SIZE,
        )
    if updates:
        _journeys_update(updates, written_at, before_statement)


def _journeys_update(
    updates: Sequence[JourneyUpdate],
    written_at: datetime,
    before_statement: Callable[[], None],
) -> None:
    """Apply all journey changes with one UPDATE ... FROM (VALUES ...) per batch."""
    fields = [Journey._meta.get_field(name) for name in ("id", "next_step", "status", "ended_at")]
    casts = ["::uuid", "::integer", "::varchar", "::timestamptz"]
    if connection.vendor != "postgresql":
        casts = ["", "", "", ""]
    updated_at = Journey._meta.get_field("updated_at").get_db_prep_value(
        written_at, connection, prepared=False
    )
    row_sql = "(" + ", ".join(f"%s{cast}" for cast in casts) + ")"
    table = connection.ops.quote_name(Journey._meta.db_table)
    for offset in range(0, len(updates), BATCH_SIZE):
        batch = updates[offset : offset + BATCH_SIZE]
        params: list = []
        for update in batch:
            values = (update.id, update.next_step, update.status, update.ended_at)
            params += [
                field.get_db_prep_value(value, connection, prepared=False)
                for field, value in zip(fields, values, strict=True)
            ]
        sql = (
            f"UPDATE {table} SET next_step = v.column2, status = v.column3, "
            f"ended_at = v.column4, updated_at = %s "
            f"FROM (VALUES {', '.join([row_sql] * len(batch))}) AS v "
            f"WHERE {table}.id = v.column1"
        )
        before_statement()
        with connection.cursor() as cursor:
            cursor.execute(sql, [updated_at, *params])
            if cursor.rowcount != len(batch):  # a journey vanished mid-run: roll the run back
                raise RuntimeError(
                    f"expected to update {len(batch)} journeys, updated {cursor.rowcount}"
                )
