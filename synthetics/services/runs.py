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

import contextlib
import gc
import logging
import random
import sys
import threading
import traceback
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings as django_settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from synthetics.engine import (
    Catalogue,
    EngineError,
    GeneratorSettings,
    PoolMember,
    PoolRhythm,
    RunOutcome,
    manual_session_count,
    simulate_run,
    window_session_count,
)
from synthetics.engine.incidents import Incidents
from synthetics.engine.lifecycle import PoolChanges, pool_changed, pool_changes
from synthetics.engine.sampling import run_random
from synthetics.errors import (
    ApplicationError,
    Conflict,
    GeneratorBusy,
    RunFailed,
    whole_number_required,
)
from synthetics.models import (
    MAX_SHARDS,
    SYNTHETIC_EMAIL_DOMAIN,
    RunStatus,
    RunTrigger,
    SimUser,
    SyntheticRun,
)
from synthetics.selectors import run_inputs
from synthetics.services.locks import (
    RunDeadline,
    RunOverBudget,
    deadline_statement_bound,
    generator_transaction,
    is_database_locked,
    is_statement_timeout,
    other_split_running,
    run_deadline_start,
    sqlite_write_wait,
)
from synthetics.services.maintenance import tables_tidy
from synthetics.services.seeding import next_sim_index, sim_accounts_create
from synthetics.services.writers import (
    RenderedOutput,
    ledger_write,
    output_rendered,
    run_counters_add,
    run_hours_add,
    run_ids_reserve,
    run_output_write,
    runs_output_write,
)

logger = logging.getLogger("synthetics")

# After downtime a scheduled run covers at most this many minutes (its sessions still capped at
# max_per_run): generation resumes without a burst, and older minutes stay empty.
MAX_CATCH_UP_MINUTES = 10
# A manual run spreads its sessions over the minute before `now`.
MANUAL_WINDOW = timedelta(minutes=1)
MINUTE = timedelta(minutes=1)
# History goes back at most this far (366 days: a year of demo data).
MAX_BACKFILL_HOURS = 24 * 366
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


# The pool a run loaded, with its rhythm, per database and shard. The engine never changes a pool in
# place (pool_changed returns a new list) and a rhythm's own caches are keyed by time, so a run can
# reuse both.
@dataclass(frozen=True, slots=True)
class _KeptPool:
    stamp: int
    rhythms: tuple
    pool: list[PoolMember]
    rhythm: PoolRhythm
    # A shard's slice is read without the sign-ups after `joined_by`; it holds for any window
    # starting from joined_by up to just before `next_join` (the next sign-up; None: none).
    joined_by: datetime | None = None
    next_join: datetime | None = None

    def serves(self, *, stamp: int, rhythms: tuple, window_start: datetime | None) -> bool:
        if (self.stamp, self.rhythms) != (stamp, rhythms):
            return False
        if self.joined_by is None:
            return True
        return self.joined_by <= window_start and (
            self.next_join is None or window_start < self.next_join
        )


_POOL_KEPT: dict[tuple[str, str, int, int], _KeptPool] = {}


@dataclass(frozen=True, slots=True)
class RunInputs:
    """What a run reads besides settings and active journeys: the catalogue and the user pool."""

    catalogue: Catalogue
    pool: list[PoolMember]
    rhythm: PoolRhythm

    @classmethod
    def load(
        cls, *, shard: int = 0, shards: int = 1, window_start: datetime | None = None
    ) -> RunInputs:
        """The catalogue (a few rows, read every time) and the pool with its rhythm: kept in this
        process between runs while the database's pool stamp has not moved (any write to sim_users
        moves it, rolled back or not: migration 0018), read again when it has.

        With `shards` > 1, the slice of shard `shard` as a run of the window starting at
        `window_start` sees it: without the sim users who signed up after the window's start (in
        another shard's run of the same window), whichever shard ran first."""
        catalogue = run_inputs.catalogue_load()
        stamp = run_inputs.pool_stamp()  # before the pool: see pool_stamp
        where = (connection.alias, connection.settings_dict["NAME"], shard, shards)
        joined_by = window_start if shards > 1 else None
        if shards > 1 and window_start is None:
            raise ValueError("a shard's pool is read for a window: pass window_start")
        kept = _POOL_KEPT.get(where)
        if (
            stamp is not None
            and kept is not None
            and kept.serves(stamp=stamp, rhythms=catalogue.rhythms, window_start=joined_by)
        ):
            return cls(catalogue=catalogue, pool=kept.pool, rhythm=kept.rhythm)
        pool = run_inputs.sim_user_pool(shard=shard, shards=shards, joined_by=joined_by)
        next_join = (
            run_inputs.next_join_after(joined_by, shard=shard, shards=shards)
            if joined_by is not None
            else None
        )
        rhythm = PoolRhythm(pool, catalogue.rhythms)
        if stamp is not None:
            _POOL_KEPT[where] = _KeptPool(
                stamp, catalogue.rhythms, pool, rhythm, joined_by=joined_by, next_join=next_join
            )
        return cls(catalogue=catalogue, pool=pool, rhythm=rhythm)

    def with_pool(self, pool: list[PoolMember]) -> RunInputs:
        """The same catalogue with the pool as a run left it (no reload: a backfill with sign-ups
        changes the pool most minutes)."""
        return RunInputs(
            catalogue=self.catalogue, pool=pool, rhythm=PoolRhythm(pool, self.catalogue.rhythms)
        )


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
    shard: int = 0  # a scheduled run's slice of the pool: sim users with id % shards = shard
    shards: int = 1


# --- the three services --------------------------------------------------------------------------


