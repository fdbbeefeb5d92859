"""Generator runs: one tick in one transaction under the generator lock, recorded in the ledger.

A run is all-or-nothing: its journeys, events, journey changes and ledger row commit together. A run
that fails leaves none of them and is recorded afterwards, in a transaction of its own, as failed.
Scheduled and backfill runs cover simulated minutes; no minute is ever covered twice.
"""

from __future__ import annotations

import logging
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings as django_settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from synthetics import selectors
from synthetics.engine import (
    Catalogue,
    EngineError,
    PoolMember,
    manual_session_count,
    scheduled_session_count,
    simulate_tick,
)
from synthetics.models import RunStatus, RunTrigger, SyntheticRun
from synthetics.services.locks import (
    GeneratorBusy,
    RunDeadline,
    RunOverBudget,
    deadline_statement_bound,
    generator_transaction,
    is_database_locked,
    is_statement_timeout,
    run_deadline_start,
    sqlite_write_wait,
)
from synthetics.services.writers import run_output_write

logger = logging.getLogger("synthetics")

# After downtime a scheduled run covers at most this many minutes (its sessions still capped at
# max_per_run): generation resumes without a burst, and older minutes stay empty.
MAX_CATCH_UP_MINUTES = 10
# A manual run spreads its sessions over the minute before `now`.
MANUAL_WINDOW = timedelta(minutes=1)
# History goes back at most this far (31 days).
MAX_BACKFILL_HOURS = 24 * 31
# No simulated time before this: older dates are typos, and datetime arithmetic near year 1 overflows.
EARLIEST_NOW = datetime(2000, 1, 1, tzinfo=UTC)


class GeneratorUnavailable(EngineError):
    """The generator's state refuses this run (answered 409 by the API)."""


class GeneratorPaused(GeneratorUnavailable):
    """A manual run was asked for while generation is paused (and not forced)."""


class RunInTheFuture(EngineError):
    """A run was asked for at a time after the real now: it would write rows dated in the future."""


class RunInterrupted(RuntimeError):
    """The run was stopped from outside (django-q2's task timeout, Ctrl-C) and rolled back."""


class RunFailed(RuntimeError):
    """The run failed and was rolled back; it is recorded in the ledger as failed."""

    def __init__(self, message: str, *, run_id: int) -> None:
        super().__init__(message)
        self.run_id = run_id


@dataclass(frozen=True, slots=True)
class RunInputs:
    """What a run reads besides settings and active journeys: the catalogue and the user pool."""

    catalogue: Catalogue
    pool: list[PoolMember]

    @classmethod
    def load(cls) -> RunInputs:
        return cls(catalogue=selectors.catalogue_load(), pool=selectors.sim_user_pool())


@dataclass(frozen=True, slots=True)
class RunResult:
    run_id: int | None
    trigger: str
    status: str
    window_start: datetime
    window_end: datetime
    target: int | None
    sessions_created: int = 0
    scene_events_created: int = 0
    mindblock_events_created: int = 0
    journeys_completed: int = 0
    journeys_abandoned: int = 0
    journeys_errored: int = 0
    active_journeys: int = 0
    abandon_rate: float = 0.0
    error_rate: float = 0.0
    note: str = ""

    @classmethod
    def from_run(cls, run: SyntheticRun, *, abandon_rate: float, error_rate: float) -> RunResult:
        return cls(
            run_id=run.id,
            trigger=run.trigger,
            status=run.status,
            window_start=run.window_start,
            window_end=run.window_end,
            target=run.target,
            sessions_created=run.sessions_created,
            scene_events_created=run.scene_events_created,
            mindblock_events_created=run.mindblock_events_created,
            journeys_completed=run.journeys_completed,
            journeys_abandoned=run.journeys_abandoned,
            journeys_errored=run.journeys_errored,
            active_journeys=run.active_journeys,
            abandon_rate=abandon_rate,
            error_rate=error_rate,
            note=run.note,
        )


def floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _aware(moment: datetime | None) -> datetime:
    """`moment`, or the real now; never a time after the real now (no row is ever dated ahead)."""
    real_now = timezone.now()
    if moment is None:
        return real_now
    if timezone.is_naive(moment):
        raise EngineError("now must include a time zone (for example 2026-01-09T19:15:00Z)")
    if moment < EARLIEST_NOW:
        raise EngineError(
            f"now ({moment.isoformat()}) is before {EARLIEST_NOW.date().isoformat()}: "
            "a simulated time must be recent"
        )
    if moment > real_now:
        raise RunInTheFuture(
            f"now ({moment.isoformat()}) is after the current time ({real_now.isoformat()}): "
            "a run never writes rows dated in the future."
        )
    return moment


def _rng(*parts: object) -> random.Random:
    # String seeds are hashed with SHA-512 by random.Random: stable across processes and versions.
    return random.Random(":".join(str(part) for part in parts))


def _log(run: SyntheticRun) -> None:
    # One structured line per run; backfill minutes go to DEBUG so a day of history is not 1,440 lines.
    level = logging.DEBUG if run.trigger == RunTrigger.BACKFILL else logging.INFO
    logger.log(
        level,
        "synthetics run id=%s trigger=%s status=%s window=%s..%s sessions=%d scene_events=%d "
        "mindblock_events=%d completed=%d abandoned=%d errored=%d active=%d%s",
        run.id,
        run.trigger,
        run.status,
        run.window_start.isoformat(),
        run.window_end.isoformat(),
        run.sessions_created,
        run.scene_events_created,
        run.mindblock_events_created,
        run.journeys_completed,
        run.journeys_abandoned,
        run.journeys_errored,
        run.active_journeys,
        f" note={run.note!r}" if run.note else "",
    )


def tick_run(
    *,
    trigger: str,
    now: datetime | None = None,
    target: int | None = None,
    force: bool = False,
    seed: int | None = None,
    inputs: RunInputs | None = None,
) -> RunResult:
    """Run the generator once at (simulated) time `now` and record the run in the ledger.

    scheduled: covers the minutes since the last covered one (at most MAX_CATCH_UP_MINUTES) and starts
    a Poisson number of sessions, capped at max_per_run; while paused it is recorded as skipped.
    manual: starts exactly `target` sessions (1..max_per_run); refused while paused unless `force`.
    backfill: covers the single minute ending at `now`, unless a run already covered it.
    `inputs` lets a long backfill load the pool and catalogue once instead of every minute.
    """
    if trigger not in RunTrigger.values:
        raise EngineError(f"trigger must be one of {', '.join(RunTrigger.values)}, got {trigger!r}")
    now = _aware(now)
    seed = django_settings.SYNTHETICS_SEED if seed is None else seed
    if trigger == RunTrigger.MANUAL:
        # Refuse bad input before taking the lock: a refused request writes nothing at all.
        _manual_preflight(target=target, force=force)
    started_at = timezone.now()
    # A manual run answers a person or a cron waiting on HTTP: it waits a few seconds for a run in
    # progress, then says the generator is busy. Scheduled and backfill runs wait up to their budget.
    deadline = run_deadline_start(manual=trigger == RunTrigger.MANUAL)
    try:
        with generator_transaction(deadline=deadline):
            return _tick_locked(
                trigger=trigger,
                now=now,
                target=target,
                force=force,
                seed=seed,
                started_at=started_at,
                inputs=inputs,
                deadline=deadline,
            )
    except GeneratorBusy as error:
        return _record_busy(
            trigger=trigger, now=now, target=target, started_at=started_at, error=error
        )
    except (GeneratorPaused, EngineError) as error:
        if trigger == RunTrigger.MANUAL:
            raise  # settings changed between preflight and lock: still a refusal, not a failure
        return _record_failure(
            trigger=trigger, now=now, target=target, started_at=started_at, error=error
        )
    except Exception as error:
        if is_statement_timeout(error):  # PostgreSQL's statement_timeout: the budget, spent in SQL
            cancelled = error
            error = RunOverBudget(
                f"the run used up its time budget of {deadline.budget_seconds:g} s in a database "
                "statement; it was rolled back"
            )
            error.__cause__ = cancelled  # the ledger's traceback shows the cancelled statement
        _record_failure(trigger=trigger, now=now, target=target, started_at=started_at, error=error)
        raise
    except BaseException as error:
        # django-q2's task timeout raises SystemExit (its TimeoutException) inside the run, Ctrl-C
        # raises KeyboardInterrupt: the transaction is rolled back; record how the run ended, then
        # let the interruption go on (even when the record cannot be written).
        try:
            _record_failure(
                trigger=trigger,
                now=now,
                target=target,
                started_at=started_at,
                error=RunInterrupted(_interruption_message(error)),
                cause=error,
            )
        except Exception:
            logger.exception("synthetics run: could not record the interrupted run")
        raise


