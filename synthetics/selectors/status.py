"""What status reads: the settings row and its scalars in one statement, whether the scheduler is
running (from the ledger alone), the newest runs and the activity counts of the status page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import BigIntegerField, Func, QuerySet, Subquery, Value
from django.db.models.expressions import RawSQL

from synthetics.models import (
    Journey,
    RunStatus,
    RunTrigger,
    SyntheticFidelity,
    SyntheticRun,
    SyntheticSettings,
)
from synthetics.selectors.ledger import run_totals, written_event_counts
from synthetics.selectors.prepared import Prepared
from synthetics.selectors.run_inputs import coverage_ahead, pool_stamp_sql
from synthetics.selectors.sim_users import pool_counts

# What GeneratorStatus.status can say (the API's enum, the metrics' label values).
GENERATOR_STATUSES = ("starting", "running", "paused", "failing", "stalled", "clock_behind")

# Enabled but no scheduled run has finished for this long: the scheduler is down. (Manual runs,
# from the Studio or an external cron, don't count: they would hide a dead scheduler.)
STALLED_AFTER = timedelta(minutes=3)


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
    # Every trigger, as last_run reads: a fresh install's history (a backfill) is its first run,
    # and "no runs yet" beside "last run: backfill" contradicted it.
    return Prepared(
        lambda: SyntheticRun.objects.order_by("-started_at", "-id").values_list(*_RUN_FIELDS)[
            :limit
        ]
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
    status: str  # paused, starting, running, failing, stalled, clock_behind
    reason: str


def generator_status(
    *, row: SyntheticSettings, now: datetime, covered: datetime | None
) -> GeneratorStatus:
    """What the scheduler is doing, from the ledger alone (its finished_at and window indexes).
    `covered`: what the ledger covers up to (covered_until; status_scalars reads it as `covered`).

    paused: disabled. clock_behind: the ledger covers minutes after now (the clock stepped back),
    so runs skip until it catches up. running: the newest scheduled run of the last 3 minutes
    succeeded or skipped; failing: it failed; starting: there is none, but no scheduled run ever
    finished and the install (the settings row) or its history (`make run`'s backfill) is younger
    than STALLED_AFTER: the first scheduled run is not due yet; stalled: there is none, the
    scheduler is down.
    """
    if not row.enabled:
        return GeneratorStatus("paused", "generation is paused")
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
    if recent is None and _starting(row=row, now=now):
        return GeneratorStatus(
            "starting",
            "no scheduled run yet: the first is due within a minute or two of the django-q2 "
            "cluster's start",
        )
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


def _starting(*, row: SyntheticSettings, now: datetime) -> bool:
    """No scheduled run ever finished, and the install or its newest run is recent (read only
    when no scheduled run finished in the last STALLED_AFTER: two probes of the ledger's indexes)."""
    if SyntheticRun.objects.filter(trigger=RunTrigger.SCHEDULED).exists():
        return False
    # The install's own history (bootstrap's backfill) may take minutes after the settings row was
    # made. Manual runs don't count: an external cron's would hide a scheduler that never started.
    history = (
        SyntheticRun.objects.filter(trigger=RunTrigger.BACKFILL, finished_at__isnull=False)
        .order_by("-window_end")
        .values_list("finished_at", flat=True)
        .first()
    )
    since = max(row.created_at, history) if history is not None else row.created_at
    return now - since < STALLED_AFTER


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
