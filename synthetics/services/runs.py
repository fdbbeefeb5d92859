"""Generator runs: a scheduled run, a manual run and a backfill minute, each one transaction under the
generator lock, recorded in the ledger.

Every run goes the same way: work out its window and session count, call the engine, then write the
ledger row (complete, once) and the run's rows in one transaction. The failure rule, for every
caller (synthetics.errors): a refusal raises an ApplicationError before anything is written; any
other failure is rolled back, recorded in the ledger as a failed run and raised as RunFailed
(GeneratorBusy when the lock did not come in time); an interruption (django-q2's task timeout,
Ctrl-C) is recorded the same way and raised as itself.
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

from synthetics.engine import (
    Catalogue,
    EngineError,
    GeneratorSettings,
    PoolMember,
    PoolRhythm,
    manual_session_count,
    simulate_run,
    window_session_count,
)
from synthetics.engine.lifecycle import NEWCOMER_DAYS, churned, signups_due
from synthetics.engine.population import make_newcomer, settled_weight
from synthetics.engine.sampling import run_random
from synthetics.errors import (
    ApplicationError,
    Conflict,
    GeneratorBusy,
    RunFailed,
    whole_number_required,
)
from synthetics.models import SYNTHETIC_EMAIL_DOMAIN, RunStatus, RunTrigger, SimUser, SyntheticRun
from synthetics.selectors import run_inputs
from synthetics.services.locks import (
    RunDeadline,
    RunOverBudget,
    deadline_statement_bound,
    generator_transaction,
    is_database_locked,
    is_statement_timeout,
    run_deadline_start,
    sqlite_write_wait,
)
from synthetics.services.seeding import next_sim_index, sim_accounts_create
from synthetics.services.writers import run_output_write

logger = logging.getLogger("synthetics")

# After downtime a scheduled run covers at most this many minutes (its sessions still capped at
# max_per_run): generation resumes without a burst, and older minutes stay empty.
MAX_CATCH_UP_MINUTES = 10
# A manual run spreads its sessions over the minute before `now`.
MANUAL_WINDOW = timedelta(minutes=1)
MINUTE = timedelta(minutes=1)
# History goes back at most this far (31 days).
MAX_BACKFILL_HOURS = 24 * 31
# No simulated time before this: older dates are typos, and datetime arithmetic near year 1 overflows.
EARLIEST_NOW = datetime(2000, 1, 1, tzinfo=UTC)


class GeneratorUnavailable(Conflict):
    """The generator's state refuses this run: no sim users to run sessions for."""


class GeneratorPaused(GeneratorUnavailable):
    """A manual run was asked for while generation is paused (and not forced)."""


class RunInTheFuture(ApplicationError):
    """A run was asked for at a time after the real now: it would write rows dated in the future."""


class RunInterrupted(RuntimeError):
    """The run was stopped from outside (django-q2's task timeout, Ctrl-C) and rolled back."""


@dataclass(frozen=True, slots=True)
class RunInputs:
    """What a run reads besides settings and active journeys: the catalogue and the user pool."""

    catalogue: Catalogue
    pool: list[PoolMember]
    rhythm: PoolRhythm

    @classmethod
    def load(cls) -> RunInputs:
        catalogue, pool = run_inputs.catalogue_load(), run_inputs.sim_user_pool()
        return cls(catalogue=catalogue, pool=pool, rhythm=PoolRhythm(pool, catalogue.rhythms))


@dataclass(frozen=True, slots=True)
class _Window:
    """What a run will do, decided before the engine runs: the simulated window and its sessions.

    A window with `skip` set covers its minutes with nothing (paused, no new minute) and the run is
    recorded as skipped with that note. `sessions` None: a Poisson draw at the pool's rhythm over
    the window (scheduled and backfill runs), made once the pool is loaded.
    """

    start: datetime
    end: datetime
    sessions: int | None = None
    rng: random.Random | None = None
    skip: str = ""
    seed: int = 0  # of the run: also names the profiles of sim users who sign up in it


# --- the three services --------------------------------------------------------------------------