def run_scheduled(
    *, now: datetime | None = None, seed: int | None = None, shard: int = 0, shards: int = 1
) -> SyntheticRun:
    """The every-minute run at `now` (default: the real now).

    Covers the minutes since the last covered one (at most MAX_CATCH_UP_MINUTES; one after a failed
    scheduled run) and starts Poisson(sessions_per_min x minutes) sessions, capped at max_per_run.
    While paused, or with no new minute to cover, it is recorded as skipped.

    With `shards` > 1, the run of shard `shard`: the slice of the pool with sim user id % shards =
    shard, its own random stream, lock and coverage, 1/shards of the sessions (engine.run:
    scheduled_session_count); the runs of every shard together are the minute's work.
    """
    now = _checked_now(now)
    seed = _seed(seed)
    _shard_checked(shard, shards)

    def window(settings: GeneratorSettings) -> _Window:
        covered = run_inputs.covered_until(shard=shard, shards=shards)
        end = floor_minute(now)
        start = max(covered, end - MAX_CATCH_UP_MINUTES * MINUTE) if covered else end - MINUTE
        if start >= end:
            if run_inputs.coverage_ahead(covered=covered, now=now):
                note = (
                    f"clock stepped back: minutes up to {covered.isoformat()} are already covered; "
                    "generation resumes when the clock gets there"
                )
                return _Window(end, end, skip=note[:200], shard=shard, shards=shards)
            return _Window(end, end, skip="no new minute to cover", shard=shard, shards=shards)
        if run_inputs.last_scheduled_run_failed(shard=shard, shards=shards):
            # After a scheduled run that failed (a timeout, a budget overrun, a lost connection),
            # the next covers one minute, the first one not covered yet: a retry never takes on
            # more work than the run that failed, and no minute is skipped; later runs catch up.
            end = start + MINUTE
        if not settings.enabled:
            return _Window(start, end, skip="paused", shard=shard, shards=shards)
        if shards > 1:
            other = other_split_running(shards=shards)
            if other is not None:
                # A run split another way (tasks queued before SYNTHETICS_SHARDS changed, or a
                # worker still configured so) holds slices that overlap this one's: leave the
                # minutes to whichever comes next, never cover them twice.
                note = (
                    f"a run split into {other} shards is in progress; this run of {shards} "
                    "shards covers nothing"
                )
                return _Window(start, start, skip=note, shard=shard, shards=shards)
        if shard > 0 and settings.signups_per_day > 0:
            # Shard 0 signs up the newcomers of every slice, dated at the end of its window. A
            # shard's slice for a window holds the sign-ups up to the window's start, so shard 0
            # must have covered that far: then the slice is the same whichever shard's task ran
            # first (the same windows give the same rows).
            lead = run_inputs.covered_until(shard=0, shards=shards)
            if lead is None or lead < start:
                note = (
                    f"waiting for shard 0, which signs up new sim users and has covered up to "
                    f"{lead.isoformat() if lead else 'nothing yet'}"
                )
                return _Window(start, start, skip=note[:200], shard=shard, shards=shards)
        rng = run_random(
            seed=seed,
            trigger=RunTrigger.SCHEDULED,
            window_start=start,
            window_end=end,
            shard=shard,
            shards=shards,
        )
        return _Window(start, end, rng=rng, seed=seed, shard=shard, shards=shards)

    return _run(
        trigger=RunTrigger.SCHEDULED,
        now=now,
        target=None,
        window=window,
        shard=shard,
        shards=shards,
    )


def run_scheduled_shards(
    *, now: datetime | None = None, seed: int | None = None, shards: int | None = None
) -> list[SyntheticRun | RunFailed]:
    """The run of every shard for `now`, one after another in this process (`manage.py
    run_synthetics`; the schedule fans them out to workers instead): each shard's run, or the
    RunFailed that says it failed (the others still run)."""
    now = _checked_now(now)
    shards = django_settings.SYNTHETICS_SHARDS if shards is None else shards
    results: list[SyntheticRun | RunFailed] = []
    for shard in range(shards):
        try:
            results.append(run_scheduled(now=now, seed=seed, shard=shard, shards=shards))
        except RunFailed as failed:
            results.append(failed)
    return results


