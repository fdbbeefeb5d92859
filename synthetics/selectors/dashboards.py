"""What the dashboards read (status, activity, sim users): the run ledger and the indexes, never a scan
of the event tables. Counts of events go through the synthetic-tag expression index (created_at)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import BigIntegerField, Count, F, Func, Q, QuerySet, Subquery, Sum, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import TruncHour, TruncMinute
from django.http import Http404
from django.shortcuts import get_object_or_404

from synthetics.models import (
    CleanupJob,
    Journey,
    JourneySceneEvent,
    MindblockEvent,
    RunStatus,
    RunTrigger,
    SimUser,
    SyntheticFidelity,
    SyntheticRun,
    SyntheticRunHour,
    SyntheticSettings,
    run_events_start,
)
from synthetics.selectors.prepared import Prepared
from synthetics.selectors.run_inputs import (
    coverage_ahead,
    covered_until,
    pool_stamp_sql,
)
from synthetics.selectors.run_inputs import pool_stamp as run_inputs_pool_stamp


def _our_events_per_run_both() -> Prepared:
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
            for index, model in enumerate((JourneySceneEvent, MindblockEvent))
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
        for key, model in (
            ("scene_events", JourneySceneEvent),
            ("mindblock_events", MindblockEvent),
        )
    }


_OUR_EVENTS_PER_RUN_BOTH = _our_events_per_run_both()
EPSILON = timedelta(microseconds=1)  # (start, end] holds an event dated at start + 1 µs

# The succeeded runs whose window ends after `since`: the runs that can have written an event dated
# in (since, until]. Few (the window's minutes times the shards), through the status index.
_RUNS_ENDING_AFTER = Prepared(
    lambda since: SyntheticRun.objects.filter(
        status=RunStatus.SUCCEEDED, window_end__gt=since
    ).values_list(
        "id",
        "window_start",
        "window_end",
        "events_from",
        "scene_events_created",
        "mindblock_events_created",
    ),
    "since",
)


def written_event_counts(*, since: datetime, until: datetime) -> dict[str, int]:
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
    """
    counts = {"scene_events": 0, "mindblock_events": 0}
    across: set[int] = set()
    spans: list[tuple[datetime, datetime]] = []
    for run_id, window_start, end, events_from, scene, mindblock in _RUNS_ENDING_AFTER.rows(
        since=since
    ):
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
        for kind, run_id, n in _OUR_EVENTS_PER_RUN_BOTH.rows(since=first, until=last):
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


# --- the dashboards: status, activity, sim users --------------------------------------------------

# Enabled but no scheduled run has finished for this long: the scheduler is down. (Manual runs,
# from the Studio or an external cron, don't count: they would hide a dead scheduler.)
STALLED_AFTER = timedelta(minutes=3)
# Activity series: per minute up to this many hours, per hour above.
MINUTE_BUCKETS_UP_TO_HOURS = 6


