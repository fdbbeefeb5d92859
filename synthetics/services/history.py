"""History: the last hours of activity, generated minute by minute on the simulated clock.

The minutes go in spans (span_minutes: up to six hours, about 80,000 rows), each simulated in memory
(every minute the step of a backfill run: engine.minute) and written in one transaction under the
generator lock (services.run_failures.run_attempt), each minute its own ledger row. On PostgreSQL,
with no sign-ups, the engine simulates the next span while a writer thread writes the last one
(`_pipelined_spans`). Minutes a run already covered are left as they are, and the slices a split
left of a minute are filled by services.runs.run_backfill_slices.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from synthetics.engine import Catalogue, GeneratorSettings, Pool, PoolRhythm
from synthetics.engine.bouts import RecentSessions
from synthetics.engine.lifecycle import PoolChanges, SignupAccounts, pool_changed
from synthetics.engine.minute import JourneysDue, floor_minute, minute_step, remember
from synthetics.engine.onboarding import merged
from synthetics.engine.run import to_ms
from synthetics.engine.sampling import run_random
from synthetics.errors import ApplicationError, whole_number_required
from synthetics.models import RUN_COUNTS, SYNTHETIC_EMAIL_DOMAIN, RunTrigger, SyntheticRun
from synthetics.selectors import run_inputs
from synthetics.selectors.run_inputs import RunInputs
from synthetics.services.locks import (
    RunDeadline,
    deadline_statement_bound,
    generator_transaction,
    run_deadline_start,
)
from synthetics.services.maintenance import backend_exit_wait, tables_tidy
from synthetics.services.run_failures import (
    cyclic_gc_paused,
    failures_recorded,
    run_attempt,
    run_log,
)
from synthetics.services.runs import (
    MINUTE,
    checked_now,
    in_force,
    incidents_over,
    joined_members,
    ledger_counts,
    pool_changes_write,
    pool_changes_write_many,
    run_backfill_minute,
    run_backfill_slices,
    seed_or_default,
)
from synthetics.services.seeding import account_ids_reserve, next_sim_index
from synthetics.services.writers import (
    RenderedOutput,
    deferred_key_checks_indexed,
    last_logins_write,
    ledger_write,
    output_rendered,
    run_counters_add,
    run_hours_add,
    run_ids_reserve,
    runs_output_write,
)
from synthetics.target.mapping import target_in_force

logger = logging.getLogger("synthetics")

# History goes back at most this far (366 days: a year of demo data).
MAX_BACKFILL_HOURS = 24 * 366

_TOTALS = ("sessions_started", "users_signed_up", "users_churned", *RUN_COUNTS[1:])


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
FIRST_SPAN_PART = 8  # the pipeline's first and last spans: this part of the others
PIPELINE_SPANS = 4  # a history's spans on the grid, at least (activity_backfill)
GC_SPANS = 32  # the pipeline's young-generation collections: one every so many spans
SPAN_ROWS = 80_000
# A journey row and its scene and mindblock events: about 6 on the shipped catalogue (5.98 in an
# hour at 2,000 sessions a minute). Counted at 12 before, spans held half the rows they could: at
# high rates three minutes, so most journeys in progress crossed a span's end — written, then
# updated in the next span (an update costs twice an insert: the whole row and every index again).
ROWS_PER_SESSION = 7


@dataclass(frozen=True, slots=True)
class BackfillSpan:
    """The runs of one span of history (one per minute) and the pool as they left it."""

    runs: list[SyntheticRun]
    pool: Pool | None  # None: the pool did not change


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
    start, end = floor_minute(start), floor_minute(checked_now(end))
    seed = seed_or_default(seed)
    if start >= end:
        raise ApplicationError("a span of history needs its start before its end")
    trigger = RunTrigger.BACKFILL
    with run_attempt(trigger=trigger, now=end) as attempt:
        settings = run_inputs.generator_settings()
        if run_inputs.covered_minute_ends(start=start, end=end):
            return None
        inputs = inputs or RunInputs.load()
        state = _History.at_start(settings, inputs, seed=seed, start=start)
        attempt.deadline.check("reading its inputs")
        span = _simulate_span(
            state=state,
            start=start,
            end=end,
            started_at=attempt.started_at,
            pool_write=pool_changes_write,
            check=lambda: attempt.deadline.check("simulating"),
        )
        runs = _write_span(span, deadline=attempt.deadline)
        return BackfillSpan(runs=runs, pool=state.pool if span.pool_moved else None)


@dataclass(slots=True)
class _History:
    """A history being simulated, in memory: what holds for all of it (settings, catalogue, seed)
    and what carries from one minute to the next (the pool, its rhythm, the journeys in progress)."""

    settings: GeneratorSettings
    catalogue: Catalogue
    seed: int
    pool: Pool
    rhythm: PoolRhythm
    active: dict
    recent: RecentSessions  # the memory of bouts (engine.bouts), carried minute to minute
    numbers: _AccountNumbers  # the next free sim account number
    ids: _ReservedIds | None = None  # sign-ups' ids, when the span is written later (pipeline)

    @classmethod
    def at_start(
        cls,
        settings: GeneratorSettings,
        inputs: RunInputs,
        *,
        seed: int,
        start: datetime,
        active: dict | None = None,
        recent: RecentSessions | None = None,
        numbers: _AccountNumbers | None = None,
        ids: _ReservedIds | None = None,
    ) -> _History:
        """A history from what the database holds now: `active`, or the journeys in progress;
        `recent`, or the memory of bouts at `start`; `numbers`, the next free sim account number,
        or read at the first sign-up; `ids`: sign-ups get ids reserved ahead (the pipeline)."""
        if active is None:
            active = {journey.id: journey for journey in run_inputs.active_journeys()}
        if recent is None:
            recent = run_inputs.recent_sessions(
                before=start, bout_minutes=inputs.catalogue.behaviour.bout_minutes
            )
        return cls(
            settings,
            inputs.catalogue,
            seed,
            inputs.pool,
            inputs.rhythm,
            active,
            recent,
            numbers or _AccountNumbers(),
            ids,
        )


class _AccountNumbers:
    """The next free sim account number (simNNNNNN) of a history: read from the database at the
    first sign-up (or given, read under the generator lock), then counted in memory — a span is
    written under the lock, so no other run takes a number meanwhile (a query per sign-up minute
    was a fifth of a history with sign-ups)."""

    __slots__ = ("value",)

    def __init__(self, value: int | None = None) -> None:
        self.value = value

    def __call__(self) -> int:
        if self.value is None:
            self.value = next_sim_index()
        return self.value

    def taken(self, newcomers) -> None:
        if newcomers:
            self.value = newcomers[-1].index + 1


class _ReservedIds:
    """Ids for sign-ups simulated ahead of their write (the pipeline): (user id, sim user id) pairs
    reserved from the two tables' sequences a block at a time (seeding.account_ids_reserve), handed
    out in ascending order as the pool's order by id wants. What a stopped pipeline leaves unused is
    a gap in the sequences, as a rolled-back insert leaves."""

    __slots__ = ("block", "free")

    def __init__(self, block: int) -> None:
        self.block = max(1, block)
        self.free: list[tuple[int, int]] = []

    def take(self, count: int) -> list[tuple[int, int]]:
        if len(self.free) < count:
            self.free += account_ids_reserve(max(self.block, count - len(self.free)))
        taken, self.free = self.free[:count], self.free[count:]
        return taken


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
    deferred: list[tuple[PoolChanges, datetime, list[tuple[int, int]]]]
    pool_moved: bool = False
    rendered: RenderedOutput | None = None  # the journeys and events formatted ahead (_rendered)


def _simulate_span(
    *,
    state: _History,
    start: datetime,
    end: datetime,
    started_at: datetime,
    pool_write: Callable[[PoolChanges, Pool, datetime], Pool] | None,
    check: Callable[[], None] = lambda: None,
) -> _SimulatedSpan:
    """The engine minute after minute over (start, end], each minute with its own random stream, as
    run_backfill_minute would run it; `state` is advanced to `end`. Pool changes go to `pool_write`
    (written at once, newcomers getting their ids from the database), or, with None, are applied in
    memory and kept for the span's write, newcomers with ids reserved ahead (`state.ids`)."""
    span = _SimulatedSpan(start, end, [], {}, {}, [], [])
    active, started, updates = state.active, span.started, span.updates
    settings, catalogue, seed = state.settings, state.catalogue, state.seed
    incidents = incidents_over(catalogue, start, end)
    in_progress = JourneysDue(active)
    accounts = SignupAccounts(next_index=state.numbers, email_domain=SYNTHETIC_EMAIL_DOMAIN)
    for index in range(int((end - start) / MINUTE)):
        minute_start = start + index * MINUTE
        minute_end = minute_start + MINUTE
        due, waiting = in_progress.split(to_ms(minute_end))
        step = minute_step(
            settings=settings,
            catalogue=catalogue,
            pool=state.pool,
            rhythm=state.rhythm,
            active=due,
            waiting=waiting,
            window_start=minute_start,
            window_end=minute_end,
            rng=run_random(
                seed=seed,
                trigger=RunTrigger.BACKFILL,
                window_start=minute_start,
                window_end=minute_end,
            ),
            seed=seed,
            accounts=accounts,
            incidents=incidents,
            recent=state.recent,
        )
        outcome, changes = step.outcome, step.changes
        first = None  # the newcomers' first sessions (engine.onboarding), once they have ids
        if changes:
            state.numbers.taken(changes.newcomers)
            if pool_write is not None:
                state.pool = pool_write(changes, pool=state.pool, at=minute_end)
            else:
                if changes.newcomers and state.ids is None:
                    raise RuntimeError("sign-ups simulated ahead need ids reserved for them")
                ids = state.ids.take(len(changes.newcomers)) if changes.newcomers else []
                span.deferred.append((changes, minute_end, ids))
                joined = [
                    profile.member(sim_user_id=sim_user_id, user_id=user_id)
                    for profile, (user_id, sim_user_id) in zip(changes.newcomers, ids, strict=True)
                ]
                state.pool = pool_changed(state.pool, changes, joined)
            if changes.onboarding:
                first = step.first_sessions(joined_members(state.pool, changes), minute_end)
            state.rhythm = (
                state.rhythm.grown(state.pool)  # sign-ups only: the members it has stay put
                if not changes.churned and not changes.settled and state.rhythm is not None
                else PoolRhythm(state.pool, catalogue.rhythms)
            )
            span.pool_moved = True
        for update in outcome.journey_updates:  # a journey of this span: in its latest state
            if update.id in started:
                started[update.id][0] = started[update.id][0].changed(update)
            else:
                updates[update.id] = update
        written = outcome if first is None else merged(outcome, first)
        for new in written.new_journeys:
            started[new.id] = [new, index]
        in_progress.advanced(outcome)
        if first is not None:
            in_progress.advanced(first)
        remember(state.recent, [written], minute_end)
        span.events.append((index, written.events))
        span.ledger.append(
            SyntheticRun(
                trigger=RunTrigger.BACKFILL,
                started_at=started_at,
                window_start=minute_start,
                window_end=minute_end,
                **in_force(settings, seed=seed),
                **ledger_counts(written, sessions=step.sessions, changes=changes),
            )
        )
        check()
    return span


