"""One generator run at simulated time `now`.

A run first advances every active journey through the planned steps whose time has come, then
starts new sessions at times spread over the run's window, each for an idle simulated user. Nothing
is ever dated after `now`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from synthetics.engine.behaviour import Behaviour, rate_factor
from synthetics.engine.bouts import RecentSessions
from synthetics.engine.errors import EngineError, InvalidTarget
from synthetics.engine.incidents import Incidents, lifted_cap
from synthetics.engine.picking import Segments, pick_members, regular_templates
from synthetics.engine.planning import plan_journey
from synthetics.engine.rhythm import PoolRhythm
from synthetics.engine.sampling import (
    poisson,
    random_uuid,
    weighted_choice,
)
from synthetics.engine.types import (
    SESSION_STARTED,
    ActiveJourney,
    Catalogue,
    EventRecord,
    GeneratorSettings,
    JourneyUpdate,
    NewJourney,
    Plan,
    PoolMember,
    RunOutcome,
)

# A session with nothing written for this long (the generator was down or paused) is closed as
# abandoned instead of writing a burst of old events when generation resumes.
STALE_AFTER = timedelta(minutes=15)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise EngineError("times passed to the engine must be timezone-aware")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    # Exact, and twice as fast as _EPOCH + timedelta(milliseconds=ms): ms / 1000 is within half
    # an ulp of the true value (under 0.5 µs for any time before 2^33 s, in 2242), and
    # fromtimestamp rounds to the nearest microsecond, which a whole millisecond is (a test
    # compares the two up to 2223; the engine never simulates after the real now).
    return datetime.fromtimestamp(ms / 1000, UTC)


def scheduled_session_count(
    *,
    settings: GeneratorSettings,
    minutes: float,
    rng: random.Random,
    rate: float = 1.0,
    shards: int = 1,
    surge: float = 1.0,
) -> int:
    """Sessions a scheduled run starts: Poisson(sessions_per_min x minutes x rate), capped at
    max_per_run; `rate` is the pool's rhythm over the window (1: a flat rate). `surge` is what
    incidents multiply the window's sessions by: the mean by as much, the cap lifted by as much
    when it is above 1 (engine.incidents.lifted_cap).

    A run of one shard of `shards` starts Poisson(sessions_per_min x minutes x rate / shards),
    capped at ceil(max_per_run / shards). Independent Poisson counts add up to a Poisson count of
    the whole mean, so while the cap does not bind the shards of a window together start what one
    run would. Where it binds, each shard is capped on its own: the window's total can then fall
    short of one run's capped mean (a sum of capped counts is not a capped sum: at 2 a minute, cap
    5 and 8 shards, 1.77 a minute against 1.98; expected_sessions gives the exact mean) or exceed
    max_per_run by up to shards - 1."""
    if minutes <= 0:
        return 0
    if surge != 1.0:
        rate *= surge
    if shards == 1:
        cap = lifted_cap(settings.max_per_run, surge)
        return min(poisson(rng, settings.sessions_per_min * minutes * rate), cap)
    cap = lifted_cap(-(-settings.max_per_run // shards), surge)
    return min(poisson(rng, settings.sessions_per_min * minutes * rate / shards), cap)


def window_session_count(
    *,
    settings: GeneratorSettings,
    window_start: datetime,
    window_end: datetime,
    rng: random.Random,
    rhythm: PoolRhythm | None,
    shards: int = 1,
    incidents: Incidents | None = None,
    behaviour: Behaviour | None = None,
    seed: int | None = None,
) -> int:
    """scheduled_session_count over (window_start, window_end] at the pool's rhythm there (for a
    shard: the rhythm of its slice of the pool), times the behaviour's day and drift factor there
    (with a `seed`: engine.behaviour.rate_factor, the same for every shard), multiplied by the
    incidents' surge there."""
    rate = (
        rhythm.window_rate(window_start, window_end, strength=settings.rhythm_strength)
        if rhythm is not None
        else 1.0
    )
    minutes = (window_end - window_start) / timedelta(minutes=1)
    if behaviour is not None and seed is not None:
        rate *= window_rate_factor(
            behaviour,
            seed=seed,
            start=window_start,
            end=window_end,
            strength=settings.rhythm_strength,
        )
    surge = 1.0
    if incidents is not None:
        start_ms, end_ms = to_ms(window_start), to_ms(window_end)
        over = incidents.over(start_ms, end_ms)
        if over is not None:
            surge = over.window_factor(start_ms, end_ms)
    return scheduled_session_count(
        settings=settings, minutes=minutes, rng=rng, rate=rate, shards=shards, surge=surge
    )


