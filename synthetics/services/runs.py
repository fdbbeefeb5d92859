"""Generator runs: a scheduled run, a manual run and a backfill minute (or the slices of it a split
left), each one transaction under the generator lock, recorded in the ledger.

Every run reads top to bottom the same way: check its arguments; inside `run_attempt` (the lock and
the one failure rule: services.run_failures) read the settings, work out its window and session
count (`Window`), then `run_generate`: the engine's step over the window (engine.minute), the ledger
row (complete, once) and the run's rows. History (many minutes in spans) is services.history.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from synthetics.engine import (
    Catalogue,
    EngineError,
    GeneratorSettings,
    Pool,
    PoolMember,
    RunOutcome,
    manual_session_count,
)
from synthetics.engine.incidents import Incidents
from synthetics.engine.lifecycle import PoolChanges, pool_changed
from synthetics.engine.minute import floor_minute, minute_step
from synthetics.engine.sampling import run_random
from synthetics.errors import ApplicationError, Conflict, RunFailed
from synthetics.models import (
    MAX_SHARDS,
    RunStatus,
    RunTrigger,
    SimUser,
    SyntheticRun,
)
from synthetics.selectors import run_inputs
from synthetics.selectors.run_inputs import RunInputs
from synthetics.services.locks import deadline_statement_bound, other_split_running
from synthetics.services.run_failures import Attempt, run_attempt, run_log
from synthetics.services.seeding import SIM_ACCOUNTS, AttachedAccounts, sim_accounts_create
from synthetics.services.writers import (
    last_logins_write,
    run_counters_add,
    run_hours_add,
    run_output_write,
)

# After downtime a scheduled run covers at most this many minutes (its sessions still capped at
# max_per_run): generation resumes without a burst, and older minutes stay empty.
MAX_CATCH_UP_MINUTES = 10
# A manual run spreads its sessions over the minute before `now`.
MANUAL_WINDOW = timedelta(minutes=1)
MINUTE = timedelta(minutes=1)
# No simulated time before this: older dates are typos, and datetime arithmetic near year 1 overflows.
EARLIEST_NOW = datetime(2000, 1, 1, tzinfo=UTC)


class GeneratorUnavailable(Conflict):
    """The generator's state refuses this run: no sim users to run sessions for."""


class GeneratorPaused(GeneratorUnavailable):
    """A manual run was asked for while generation is paused (and not forced)."""


class RunInTheFuture(ApplicationError):
    """A run was asked for at a time after the real now: it would write rows dated in the future."""


@dataclass(frozen=True, slots=True)
class Window:
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
    trigger: str = RunTrigger.SCHEDULED
    target: int | None = None  # a manual run's

    def stream(self) -> dict:
        """The window and its random stream, as the engine's step takes them."""
        return {
            "window_start": self.start,
            "window_end": self.end,
            "rng": self.rng,
            "seed": self.seed,
        }

    @classmethod
    def of_minutes(
        cls,
        start: datetime,
        end: datetime,
        *,
        seed: int,
        trigger: str = RunTrigger.SCHEDULED,
        shard: int = 0,
        shards: int = 1,
    ) -> Window:
        """A window whose sessions are drawn, with everything else, from the run's own random
        stream (scheduled and backfill runs): the same seed and window give the same rows."""
        where = {"shard": shard, "shards": shards}
        rng = run_random(seed=seed, trigger=trigger, window_start=start, window_end=end, **where)
        return cls(start, end, rng=rng, seed=seed, trigger=trigger, **where)


# --- the services --------------------------------------------------------------------------------


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
    now = checked_now(now)
    seed = seed_or_default(seed)
    _shard_checked(shard, shards)
    trigger = RunTrigger.SCHEDULED
    with run_attempt(trigger=trigger, now=now, shard=shard, shards=shards) as attempt:
        settings = run_inputs.generator_settings()
        window = _scheduled_window(settings, now=now, seed=seed, shard=shard, shards=shards)
        return run_generate(attempt, settings, window)


