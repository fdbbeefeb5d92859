"""Sign-ups as first sessions: each newcomer signs up at the start of their first session.

The run that signs newcomers up (engine.lifecycle: each at a moment of its window, as many as the
pool's rhythm there asks) plans, from its own stream, each newcomer's first session through the
behaviour's `onboarding` template, starting at that moment: the account's join time is the first
event's. Their accounts are made after the run's step (their ids come from the database), so the
plans wait in PoolChanges.onboarding and `onboarding_outcome` turns them into journeys and events
once the ids are known (services: in the same transaction, tagged with the same run). Nobody else
runs the onboarding template (`regular_templates`): onboarding happens once.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from synthetics.engine.picking import onboarding_template
from synthetics.engine.planning import plan_journey
from synthetics.engine.population import Profile
from synthetics.engine.run import _due, _events_for, from_ms
from synthetics.engine.sampling import random_uuid, weighted_choice
from synthetics.engine.types import (
    Catalogue,
    GeneratorSettings,
    NewJourney,
    Plan,
    PoolMember,
    RunOutcome,
)


@dataclass(frozen=True, slots=True)
class Onboarding:
    """A newcomer's first session as planned by the run that signed them up."""

    journey_id: uuid.UUID
    template_id: int
    plan: Plan
    start_ms: int


def onboarding_planned(
    rng: random.Random,
    *,
    catalogue: Catalogue,
    settings: GeneratorSettings,
    newcomers: Sequence[Profile],
    odds,
) -> tuple[Onboarding, ...]:
    """Each newcomer's first session, from their sign-up moment (`odds(member, at_ms)`: the
    segment's multipliers, engine.picking.Segments)."""
    templates = [t for t in catalogue.templates if t.popularity > 0 and t.scenes]
    if not newcomers or not templates:
        return ()
    fixed = onboarding_template(catalogue)
    planned = []
    for profile in newcomers:
        template = fixed or weighted_choice(rng, templates, [t.popularity for t in templates])
        start_ms = profile.joined_ms
        member = profile.member(sim_user_id=0, user_id=0)
        plan = plan_journey(
            rng,
            template=template,
            catalogue=catalogue,
            settings=settings,
            persona=profile.persona,
            start_ms=start_ms,
            odds=odds(member, start_ms),
        )
        planned.append(Onboarding(random_uuid(rng), template.id, plan, start_ms))
    return tuple(planned)


def onboarding_outcome(
    onboarding: Sequence[Onboarding], joined: Sequence[PoolMember] | None, *, now_ms: int
) -> RunOutcome:
    """The first sessions as journeys and the events due by `now_ms`, for the newcomers `joined`
    (their members with ids, in the newcomers' order). None: placeholders (ids 0), for counting
    what the run will write before the accounts exist."""
    if joined is not None and len(joined) != len(onboarding):
        raise ValueError("one joined member per planned first session")
    new_journeys, events, active = [], [], 0
    for index, first in enumerate(onboarding):
        member = joined[index] if joined is not None else None
        sim_user_id = member.sim_user_id if member else 0
        user_id = member.user_id if member else 0
        plan = first.plan
        due = _due(plan, 0, now_ms)
        events += _events_for(
            journey_id=first.journey_id, user_id=user_id, plan=plan, start=0, stop=due
        )
        finished = plan.end_ms <= now_ms and due == len(plan.steps)
        active += 0 if finished else 1
        new_journeys.append(
            NewJourney(
                id=first.journey_id,
                sim_user_id=sim_user_id,
                user_id=user_id,
                template_id=first.template_id,
                started_at=from_ms(first.start_ms),
                ended_at=from_ms(plan.end_ms) if finished else None,
                status=plan.outcome if finished else "active",
                plan=plan,
                next_step=due,
            )
        )
    events.sort(key=lambda event: (event.at_ms, event.journey_id.int))
    return RunOutcome(
        new_journeys=tuple(new_journeys),
        journey_updates=(),
        events=tuple(events),
        sessions_requested=len(new_journeys),
        active_after=active,
    )


def merged(outcome: RunOutcome, first: RunOutcome) -> RunOutcome:
    """A run's outcome with its newcomers' first sessions: what its ledger row counts."""
    if not first.new_journeys:
        return outcome
    return RunOutcome(
        new_journeys=outcome.new_journeys + first.new_journeys,
        journey_updates=outcome.journey_updates,
        events=tuple(
            sorted(outcome.events + first.events, key=lambda e: (e.at_ms, e.journey_id.int))
        ),
        sessions_requested=outcome.sessions_requested,
        active_after=outcome.active_after + first.active_after,
    )