def window_rate_factor(
    behaviour: Behaviour, *, seed: int, start: datetime, end: datetime, strength: float = 1.0
) -> float:
    """The mean of the behaviour's rate factor over the minutes of (start, end] (each at the middle
    of its minute)."""
    minutes = max(1, int((end - start) / timedelta(minutes=1)))
    first = to_ms(start) + 30_000
    return (
        sum(
            rate_factor(behaviour, seed=seed, at_ms=first + 60_000 * m, strength=strength)
            for m in range(minutes)
        )
        / minutes
    )


def capped_poisson_mean(mean: float, cap: int) -> float:
    """E[min(Poisson(mean), cap)] = cap - sum over k < cap of (cap - k) P(k), summed exactly."""
    if mean <= 0 or cap <= 0:
        return 0.0
    probability, shortfall = math.exp(-mean), 0.0
    for k in range(cap):
        shortfall += (cap - k) * probability
        probability *= mean / (k + 1)
    return cap - shortfall


@dataclass(frozen=True, slots=True)
class ExpectedSessions:
    """Sessions expected from scheduled runs over a span of minutes (one run a minute)."""

    minutes: int
    uncapped: float  # sessions_per_min x sum of R over the minutes
    capped: float  # what max_per_run lets through
    rates: tuple[float, ...] = ()  # R at each step (each minute, or each step_minutes)

    @property
    def trimmed_share(self) -> float:
        """The share of the rhythm's sessions that max_per_run trims."""
        return 1 - self.capped / self.uncapped if self.uncapped else 0.0