def _interruption_message(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "the run was interrupted (Ctrl-C) and rolled back"
    if isinstance(error, SystemExit):
        return (
            f"the run was stopped by its worker ({error or 'SystemExit'}): most likely django-q2's "
            f"task timeout of {django_settings.Q_CLUSTER.get('timeout')} s; it was rolled back"
        )
    return f"the run was stopped by {type(error).__name__}: {error}; it was rolled back"


def _manual_preflight(*, target: int | None, force: bool) -> None:
    row = selectors.settings_get()
    if not row.enabled and not force:
        raise GeneratorPaused(
            "Synthetics is paused: a manual run generates nothing while paused. "
            "Resume it, or force the run."
        )
    manual_session_count(settings=selectors.generator_settings(row), target=target)
    if selectors.sim_user_count() == 0:
        raise GeneratorUnavailable(
            "There are no sim users to run sessions for: run `manage.py seed_sim_users` first."
        )


def _tick_locked(
    *,
    trigger: str,
    now: datetime,
    target: int | None,
    force: bool,
    seed: int,
    started_at: datetime,
    inputs: RunInputs | None,
    deadline: RunDeadline,
) -> RunResult:
    row = selectors.settings_get()
    settings = selectors.generator_settings(row)
    run = SyntheticRun(trigger=trigger, started_at=started_at, target=target, window_end=now)

    if trigger == RunTrigger.MANUAL:
        if not settings.enabled and not force:
            raise GeneratorPaused("Synthetics is paused: resume it, or force the run.")
        sessions = manual_session_count(settings=settings, target=target)
        run.window_start = now - MANUAL_WINDOW
        manual_runs = SyntheticRun.objects.filter(trigger=RunTrigger.MANUAL).count()
        rng = _rng(seed, trigger, now.isoformat(), manual_runs)
    else:
        covered = selectors.covered_until() if trigger == RunTrigger.SCHEDULED else None
        window = _scheduled_window(trigger=trigger, now=now, covered=covered)
        if window is None:
            if trigger == RunTrigger.BACKFILL:  # minute already covered: nothing to record
                minute = floor_minute(now)
                return RunResult(
                    run_id=None,
                    trigger=trigger,
                    status=RunStatus.SKIPPED,
                    window_start=minute - timedelta(minutes=1),
                    window_end=minute,
                    target=None,
                    note="already covered",
                )
            run.window_start = run.window_end = floor_minute(now)
            if selectors.coverage_ahead(covered=covered, now=now):
                note = (
                    f"clock stepped back: minutes up to {covered.isoformat()} are already covered; "
                    "generation resumes when the clock gets there"
                )
                return _finish_skipped(run, settings, note=note[:200])
            return _finish_skipped(run, settings, note="no new minute to cover")
        run.window_start, run.window_end = window
        if not settings.enabled:
            return _finish_skipped(run, settings, note="paused")
        minutes = (run.window_end - run.window_start) / timedelta(minutes=1)
        rng = _rng(seed, trigger, run.window_start.isoformat(), run.window_end.isoformat())
        sessions = scheduled_session_count(settings=settings, minutes=minutes, rng=rng)

    inputs = inputs or RunInputs.load()
    deadline.check("reading its inputs")
    outcome = simulate_tick(
        settings=settings,
        catalogue=inputs.catalogue,
        pool=inputs.pool,
        active=selectors.active_journeys(),
        window_start=run.window_start,
        now=run.window_end,
        sessions=sessions,
        rng=rng,
    )
    run.status = RunStatus.SUCCEEDED
    run.sessions_created = outcome.sessions_created
    run.scene_events_created = outcome.scene_events
    run.mindblock_events_created = outcome.mindblock_events
    run.journeys_completed = outcome.finished("completed")
    run.journeys_abandoned = outcome.finished("abandoned")
    run.journeys_errored = outcome.finished("errored")
    run.active_journeys = outcome.active_after
    if outcome.sessions_created < sessions:
        run.note = f"only {outcome.sessions_created} of {sessions} sessions: no more idle sim users"
    deadline.check("simulating")
    run.save()  # the id tags every event this run writes
    run_output_write(
        before_statement=lambda: deadline_statement_bound(deadline),
        run_id=run.id,
        new_journeys=outcome.new_journeys,
        updates=outcome.journey_updates,
        events=outcome.events,
        written_at=timezone.now(),
    )
    run.finished_at = timezone.now()
    run.save(update_fields=["finished_at", "updated_at"])
    transaction.on_commit(lambda: _log(run))
    return RunResult.from_run(
        run, abandon_rate=settings.abandon_rate, error_rate=settings.error_rate
    )


def _scheduled_window(
    *, trigger: str, now: datetime, covered: datetime | None
) -> tuple[datetime, datetime] | None:
    """The simulated window a scheduled or backfill run covers, or None when already covered.

    `covered` is where scheduled coverage ends (selectors.covered_until), read once by the caller.
    """
    end = floor_minute(now)
    if trigger == RunTrigger.BACKFILL:
        start = end - timedelta(minutes=1)
        if selectors.minute_is_covered(minute_start=start, minute_end=end):
            return None
        return start, end
    earliest = end - timedelta(minutes=MAX_CATCH_UP_MINUTES)
    start = end - timedelta(minutes=1) if covered is None else max(covered, earliest)
    if start >= end:
        return None
    if selectors.last_scheduled_run_failed():
        # After a scheduled run that failed (a timeout, a budget overrun, a lost connection), the
        # next covers one minute, the first one not covered yet: a retry never takes on more work
        # than the run that failed, and no minute is skipped; the runs after it catch up.
        end = start + timedelta(minutes=1)
    return start, end


def _finish_skipped(run: SyntheticRun, settings, *, note: str) -> RunResult:
    run.status = RunStatus.SKIPPED
    run.note = note
    run.active_journeys = selectors.active_journey_count()
    run.finished_at = timezone.now()
    run.save()
    transaction.on_commit(lambda: _log(run))
    return RunResult.from_run(
        run, abandon_rate=settings.abandon_rate, error_rate=settings.error_rate
    )


def _failed_row(
    *,
    trigger: str,
    now: datetime,
    target: int | None,
    started_at: datetime,
    note: str,
    error: str = "",
) -> SyntheticRun:
    """The ledger row of a run that wrote nothing, dated where its window would end (unsaved)."""
    window_end = now if trigger == RunTrigger.MANUAL else floor_minute(now)
    return SyntheticRun(
        trigger=trigger,
        status=RunStatus.FAILED,
        started_at=started_at,
        finished_at=timezone.now(),
        window_start=window_end,
        window_end=window_end,
        target=target,
        note=note[:200],
        error=error,
    )


def _record_busy(
    *, trigger: str, now: datetime, target: int | None, started_at: datetime, error: GeneratorBusy
) -> RunResult:
    """A run that could not get the generator lock in time: recorded as failed, then refused.

    Failed, not skipped: a skipped scheduled run counts as covering its minute, and this one
    generated nothing, so the next run must cover the minute instead. On SQLite the ledger row
    itself needs the write lock that another writer holds: it is recorded if the lock comes within
    a second, else only logged, so the caller still hears "busy" in time.
    """
    run = _failed_row(
        trigger=trigger,
        now=now,
        target=target,
        started_at=started_at,
        note="generator busy: another run held the lock",
    )
    try:
        with sqlite_write_wait(1.0):
            run.save()
    except OperationalError as locked:
        if not is_database_locked(locked):
            raise
    _log(run)
    if trigger == RunTrigger.MANUAL:
        raise GeneratorBusy(str(error), run_id=run.id, retry_after=error.retry_after)
    return RunResult.from_run(run, abandon_rate=0.0, error_rate=0.0)


def _record_failure(
    *,
    trigger: str,
    now: datetime,
    target: int | None,
    started_at: datetime,
    error: BaseException,
    cause: BaseException | None = None,
) -> RunResult:
    """Record a failed run in its own transaction (the run's own work has been rolled back)."""
    shown = cause or error
    logger.error(
        "synthetics run trigger=%s status=failed error=%s",
        trigger,
        error,
        exc_info=(type(shown), shown, shown.__traceback__),
    )
    details = "".join(traceback.format_exception(shown))
    if cause is not None:
        details = f"{error}\n\n{details}"
    run = _failed_row(
        trigger=trigger,
        now=now,
        target=target,
        started_at=started_at,
        note=str(error),
        error=details[-10000:],
    )
    try:
        run.save()
    except Exception:
        if connection.in_atomic_block:
            raise  # inside a caller's transaction: reconnecting is not ours to do
        # The connection died with the run (killed backend, interrupted query): reconnect once.
        connection.close()
        run.save()
    if cause is None and not isinstance(error, EngineError):
        raise RunFailed(f"The run failed and was rolled back: {error}", run_id=run.id) from error
    return RunResult.from_run(run, abandon_rate=0.0, error_rate=0.0)


@dataclass(frozen=True, slots=True)
class BackfillSummary:
    minutes: int
    minutes_generated: int
    minutes_already_covered: int
    sessions_created: int
    scene_events_created: int
    mindblock_events_created: int
    journeys_completed: int
    journeys_abandoned: int
    journeys_errored: int
    start: datetime
    end: datetime


def activity_backfill(
    *,
    hours: int,
    now: datetime | None = None,
    seed: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> BackfillSummary:
    """Generate the last `hours` hours, one backfill run per minute on the simulated clock.

    Each minute is its own run and transaction, so a running scheduler interleaves safely; minutes
    that a scheduled or backfill run already covered are left as they are.
    """
    if (
        isinstance(hours, bool)
        or not isinstance(hours, int)
        or not 1 <= hours <= MAX_BACKFILL_HOURS
    ):
        raise EngineError(
            f"hours must be a whole number from 1 to {MAX_BACKFILL_HOURS}, got {hours!r}"
        )
    end = floor_minute(_aware(now))
    minutes = hours * 60
    start = end - timedelta(minutes=minutes)
    totals = dict.fromkeys(
        (
            "generated",
            "covered",
            "sessions",
            "scene",
            "mindblock",
            "completed",
            "abandoned",
            "errored",
        ),
        0,
    )
    inputs = RunInputs.load()
    for step in range(1, minutes + 1):
        result = tick_run(
            trigger=RunTrigger.BACKFILL,
            now=start + timedelta(minutes=step),
            seed=seed,
            inputs=inputs,
        )
        if result.status == RunStatus.FAILED:
            raise RunFailed(
                f"backfill failed at {result.window_end}: {result.note}", run_id=result.run_id or 0
            )
        if result.run_id is None:
            totals["covered"] += 1
        else:
            totals["generated"] += 1
        totals["sessions"] += result.sessions_created
        totals["scene"] += result.scene_events_created
        totals["mindblock"] += result.mindblock_events_created
        totals["completed"] += result.journeys_completed
        totals["abandoned"] += result.journeys_abandoned
        totals["errored"] += result.journeys_errored
        if progress:
            progress(1)
    return BackfillSummary(
        minutes=minutes,
        minutes_generated=totals["generated"],
        minutes_already_covered=totals["covered"],
        sessions_created=totals["sessions"],
        scene_events_created=totals["scene"],
        mindblock_events_created=totals["mindblock"],
        journeys_completed=totals["completed"],
        journeys_abandoned=totals["abandoned"],
        journeys_errored=totals["errored"],
        start=start,
        end=end,
    )