def _scheduled_window(
    settings: GeneratorSettings, *, now: datetime, seed: int, shard: int, shards: int
) -> Window:
    """The minutes a scheduled run covers, or the skip that says why it covers none."""
    covered = run_inputs.covered_until(shard=shard, shards=shards)
    end = floor_minute(now)
    start = max(covered, end - MAX_CATCH_UP_MINUTES * MINUTE) if covered else end - MINUTE
    if start >= end:
        if run_inputs.coverage_ahead(covered=covered, now=now):
            note = (
                f"clock stepped back: minutes up to {covered.isoformat()} are already covered; "
                "generation resumes when the clock gets there"
            )
            return Window(end, end, skip=note[:200], shard=shard, shards=shards)
        return Window(end, end, skip="no new minute to cover", shard=shard, shards=shards)
    if run_inputs.last_scheduled_run_failed(shard=shard, shards=shards):
        # After a scheduled run that failed (a timeout, a budget overrun, a lost connection),
        # the next covers one minute, the first one not covered yet: a retry never takes on
        # more work than the run that failed, and no minute is skipped; later runs catch up.
        end = start + MINUTE
    if not settings.enabled:
        return Window(start, end, skip="paused", shard=shard, shards=shards)
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
            return Window(start, start, skip=note, shard=shard, shards=shards)
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
            return Window(start, start, skip=note[:200], shard=shard, shards=shards)
    return Window.of_minutes(start, end, seed=seed, shard=shard, shards=shards)


def run_scheduled_shards(
    *, now: datetime | None = None, seed: int | None = None, shards: int | None = None
) -> list[SyntheticRun | RunFailed]:
    """The run of every shard for `now`, one after another in this process (`manage.py
    run_synthetics`; the schedule fans them out to workers instead): each shard's run, or the
    RunFailed that says it failed (the others still run)."""
    now = checked_now(now)
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
    now = checked_now(now)
    seed = seed_or_default(seed)
    # Refuse a bad request before waiting for the lock; checked again under it (settings may change).
    _manual_refusal(run_inputs.generator_settings(), target=target, force=force)
    trigger = RunTrigger.MANUAL
    with run_attempt(trigger=trigger, now=now, target=target) as attempt:
        settings = run_inputs.generator_settings()
        sessions = _manual_refusal(settings, target=target, force=force)
        start = now - MANUAL_WINDOW
        rng = run_random(
            seed=seed,
            trigger=trigger,
            window_start=start,
            window_end=now,
            serial=run_inputs.manual_run_count(),
        )
        window = Window(
            start, now, sessions=sessions, rng=rng, seed=seed, trigger=trigger, target=target
        )
        return run_generate(attempt, settings, window)


def run_backfill_minute(
    *, minute_end: datetime, inputs: RunInputs, seed: int | None = None
) -> SyntheticRun | None:
    """Generate the one minute ending at `minute_end` for the whole pool, or return None when a run
    already covered it, whole or a slice of it (run_backfill_slices generates the slices left).

    `inputs` (the pool and catalogue) are loaded once by the caller for a whole backfill.
    """
    minute_end = floor_minute(checked_now(minute_end))
    seed = seed_or_default(seed)
    start = minute_end - MINUTE
    trigger = RunTrigger.BACKFILL
    with run_attempt(trigger=trigger, now=minute_end) as attempt:
        settings = run_inputs.generator_settings()
        if run_inputs.minute_is_covered(minute_start=start, minute_end=minute_end):
            return None
        window = Window.of_minutes(start, minute_end, seed=seed, trigger=trigger)
        return run_generate(attempt, settings, window, inputs=inputs)


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
    minute_end = floor_minute(checked_now(minute_end))
    seed = seed_or_default(seed)
    start = minute_end - MINUTE
    left = run_inputs.slices_left(start=start, end=minute_end).get(minute_end)
    if left is None:
        return []
    trigger = RunTrigger.BACKFILL
    filled = []
    for shard in left.left:
        with run_attempt(
            trigger=trigger, now=minute_end, shard=shard, shards=left.shards
        ) as attempt:
            settings = run_inputs.generator_settings()
            now_left = run_inputs.slices_left(start=start, end=minute_end).get(minute_end)
            if now_left is None or now_left.shards != left.shards or shard not in now_left.left:
                continue  # another run covered it meanwhile
            window = Window.of_minutes(
                start, minute_end, seed=seed, trigger=trigger, shard=shard, shards=left.shards
            )
            filled.append(run_generate(attempt, settings, window))
    return filled


