"""Counts from the run ledger and the synthetic-tag index, never a scan of the event tables: the
events written in a window (status's last 5 minutes, the reference count) and the ledger's totals."""

from __future__ import annotations

from datetime import datetime

from django.db.models import Count, F, Q, QuerySet, Sum, Value

from synthetics.models import (
    RunStatus,
    SyntheticRun,
    run_events_start,
)
from synthetics.selectors.prepared import Prepared
from synthetics.target.tables import event_models


def _event_tables() -> tuple:
    """The scene and mindblock event tables: the demo ones, or an attached application's."""
    models = event_models()
    return models["scene"], models["mindblock"]


def _our_events_per_run_both(tables: tuple) -> Prepared:
    """Both tables' events of ours (EventQuerySet.synthetic(): the identity rule) in (since,
    until], counted per run, in one statement (UNION ALL): rows of (0 for scene events or 1 for
    mindblock events, run id, count). The rule looks only at the runs that end after `since` (the
    only ones that can have written there), so however the planner joins the ledger, it reads a
    few rows of it through the status index."""

    def build(since: datetime, until: datetime) -> QuerySet:
        runs = SyntheticRun.objects.filter(window_end__gt=since)
        scene, mindblock = (
            model.objects.synthetic(runs=runs)
            .filter(created_at__gt=since, created_at__lte=until)
            .annotate(run=F("origin_run"))
            .values("run")
            .annotate(n=Count("pk"))
            .annotate(kind=Value(index))
            .values_list("kind", "run", "n")
            .order_by()  # none inside a compound statement (SQLite refuses one)
            for index, model in enumerate(tables)
        )
        return scene.union(mindblock, all=True)

    return Prepared(build, "since", "until")


def synthetic_event_counts(*, since: datetime, until: datetime | None = None) -> dict[str, int]:
    """Synthetic scene and mindblock events with created_at in (since, until]: every row the
    identity rule calls ours (EventQuerySet.synthetic()), counted through the tag index. The
    reference count (tests, the data-safety properties); status reads `written_event_counts`."""
    window = (
        Q(created_at__gt=since) if until is None else Q(created_at__gt=since, created_at__lte=until)
    )
    return {
        key: model.objects.synthetic().filter(window).count()
        for key, model in zip(("scene_events", "mindblock_events"), _event_tables(), strict=True)
    }


# Compiled once per pair of event tables (the demo ones, or an attached application's).
_OUR_EVENTS_PER_RUN_BOTH: dict[tuple, Prepared] = {}


def _our_events_per_run() -> Prepared:
    tables = _event_tables()
    if tables not in _OUR_EVENTS_PER_RUN_BOTH:
        _OUR_EVENTS_PER_RUN_BOTH[tables] = _our_events_per_run_both(tables)
    return _OUR_EVENTS_PER_RUN_BOTH[tables]


def runs_ending_after(since: datetime) -> QuerySet:
    """The succeeded runs whose window ends after `since`: the runs that can have written an event
    dated in (since, until]. Few (the window's minutes times the shards), through the status index.
    (Status reads them with its other ledger rows: selectors.status.)"""
    return SyntheticRun.objects.filter(status=RunStatus.SUCCEEDED, window_end__gt=since)


# What written_event_counts reads of each of them, in this order.
WRITTEN_FIELDS = (
    "id",
    "window_start",
    "window_end",
    "events_from",
    "scene_events_created",
    "mindblock_events_created",
)
_RUNS_ENDING_AFTER = Prepared(
    lambda since: runs_ending_after(since).values_list(*WRITTEN_FIELDS), "since"
)


def written_event_counts(
    *, since: datetime, until: datetime, runs: list[tuple] | None = None
) -> dict[str, int]:
    """The scene and mindblock events succeeded runs wrote with created_at in (since, until], at a
    cost bounded by the runs, not by the rate (status's `last_5_min`).

    A run writes its events in [events_from, window_end] (its ledger row keeps the earliest; the
    steps of journeys in progress that were due before its window come first, after a pause or a
    manual run). So a run whose events all lie inside (since, until] wrote its ledger counts
    there, and only the runs across an edge of the window (at a steady rate, the minute `since`
    falls in) have their rows counted through the tag index, over just the part of the window
    they cover. Equal to `synthetic_event_counts` while the tables hold what the runs wrote (a
    property test over histories with shards, catch-up, pauses and manual runs); rows deleted or
    forged by hand inside the last minutes are not seen, where the full count would see them.
    `runs`: runs_ending_after(since)'s WRITTEN_FIELDS where the caller read them already.
    """
    counts = {"scene_events": 0, "mindblock_events": 0}
    across: set[int] = set()
    spans: list[tuple[datetime, datetime]] = []
    if runs is None:
        runs = _RUNS_ENDING_AFTER.rows(since=since)
    for run_id, window_start, end, events_from, scene, mindblock in runs:
        if not scene and not mindblock:
            continue
        start = run_events_start(window_start=window_start, window_end=end, events_from=events_from)
        if since <= start and end <= until:
            counts["scene_events"] += scene
            counts["mindblock_events"] += mindblock
        elif start < until:
            across.add(run_id)
            spans.append((max(start, since), min(end, until)))
    keys = tuple(counts)
    for first, last in _merged(spans):
        for kind, run_id, n in _our_events_per_run().rows(since=first, until=last):
            if run_id in across:
                counts[keys[kind]] += n
    return counts


def _merged(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The union of half-open spans (start, end] as the fewest disjoint ones, in order."""
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


_TOTALS = {
    "runs": Count("id"),
    "sessions_started": Sum("sessions_started"),
    "scene_events": Sum("scene_events_created"),
    "mindblock_events": Sum("mindblock_events_created"),
    "completed": Sum("journeys_completed"),
    "abandoned": Sum("journeys_abandoned"),
    "errored": Sum("journeys_errored"),
}


def _run_totals(*, bounded: bool) -> Prepared:
    def build(since: datetime, until: datetime | None = None) -> QuerySet:
        runs = SyntheticRun.objects.filter(status=RunStatus.SUCCEEDED, window_end__gt=since)
        if bounded:
            runs = runs.filter(window_end__lte=until)
        # Grouped by status, which the filter fixes: one row of sums, or none without runs.
        return runs.order_by().values("status").annotate(**_TOTALS).values_list(*_TOTALS)

    return Prepared(build, *(("since", "until") if bounded else ("since",)))


_RUN_TOTALS = {bounded: _run_totals(bounded=bounded) for bounded in (False, True)}


def run_totals(*, since: datetime, until: datetime | None = None) -> dict[str, int]:
    """Totals from the run ledger for runs that covered simulated time in (since, until]."""
    times = {"since": since} if until is None else {"since": since, "until": until}
    found = _RUN_TOTALS[until is not None].rows(**times)
    row = found[0] if found else (0,) * len(_TOTALS)
    return {key: int(value or 0) for key, value in zip(_TOTALS, row, strict=True)}