def _shard_checked(shard: int, shards: int) -> None:
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise ApplicationError(
            f"shards must be a whole number from 1 to {MAX_SHARDS}, got {shards!r}"
        )
    if isinstance(shard, bool) or not isinstance(shard, int) or not 0 <= shard < shards:
        raise ApplicationError(
            f"shard must be a whole number from 0 to {shards - 1}, got {shard!r}"
        )


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
    """Generate the one minute ending at `minute_end` for the whole pool, or return None when a run
    already covered it, whole or a slice of it (run_backfill_slices generates the slices left).

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


def run_backfill_slices(*, minute_end: datetime, seed: int | None = None) -> list[SyntheticRun]:
    """Generate the slices that the runs of a split into shards left of the minute ending at
    `minute_end` (run_inputs.slices_left), each a backfill run of its shard: the run a scheduled
    run of that shard makes (its slice of the pool as of the minute's start, its share of the
    sessions, a random stream of its own), under the generator lock alone, one transaction a
    slice, shard 0 first (it signs up the newcomers of every slice). Empty when no slice is left:
    the minute is covered whole, or not at all (run_backfill_minute generates it).

    A minute is covered for slice k of N by a run of the whole pool or of slice k of N: with the
    slices filled, every shard's coverage may go on past the minute, none skips it.
    """
    minute_end = floor_minute(_checked_now(minute_end))
    seed = _seed(seed)
    start = minute_end - MINUTE
    left = run_inputs.slices_left(start=start, end=minute_end).get(minute_end)
    if left is None:
        return []

    def window_of(shard: int, shards: int) -> Callable[[GeneratorSettings], _Window | None]:
        def window(settings: GeneratorSettings) -> _Window | None:
            now_left = run_inputs.slices_left(start=start, end=minute_end).get(minute_end)
            if now_left is None or now_left.shards != shards or shard not in now_left.left:
                return None  # another run covered it meanwhile
            rng = run_random(
                seed=seed,
                trigger=RunTrigger.BACKFILL,
                window_start=start,
                window_end=minute_end,
                shard=shard,
                shards=shards,
            )
            return _Window(start, minute_end, rng=rng, seed=seed, shard=shard, shards=shards)

        return window

    filled = []
    for shard in left.left:
        run = _run(
            trigger=RunTrigger.BACKFILL,
            now=minute_end,
            target=None,
            window=window_of(shard, left.shards),
            shard=shard,
            shards=left.shards,
        )
        if run is not None:
            filled.append(run)
    return filled


# --- the shared locked step and its one failure rule --------------------------------------------


def _run(
    *,
    trigger: str,
    now: datetime,
    target: int | None,
    window: Callable[[GeneratorSettings], _Window | None],
    inputs: RunInputs | None = None,
    generate: Callable[..., Any] | None = None,
    shard: int = 0,
    shards: int = 1,
) -> Any:
    """Run `generate` (default: one run's `_generate`) over the window under the generator lock
    (a shard's run: its shard's lock), with the one failure rule; None when `window` finds
    nothing to do."""
    generate = generate or _generate
    started_at = timezone.now()
    with _cyclic_gc_paused():
        return _run_locked(
            trigger=trigger,
            now=now,
            target=target,
            window=window,
            inputs=inputs,
            generate=generate,
            started_at=started_at,
            shard=shard,
            shards=shards,
        )


_gc_pause_lock = threading.Lock()
_gc_pause = {"depth": 0, "was_enabled": False}


@contextlib.contextmanager
def _cyclic_gc_paused():
    """A run allocates a few objects per step of every due journey (hundreds of thousands at scale)
    and frees them by reference counting: the cyclic collector's passes over them, triggered by
    the allocations alone, took a sixth of a large run. Paused while any run or span is under way
    (a depth count: the backfill's two threads nest), then back as it was."""
    with _gc_pause_lock:
        if _gc_pause["depth"] == 0:
            _gc_pause["was_enabled"] = gc.isenabled()
            gc.disable()
        _gc_pause["depth"] += 1
    try:
        yield
    finally:
        with _gc_pause_lock:
            _gc_pause["depth"] -= 1
            if _gc_pause["depth"] == 0 and _gc_pause["was_enabled"]:
                gc.enable()


def _run_locked(
    *,
    trigger: str,
    now: datetime,
    target: int | None,
    window: Callable[[GeneratorSettings], _Window | None],
    inputs: RunInputs | None,
    generate: Callable[..., Any],
    started_at: datetime,
    shard: int = 0,
    shards: int = 1,
) -> Any:
    where = {"shard": shard, "shards": shards}  # a failed run's ledger row: whose minutes
    # A manual run answers a person or a cron waiting on HTTP: it waits a few seconds for a run in
    # progress, then says the generator is busy. Scheduled and backfill runs wait up to their budget.
    deadline = run_deadline_start(manual=trigger == RunTrigger.MANUAL)
    # A scheduled shard's run holds its shard's lock beside the others'; a backfill of a slice
    # (run_backfill_slices) holds the generator lock alone, as every backfill does.
    split = shards > 1 and trigger == RunTrigger.SCHEDULED
    try:
        with generator_transaction(
            deadline=deadline,
            durable=trigger == RunTrigger.MANUAL,
            shard=(shard, shards) if split else None,
        ):
            settings = run_inputs.generator_settings()
            planned = window(settings)
            if planned is None:
                return None
            return generate(
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
            trigger=trigger, now=now, target=target, started_at=started_at, error=error, **where
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
            trigger=trigger, now=now, target=target, started_at=started_at, error=error, **where
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
                **where,
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
        "shard": window.shard,
        "shards": window.shards,
    }
    where = {"shard": window.shard, "shards": window.shards}
    if trigger == RunTrigger.SCHEDULED and window.shard == 0:
        _ledger_prune(at=window.end)
    if window.skip:
        run = SyntheticRun.objects.create(
            **row,
            status=RunStatus.SKIPPED,
            note=window.skip,
            active_journeys=run_inputs.active_journey_count(**where),
            finished_at=timezone.now(),
        )
        run_counters_add([run])
        transaction.on_commit(lambda: _log(run))
        return run
    if inputs is None:
        inputs = (
            RunInputs.load(**where, window_start=window.start)
            if window.shards > 1
            else RunInputs.load()
        )
    incidents = _incidents(inputs.catalogue, window.start, window.end)
    deadline.check("reading its inputs")
    sessions = window.sessions
    if sessions is None:
        sessions = window_session_count(
            settings=settings,
            window_start=window.start,
            window_end=window.end,
            rng=window.rng,
            rhythm=inputs.rhythm,
            shards=window.shards,
            incidents=incidents,
        )
    # Only the journeys with a step due by the window's end are read; the others just keep
    # their users busy.
    due = run_inputs.active_journeys(due_by=window.end, **where)
    waiting = run_inputs.waiting_journey_users(due_by=window.end, **where)
    outcome = simulate_run(
        settings=settings,
        catalogue=inputs.catalogue,
        pool=inputs.pool,
        active=due,
        window_start=window.start,
        now=window.end,
        sessions=sessions,
        rng=window.rng,
        rhythm=inputs.rhythm,
        waiting=waiting,
        incidents=incidents,
    )
    deadline.check("simulating")
    changes = PoolChanges()
    if trigger != RunTrigger.MANUAL:  # a manual run adds sessions, never changes the pool
        busy = {j.sim_user_id for j in due} | set(waiting)
        busy |= {j.sim_user_id for j in outcome.new_journeys}
        changes = pool_changes(
            settings=settings,
            pool=inputs.pool,
            busy=busy,
            window_start=window.start,
            window_end=window.end,
            rng=window.rng,
            seed=window.seed,
            next_index=next_sim_index,
            email_domain=SYNTHETIC_EMAIL_DOMAIN,
            signups=window.shard == 0,  # a split run's sign-ups: the first shard's, once
        )
    run = SyntheticRun.objects.create(  # its id tags every row the run writes
        **row, **_ledger_counts(outcome, sessions=sessions, changes=changes)
    )
    run_output_write(
        before_statement=lambda: deadline_statement_bound(deadline),
        run_id=run.id,
        run_key=run.run_key,
        new_journeys=outcome.new_journeys,
        updates=outcome.journey_updates,
        events=outcome.events,
        written_at=timezone.now(),
    )
    # What the pool is after this run, for a caller that keeps it between runs (a backfill); not
    # a database field. None when the pool did not change. Written after the run's rows: a write to
    # sim_users takes the pool stamp's row lock (migration 0018) until commit, and the runs of
    # other shards that change the pool wait on it, so it is held as briefly as can be.
    if changes:
        deadline_statement_bound(deadline)
    run.pool_after = (
        _pool_changes_write(changes, pool=inputs.pool, at=window.end) if changes else None
    )
    run.finished_at = timezone.now()
    run.save(update_fields=["finished_at"])
    run_hours_add([run])
    run_counters_add([run])
    transaction.on_commit(lambda: _log(run))
    return run


def _incidents(catalogue: Catalogue, start: datetime, end: datetime) -> Incidents | None:
    """The incidents over (start, end] for the engine, or None (one indexed look-up)."""
    specs = run_inputs.incidents_over(start, end)
    return Incidents(specs, catalogue) if specs else None


# The ledger's policy: a run that wrote rows stays as long as they do (cleanup removes it with
# them); a run that wrote nothing (skipped or failed) stays this long, then each scheduled run
# removes up to LEDGER_PRUNE_PER_RUN of the oldest, more than the one a minute that can appear.
LEDGER_KEEP_EMPTY_RUNS = timedelta(days=30)
LEDGER_PRUNE_PER_RUN = 100


def _ledger_prune(*, at: datetime) -> None:
    """Remove up to LEDGER_PRUNE_PER_RUN runs that wrote nothing and ended 30 days before `at`."""
    old = (
        SyntheticRun.objects.filter(
            status__in=[RunStatus.SKIPPED, RunStatus.FAILED],
            window_end__lt=at - LEDGER_KEEP_EMPTY_RUNS,
        )
        .order_by("window_end")
        .values_list("pk", flat=True)[:LEDGER_PRUNE_PER_RUN]
    )
    ids = list(old)
    if ids:
        SyntheticRun.objects.filter(pk__in=ids).delete()


def _ledger_counts(outcome: RunOutcome, *, sessions: int, changes: PoolChanges) -> dict:
    """A successful run's ledger fields: what it wrote, and why it started fewer sessions."""
    return {
        "status": RunStatus.SUCCEEDED,
        "sessions_started": outcome.sessions_started,
        "scene_events_created": outcome.scene_events,
        "mindblock_events_created": outcome.mindblock_events,
        "journeys_completed": outcome.finished("completed"),
        "journeys_abandoned": outcome.finished("abandoned"),
        "journeys_errored": outcome.finished("errored"),
        "active_journeys": outcome.active_after,
        # the engine sorts a run's events by created_at
        "events_from": outcome.events[0].created_at if outcome.events else None,
        "users_signed_up": len(changes.newcomers),
        "users_churned": len(changes.churned),
        "note": (
            f"only {outcome.sessions_started} of {sessions} sessions: no more idle sim users"
            if outcome.sessions_started < sessions
            else ""
        ),
    }


def _pool_changes_write(
    changes: PoolChanges, *, pool: list[PoolMember], at: datetime
) -> list[PoolMember]:
    """Create the newcomers, retire the churned users and settle the settled ones; return the pool
    as it now is (what a fresh load would give)."""
    joined = []
    if changes.newcomers:
        created = sim_accounts_create(list(changes.newcomers), joined_at=at)
        joined = [
            profile.member(sim_user_id=sim_user.id, user_id=sim_user.user_id)
            for profile, sim_user in zip(changes.newcomers, created, strict=True)
        ]
    if changes.churned:
        SimUser.objects.filter(
            id__in=[member.sim_user_id for member in changes.churned], churned_at__isnull=True
        ).update(churned_at=at)
    if changes.settled:
        SimUser.objects.bulk_update(
            [
                SimUser(
                    id=member.sim_user_id,
                    persona=member.persona,
                    activity_weight=member.activity_weight,
                    settles_into="",
                )
                for member in changes.settled
            ],
            ["persona", "activity_weight", "settles_into"],
        )
    return pool_changed(pool, changes, joined)


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
    *,
    trigger: str,
    now: datetime,
    target: int | None,
    started_at: datetime,
    note: str,
    error="",
    shard: int = 0,
    shards: int = 1,
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
        shard=shard,
        shards=shards,
    )


def _busy_recorded(
    *,
    trigger: str,
    now: datetime,
    target: int | None,
    started_at: datetime,
    error: GeneratorBusy,
    shard: int = 0,
    shards: int = 1,
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
        shard=shard,
        shards=shards,
    )
    try:
        with sqlite_write_wait(1.0), transaction.atomic():
            run.save()
            run_counters_add([run])
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
    shard: int = 0,
    shards: int = 1,
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
        shard=shard,
        shards=shards,
    )

    try:
        _recorded(run)
    except Exception:
        if connection.in_atomic_block:
            raise  # inside a caller's transaction: reconnecting is not ours to do
        # The connection died with the run (killed backend, interrupted query): reconnect once.
        connection.close()
        run.pk = None
        _recorded(run)
    return run