# --- one run's step and its writes -----------------------------------------------------------------


def run_generate(
    attempt: Attempt,
    settings: GeneratorSettings,
    window: Window,
    *,
    inputs: RunInputs | None = None,
) -> SyntheticRun:
    """Inside the lock: the engine's step over the window, then the ledger row and the run's rows."""
    deadline, trigger = attempt.deadline, window.trigger
    row = {
        "trigger": trigger,
        "started_at": attempt.started_at,
        "window_start": window.start,
        "window_end": window.end,
        "target": window.target,
        **in_force(settings, seed=window.seed),
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
        transaction.on_commit(lambda: run_log(run))
        return run
    if inputs is None:
        inputs = (
            RunInputs.load(**where, window_start=window.start)
            if window.shards > 1
            else RunInputs.load()
        )
    incidents = incidents_over(inputs.catalogue, window.start, window.end)
    deadline.check("reading its inputs")
    # Only the journeys with a step due by the window's end are read; the others just keep
    # their users busy.
    step = minute_step(
        settings=settings,
        catalogue=inputs.catalogue,
        pool=inputs.pool,
        rhythm=inputs.rhythm,
        active=run_inputs.active_journeys(due_by=window.end, **where),
        waiting=run_inputs.waiting_journey_users(due_by=window.end, **where),
        **window.stream(),
        accounts=SIM_ACCOUNTS,
        incidents=incidents,
        sessions=window.sessions,
        shards=window.shards,
        recent=run_inputs.recent_sessions(
            before=window.start, bout_minutes=inputs.catalogue.behaviour.bout_minutes, **where
        ),
        pool_changing=trigger != RunTrigger.MANUAL,  # a manual run adds sessions only
        signups=window.shard == 0,  # a split run's sign-ups: the first shard's, once
    )
    deadline.check("simulating")
    outcome, changes = step.outcome, step.changes
    counted = step.counted(window.end)  # with the newcomers' first sessions (engine.onboarding)
    run = SyntheticRun.objects.create(  # its id tags every row the run writes
        **row, **ledger_counts(counted, sessions=step.sessions, changes=changes)
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
        pool_changes_write(changes, pool=inputs.pool, at=window.end) if changes else None
    )
    started = list(outcome.new_journeys)
    if changes.onboarding:  # the newcomers' first sessions, now that their accounts exist
        first = step.first_sessions(joined_members(run.pool_after, changes), window.end)
        started += first.new_journeys
        run_output_write(
            before_statement=lambda: deadline_statement_bound(deadline),
            run_id=run.id,
            run_key=run.run_key,
            new_journeys=first.new_journeys,
            updates=(),
            events=first.events,
            written_at=timezone.now(),
        )
    last_logins_write(started)  # demo mode: each account's last login, its latest session
    run.finished_at = timezone.now()
    run.save(update_fields=["finished_at"])
    run_hours_add([run])
    run_counters_add([run])
    transaction.on_commit(lambda: run_log(run))
    return run


def incidents_over(catalogue: Catalogue, start: datetime, end: datetime) -> Incidents | None:
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


def ledger_counts(outcome: RunOutcome, *, sessions: int, changes: PoolChanges) -> dict:
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
            f"only {regular} of {sessions} sessions: no more idle sim users"
            if (regular := outcome.sessions_started - len(changes.onboarding)) < sessions
            else ""
        ),
    }


def joined_members(pool_after: Pool, changes: PoolChanges) -> list[PoolMember]:
    """The newcomers of `changes` as members of the pool after their write, in the newcomers'
    order (pool_changed puts them last, by id; their ids were given in that order)."""
    count = len(changes.newcomers)
    return pool_after[len(pool_after) - count :] if count else []


