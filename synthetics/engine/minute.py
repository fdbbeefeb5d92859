"""One run's step over its window, written once: the scheduled run, the manual run, both paths of the
backfill and the in-memory simulation (the statistical tests, the benchmarks) all take it.

The step, in the order its random stream is read (the same seed gives the same rows):
count the window's sessions (a Poisson draw at the pool's rhythm, unless the caller asks for a
number) → simulate the run (engine.run.simulate_run) → the sim users it leaves busy → the pool's
changes (sign-ups, churn, settling: engine.lifecycle). What carries to the next minute — the journeys
in progress — is advanced by `journeys_advanced` where the caller keeps them in memory; a run of the
database writes them instead.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from synthetics.engine.bouts import RecentSession, RecentSessions
from synthetics.engine.incidents import Incidents
from synthetics.engine.lifecycle import PoolChanges, SignupAccounts, pool_changes
from synthetics.engine.onboarding import merged, onboarding_outcome, onboarding_planned
from synthetics.engine.picking import Segments
from synthetics.engine.rhythm import PoolRhythm, persona_profile
from synthetics.engine.run import next_due_ms, simulate_run, to_ms, window_session_count
from synthetics.engine.types import (
    ActiveJourney,
    Catalogue,
    GeneratorSettings,
    JourneyUpdate,
    NewJourney,
    PoolMember,
    RunOutcome,
)


def floor_minute(moment: datetime) -> datetime:
    """The start of the minute `moment` is in: runs cover whole minutes."""
    return moment.replace(second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class MinuteStep:
    """What a step did: the sessions asked for, the engine's outcome and the pool's changes."""

    sessions: int
    outcome: RunOutcome
    changes: PoolChanges = field(default_factory=PoolChanges)

    def counted(self, window_end: datetime) -> RunOutcome:
        """The outcome with the newcomers' first sessions (placeholder ids): what the run's ledger
        row counts before the accounts exist."""
        if not self.changes.onboarding:
            return self.outcome
        first = onboarding_outcome(self.changes.onboarding, None, now_ms=to_ms(window_end))
        return merged(self.outcome, first)

    def first_sessions(self, joined: Sequence[PoolMember], window_end: datetime) -> RunOutcome:
        """The newcomers' first sessions for the members `joined` (with their ids)."""
        return onboarding_outcome(self.changes.onboarding, joined, now_ms=to_ms(window_end))


def remember(recent: RecentSessions | None, outcomes: Sequence[RunOutcome], now: datetime) -> None:
    """Add a minute's new sessions to the memory of bouts of a caller that keeps it (a history,
    the simulator; a database run reads it from the journeys) and forget the old ones."""
    if recent is None:
        return
    recent.add(recent_sessions([j for outcome in outcomes for j in outcome.new_journeys]))
    recent.forget_before(to_ms(now) - recent.memory_ms)


def minute_step(
    *,
    settings: GeneratorSettings,
    catalogue: Catalogue,
    pool: Sequence[PoolMember],
    rhythm: PoolRhythm,
    active: Sequence[ActiveJourney],
    window_start: datetime,
    window_end: datetime,
    rng: random.Random,
    seed: int,
    accounts: SignupAccounts,
    incidents: Incidents | None = None,
    sessions: int | None = None,
    shards: int = 1,
    waiting: Collection[int] = (),
    pool_changing: bool = True,
    signups: bool = True,
    recent: RecentSessions | None = None,
) -> MinuteStep:
    """One run over (window_start, window_end].

    `active`: the journeys in progress with a step due by the window's end; `waiting`: the sim users
    of the other journeys in progress (busy, nothing due). `sessions` None: drawn at the pool's
    rhythm (scheduled and backfill runs); a number: exactly that many (a manual run). A run that
    leaves the pool as it is (`pool_changing` False: a manual run) draws no changes; `signups`
    False: a split run's shard other than the first (the first signs up the newcomers, once).
    `recent`: the sessions started before the window that bouts bring users back from
    (engine.bouts), the run's own added to it.
    """
    # What the three draws read (the count, the sessions, the pool's changes, in this order): the
    # window and its stream, the rate's shape, the journeys, the pool's rules.
    stream = {"settings": settings, "window_start": window_start, "rng": rng}
    rate = {"rhythm": rhythm, "incidents": incidents}
    if sessions is None:
        sessions = window_session_count(
            **stream,
            **rate,
            window_end=window_end,
            shards=shards,
            behaviour=catalogue.behaviour,
            seed=seed,
        )
    journeys = {"catalogue": catalogue, "pool": pool, "active": active, "waiting": waiting}
    outcome = simulate_run(
        **stream, **rate, **journeys, now=window_end, sessions=sessions, seed=seed, recent=recent
    )
    if not pool_changing:
        return MinuteStep(sessions, outcome)
    # Busy as the database sees it: in progress when the window began, or started in it.
    busy = {journey.sim_user_id for journey in active} | set(waiting)
    busy |= {journey.sim_user_id for journey in outcome.new_journeys}
    lifecycle = {
        "seed": seed,
        "accounts": accounts,
        "signups": signups,
        "engagement_spread": catalogue.behaviour.engagement_spread,
        # people sign up when they are awake: at the pool's rhythm over the window
        "signup_rate": (
            rhythm.window_rate(window_start, window_end, strength=settings.rhythm_strength)
            if rhythm is not None
            else 1.0
        ),
        # ... and where they live follows it too (population.signup_place)
        "signup_rhythm": persona_profile(catalogue.rhythms, "newcomer"),
        "rhythm_strength": settings.rhythm_strength,
        "behaviour": catalogue.behaviour,  # who churns: activity fades first
    }
    changes = pool_changes(**stream, **lifecycle, window_end=window_end, pool=pool, busy=busy)
    if changes.newcomers:  # each signs up at the start of a first session (engine.onboarding)
        segments = Segments(
            catalogue.behaviour,
            seed=seed,
            settings=settings,
            rhythm=rhythm,
            catalogue=catalogue,
            errored={},
            at_ms=to_ms(window_end),
            recent=recent,
        )
        planned = onboarding_planned(
            rng,
            catalogue=catalogue,
            settings=settings,
            newcomers=changes.newcomers,
            odds=segments.odds,
        )
        changes = replace(changes, onboarding=planned)
    return MinuteStep(sessions, outcome, changes)