def run_scheduled(*, now: datetime | None = None, seed: int | None = None) -> SyntheticRun:
    """The every-minute run at `now` (default: the real now).

    Covers the minutes since the last covered one (at most MAX_CATCH_UP_MINUTES; one after a failed
    scheduled run) and starts Poisson(sessions_per_min x minutes) sessions, capped at max_per_run.
    While paused, or with no new minute to cover, it is recorded as skipped.
    """
    now = _checked_now(now)
    seed = _seed(seed)

    def window(settings: GeneratorSettings) -> _Window:
        covered = run_inputs.covered_until()
        end = floor_minute(now)
        start = max(covered, end - MAX_CATCH_UP_MINUTES * MINUTE) if covered else end - MINUTE
        if start >= end:
            if run_inputs.coverage_ahead(covered=covered, now=now):
                note = (
                    f"clock stepped back: minutes up to {covered.isoformat()} are already covered; "
                    "generation resumes when the clock gets there"
                )
                return _Window(end, end, skip=note[:200])
            return _Window(end, end, skip="no new minute to cover")
        if run_inputs.last_scheduled_run_failed():
            # After a scheduled run that failed (a timeout, a budget overrun, a lost connection),
            # the next covers one minute, the first one not covered yet: a retry never takes on
            # more work than the run that failed, and no minute is skipped; later runs catch up.
            end = start + MINUTE
        if not settings.enabled:
            return _Window(start, end, skip="paused")
        rng = run_random(
            seed=seed, trigger=RunTrigger.SCHEDULED, window_start=start, window_end=end
        )
        return _Window(start, end, rng=rng, seed=seed)

    return _run(trigger=RunTrigger.SCHEDULED, now=now, target=None, window=window)


def run_manual(
    *, target: int, force: bool = False, now: datetime | None = None, seed: int | None = None
) -> SyntheticRun:
    """Start exactly `target` sessions (1..max_per_run) in the minute before `now`.

    Refused (nothing written) while paused unless `force`, with no sim users, or with a target out
    of range. A manual run covers no minute: the scheduled runs go on as if it had not happened.
    """
    now = _checked_now(now)
    seed = _seed(seed)
    # Refuse a bad request before waiting for the lock; checked again under it (settings may change).
    _manual_refusal(run_inputs.generator_settings(), target=target, force=force)

    def window(settings: GeneratorSettings) -> _Window:
        sessions = _manual_refusal(settings, target=target, force=force)
        start = now - MANUAL_WINDOW
        rng = run_random(
            seed=seed,
            trigger=RunTrigger.MANUAL,
            window_start=start,
            window_end=now,
            serial=run_inputs.manual_run_count(),
        )
        return _Window(start, now, sessions=sessions, rng=rng)

    return _run(trigger=RunTrigger.MANUAL, now=now, target=target, window=window)


def run_backfill_minute(
    *, minute_end: datetime, inputs: RunInputs, seed: int | None = None
) -> SyntheticRun | None:
    """Generate the one minute ending at `minute_end`, or return None when a run already covered it.

    `inputs` (the pool and catalogue) are loaded once by the caller for a whole backfill.
    """
    minute_end = floor_minute(_checked_now(minute_end))
    seed = _seed(seed)

    def window(settings: GeneratorSettings) -> _Window | None:
        start = minute_end - MINUTE
        if run_inputs.minute_is_covered(minute_start=start, minute_end=minute_end):
            return None
        rng = run_random(
            seed=seed, trigger=RunTrigger.BACKFILL, window_start=start, window_end=minute_end
        )
        return _Window(start, minute_end, rng=rng, seed=seed)

    return _run(
        trigger=RunTrigger.BACKFILL, now=minute_end, target=None, window=window, inputs=inputs
    )


# --- the shared locked step and its one failure rule --------------------------------------------