def expected_sessions(
    *,
    settings: GeneratorSettings,
    rhythm: PoolRhythm | None,
    start: datetime,
    minutes: int,
    step_minutes: int = 1,
    shards: int = 1,
) -> ExpectedSessions:
    """The sessions one run a minute is expected to start from `start`: computed, not sampled.

    R is taken at the middle of each minute, or with `step_minutes` > 1 once per step (at its
    middle) for all its minutes: a week at hourly steps is 168 evaluations instead of 10,080. With
    `shards`, the runs are split so (scheduled_session_count: each shard capped on its own).
    """
    uncapped = capped = 0.0
    rates = []
    for offset in range(0, minutes, step_minutes):
        count = min(step_minutes, minutes - offset)
        middle = start + timedelta(minutes=offset) + timedelta(minutes=count) / 2
        rate = rhythm.rate(middle, strength=settings.rhythm_strength) if rhythm is not None else 1.0
        rates.append(rate)
        mean = settings.sessions_per_min * rate
        uncapped += mean * count
        if shards == 1:
            capped += capped_poisson_mean(mean, settings.max_per_run) * count
        else:  # each shard capped on its own (scheduled_session_count)
            cap = -(-settings.max_per_run // shards)
            capped += shards * capped_poisson_mean(mean / shards, cap) * count

    return ExpectedSessions(minutes=minutes, uncapped=uncapped, capped=capped, rates=tuple(rates))


# A manual run answers an HTTP request inside its 20-second budget: at most this many sessions,
# whatever max_per_run allows the schedule (up to 100,000 a minute, split into shards).
MAX_MANUAL_TARGET = 1000


def manual_target_limit(settings: GeneratorSettings) -> int:
    """The most sessions a manual run may start: max_per_run, and never above MAX_MANUAL_TARGET."""
    return min(settings.max_per_run, MAX_MANUAL_TARGET)


def manual_target_rule(settings: GeneratorSettings) -> str:
    """The one rule for a manual run's target, as every refusal (API, admin, Studio, command) says."""
    limit = manual_target_limit(settings)
    why = (
        f"max_per_run is {settings.max_per_run:,}"
        if settings.max_per_run <= MAX_MANUAL_TARGET
        else f"a manual run answers within one request (max_per_run is {settings.max_per_run:,})"
    )
    if limit < 1:
        return (
            f"no manual run is possible while max_per_run is {settings.max_per_run}: raise it first"
        )
    return f"target must be a whole number from 1 to {limit:,} ({why})"


def manual_session_count(*, settings: GeneratorSettings, target: int) -> int:
    """A manual run starts exactly `target` sessions; refuse a target outside
    1..manual_target_limit, with the one message of manual_target_rule."""
    if isinstance(target, bool) or not isinstance(target, int):
        raise InvalidTarget(f"{manual_target_rule(settings)}; got {target!r}.")
    if not 1 <= target <= manual_target_limit(settings):
        raise InvalidTarget(f"{manual_target_rule(settings)}; got {target}.")
    return target


def _events_for(
    *,
    journey_id,
    user_id: int,
    plan: Plan,
    start: int,
    stop: int,
) -> list[EventRecord]:
    events = []
    for index in range(start, stop):
        step = plan.steps[index]
        payload = {
            "synthetic": True,
            "template": plan.template_slug,
            "scene": step.scene_slug,
            "scene_position": step.scene_position,
            "persona": plan.persona,
            "step": index,
        }
        if step.mindblock_slug:
            payload["mindblock"] = step.mindblock_slug
        payload.update(step.extra)
        events.append(
            EventRecord(
                kind=step.kind,
                user_id=user_id,
                journey_id=journey_id,
                scene_id=step.scene_id,
                mindblock_id=step.mindblock_id,
                event_type=step.event_type,
                at_ms=step.at_ms,
                payload=payload,
            )
        )
    return events


def session_started(journey: NewJourney) -> EventRecord:
    """A journey's start as a row of an attached application's sessions table (the kind
    "session"): at the journey's start, with its template, persona and id in the payload. Demo
    mode has no such table: its journeys are the sessions."""
    return EventRecord(
        kind="session",
        user_id=journey.user_id,
        journey_id=journey.id,
        scene_id=None,
        mindblock_id=None,
        event_type=SESSION_STARTED,
        at_ms=to_ms(journey.started_at),
        payload={
            "synthetic": True,
            "template": journey.plan.template_slug,
            "persona": journey.plan.persona,
            "journey_id": str(journey.id),
        },
    )


def next_due(plan: Plan, cursor: int) -> datetime:
    """When a journey at `cursor` next has something to write: its next step, or its end."""
    return from_ms(next_due_ms(plan, cursor))


def next_due_ms(plan: Plan, cursor: int) -> int:
    """next_due in milliseconds since the epoch."""
    return plan.steps[cursor].at_ms if cursor < len(plan.steps) else plan.end_ms


def _due(plan: Plan, cursor: int, now_ms: int) -> int:
    """Index of the first step still in the future."""
    while cursor < len(plan.steps) and plan.steps[cursor].at_ms <= now_ms:
        cursor += 1
    return cursor


def simulate_run(
    *,
    settings: GeneratorSettings,
    catalogue: Catalogue,
    pool: Sequence[PoolMember],
    active: Sequence[ActiveJourney],
    window_start: datetime,
    now: datetime,
    sessions: int,
    rng: random.Random,
    rhythm: PoolRhythm | None = None,
    waiting: Collection[int] = (),
    incidents: Incidents | None = None,
    seed: int = 0,
    recent: RecentSessions | None = None,
) -> RunOutcome:
    """Advance `active` to `now` and start `sessions` new sessions inside (window_start, now].

    Who starts a session is picked in proportion to activity weight x their own rhythm at `now`
    (`rhythm`, built on this `pool`; without it, activity weight alone).

    `active` may hold only the journeys due by `now` (next_due(...) <= now): a journey whose next
    step is later writes nothing and changes nothing in this run. The others are then `waiting`,
    the sim user ids of their users: busy, and counted in `active_after`.

    `incidents` (engine.incidents) change the sessions that start inside them: when they start,
    which template, the rates of their outcome, and their payloads.

    The catalogue's behaviour (engine.behaviour) decides the rest: returns of the users of `recent`
    sessions (engine.bouts), lapsed users, the odds of each session's outcome by its segment and
    the error spells of `seed` (engine.picking, Segments).
    """
    behaviour = catalogue.behaviour
    if window_start > now:
        raise EngineError(f"window_start {window_start} is after now {now}")
    if sessions < 0:
        raise EngineError(f"sessions must be >= 0, got {sessions}")
    now_ms, window_ms = to_ms(now), to_ms(window_start)
    stale_before_ms = to_ms(now - STALE_AFTER)
    events: list[EventRecord] = []
    updates: list[JourneyUpdate] = []
    still_active = len(waiting)

    # 1. Advance the sessions in progress, in a fixed order.
    # (A UUID's 128-bit int orders as its fixed-width hex text does: the order of str(id), cheaper.)
    for journey in sorted(active, key=lambda j: (j.started_at, j.id.int)):
        plan = journey.plan
        cursor = journey.next_step
        pending_ms = plan.steps[cursor].at_ms if cursor < len(plan.steps) else plan.end_ms
        if pending_ms <= now_ms and pending_ms < stale_before_ms:
            last_ms = plan.steps[cursor - 1].at_ms if cursor > 0 else to_ms(journey.started_at)
            updates.append(JourneyUpdate(journey.id, cursor, "abandoned", from_ms(last_ms)))
            continue
        due = _due(plan, cursor, now_ms)
        events += _events_for(
            journey_id=journey.id, user_id=journey.user_id, plan=plan, start=cursor, stop=due
        )
        if plan.end_ms <= now_ms and due == len(plan.steps):
            updates.append(JourneyUpdate(journey.id, due, plan.outcome, from_ms(plan.end_ms)))
        else:
            still_active += 1
            if due != cursor:
                updates.append(JourneyUpdate(journey.id, due, "active", None, next_due(plan, due)))

    # 2. Start new sessions, each for a distinct user who has no session in progress.
    new_journeys: list[NewJourney] = []
    templates = regular_templates(catalogue)  # onboarding is a newcomer's first session only
    if sessions > 0:
        if not templates:
            raise EngineError("the catalogue has no active journey template with scenes")
        busy = {journey.sim_user_id for journey in active}
        busy.update(waiting)
        weights = (
            rhythm.user_weights(now, strength=settings.rhythm_strength)
            if rhythm is not None
            else [member.activity_weight for member in pool]
        )
        chosen = pick_members(
            rng,
            pool=pool,
            weights=weights,
            cumulative=(
                rhythm.cumulative_weights(now, strength=settings.rhythm_strength)
                if rhythm is not None
                else None
            ),
            count=sessions,
            busy=busy,
            behaviour=behaviour,
            at_ms=now_ms,
            recent=recent,
            index_of=rhythm.index_of() if rhythm is not None else None,
        )
        if incidents is not None:
            incidents = incidents.over(window_ms, now_ms)
        span_ms = now_ms - window_ms
        # Sessions asked for where incidents stop every new session (a multiplier of 0 over the
        # whole window: only a manual run's exact target gets here) start as without a multiplier;
        # the incidents' rates and labels still apply to them.
        spread = incidents is not None and incidents.window_factor(window_ms, now_ms) > 0
        if not spread:
            starts = sorted(
                window_ms + int(rng.random() * span_ms) + (1 if span_ms else 0) for _ in chosen
            )
        else:
            starts = sorted(incidents.start_at(rng.random(), window_ms, now_ms) for _ in chosen)
        starts = [min(start, now_ms) for start in starts]
        popularity = [t.popularity for t in templates]
        segment = Segments(
            behaviour,
            seed=seed,
            settings=settings,
            rhythm=rhythm,
            catalogue=catalogue,
            errored=recent.last_errored() if recent is not None else {},
            at_ms=now_ms,
            recent=recent,
        )
        for member, start_ms in zip(chosen, starts, strict=True):
            incident = None
            if incidents is None:
                template = weighted_choice(rng, templates, popularity)
            else:
                weights = incidents.template_weights(templates, start_ms) if spread else popularity
                template = weighted_choice(rng, templates, weights)
                incident = incidents.session(template, start_ms, settings)
            plan = plan_journey(
                rng,
                template=template,
                catalogue=catalogue,
                settings=settings,
                persona=member.persona,
                start_ms=start_ms,
                incident=incident,
                odds=None if incident is not None else segment.odds(member, start_ms),
            )
            journey_id = random_uuid(rng)
            due = _due(plan, 0, now_ms)
            events += _events_for(
                journey_id=journey_id, user_id=member.user_id, plan=plan, start=0, stop=due
            )
            finished = plan.end_ms <= now_ms and due == len(plan.steps)
            still_active += 0 if finished else 1
            new_journeys.append(
                NewJourney(
                    id=journey_id,
                    sim_user_id=member.sim_user_id,
                    user_id=member.user_id,
                    template_id=template.id,
                    started_at=from_ms(start_ms),
                    ended_at=from_ms(plan.end_ms) if finished else None,
                    status=plan.outcome if finished else "active",
                    plan=plan,
                    next_step=due,
                )
            )

    events.sort(key=lambda event: (event.at_ms, event.journey_id.int))
    return RunOutcome(
        new_journeys=tuple(new_journeys),
        journey_updates=tuple(updates),
        events=tuple(events),
        sessions_requested=sessions,
        active_after=still_active,
    )