# The ledger's reads of status, compiled once (selectors/prepared.py): every field of the run, as
# model instances built from the rows (Model.from_db, as a queryset would).
_RUN_FIELDS = tuple(field.attname for field in SyntheticRun._meta.concrete_fields)
_LAST_RUN = Prepared(
    lambda: (
        SyntheticRun.objects.filter(finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list(*_RUN_FIELDS)[:1]
    )
)
# The newest scheduled runs of the last minutes: enough for the newest of each shard (a minute's
# runs of up to 64 shards, twice over).
_RECENT_SCHEDULED = Prepared(
    lambda since: (
        SyntheticRun.objects.filter(trigger=RunTrigger.SCHEDULED, finished_at__gt=since)
        .order_by("-finished_at")
        .values_list(*_RUN_FIELDS)[:128]
    ),
    "since",
)


def _recent_runs(limit: int) -> Prepared:
    return Prepared(
        lambda: (
            SyntheticRun.objects.exclude(trigger=RunTrigger.BACKFILL)
            .order_by("-started_at", "-id")
            .values_list(*_RUN_FIELDS)[:limit]
        )
    )


_RECENT_RUNS: dict[int, Prepared] = {}


def _runs_from(rows: list[tuple]) -> list[SyntheticRun]:
    return [SyntheticRun.from_db(connection.alias, _RUN_FIELDS, row) for row in rows]


def last_run() -> SyntheticRun | None:
    """The most recently finished run of any trigger (the ledger's finished_at index)."""
    found = _runs_from(_LAST_RUN.rows())
    return found[0] if found else None


@dataclass(frozen=True, slots=True)
class GeneratorStatus:
    status: str  # paused, running, failing, stalled, clock_behind
    reason: str


def generator_status(
    *, row: SyntheticSettings, now: datetime, covered: datetime | None | type = ...
) -> GeneratorStatus:
    """What the scheduler is doing, from the ledger alone (its finished_at and window indexes).

    paused: disabled. clock_behind: the ledger covers minutes after now (the clock stepped back),
    so runs skip until it catches up. running: the newest scheduled run of the last 3 minutes
    succeeded or skipped; failing: it failed; stalled: there is none, the scheduler is down.
    """
    if not row.enabled:
        return GeneratorStatus("paused", "generation is paused")
    if covered is ...:
        covered = covered_until()
    if coverage_ahead(covered=covered, now=now):
        return GeneratorStatus(
            "clock_behind",
            f"the ledger already covers up to {covered.isoformat()}, after now: the clock stepped "
            "back; runs skip until it gets there",
        )
    found = _runs_from(_RECENT_SCHEDULED.rows(since=now - STALLED_AFTER))
    recent = found[0] if found else None
    if recent is not None and recent.shards > 1:
        # Split into shards: failing when the newest run of any shard (of the newest split) failed.
        newest: dict[int, SyntheticRun] = {}
        for run in found:
            if run.shards == recent.shards:
                newest.setdefault(run.shard, run)
        failed = [run for run in newest.values() if run.status == RunStatus.FAILED]
        recent = failed[0] if failed else recent
    if recent is None:
        return GeneratorStatus(
            "stalled",
            f"no scheduled run finished in the last {STALLED_AFTER.seconds // 60} minutes: "
            "is the django-q2 cluster running?",
        )
    if recent.status == RunStatus.FAILED:
        # The note (the error's message) is for every reader of status; its traceback is not.
        first_line = recent.note or (
            "its error is recorded for users who may change Synthetics"
            if recent.error.strip()
            else "no details recorded"
        )
        which = f" of shard {recent.shard} of {recent.shards}" if recent.shards > 1 else ""
        return GeneratorStatus(
            "failing", f"the last scheduled run{which} ({recent.id}) failed: {first_line}"
        )
    return GeneratorStatus("running", "scheduled runs are succeeding")


@dataclass(frozen=True, slots=True)
class StatusSummary:
    settings: SyntheticSettings
    status: GeneratorStatus
    last_5_min: dict[str, int]
    last_24_hours: dict[str, int]
    active_journeys: int
    sim_users: int  # active: not churned
    sim_users_churned: int
    last_run: SyntheticRun | None
    recent_runs: list[SyntheticRun]
    fidelity: dict
    now: datetime


def recent_runs(*, limit: int = 10) -> list[SyntheticRun]:
    """The newest runs of every trigger but backfill (the ledger's started_at index)."""
    prepared = _RECENT_RUNS.get(limit)
    if prepared is None:
        prepared = _RECENT_RUNS[limit] = _recent_runs(limit)
    return _runs_from(prepared.rows())


def _count(rows: QuerySet) -> Subquery:
    """COUNT(*) of `rows` as a scalar subquery (no GROUP BY: one row, through their index)."""
    return Subquery(rows.order_by().annotate(n=Func(Value(1), function="COUNT")).values("n")[:1])


# The status statement, compiled once per database alias: the SQL never changes (no argument),
# and compiling four subqueries through the ORM costs more than running them.
_STATUS_SQL: dict[str, tuple[str, tuple]] = {}


@dataclass(frozen=True, slots=True)
class PoolCounts:
    active: int  # sim users a run may pick: not churned
    churned: int
    by_persona: dict[str, int]  # every sim user, churned or not


_POOL_COUNTS_BY_PERSONA = Prepared(
    lambda: (
        SimUser.objects.values("persona")
        .annotate(n=Count("id"), active=Count("id", filter=Q(churned_at__isnull=True)))
        .order_by("persona")
        .values_list("persona", "n", "active")
    )
)
# Per database: (stamp, counts). Any write to sim_users moves the stamp (migration 0018), so counts
# kept under a stamp are exact while it stands: a pool of a million is counted once per change,
# not once per call.
_POOL_COUNTS: dict[tuple[str, str], tuple[int, PoolCounts]] = {}


def pool_counts(*, stamp: int | None | type = ...) -> PoolCounts:
    """The pool's counts: kept while the pool stamp has not moved, counted (one GROUP BY) when it
    has. `stamp`: the stamp as read before this call (default: read now); None: no stamp (SQLite
    without its triggers), always counted."""
    if stamp is ...:
        stamp = run_inputs_pool_stamp()
    where = (connection.alias, connection.settings_dict["NAME"])
    kept = _POOL_COUNTS.get(where)
    if stamp is not None and kept is not None and kept[0] == stamp:
        return kept[1]
    rows = _POOL_COUNTS_BY_PERSONA.rows()  # after the stamp: a write in between moves it again
    counts = PoolCounts(
        active=sum(active for _, _, active in rows),
        churned=sum(n - active for _, n, active in rows),
        by_persona={persona: n for persona, n, _ in rows},
    )
    if stamp is not None:
        _POOL_COUNTS[where] = (stamp, counts)
    return counts


def status_scalars() -> SyntheticSettings:
    """The settings row, with what status reads besides as scalar subqueries of the same statement
    (one round trip): `covered` (covered_until), `active_journeys` and `pool_stamp` (the pool's
    counts are kept under it: pool_counts)."""
    compiled = _STATUS_SQL.get(connection.alias)
    if compiled is None:
        covering = SyntheticRun.objects.covering().order_by("-window_end").values("window_end")
        stamp_sql = pool_stamp_sql()
        fidelity = SyntheticFidelity.objects.filter(pk=1)
        rows = SyntheticSettings.objects.filter(pk=1).annotate(
            covered=Subquery(covering[:1]),
            fidelity=Subquery(fidelity.values("verdict")[:1]),
            fidelity_metric=Subquery(fidelity.values("metric")[:1]),
            active_journeys=_count(Journey.objects.synthetic().active()),
            pool_stamp=RawSQL(stamp_sql, ()) if stamp_sql else Value(None, BigIntegerField()),
        )
        compiled = _STATUS_SQL[connection.alias] = rows.query.sql_with_params()
    found = list(SyntheticSettings.objects.raw(*compiled))
    if not found:
        raise SyntheticSettings.DoesNotExist("The settings row (id 1) is missing.")
    row = found[0]
    if row.covered is not None and connection.vendor == "sqlite":
        # SQLite hands a subquery's timestamp back as text or a naive datetime (UTC)
        row.covered = connection.ops.convert_datetimefield_value(row.covered, None, connection)
    counts = pool_counts(stamp=row.pool_stamp)
    row.sim_users, row.sim_users_churned = counts.active, counts.churned
    return row


def status_summary(*, now: datetime) -> StatusSummary:
    row = status_scalars()
    return StatusSummary(
        settings=row,
        status=generator_status(row=row, now=now, covered=row.covered),
        # Bounded by now as well: a row dated in the future is not activity of the last 5 minutes.
        last_5_min=written_event_counts(since=now - timedelta(minutes=5), until=now),
        last_24_hours=run_totals(since=now - timedelta(hours=24)),
        active_journeys=row.active_journeys,
        sim_users=row.sim_users,
        sim_users_churned=row.sim_users_churned,
        last_run=last_run(),
        recent_runs=recent_runs(),
        # The last hour's expected versus observed, as the worker last computed it.
        fidelity={"status": row.fidelity or "unknown", "metric": row.fidelity_metric or None},
        now=now,
    )


@dataclass(frozen=True, slots=True)
class ActivitySeries:
    hours: int
    bucket: str  # "minute" or "hour"
    since: datetime
    until: datetime
    totals: dict[str, int]
    series: list[dict]


_SERIES_FIELDS = {
    "scene_events": "scene_events_created",
    "mindblock_events": "mindblock_events_created",
    "sessions_started": "sessions_started",
    "journeys_completed": "journeys_completed",
    "journeys_abandoned": "journeys_abandoned",
    "journeys_errored": "journeys_errored",
}


def activity_series(*, hours: int, now: datetime) -> ActivitySeries:
    """Totals and a zero-filled series over the last `hours`, from the run ledger alone.

    Each run's counts fall in the bucket of the simulated time it covered up to (window_end); the
    event tables are not read at all. Per-minute series aggregate the ledger's runs; hourly ones
    read the whole hours from the per-hour sums (synthetic_run_hours) and only the first and the
    last, partial, hours from the ledger, so 30 days cost 720 sums, not 43,200 runs.
    """
    per_minute = hours <= MINUTE_BUCKETS_UP_TO_HOURS
    step = 60 if per_minute else 3600  # seconds
    until = now
    since = now - timedelta(hours=hours)
    first = _truncate(since, per_minute)
    last = _truncate(until, per_minute)
    if per_minute:
        by_bucket = _buckets(_PER_MINUTE.rows(since=since, until=until))
    else:
        # The edges from the ledger: the runs of the first hour (after `since`) and of the last
        # (up to `until`); the whole hours between from their sums.
        by_bucket = _buckets(
            _PER_HOUR_EDGES.rows(
                since=since, until=until, second=first + timedelta(seconds=step), last=last
            )
        )
        by_bucket.update(_buckets(_WHOLE_HOURS.rows(first=first, last=last)))
    # 721 points for 30 days: each built as a literal (the keys of _SERIES_FIELDS, checked below),
    # the fastest dict CPython makes.
    series = []
    counted = []
    for second in range(_epoch(first), _epoch(last) + 1, step):
        sums = by_bucket.get(second)
        if sums is None:
            sums = _NO_SUMS
        else:
            counted.append(sums)
        series.append(
            {
                "bucket": _from_epoch(second, UTC),
                "scene_events": sums[0],
                "mindblock_events": sums[1],
                "sessions_started": sums[2],
                "journeys_completed": sums[3],
                "journeys_abandoned": sums[4],
                "journeys_errored": sums[5],
            }
        )
    totals = dict(zip(_SERIES_FIELDS, map(sum, zip(*counted, strict=True)), strict=False))
    return ActivitySeries(
        hours=hours,
        bucket="minute" if per_minute else "hour",
        since=since,
        until=until,
        totals={
            **dict.fromkeys(_SERIES_FIELDS, 0),
            **totals,
            "runs": sum(sums[-1] for sums in by_bucket.values()),
        },
        series=series,
    )


_SUMS = (*_SERIES_FIELDS, "runs")
_NO_SUMS = (0,) * len(_SUMS)
if tuple(_SERIES_FIELDS) != (  # the literal points of activity_series
    "scene_events",
    "mindblock_events",
    "sessions_started",
    "journeys_completed",
    "journeys_abandoned",
    "journeys_errored",
):
    raise ImportError("activity_series writes its points with other keys than _SERIES_FIELDS")
_from_epoch = datetime.fromtimestamp


def _bucket_seconds(expression):
    """A bucket's start as whole seconds since 1970 on PostgreSQL (an int: the driver's loader for
    a timestamptz, with Django's zone on top, costs ~4 µs a row — 3 ms of a 30-day chart), the
    time itself elsewhere (_buckets turns it into seconds). The truncated times are UTC wall
    times, so their epoch is the instant's."""
    if connection.vendor == "postgresql":
        return Func(
            expression,
            template="EXTRACT(EPOCH FROM %(expressions)s)::bigint",
            output_field=BigIntegerField(),
        )
    return expression


def _ledger_buckets(*, per_minute: bool, edges: bool) -> Prepared:
    """Sums of the ledger's succeeded runs in (since, until] per minute or hour of their
    window_end (with `edges`: only the runs of the first and the last hour), as rows of
    (bucket, *_SUMS)."""

    def build(since, until, second=None, last=None) -> QuerySet:
        if edges:  # two ranges, each an index range of its own (a BitmapOr), not 30 days filtered
            window = Q(window_end__gt=since, window_end__lt=second) | Q(
                window_end__gte=last, window_end__lte=until
            )
        else:
            window = Q(window_end__gt=since, window_end__lte=until)
        trunc = TruncMinute if per_minute else TruncHour
        sums = {key: Sum(column) for key, column in _SERIES_FIELDS.items()}
        sums["runs"] = Count("id")
        return (
            SyntheticRun.objects.filter(window, status=RunStatus.SUCCEEDED)
            .annotate(bucket=_bucket_seconds(trunc("window_end", tzinfo=UTC)))
            .values("bucket")
            .annotate(**sums)
            .order_by("bucket")
            .values_list("bucket", *_SUMS)
        )

    return Prepared(build, "since", "until", *(("second", "last") if edges else ()))


_PER_MINUTE = _ledger_buckets(per_minute=True, edges=False)
_PER_HOUR_EDGES = _ledger_buckets(per_minute=False, edges=True)
# The whole hours strictly between the first and the last, from their sums.
_WHOLE_HOURS = Prepared(
    lambda first, last: (
        SyntheticRunHour.objects.filter(hour__gt=first, hour__lt=last)
        .order_by()
        .annotate(second=_bucket_seconds(F("hour")))
        .values_list("second", *(_SERIES_FIELDS[key] for key in _SERIES_FIELDS), "runs")
    ),
    "first",
    "last",
)


def _buckets(rows: list[tuple]) -> dict[int, tuple]:
    """Rows of (bucket, *_SUMS) by the bucket's epoch second (an int already on PostgreSQL). Every
    sum is over at least one row of NOT NULL counts, so none is NULL."""
    if rows and type(rows[0][0]) is not int:
        return {_epoch(row[0]): row[1:] for row in rows}
    return {row[0]: row[1:] for row in rows}


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _truncate(moment: datetime, per_minute: bool) -> datetime:
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    return moment if per_minute else moment.replace(minute=0)


def sim_user_list(*, persona: str | None = None) -> QuerySet[SimUser]:
    """Sim users with their account and whether they are in an active journey (partial index)."""
    users = SimUser.objects.select_related("user").with_activity().order_by("id")
    if persona:
        users = users.filter(persona=persona)
    return users


def sim_user_persona_counts() -> dict[str, int]:
    """Sim users per persona, the whole pool (kept under the pool stamp: pool_counts)."""
    return dict(pool_counts().by_persona)


def cleanup_job_get(job_id: int) -> CleanupJob:
    """The cleanup job, or Http404 (the API's JSON 404), also for an id no bigint can hold."""
    if not 1 <= job_id <= 2**63 - 1:
        raise Http404("No such cleanup job.")
    return get_object_or_404(CleanupJob, pk=job_id)