def _run(
    *,
    trigger: str,
    now: datetime,
    target: int | None,
    window: Callable[[GeneratorSettings], _Window | None],
    inputs: RunInputs | None = None,
) -> SyntheticRun | None:
    started_at = timezone.now()
    # A manual run answers a person or a cron waiting on HTTP: it waits a few seconds for a run in
    # progress, then says the generator is busy. Scheduled and backfill runs wait up to their budget.
    deadline = run_deadline_start(manual=trigger == RunTrigger.MANUAL)
    try:
        with generator_transaction(deadline=deadline):
            settings = run_inputs.generator_settings()
            planned = window(settings)
            if planned is None:
                return None
            return _generate(
                trigger=trigger,
                target=target,
                settings=settings,
                window=planned,
                started_at=started_at,
                inputs=inputs,
                deadline=deadline,
            )
    except ApplicationError:
        raise  # a refusal: rolled back, nothing written, nothing to record
    except GeneratorBusy as error:
        raise _busy_recorded(
            trigger=trigger, now=now, target=target, started_at=started_at, error=error
        ) from error
    except Exception as error:
        if is_statement_timeout(error):  # PostgreSQL's statement_timeout: the budget, spent in SQL
            cancelled = error
            error = RunOverBudget(
                f"the run used up its time budget of {deadline.budget_seconds:g} s in a database "
                "statement; it was rolled back"
            )
            error.__cause__ = cancelled  # the ledger's traceback shows the cancelled statement
        run = _failure_recorded(
            trigger=trigger, now=now, target=target, started_at=started_at, error=error
        )
        raise RunFailed(f"The run failed and was rolled back: {error}", run_id=run.id) from error
    except BaseException as error:
        # django-q2's task timeout raises SystemExit (its TimeoutException) inside the run, Ctrl-C
        # raises KeyboardInterrupt: the transaction is rolled back; record how the run ended, then
        # let the interruption go on (even when the record cannot be written).
        try:
            _failure_recorded(
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


def _generate(
    *,
    trigger: str,
    target: int | None,
    settings: GeneratorSettings,
    window: _Window,
    started_at: datetime,
    inputs: RunInputs | None,
    deadline: RunDeadline,
) -> SyntheticRun:
    """Inside the lock: run the engine over the window, then write the ledger row and the run's rows."""
    row = {
        "trigger": trigger,
        "started_at": started_at,
        "window_start": window.start,
        "window_end": window.end,
        "target": target,
        "abandon_rate": settings.abandon_rate,
        "error_rate": settings.error_rate,
    }
    if window.skip:
        run = SyntheticRun.objects.create(
            **row,
            status=RunStatus.SKIPPED,
            note=window.skip,
            active_journeys=run_inputs.active_journey_count(),
            finished_at=timezone.now(),
        )
        transaction.on_commit(lambda: _log(run))
        return run
    inputs = inputs or RunInputs.load()
    deadline.check("reading its inputs")
    sessions = window.sessions
    if sessions is None:
        sessions = window_session_count(
            settings=settings,
            window_start=window.start,
            window_end=window.end,
            rng=window.rng,
            rhythm=inputs.rhythm,
        )
    active = run_inputs.active_journeys()
    outcome = simulate_run(
        settings=settings,
        catalogue=inputs.catalogue,
        pool=inputs.pool,
        active=active,
        window_start=window.start,
        now=window.end,
        sessions=sessions,
        rng=window.rng,
        rhythm=inputs.rhythm,
    )
    deadline.check("simulating")
    signed_up, churned_users = (0, [])
    if trigger != RunTrigger.MANUAL:  # a manual run adds sessions, never changes the pool
        busy = {j.sim_user_id for j in active} | {j.sim_user_id for j in outcome.new_journeys}
        signed_up, churned_users = _pool_changes(
            settings=settings, pool=inputs.pool, busy=busy, window=window
        )
    short = outcome.sessions_started < sessions
    run = SyntheticRun.objects.create(  # its id tags every row the run writes
        **row,
        status=RunStatus.SUCCEEDED,
        sessions_started=outcome.sessions_started,
        scene_events_created=outcome.scene_events,
        mindblock_events_created=outcome.mindblock_events,
        journeys_completed=outcome.finished("completed"),
        journeys_abandoned=outcome.finished("abandoned"),
        journeys_errored=outcome.finished("errored"),
        active_journeys=outcome.active_after,
        users_signed_up=signed_up,
        users_churned=len(churned_users),
        note=(
            f"only {outcome.sessions_started} of {sessions} sessions: no more idle sim users"
            if short
            else ""
        ),
    )
    _pool_changes_write(signed_up=signed_up, churned=churned_users, window=window)
    run_output_write(
        before_statement=lambda: deadline_statement_bound(deadline),
        run_id=run.id,
        new_journeys=outcome.new_journeys,
        updates=outcome.journey_updates,
        events=outcome.events,
        written_at=timezone.now(),
    )
    run.finished_at = timezone.now()
    run.save(update_fields=["finished_at"])
    transaction.on_commit(lambda: _log(run))
    return run


def _pool_changes(
    *, settings: GeneratorSettings, pool: list[PoolMember], busy: set[int], window: _Window
) -> tuple[int, list[PoolMember]]:
    """How many sim users sign up in the window and which idle ones churn (drawn after the engine's
    draws, from the same stream)."""
    minutes = (window.end - window.start) / MINUTE
    signed_up = signups_due(settings=settings, minutes=minutes, rng=window.rng)
    leaving = churned(
        settings=settings,
        pool=pool,
        busy=busy,
        minutes=minutes,
        today=window.end.date(),
        rng=window.rng,
    )
    return signed_up, leaving


def _pool_changes_write(*, signed_up: int, churned: list[PoolMember], window: _Window) -> None:
    """Create the newcomers (signed up at the window's end), retire the churned users, and, once a
    day, settle the newcomers whose first weeks are over into the persona drawn for them."""
    today = window.end.date()
    if signed_up:
        first = next_sim_index()
        sim_accounts_create(
            [
                make_newcomer(
                    index=first + offset,
                    seed=window.seed,
                    signed_up=today,
                    email_domain=SYNTHETIC_EMAIL_DOMAIN,
                )
                for offset in range(signed_up)
            ]
        )
    if churned:
        SimUser.objects.filter(id__in=[member.sim_user_id for member in churned]).update(
            churned_at=window.end
        )
    if window.start.date() == today:
        return  # newcomers settle at the first run of each day (the one that covers midnight)
    settling = list(
        SimUser.objects.active()
        .filter(signup_date__lte=today - timedelta(days=NEWCOMER_DAYS))
        .exclude(settles_into="")
        .only("id", "activity_weight", "settles_into")
    )
    for sim_user in settling:
        sim_user.activity_weight = settled_weight(
            activity_weight=sim_user.activity_weight, into=sim_user.settles_into
        )
        sim_user.persona, sim_user.settles_into = sim_user.settles_into, ""
    SimUser.objects.bulk_update(settling, ["persona", "activity_weight", "settles_into"])


def _manual_refusal(settings: GeneratorSettings, *, target: int, force: bool) -> int:
    """The sessions a manual run starts, or the ApplicationError that refuses it."""
    if not settings.enabled and not force:
        raise GeneratorPaused(
            "Synthetics is paused: a manual run generates nothing while paused. "
            "Resume it, or force the run."
        )
    try:
        sessions = manual_session_count(settings=settings, target=target)
    except EngineError as error:
        raise ApplicationError(str(error), extra={"field": "target"}) from error
    if run_inputs.active_sim_user_count() == 0:
        raise GeneratorUnavailable(
            "There are no active sim users to run sessions for (none seeded, or all churned): "
            "run `manage.py seed_sim_users`."
        )
    return sessions


def floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _seed(seed: int | None) -> int:
    return django_settings.SYNTHETICS_SEED if seed is None else seed


def _checked_now(moment: datetime | None) -> datetime:
    """`moment`, or the real now; never a time after the real now (no row is ever dated ahead)."""
    real_now = timezone.now()
    if moment is None:
        return real_now
    if timezone.is_naive(moment):
        raise ApplicationError("now must include a time zone (for example 2026-01-09T19:15:00Z)")
    if moment < EARLIEST_NOW:
        raise ApplicationError(
            f"now ({moment.isoformat()}) is before {EARLIEST_NOW.date().isoformat()}: "
            "a simulated time must be recent"
        )
    if moment > real_now:
        raise RunInTheFuture(
            f"now ({moment.isoformat()}) is after the current time ({real_now.isoformat()}): "
            "a run never writes rows dated in the future."
        )
    return moment


def _interruption_message(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "the run was interrupted (Ctrl-C) and rolled back"
    if isinstance(error, SystemExit):
        return (
            f"the run was stopped by its worker ({error or 'SystemExit'}): most likely django-q2's "
            f"task timeout of {django_settings.Q_CLUSTER.get('timeout')} s; it was rolled back"
        )
    return f"the run was stopped by {type(error).__name__}: {error}; it was rolled back"


def _failed_row(
    *, trigger: str, now: datetime, target: int | None, started_at: datetime, note: str, error=""
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


def _busy_recorded(
    *, trigger: str, now: datetime, target: int | None, started_at: datetime, error: GeneratorBusy
) -> GeneratorBusy:
    """A run that could not get the generator lock in time: recorded as failed, to be raised.

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
    return GeneratorBusy(str(error), run_id=run.id, retry_after=error.retry_after)


def _failure_recorded(
    *,
    trigger: str,
    now: datetime,
    target: int | None,
    started_at: datetime,
    error: BaseException,
    cause: BaseException | None = None,
) -> SyntheticRun:
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
    return run


def _log(run: SyntheticRun) -> None:
    # One structured line per run; backfill minutes go to DEBUG so a day of history is not 1,440 lines.
    level = logging.DEBUG if run.trigger == RunTrigger.BACKFILL else logging.INFO
    logger.log(
        level,
        "synthetics run id=%s trigger=%s status=%s window=%s..%s sessions_started=%d "
        "scene_events=%d mindblock_events=%d completed=%d abandoned=%d errored=%d active=%d%s",
        run.id,
        run.trigger,
        run.status,
        run.window_start.isoformat(),
        run.window_end.isoformat(),
        run.sessions_started,
        run.scene_events_created,
        run.mindblock_events_created,
        run.journeys_completed,
        run.journeys_abandoned,
        run.journeys_errored,
        run.active_journeys,
        f" note={run.note!r}" if run.note else "",
    )


# --- history -------------------------------------------------------------------------------------

_TOTALS = (
    "sessions_started",
    "users_signed_up",
    "users_churned",
    "scene_events_created",
    "mindblock_events_created",
    "journeys_completed",
    "journeys_abandoned",
    "journeys_errored",
)


@dataclass(frozen=True, slots=True)
class BackfillSummary:
    start: datetime
    end: datetime
    minutes: int
    minutes_generated: int
    totals: dict[str, int]  # the ledger's counts (_TOTALS), summed over the minutes generated

    @property
    def minutes_already_covered(self) -> int:
        return self.minutes - self.minutes_generated


def activity_backfill(
    *,
    hours: int,
    now: datetime | None = None,
    seed: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> BackfillSummary:
    """Generate the last `hours` hours, one backfill run per minute on the simulated clock.

    Each minute is its own run and transaction, so a running scheduler interleaves safely; minutes
    that a scheduled or backfill run already covered are left as they are. A minute that fails
    raises RunFailed (minutes before it stay written; running it again resumes).
    """
    whole_number_required("hours", hours, 1, MAX_BACKFILL_HOURS)
    end = floor_minute(_checked_now(now))
    minutes = hours * 60
    start = end - minutes * MINUTE
    totals = dict.fromkeys(_TOTALS, 0)
    generated = 0
    inputs = RunInputs.load()
    for step in range(1, minutes + 1):
        minute_end = start + step * MINUTE
        if minute_end.date() != (minute_end - MINUTE).date():
            inputs = RunInputs.load()  # a new day: newcomers may have settled into their persona
        run = run_backfill_minute(minute_end=minute_end, inputs=inputs, seed=seed)
        if run is not None and (run.users_signed_up or run.users_churned):
            inputs = RunInputs.load()  # the pool changed: the next minute sees it
        if run is not None:
            generated += 1
            for key in _TOTALS:
                totals[key] += getattr(run, key)
        if progress:
            progress(1)
    return BackfillSummary(
        start=start, end=end, minutes=minutes, minutes_generated=generated, totals=totals
    )