def _recorded(run: SyntheticRun) -> None:
    """Save a run that wrote nothing, with its count, in one transaction."""
    with transaction.atomic():
        run.save()
        run_counters_add([run])


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
        extra={  # the same fields as keys of their own, for SYNTHETICS_LOG_FORMAT=json
            "run_id": run.id,
            "trigger": str(run.trigger),
            "status": str(run.status),
            "window_start": run.window_start.isoformat(),
            "window_end": run.window_end.isoformat(),
            "shard": run.shard,
            "shards": run.shards,
            "sessions_started": run.sessions_started,
            "scene_events": run.scene_events_created,
            "mindblock_events": run.mindblock_events_created,
            "completed": run.journeys_completed,
            "abandoned": run.journeys_abandoned,
            "errored": run.journeys_errored,
            "active": run.active_journeys,
            "note": run.note,
        },
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


# A span of history is simulated in memory and written in one transaction: at most this many minutes,
# and about this many rows (sessions_per_min x ROWS_PER_SESSION a minute), so the generator lock is
# held for a second or two and memory stays flat however long the history.
SPAN_MINUTES = 360
TIDY_AFTER_BACKFILL_SECONDS = 300  # a VACUUM (ANALYZE) of what months of history grew: seconds
PIPELINE_SWITCH_INTERVAL = 0.0005  # seconds: see _pipelined_spans
SPAN_ROWS = 40_000
ROWS_PER_SESSION = 12  # a journey row and its scene and mindblock events, generously