def pool_changes_write(changes: PoolChanges, *, pool: Pool, at: datetime) -> Pool:
    """Create the newcomers, retire the churned users and settle the settled ones; return the pool
    as it now is (what a fresh load would give)."""
    joined = []
    if changes.newcomers:
        created = sim_accounts_create(list(changes.newcomers))
        joined = [
            profile.member(sim_user_id=sim_user.id, user_id=sim_user.user_id)
            for profile, sim_user in zip(changes.newcomers, created, strict=True)
        ]
    _departures_write(_departures(changes, at))
    _settled_write(changes.settled)
    return pool_changed(pool, changes, joined)


def pool_changes_write_many(
    windows: Sequence[tuple[PoolChanges, datetime, Sequence[tuple[int, int]]]],
    *,
    accounts: AttachedAccounts | None = None,
) -> None:
    """The pool changes of many windows, in order (a span of history simulated ahead of its write:
    services.history), each with the ids reserved for its newcomers (seeding.account_ids_reserve),
    in a statement or two a kind: every newcomer created, then every departure, then every
    settling — the same rows as pool_changes_write window after window. Attached, `accounts`: the
    newcomers' application accounts settled ahead (seeding.attached_accounts_ahead)."""
    profiles = [profile for changes, _, _ in windows for profile in changes.newcomers]
    if profiles:
        sim_accounts_create(
            profiles, ids=[pair for _, _, ids in windows for pair in ids], accounts=accounts
        )
    departures: dict[int, datetime] = {}
    for changes, at, _ in windows:
        for sim_user_id, moment in _departures(changes, at).items():
            departures.setdefault(sim_user_id, moment)  # the first: as churned_at IS NULL keeps
    _departures_write(departures)
    settled: dict[int, PoolMember] = {}
    for changes, _, _ in windows:
        settled.update((member.sim_user_id, member) for member in changes.settled)
    _settled_write(tuple(settled.values()))


def _departures(changes: PoolChanges, at: datetime) -> dict[int, datetime]:
    """Who churned in a window and when: each at its own moment of the window (engine.lifecycle),
    `at` where none was drawn."""
    moments = changes.churned_ms or (None,) * len(changes.churned)
    return {
        member.sim_user_id: at if ms is None else datetime.fromtimestamp(ms / 1000, UTC)
        for member, ms in zip(changes.churned, moments, strict=True)
    }


def _departures_write(departures: dict[int, datetime]) -> None:
    if not departures:
        return
    gone = SimUser.objects.filter(id__in=list(departures), churned_at__isnull=True).values_list(
        "id", flat=True
    )
    SimUser.objects.bulk_update(
        [SimUser(id=pk, churned_at=departures[pk]) for pk in gone], ["churned_at"]
    )


def _settled_write(settled: Sequence[PoolMember]) -> None:
    if not settled:
        return
    SimUser.objects.bulk_update(
        [
            SimUser(
                id=member.sim_user_id,
                persona=member.persona,
                activity_weight=member.activity_weight,
                settles_into="",
            )
            for member in settled
        ],
        ["persona", "activity_weight", "settles_into"],
    )


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


def in_force(settings: GeneratorSettings, *, seed: int | None) -> dict:
    """What a ledger row records of the settings and seed its run used (engine.expectations judges
    each run with them). A seed outside a bigint's range is not recorded (a run of it is then
    judged without its rate factor)."""
    return {
        "abandon_rate": settings.abandon_rate,
        "error_rate": settings.error_rate,
        "sessions_per_min": settings.sessions_per_min,
        "max_per_run": settings.max_per_run,
        "rhythm_strength": settings.rhythm_strength,
        "seed": seed if seed is not None and -(2**63) <= seed < 2**63 else None,
    }


def seed_or_default(seed: int | None) -> int:
    return django_settings.SYNTHETICS_SEED if seed is None else seed


def checked_now(moment: datetime | None) -> datetime:
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
