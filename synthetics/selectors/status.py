"""What status reads: the settings row and its scalars in one statement, whether the scheduler is
running (from the ledger alone), the newest runs and the activity counts of the status page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import BigIntegerField, Func, QuerySet, Subquery, Value
from django.db.models.expressions import RawSQL
from django.utils import timezone

from synthetics.models import (
    Journey,
    RunStatus,
    RunTrigger,
    SyntheticFidelity,
    SyntheticRun,
    SyntheticSettings,
)
from synthetics.selectors.ledger import (
    _RUN_TOTALS,
    _TOTALS,
    WRITTEN_FIELDS,
    runs_ending_after,
    written_event_counts,
)
from synthetics.selectors.prepared import Prepared, PreparedParts, compiled_queryset
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


def _recent_scheduled(since: datetime) -> QuerySet:
    # The newest scheduled runs of the last minutes: enough for the newest of each shard (a
    # minute's runs of up to 64 shards, twice over).
    return (
        SyntheticRun.objects.filter(trigger=RunTrigger.SCHEDULED, finished_at__gt=since)
        .order_by("-finished_at")
        .values_list(*_RUN_FIELDS)[:128]
    )


_RECENT_SCHEDULED = Prepared(_recent_scheduled, "since")


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
    *,
    row: SyntheticSettings,
    now: datetime,
    covered: datetime | None,
    ledger: StatusLedger | None = None,
) -> GeneratorStatus:
    """What the scheduler is doing, from the ledger alone (its finished_at and window indexes).
    `covered`: what the ledger covers up to (covered_until; status_scalars reads it as `covered`).

    paused: disabled. clock_behind: the ledger covers minutes after now (the clock stepped back),
    so runs skip until it catches up. running: the newest scheduled run of the last 3 minutes
    succeeded or skipped; failing: it failed; starting: there is none, but no scheduled run ever
    finished and the install (the settings row) or its history (`make run`'s backfill) is younger
    than STALLED_AFTER: the first scheduled run is not due yet; stalled: there is none, the
    scheduler is down. `ledger`: status_ledger's rows where the caller read them already.
    """
    if not row.enabled:
        return GeneratorStatus("paused", "generation is paused")
    if coverage_ahead(covered=covered, now=now):
        return GeneratorStatus(
            "clock_behind",
            f"the ledger already covers up to {covered.isoformat()}, after now: the clock stepped "
            "back; runs skip until it gets there",
        )
    if ledger is None:
        found = _runs_from(_RECENT_SCHEDULED.rows(since=now - STALLED_AFTER))
    else:
        found = ledger.recent_scheduled
    recent = found[0] if found else None
    if recent is not None and recent.shards > 1:
        # Split into shards: failing when the newest run of any shard (of the newest split) failed.
        newest: dict[int, SyntheticRun] = {}
        for run in found:
            if run.shards == recent.shards:
                newest.setdefault(run.shard, run)
        failed = [run for run in newest.values() if run.status == RunStatus.FAILED]
        recent = failed[0] if failed else recent
    if recent is None and _starting(row=row, now=now, ledger=ledger):
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


def _any_scheduled() -> QuerySet:
    return SyntheticRun.objects.filter(trigger=RunTrigger.SCHEDULED).order_by()


def _newest_history() -> QuerySet:
    # The install's own history (bootstrap's backfill) may take minutes after the settings row was
    # made. Manual runs don't count: an external cron's would hide a scheduler that never started.
    return SyntheticRun.objects.filter(
        trigger=RunTrigger.BACKFILL, finished_at__isnull=False
    ).order_by("-window_end")


def _starting(*, row: SyntheticSettings, now: datetime, ledger: StatusLedger | None) -> bool:
    """No scheduled run ever finished, and the install or its newest run is recent (two probes of
    the ledger's indexes: status_ledger's, or read here when no scheduled run finished in the
    last STALLED_AFTER)."""
    if ledger is None:
        if _any_scheduled().exists():
            return False
        history = _newest_history().values_list("finished_at", flat=True).first()
    else:
        if ledger.any_scheduled:
            return False
        history = ledger.history_finished_at
    since = max(row.created_at, history) if history is not None else row.created_at
    return now - since < STALLED_AFTER


@dataclass(frozen=True, slots=True)
class StatusLedger:
    """What status reads of the ledger, read in one statement (status_ledger)."""

    last_run: SyntheticRun | None
    recent_runs: list[SyntheticRun]  # the newest of every trigger (RECENT_RUNS)
    recent_scheduled: list[SyntheticRun]  # finished in the last STALLED_AFTER, newest first
    any_scheduled: bool  # whether any scheduled run is in the ledger
    history_finished_at: datetime | None  # when the newest backfill (by window) finished
    written: list[tuple]  # ledger.runs_ending_after(the last 5 minutes): its WRITTEN_FIELDS


RECENT_RUNS = 10
LAST_5_MIN = timedelta(minutes=5)
# The parts of status_ledger's statement, in its order: each a queryset of whole ledger rows.
_LEDGER_PARTS = (
    lambda **_: (
        SyntheticRun.objects.filter(finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list(*_RUN_FIELDS)[:1]
    ),
    lambda **_: SyntheticRun.objects.order_by("-started_at", "-id").values_list(*_RUN_FIELDS)[
        :RECENT_RUNS
    ],
    lambda stalled_since, **_: _recent_scheduled(stalled_since),
    lambda **_: _any_scheduled().values_list(*_RUN_FIELDS)[:1],
    lambda **_: _newest_history().values_list(*_RUN_FIELDS)[:1],
    lambda written_since, **_: (
        runs_ending_after(written_since).order_by().values_list(*_RUN_FIELDS)
    ),
)
_LEDGER = PreparedParts(_LEDGER_PARTS, "stalled_since", "written_since")
_WRITTEN_AT = tuple(_RUN_FIELDS.index(name) for name in WRITTEN_FIELDS)
_FINISHED_AT = _RUN_FIELDS.index("finished_at")
_STARTED_AT = _RUN_FIELDS.index("started_at")


def status_ledger(*, now: datetime) -> StatusLedger:
    """The ledger's rows status reads (the newest run, the recent runs, the scheduled runs of the
    last minutes, the two probes of `_starting`, the runs of the last 5 minutes' counts) in one
    statement: a round trip each was most of status's time. Each part through its index."""
    parts: list[list[tuple]] = [[] for _ in _LEDGER_PARTS]
    for row in _LEDGER.rows(stalled_since=now - STALLED_AFTER, written_since=now - LAST_5_MIN):
        parts[row[-1]].append(row[:-1])
    last, recent, scheduled, any_scheduled, history, written = parts
    # The order each part's ORDER BY gave, again: a UNION ALL does not promise to keep it.
    recent.sort(key=lambda row: (row[_STARTED_AT], row[0]), reverse=True)
    scheduled.sort(key=lambda row: row[_FINISHED_AT], reverse=True)
    return StatusLedger(
        last_run=_runs_from(last)[0] if last else None,
        recent_runs=_runs_from(recent),
        recent_scheduled=_runs_from(scheduled),
        any_scheduled=bool(any_scheduled),
        history_finished_at=history[0][_FINISHED_AT] if history else None,
        written=[tuple(row[index] for index in _WRITTEN_AT) for row in written],
    )


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
    """The newest runs of every trigger, backfills too (the ledger's started_at index)."""
    prepared = _RECENT_RUNS.get(limit)
    if prepared is None:
        prepared = _RECENT_RUNS[limit] = _recent_runs(limit)
    return _runs_from(prepared.rows())


def _count(rows: QuerySet) -> Subquery:
    """COUNT(*) of `rows` as a scalar subquery (no GROUP BY: one row, through their index)."""
    return Subquery(rows.order_by().annotate(n=Func(Value(1), function="COUNT")).values("n")[:1])


# The settings row's fields, then what status reads besides (status_scalars), in this order.
_SETTINGS_FIELDS = tuple(field.attname for field in SyntheticSettings._meta.concrete_fields)
_SCALARS = ("covered", "fidelity", "fidelity_metric", "active_journeys", "pool_stamp")


def _settings_with_scalars() -> QuerySet:
    covering = SyntheticRun.objects.covering().order_by("-window_end").values("window_end")
    stamp_sql = pool_stamp_sql()
    fidelity = SyntheticFidelity.objects.filter(pk=1)
    return (
        SyntheticSettings.objects.filter(pk=1)
        .annotate(
            covered=Subquery(covering[:1]),
            fidelity=Subquery(fidelity.values("verdict")[:1]),
            fidelity_metric=Subquery(fidelity.values("metric")[:1]),
            active_journeys=_count(Journey.objects.synthetic().active()),
            pool_stamp=RawSQL(stamp_sql, ()) if stamp_sql else Value(None, BigIntegerField()),
        )
        .values_list(*_SETTINGS_FIELDS, *_SCALARS)
    )


class _StatusStatement(Prepared):
    """The settings row with its scalar subqueries, and the ledger's totals since a time
    (ledger.run_totals's statement) joined to it as a derived table: one statement, its
    converters the settings row's own (the ORM's, SQLite's text times included)."""

    def _statement(self, stand_ins):
        sql, params, compiler, converters = compiled_queryset(_settings_with_scalars())
        totals_sql, totals_params = _RUN_TOTALS[False].statement(since=stand_ins["totals_since"])
        columns = ", ".join(f't."{key}"' for key in _TOTALS)
        # LEFT JOIN: the totals' statement has no row at all when no run is in the window
        sql = f"SELECT s.*, {columns} FROM ({sql}) s LEFT JOIN ({totals_sql}) t ON 1 = 1"
        return sql, [*params, *totals_params], compiler, converters


# Compiled once per database alias: compiling four subqueries through the ORM costs more than
# running them.
_STATUS = _StatusStatement(None, "totals_since")
_TOTALS_FROM = len(_SETTINGS_FIELDS) + len(_SCALARS)


def status_scalars(*, totals_since: datetime | None = None) -> SyntheticSettings:
    """The settings row, with what status reads besides in the same statement (one round trip):
    `covered` (covered_until), `active_journeys`, the `fidelity` verdict and its metric,
    `pool_stamp` (the pool's counts are kept under it: pool_counts: `sim_users`,
    `sim_users_churned`), and `last_24_hours`, the ledger's totals since `totals_since` (default:
    24 hours before now; ledger.run_totals)."""
    if totals_since is None:
        totals_since = timezone.now() - timedelta(hours=24)
    found = _STATUS.rows(totals_since=totals_since)
    if not found:
        raise SyntheticSettings.DoesNotExist("The settings row (id 1) is missing.")
    values = found[0]
    row = SyntheticSettings.from_db(
        connection.alias, _SETTINGS_FIELDS, values[: len(_SETTINGS_FIELDS)]
    )
    for name, value in zip(_SCALARS, values[len(_SETTINGS_FIELDS) : _TOTALS_FROM], strict=True):
        setattr(row, name, value)
    row.last_24_hours = {
        key: int(value or 0) for key, value in zip(_TOTALS, values[_TOTALS_FROM:], strict=True)
    }
    counts = pool_counts(stamp=row.pool_stamp)
    row.sim_users, row.sim_users_churned = counts.active, counts.churned
    return row


def status_summary(*, now: datetime) -> StatusSummary:
    """Everything status shows, in two statements (status_scalars, status_ledger) and, while a
    run's events straddle the 5 minutes' edge, a count of those through the tag index."""
    row = status_scalars(totals_since=now - timedelta(hours=24))
    ledger = status_ledger(now=now)
    return StatusSummary(
        settings=row,
        status=generator_status(row=row, now=now, covered=row.covered, ledger=ledger),
        # Bounded by now as well: a row dated in the future is not activity of the last 5 minutes.
        last_5_min=written_event_counts(since=now - LAST_5_MIN, until=now, runs=ledger.written),
        last_24_hours=row.last_24_hours,
        active_journeys=row.active_journeys,
        sim_users=row.sim_users,
        sim_users_churned=row.sim_users_churned,
        last_run=ledger.last_run,
        recent_runs=ledger.recent_runs,
        # The last hour's expected versus observed, as the worker last computed it.
        fidelity={"status": row.fidelity or "unknown", "metric": row.fidelity_metric or None},
        now=now,
    )