def recent_sessions(journeys: Sequence[NewJourney]) -> list[RecentSession]:
    """New journeys as the memory of bouts keeps them, in (start, id) order."""
    return sorted(
        (
            RecentSession(
                to_ms(j.started_at),
                j.id.int,
                j.sim_user_id,
                j.plan.outcome == "errored",
                j.plan.persona,
            )
            for j in journeys
        ),
        key=lambda s: (s.start_ms, s.order),
    )


def journeys_advanced(
    active: dict[int, ActiveJourney], outcome: RunOutcome
) -> tuple[list[tuple[JourneyUpdate, ActiveJourney]], list[NewJourney]]:
    """Advance the journeys in progress (`active`, by id, changed in place) by a step's outcome.

    Returns the journeys that ended in it: each older one's update with the journey as it was, and
    the new journeys that started and ended in the same window."""
    ended: list[tuple[JourneyUpdate, ActiveJourney]] = []
    for update in outcome.journey_updates:
        journey = active[update.id]
        if update.status == "active":
            active[update.id] = journey.at_step(update.next_step)
        else:
            del active[update.id]
            ended.append((update, journey))
    ended_new = []
    for new in outcome.new_journeys:
        if new.status == "active":
            active[new.id] = new.in_progress()
        else:
            ended_new.append(new)
    return ended, ended_new


class JourneysDue:
    """The journeys in progress kept in memory (`active`, by id, shared and changed in place), by
    when each next has something due: a minute's step takes only those due by its end (`active`)
    and the sim users of the others (`waiting`), as a scheduled run reads them from the database.

    The outcome is the one of passing them all: simulate_run writes nothing for a journey with
    nothing due, only counts it and keeps its user busy, which `waiting` does. A history's minute
    no longer walks and sorts every journey in progress, only those due (a heap by due time)."""

    def __init__(self, active: dict[object, ActiveJourney]) -> None:
        self.active = active
        self._heap = [(next_due_ms(j.plan, j.next_step), j.id) for j in active.values()]
        heapq.heapify(self._heap)
        self._users = {journey.sim_user_id for journey in active.values()}

    def split(self, now_ms: int) -> tuple[list[ActiveJourney], set[int]]:
        """The journeys with something due by `now_ms`, and the sim users of the others."""
        heap, active, due = self._heap, self.active, []
        while heap and heap[0][0] <= now_ms:
            due_ms, journey_id = heapq.heappop(heap)
            journey = active.get(journey_id)
            if journey is not None and next_due_ms(journey.plan, journey.next_step) == due_ms:
                due.append(journey)
        return due, self._users.difference([journey.sim_user_id for journey in due])

    def advanced(
        self, outcome: RunOutcome
    ) -> tuple[list[tuple[JourneyUpdate, ActiveJourney]], list[NewJourney]]:
        """journeys_advanced, keeping the due times and the busy users with it."""
        ended, ended_new = journeys_advanced(self.active, outcome)
        for _, journey in ended:
            self._users.discard(journey.sim_user_id)
        for update in outcome.journey_updates:
            if update.status == "active":
                journey = self.active[update.id]
                heapq.heappush(
                    self._heap, (next_due_ms(journey.plan, journey.next_step), update.id)
                )
        for new in outcome.new_journeys:
            if new.status == "active":
                self._users.add(new.sim_user_id)
                heapq.heappush(self._heap, (next_due_ms(new.plan, new.next_step), new.id))
        return ended, ended_new