def _write_span(span: _SimulatedSpan, *, deadline: RunDeadline) -> list[SyntheticRun]:
    """Write a simulated span in the caller's transaction: deferred pool changes, a ledger row per
    minute, the journeys and events (COPY), the changes to older journeys."""
    pool_changes_write_many(span.deferred)
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
                    (journey, (run_ids[index], runs[index].run_key))
                    for journey, index in span.started.values()
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
    last_logins_write(
        span.rendered.logins
        if span.rendered is not None and span.rendered.logins is not None
        else (journey for journey, _ in span.started.values())
    )
    deferred_key_checks_indexed()  # the last statement: the journeys' key checks at commit
    transaction.on_commit(lambda: [run_log(run) for run in runs])
    return runs


def activity_backfill(
    *,
    hours: int | None = None,
    minutes: int | None = None,
    now: datetime | None = None,
    seed: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> BackfillSummary:
    """Generate the last `hours` hours (or `minutes` minutes: one of the two), one backfill run per
    minute on the simulated clock.

    The minutes go in spans (span_minutes: up to six hours, about 80,000 rows), each simulated in
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
    if (hours is None) == (minutes is None):
        raise ApplicationError("a history is given in hours or in minutes: one of the two")
    if minutes is None:
        minutes = whole_number_required("hours", hours, 1, MAX_BACKFILL_HOURS) * 60
    else:
        whole_number_required("minutes", minutes, 1, MAX_BACKFILL_HOURS * 60)
    seed = seed_or_default(seed)
    end = floor_minute(checked_now(now))
    start = end - minutes * MINUTE
    totals = dict.fromkeys(_TOTALS, 0)
    generated = 0
    inputs = RunInputs.load()
    # at least PIPELINE_SPANS spans on the grid: a history shorter than a few spans would leave
    # the pipeline one long span to simulate while the writer idles, then one to write while the
    # engine idles (an hour at 200 a minute, spans of 57 minutes: 0.34 of a bare COPY, not 0.47)
    step = min(span_minutes(run_inputs.generator_settings()), -(-minutes // PIPELINE_SPANS))

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
        and _signups_ahead(run_inputs.generator_settings())
    )


def _signups_ahead(settings: GeneratorSettings) -> bool:
    """Whether sign-ups can be simulated ahead of their write: none at all, or in demo mode, where
    their ids come reserved from our own tables' sequences. Attached, a sign-up's account is made
    through the target file in the application's table (its key the application's to give, its
    name checked against the accounts there), so it is written as its minute is simulated."""
    return settings.signups_per_day == 0 or target_in_force() is None


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
        recent = run_inputs.recent_sessions(
            before=start, bout_minutes=inputs.catalogue.behaviour.bout_minutes
        )
        # the next free account number, under the lock: the writer thread creates the accounts
        # of the spans simulated before, so the engine's thread never reads it again
        numbers = _AccountNumbers(next_sim_index() if settings.signups_per_day > 0 else None)
    if not _signups_ahead(settings):  # sign-ups turned on since the caller looked, attached
        return start, inputs
    state = _History.at_start(
        settings,
        inputs,
        seed=seed,
        start=start,
        active=active,
        recent=recent,
        numbers=numbers,
        ids=_ReservedIds(_ids_block(settings, step)),
    )
    written_pool = inputs.pool
    position = start
    # The writer thread gives the GIL up at every network round trip of its COPY and then waits for
    # the engine thread to hand it back: at the default 5 ms switch interval that wait is most of
    # a span's write. A shorter interval for the pipeline's lifetime keeps the writes flowing.
    writer_pid = None
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(PIPELINE_SWITCH_INTERVAL)
    # The cyclic collector stays paused for the whole pipeline and runs every few spans: paused
    # per span, it ran as each span ended, over that span's rows (still alive, being written) —
    # a pass a span. Every GC_SPANS spans (a pass over the two spans in flight: tens of ms) it
    # still collects the cycles Django leaves behind.
    try:
        with (
            cyclic_gc_paused(),
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="synthetics-backfill") as writer,
        ):
            pending: tuple[Future, _SimulatedSpan, Pool] | None = None
            try:
                span_start = start
                spans = 0
                while True:
                    spans += 1
                    if spans % GC_SPANS == 0:
                        gc.collect(1)
                    span = None
                    if span_start < end:
                        minutes = _pipelined_span_minutes(
                            step,
                            done=int((span_start - start) / MINUTE),
                            left=int((end - span_start) / MINUTE),
                        )
                        span_end = min(end, span_start + minutes * MINUTE)
                        if not run_inputs.covered_minute_ends(start=span_start, end=span_end):
                            span = _simulated_or_recorded(state, start=span_start, end=span_end)
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
                # the writer's own connection; its backend reports what it wrote to the
                # statistics as it exits, which the tidy after the backfill reads
                writer_pid = writer.submit(_closed).result()
    finally:
        sys.setswitchinterval(switch_interval)
    if writer_pid is not None:
        backend_exit_wait(writer_pid)
    if written_pool is not inputs.pool:
        inputs = inputs.with_pool(written_pool)
    return position, inputs


def _ids_block(settings: GeneratorSettings, step: int) -> int:
    """How many sign-ups' ids to reserve at a time: about a span's worth at these settings (the
    mean sign-ups of `step` minutes, doubled for the rhythm's peaks), at least 16."""
    return max(16, int(2 * settings.signups_per_day * step / (24 * 60)) + 1)


def _pipelined_span_minutes(step: int, *, done: int, left: int) -> int:
    """How many minutes the pipeline's next span covers, `done` minutes after its start with `left`
    to go: spans of `step` on a grid from the start, but the first and the last short (a part
    FIRST_SPAN_PART of `step`, cut from the first and the last cell): the writer idles while the
    first is simulated, and the engine while the last is written."""
    short = max(1, step // FIRST_SPAN_PART)
    if done == 0 or left <= short:
        return min(short, left)
    to_grid = step - done % step
    if left > to_grid:
        return to_grid
    return left - short  # the last cell: the next span, the last, is short


def _closed() -> int | None:
    """Close this thread's connection; the process id of its backend (None: none was open)."""
    pid = connection.connection.info.backend_pid if connection.connection is not None else None
    connection.close()
    return pid


def _simulated_or_recorded(state: _History, *, start: datetime, end: datetime) -> _SimulatedSpan:
    """A span simulated ahead, outside any run: the failure rule still holds — an engine error is
    recorded in the ledger and raised as RunFailed, an interruption recorded and raised as itself."""
    started_at = timezone.now()
    # The collector is paused for the span (and, in the pipeline, around it: _pipelined_spans).
    with (
        cyclic_gc_paused(),
        failures_recorded(trigger=RunTrigger.BACKFILL, now=end, started_at=started_at),
    ):
        span = _simulate_span(
            state=state, start=start, end=end, started_at=started_at, pool_write=None
        )
        _rendered(span)
        return span


def _rendered(span: _SimulatedSpan) -> None:
    """Reserve the span's ledger ids and format its journeys and events as COPY data (and the
    parameters of its changes to older journeys and of its accounts' last logins), here in the
    engine's thread: the writer thread then only sends them (PostgreSQL)."""
    run_ids = run_ids_reserve(len(span.ledger))
    for run, run_id in zip(span.ledger, run_ids, strict=True):
        run.id = run_id
    span.rendered = output_rendered(
        new_journeys=[
            (journey, (run_ids[index], span.ledger[index].run_key))
            for journey, index in span.started.values()
        ],
        events=[
            (event, (run_ids[index], span.ledger[index].run_key))
            for index, batch in span.events
            for event in batch
        ],
        written_at=timezone.now(),
        updates=list(span.updates.values()),
    )
    # Formatted: the span's records are no longer needed while it waits and is written.
    span.events, span.started, span.updates = [], {}, {}


def _span_commit(
    span: _SimulatedSpan, settings: GeneratorSettings, watermark: int
) -> tuple[list[SyntheticRun], int] | None:
    """In the writer thread: write a simulated span in one transaction under the generator lock and
    return its runs and the ledger's newest id then; or None when the database moved under it (its
    minutes covered, another run of any kind succeeded after `watermark`, other settings)."""
    with run_attempt(trigger=RunTrigger.BACKFILL, now=span.end) as attempt:
        if (
            run_inputs.generator_settings() != settings
            or run_inputs.covered_minute_ends(start=span.start, end=span.end)
            or run_inputs.run_since(watermark)
        ):
            return None
        runs = _write_span(span, deadline=attempt.deadline)
        return runs, run_inputs.newest_run_id()


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
