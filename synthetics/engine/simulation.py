"""Running many runs in memory, exactly as the scheduler would minute after minute.

Used by the statistical tests and the benchmarks: the same engine calls as a real run, with the
database replaced by a list of active journeys.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from synthetics.engine.incidents import Incidents, IncidentSpec
from synthetics.engine.lifecycle import pool_changed, pool_changes
from synthetics.engine.rhythm import PoolRhythm
from synthetics.engine.run import simulate_run, window_session_count
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
    pool = list(pool)
    rhythm = PoolRhythm(pool, catalogue.rhythms)
    scheduled = Incidents(incidents, catalogue) if incidents else None
    accounts = len(pool)  # account numbers taken: newcomers take the next ones
    next_id = itertools.count(max((m.sim_user_id for m in pool), default=0) + 1)
    if keep_starts:
        stats.members.update((member.sim_user_id, member) for member in pool)
    for minute in range(1, minutes + 1):
        window_start = start + timedelta(minutes=minute - 1)
        now = start + timedelta(minutes=minute)
        rng = run_random(seed=seed, trigger="scheduled", window_start=window_start, window_end=now)
        sessions = window_session_count(
            settings=settings,
            window_start=window_start,
            window_end=now,
            rng=rng,
            rhythm=rhythm,
            incidents=scheduled,
        )
        outcome = simulate_run(
            settings=settings,
            catalogue=catalogue,
            pool=pool,
            active=list(active.values()),
            window_start=window_start,
            now=now,
            sessions=sessions,
            rng=rng,
            rhythm=rhythm,
            incidents=scheduled,
        )
        # busy as a database run sees it: in progress when the minute began, or started in it
        busy = {j.sim_user_id for j in active.values()} | {
            j.sim_user_id for j in outcome.new_journeys
        }
        observed = minute > warmup
        for update in outcome.journey_updates:
            journey = active[update.id]
            if update.status == "active":
                active[update.id] = journey.at_step(update.next_step)
            else:
                del active[update.id]
                if observed:
                    stats.outcomes[update.status] += 1
                    stats.durations_seconds.append(
                        (update.ended_at - journey.started_at).total_seconds()
                    )
        for new in outcome.new_journeys:
            if new.status == "active":
                active[new.id] = new.in_progress()
            elif observed:
                stats.outcomes[new.status] += 1
                stats.durations_seconds.append((new.ended_at - new.started_at).total_seconds())
        changes = pool_changes(
            settings=settings,
            pool=pool,
            busy=busy,
            window_start=window_start,
            window_end=now,
            rng=rng,
            seed=seed,
            next_index=lambda taken=accounts: taken + 1,
            email_domain="example.invalid",
        )
        if changes:
            joined = []
            for profile in changes.newcomers:
                sim_user_id = next(next_id)
                joined.append(profile.member(sim_user_id=sim_user_id, user_id=sim_user_id))
            accounts += len(changes.newcomers)
            pool = pool_changed(pool, changes, joined)
            rhythm = PoolRhythm(pool, catalogue.rhythms)
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