@dataclass(frozen=True, slots=True)
class BackfillSpan:
    """The runs of one span of history (one per minute) and the pool as they left it."""

    runs: list[SyntheticRun]
    pool: list[PoolMember] | None  # None: the pool did not change


def span_minutes(settings: GeneratorSettings) -> int:
    """How many minutes of history one span covers at these settings."""
    per_minute = max(1.0, settings.sessions_per_min * ROWS_PER_SESSION)
    return max(1, min(SPAN_MINUTES, int(SPAN_ROWS // per_minute)))


def run_backfill_span(
    *, start: datetime, end: datetime, inputs: RunInputs, seed: int | None = None
) -> BackfillSpan | None:
    """Generate the minutes of (start, end] in one transaction, each minute its own ledger row and
    random stream: the same rows as run_backfill_minute minute after minute, written with a few
    COPYs instead of a transaction a minute. None when a run covered any of them meanwhile (the
    caller goes minute by minute there)."""
    start, end = floor_minute(start), floor_minute(_checked_now(end))
    seed = _seed(seed)
    if start >= end:
        raise ApplicationError("a span of history needs its start before its end")

    def window(settings: GeneratorSettings) -> _Window | None:
        if run_inputs.covered_minute_ends(start=start, end=end):
            return None
        return _Window(start, end, seed=seed)

    return _run(
        trigger=RunTrigger.BACKFILL,
        now=end,
        target=None,
        window=window,
        inputs=inputs,
        generate=_generate_span,
    )


@dataclass(slots=True)
class _SpanState:
    """What carries from one minute of history to the next, in memory: the pool, its rhythm and the
    journeys in progress."""

    pool: list[PoolMember]
    rhythm: PoolRhythm
    active: dict


@dataclass(slots=True)
class _SimulatedSpan:
    """A span of history simulated, not yet written: a ledger row per minute (unsaved), the journeys
    started in it (in their state at its end, with the index of the minute that started them), the
    changes to journeys started before it, the events of each minute, and pool changes to write."""

    start: datetime
    end: datetime
    ledger: list[SyntheticRun]
    started: dict
    updates: dict
    events: list[tuple[int, tuple]]
    deferred: list[tuple[PoolChanges, datetime]]
    pool_moved: bool = False
    rendered: RenderedOutput | None = None  # the journeys and events formatted ahead (_rendered)


def _simulate_span(
    *,
    settings: GeneratorSettings,
    catalogue: Catalogue,
    state: _SpanState,
    start: datetime,
    end: datetime,
    seed: int,
    started_at: datetime,
    pool_write: Callable[[PoolChanges, list[PoolMember], datetime], list[PoolMember]] | None,
    check: Callable[[], None] = lambda: None,
) -> _SimulatedSpan:
    """The engine minute after minute over (start, end], each minute with its own random stream, as
    run_backfill_minute would run it; `state` is advanced to `end`. Pool changes go to `pool_write`
    (written at once: newcomers need their ids before the next minute), or, with None, are applied
    in memory and kept for the span's write (only churn and settling: no sign-ups)."""
    span = _SimulatedSpan(start, end, [], {}, {}, [], [])
    active, started, updates = state.active, span.started, span.updates
    incidents = _incidents(catalogue, start, end)
    for index in range(int((end - start) / MINUTE)):
        minute_start = start + index * MINUTE
        minute_end = minute_start + MINUTE
        rng = run_random(
            seed=seed,
            trigger=RunTrigger.BACKFILL,
            window_start=minute_start,
            window_end=minute_end,
        )
        sessions = window_session_count(
            settings=settings,
            window_start=minute_start,
            window_end=minute_end,
            rng=rng,
            rhythm=state.rhythm,
            incidents=incidents,
        )
        outcome = simulate_run(
            settings=settings,
            catalogue=catalogue,
            pool=state.pool,
            active=list(active.values()),
            window_start=minute_start,
            now=minute_end,
            sessions=sessions,
            rng=rng,
            rhythm=state.rhythm,
            incidents=incidents,
        )
        busy = {j.sim_user_id for j in active.values()} | {
            j.sim_user_id for j in outcome.new_journeys
        }
        changes = pool_changes(
            settings=settings,
            pool=state.pool,
            busy=busy,
            window_start=minute_start,
            window_end=minute_end,
            rng=rng,
            seed=seed,
            next_index=next_sim_index,
            email_domain=SYNTHETIC_EMAIL_DOMAIN,
        )
        for update in outcome.journey_updates:
            if update.id in started:
                started[update.id][0] = started[update.id][0].changed(update)
            else:
                updates[update.id] = update
            if update.status == "active":
                active[update.id] = active[update.id].at_step(update.next_step)
            else:
                del active[update.id]
        for new in outcome.new_journeys:
            started[new.id] = [new, index]
            if new.status == "active":
                active[new.id] = new.in_progress()
        span.events.append((index, outcome.events))
        span.ledger.append(
            SyntheticRun(
                trigger=RunTrigger.BACKFILL,
                started_at=started_at,
                window_start=minute_start,
                window_end=minute_end,
                abandon_rate=settings.abandon_rate,
                error_rate=settings.error_rate,
                **_ledger_counts(outcome, sessions=sessions, changes=changes),
            )
        )
        if changes:
            if pool_write is not None:
                state.pool = pool_write(changes, pool=state.pool, at=minute_end)
            else:
                if changes.newcomers:
                    raise RuntimeError("sign-ups need their ids at once: write the span as it goes")
                span.deferred.append((changes, minute_end))
                state.pool = pool_changed(state.pool, changes, [])
            state.rhythm = PoolRhythm(state.pool, catalogue.rhythms)
            span.pool_moved = True
        check()
    return span


def _write_span(span: _SimulatedSpan, *, deadline: RunDeadline) -> list[SyntheticRun]:
    """Write a simulated span in the caller's transaction: deferred pool changes, a ledger row per
    minute, the journeys and events (COPY), the changes to older journeys."""
    for changes, at in span.deferred:
        _pool_changes_write(changes, pool=[], at=at)
    deadline_statement_bound(deadline)
    runs = span.ledger
    if span.rendered is not None:  # formatted ahead, the ledger ids reserved then
        ledger_write(
            runs,
            lambda run_ids: runs_output_write(
                before_statement=lambda: deadline_statement_bound(deadline),
                new_journeys=[],
                updates=list(span.updates.values()),
                events=[],
                written_at=timezone.now(),
                rendered=span.rendered,
            ),
        )
    else:
        ledger_write(
            runs,
            lambda run_ids: runs_output_write(  # the runs' ids tag every row the span writes
                before_statement=lambda: deadline_statement_bound(deadline),
                new_journeys=[
                    (journey, run_ids[index]) for journey, index in span.started.values()
                ],
                updates=list(span.updates.values()),
                events=[
                    (event, (run_ids[index], runs[index].run_key))
                    for index, batch in span.events
                    for event in batch
                ],
                written_at=timezone.now(),
            ),
        )
    run_hours_add(runs)
    run_counters_add(runs)
    transaction.on_commit(lambda: [_log(run) for run in runs])
    return runs


def _generate_span(
    *,
    trigger: str,
    target: int | None,
    settings: GeneratorSettings,
    window: _Window,
    started_at: datetime,
    inputs: RunInputs | None,
    deadline: RunDeadline,
) -> BackfillSpan:
    """Inside the lock: read the journeys in progress, simulate the span, write it."""
    inputs = inputs or RunInputs.load()
    state = _SpanState(
        pool=inputs.pool,
        rhythm=inputs.rhythm,
        active={journey.id: journey for journey in run_inputs.active_journeys()},
    )
    deadline.check("reading its inputs")
    span = _simulate_span(
        settings=settings,
        catalogue=inputs.catalogue,
        state=state,
        start=window.start,
        end=window.end,
        seed=window.seed,
        started_at=started_at,
        pool_write=_pool_changes_write,
        check=lambda: deadline.check("simulating"),
    )
    runs = _write_span(span, deadline=deadline)
    return BackfillSpan(runs=runs, pool=state.pool if span.pool_moved else None)


def activity_backfill(
    *,
    hours: int,
    now: datetime | None = None,
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BackfillSummary:
    """Generate the last `hours` hours, one backfill run per minute on the simulated clock.

    The minutes go in spans (span_minutes: up to six hours, about 40,000 rows), each simulated in
    memory and written in one transaction under the generator lock, so a running scheduler
    interleaves safely and Ctrl-C
    leaves no half-written minute. Minutes that a scheduled or backfill run already covered are left
    as they are: running it again resumes. A minute that the runs of a split into shards covered
    only in part has the slices they left generated (run_backfill_slices), in time order, before
    the minutes after it: no shard's coverage goes past a minute of its slice that was never
    generated. A span that fails raises RunFailed (the spans before it stay written).

    On PostgreSQL, outside a caller's transaction and with no sign-ups, the engine simulates the next
    span while another connection writes the last one (_pipelined_spans): the database's work and
    the engine's overlap on two cores. Anything another run did in between (a scheduled or manual
    run, new settings) stops that pipeline at the span it touched, which is simulated again from
    what the database then holds.
    """
    whole_number_required("hours", hours, 1, MAX_BACKFILL_HOURS)
    seed = _seed(seed)
    end = floor_minute(_checked_now(now))
    minutes = hours * 60
    start = end - minutes * MINUTE
    totals = dict.fromkeys(_TOTALS, 0)
    generated = 0
    inputs = RunInputs.load()
    step = span_minutes(run_inputs.generator_settings())

    def count(runs: list[SyntheticRun], minutes_done: int) -> None:
        nonlocal generated
        generated += len({run.window_end for run in runs})  # a minute's slices: one minute
        for run in runs:
            for key in _TOTALS:
                totals[key] += getattr(run, key)
        if progress:  # minutes done, rows written
            progress(minutes_done, sum(_rows(run) for run in runs))

    span_start = start
    while span_start < end:
        if _can_pipeline():
            span_start, inputs = _pipelined_spans(
                start=span_start, end=end, step=step, inputs=inputs, seed=seed, count=count
            )
            if span_start >= end:
                break
            # Stopped early (covered minutes, or another run got in): read the pool again too —
            # another run may have signed users up or churned them.
            inputs = RunInputs.load()
        # one span in this connection: it has minutes already covered, or the pipeline stopped
        span_end = min(end, span_start + step * MINUTE)
        covered = run_inputs.covered_minute_ends(start=span_start, end=span_end)
        left = run_inputs.slices_left(start=span_start, end=span_end)
        runs = []
        pieces = _uncovered_pieces(span_start, span_end, covered)
        pieces += [(minute_end - MINUTE, minute_end) for minute_end in left]
        for piece_start, piece_end in sorted(pieces):  # in time order
            if piece_end in left:  # covered in part: the slices left, before the minutes after it
                minute_runs, inputs = _minute_backfilled(
                    minute_end=piece_end, inputs=inputs, seed=seed
                )
                runs += minute_runs
                continue
            span = run_backfill_span(start=piece_start, end=piece_end, inputs=inputs, seed=seed)
            if span is None:  # a run covered some of it meanwhile: minute by minute here
                for offset in range(1, int((piece_end - piece_start) / MINUTE) + 1):
                    minute_runs, inputs = _minute_backfilled(
                        minute_end=piece_start + offset * MINUTE, inputs=inputs, seed=seed
                    )
                    runs += minute_runs
            else:
                runs += span.runs
                if span.pool is not None:
                    inputs = inputs.with_pool(span.pool)  # sign-ups, churn, settling: in memory
        count(runs, int((span_end - span_start) / MINUTE))
        span_start = span_end
    if generated:  # months of history grow the tables a hundredfold: statistics, dead versions
        try:
            tables_tidy(budget_seconds=TIDY_AFTER_BACKFILL_SECONDS)
        except Exception:  # the history is written: a tidy that fails is the next minute's
            logger.exception("synthetics tidy after the backfill failed")
    return BackfillSummary(
        start=start, end=end, minutes=minutes, minutes_generated=generated, totals=totals
    )


def _minute_backfilled(
    *, minute_end: datetime, inputs: RunInputs, seed: int
) -> tuple[list[SyntheticRun], RunInputs]:
    """One minute of history: the whole pool where no run covered any of it, else the slices the
    runs of a split left of it; with the pool as the runs left it."""
    run = run_backfill_minute(minute_end=minute_end, inputs=inputs, seed=seed)
    if run is not None:
        return [run], inputs if run.pool_after is None else inputs.with_pool(run.pool_after)
    filled = run_backfill_slices(minute_end=minute_end, seed=seed)
    if any(run.pool_after is not None for run in filled):
        inputs = RunInputs.load()  # a slice's run changed the pool: the whole of it, read again
    return filled, inputs


def _can_pipeline() -> bool:
    return (
        connection.vendor == "postgresql"
        and not connection.in_atomic_block
        and run_inputs.generator_settings().signups_per_day == 0
    )


def _pipelined_spans(
    *,
    start: datetime,
    end: datetime,
    step: int,
    inputs: RunInputs,
    seed: int,
    count: Callable[[list[SyntheticRun], int], None],
) -> tuple[datetime, RunInputs]:
    """Spans from `start` with the engine one span ahead of the writes: the main thread simulates
    span N+1 while a writer thread (its own connection, the generator lock, one transaction a span)
    writes span N. Returns where it stopped (`end`, a span with covered minutes, or a span another
    run touched: nothing of it written) and the pool as written so far.

    The starting point — settings, the ledger's newest id, the journeys in progress — is read under
    the generator lock, so no run is half-seen; each commit moves the watermark to the newest id
    under its own lock, and any other run that succeeded after it stops the pipeline.
    """
    with generator_transaction(deadline=run_deadline_start(manual=False)):
        settings = run_inputs.generator_settings()
        watermark = run_inputs.newest_run_id()
        active = {journey.id: journey for journey in run_inputs.active_journeys()}
    if settings.signups_per_day > 0:  # turned on since the caller looked: newcomers need ids now
        return start, inputs
    state = _SpanState(pool=inputs.pool, rhythm=inputs.rhythm, active=active)
    written_pool = inputs.pool
    position = start
    # The writer thread gives the GIL up at every network round trip of its COPY and then waits for
    # the engine thread to hand it back: at the default 5 ms switch interval that wait is most of
    # a span's write. A shorter interval for the pipeline's lifetime keeps the writes flowing.
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(PIPELINE_SWITCH_INTERVAL)
    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="synthetics-backfill") as writer:
            pending: tuple[Future, _SimulatedSpan, list[PoolMember]] | None = None
            try:
                span_start = start
                while True:
                    span = None
                    if span_start < end:
                        span_end = min(end, span_start + step * MINUTE)
                        if not run_inputs.covered_minute_ends(start=span_start, end=span_end):
                            span = _simulated_or_recorded(
                                settings=settings,
                                catalogue=inputs.catalogue,
                                state=state,
                                start=span_start,
                                end=span_end,
                                seed=seed,
                            )
                    if pending is not None:
                        future, written, pool_after = pending
                        pending = None
                        result = future.result()
                        if result is None:  # another run got in first: from this span, again
                            break
                        runs, watermark = result
                        count(runs, int((written.end - written.start) / MINUTE))
                        position, written_pool = written.end, pool_after
                    if span is None:
                        break
                    pending = (
                        writer.submit(_span_commit, span, settings, watermark),
                        span,
                        state.pool,
                    )
                    span_start = span.end
            finally:
                if pending is not None:  # Ctrl-C or a failure: let the write in flight end whole
                    with contextlib.suppress(BaseException):
                        pending[0].result()
                writer.submit(lambda: connection.close()).result()  # the writer's own connection
    finally:
        sys.setswitchinterval(switch_interval)
    if written_pool is not inputs.pool:
        inputs = inputs.with_pool(written_pool)
    return position, inputs


def _simulated_or_recorded(
    *,
    settings: GeneratorSettings,
    catalogue: Catalogue,
    state: _SpanState,
    start: datetime,
    end: datetime,
    seed: int,
) -> _SimulatedSpan:
    """A span simulated ahead, outside any run: the failure rule still holds — an engine error is
    recorded in the ledger and raised as RunFailed, an interruption recorded and raised as itself."""
    started_at = timezone.now()
    try:
        # The collector is paused per span, not for the whole pipeline: over a long history the
        # cycles Django leaves behind must still be collected.
        with _cyclic_gc_paused():
            span = _simulate_span(
                settings=settings,
                catalogue=catalogue,
                state=state,
                start=start,
                end=end,
                seed=seed,
                started_at=started_at,
                pool_write=None,
            )
            _rendered(span)
            return span
    except Exception as error:
        run = _failure_recorded(
            trigger=RunTrigger.BACKFILL, now=end, target=None, started_at=started_at, error=error
        )
        raise RunFailed(f"The run failed and was rolled back: {error}", run_id=run.id) from error
    except BaseException as error:
        with contextlib.suppress(Exception):
            _failure_recorded(
                trigger=RunTrigger.BACKFILL,
                now=end,
                target=None,
                started_at=started_at,
                error=RunInterrupted(_interruption_message(error)),
                cause=error,
            )
        raise


def _rendered(span: _SimulatedSpan) -> None:
    """Reserve the span's ledger ids and format its journeys and events as COPY data, here in the
    engine's thread: the writer thread then only sends them (PostgreSQL)."""
    run_ids = run_ids_reserve(len(span.ledger))
    for run, run_id in zip(span.ledger, run_ids, strict=True):
        run.id = run_id
    span.rendered = output_rendered(
        new_journeys=[(journey, run_ids[index]) for journey, index in span.started.values()],
        events=[
            (event, (run_ids[index], span.ledger[index].run_key))
            for index, batch in span.events
            for event in batch
        ],
        written_at=timezone.now(),
    )


def _span_commit(
    span: _SimulatedSpan, settings: GeneratorSettings, watermark: int
) -> tuple[list[SyntheticRun], int] | None:
    """In the writer thread: write a simulated span in one transaction under the generator lock and
    return its runs and the ledger's newest id then; or None when the database moved under it (its
    minutes covered, another run of any kind succeeded after `watermark`, other settings)."""

    def window(current: GeneratorSettings) -> _Window | None:
        if (
            current != settings
            or run_inputs.covered_minute_ends(start=span.start, end=span.end)
            or run_inputs.run_since(watermark)
        ):
            return None
        return _Window(span.start, span.end)

    def generate(*, deadline: RunDeadline, **_) -> tuple[list[SyntheticRun], int]:
        runs = _write_span(span, deadline=deadline)
        return runs, run_inputs.newest_run_id()

    return _run(
        trigger=RunTrigger.BACKFILL,
        now=span.end,
        target=None,
        window=window,
        generate=generate,
    )


def _rows(run: SyntheticRun) -> int:
    """Rows a run wrote: its ledger row, journeys started, scene and mindblock events."""
    return 1 + run.sessions_started + run.scene_events_created + run.mindblock_events_created


def _uncovered_pieces(
    start: datetime, end: datetime, covered: set[datetime]
) -> list[tuple[datetime, datetime]]:
    """The runs of consecutive minutes of (start, end] whose minute end is not in `covered`."""
    pieces: list[tuple[datetime, datetime]] = []
    piece_start = None
    minute_end = start + MINUTE
    while minute_end <= end:
        if minute_end in covered:
            if piece_start is not None:
                pieces.append((piece_start, minute_end - MINUTE))
                piece_start = None
        elif piece_start is None:
            piece_start = minute_end - MINUTE
        minute_end += MINUTE
    if piece_start is not None:
        pieces.append((piece_start, end))
    return pieces
