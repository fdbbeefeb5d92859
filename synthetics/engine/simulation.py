"""Running many runs in memory, exactly as the scheduler would minute after minute.

Used by the statistical tests and the benchmarks: the step of a real run (engine.minute), with the
database replaced by a dict of the journeys in progress.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from synthetics.engine.bouts import RecentSessions
from synthetics.engine.incidents import Incidents, IncidentSpec
from synthetics.engine.lifecycle import SignupAccounts, pool_changed
from synthetics.engine.minute import journeys_advanced, minute_step, remember
from synthetics.engine.onboarding import merged
from synthetics.engine.pool import Pool
from synthetics.engine.rhythm import PoolRhythm
from synthetics.engine.sampling import run_random
from synthetics.engine.types import (
    Catalogue,
    EventRecord,
    GeneratorSettings,
    PoolMember,
)


@dataclass(slots=True)
class SimulationStats:
    minutes: int = 0
    sessions: int = 0
    scene_events: int = 0
    mindblock_events: int = 0
    outcomes: dict[str, int] = field(
        default_factory=lambda: {"completed": 0, "abandoned": 0, "errored": 0}
    )
    active_samples: list[int] = field(default_factory=list)
    durations_seconds: list[float] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    # with keep_starts: (sim user id, started at) of every session; the pool's members ever seen
    starts: list[tuple[int, datetime]] = field(default_factory=list)
    members: dict[int, PoolMember] = field(default_factory=dict)
    churned: dict[int, datetime] = field(default_factory=dict)  # sim user id -> when
    # with keep_starts: (sim user id, started at, outcome) of every session that ended
    ended: list[tuple[int, datetime, str]] = field(default_factory=list)

    @property
    def finished(self) -> int:
        return sum(self.outcomes.values())

    @property
    def mean_active(self) -> float:
        return sum(self.active_samples) / len(self.active_samples) if self.active_samples else 0.0

    @property
    def mean_duration_minutes(self) -> float:
        if not self.durations_seconds:
            return 0.0
        return sum(self.durations_seconds) / len(self.durations_seconds) / 60


def simulate_minutes(
    *,
    settings: GeneratorSettings,
    catalogue: Catalogue,
    pool: Sequence[PoolMember],
    start: datetime,
    minutes: int,
    seed: int,
    keep_events: bool = False,
    keep_starts: bool = False,
    incidents: Sequence[IncidentSpec] = (),
    warmup: int = 0,
) -> SimulationStats:
    """Run one scheduled run per simulated minute from `start` and collect the statistics (of the
    minutes after the first `warmup`, which only bring the journeys in progress to a steady state).

    With sign-ups or churn set, the pool changes as it would in the database (engine.lifecycle):
    newcomers get the next ids, churned members leave, newcomers settle at midnight.
    """
    stats = SimulationStats()
    active: dict = {}
    pool = Pool.of(pool)
    rhythm = PoolRhythm(pool, catalogue.rhythms)
    recent = RecentSessions(catalogue.behaviour.bout_minutes)
    scheduled = Incidents(incidents, catalogue) if incidents else None
    accounts = len(pool)  # account numbers taken: newcomers take the next ones
    next_id = itertools.count(max(pool.ids, default=0) + 1)
    if keep_starts:
        stats.members.update((member.sim_user_id, member) for member in pool)
    for minute in range(1, minutes + 1):
        window_start = start + timedelta(minutes=minute - 1)
        now = start + timedelta(minutes=minute)
        step = minute_step(
            settings=settings,
            catalogue=catalogue,
            pool=pool,
            rhythm=rhythm,
            active=list(active.values()),
            window_start=window_start,
            window_end=now,
            rng=run_random(
                seed=seed, trigger="scheduled", window_start=window_start, window_end=now
            ),
            seed=seed,
            accounts=SignupAccounts(lambda taken=accounts: taken + 1, "example.invalid"),
            incidents=scheduled,
            recent=recent,
        )
        outcome, changes = step.outcome, step.changes
        observed = minute > warmup
        joined = []
        if changes:
            for profile in changes.newcomers:
                sim_user_id = next(next_id)
                joined.append(profile.member(sim_user_id=sim_user_id, user_id=sim_user_id))
            if changes.onboarding:  # each newcomer's first session (engine.onboarding)
                outcome = merged(outcome, step.first_sessions(joined, now))
        remember(recent, [outcome], now)
        ended, ended_new = journeys_advanced(active, outcome)
        if observed:
            for update, journey in ended:
                stats.outcomes[update.status] += 1
                stats.durations_seconds.append(
                    (update.ended_at - journey.started_at).total_seconds()
                )
            for new in ended_new:
                stats.outcomes[new.status] += 1
                stats.durations_seconds.append((new.ended_at - new.started_at).total_seconds())
            if keep_starts:
                stats.ended.extend(
                    (journey.sim_user_id, journey.started_at, update.status)
                    for update, journey in ended
                )
                stats.ended.extend(
                    (new.sim_user_id, new.started_at, new.status) for new in ended_new
                )
        if changes:
            accounts += len(changes.newcomers)
            pool = pool_changed(pool, changes, joined)
            rhythm = (
                rhythm.grown(pool)  # sign-ups only: the members it has are where they were
                if not changes.churned and not changes.settled
                else PoolRhythm(pool, catalogue.rhythms)
            )
            if keep_starts:
                stats.members.update((member.sim_user_id, member) for member in joined)
                stats.churned.update((member.sim_user_id, now) for member in changes.churned)
        if not observed:
            continue
        if keep_starts:
            stats.starts.extend((new.sim_user_id, new.started_at) for new in outcome.new_journeys)
        stats.minutes += 1
        stats.sessions += outcome.sessions_started
        stats.scene_events += outcome.scene_events
        stats.mindblock_events += outcome.mindblock_events
        stats.active_samples.append(len(active))
        if keep_events:
            stats.events.extend(outcome.events)
    return stats
