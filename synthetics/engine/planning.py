"""Planning one session: its outcome, the scenes it visits, when, and the mindblocks it reports.

Everything about a session is decided when it starts, from the run's random stream; runs then write
the planned steps as their time comes. See docs/behaviour.md for the numbers.
"""

from __future__ import annotations

import math
import random

from synthetics.engine.behaviour import (
    DEFAULT_BEHAVIOUR,
    Behaviour,
    intensity_weights,
    scene_spread,
)
from synthetics.engine.incidents import SessionIncident
from synthetics.engine.population import PERSONA_BY_SLUG
from synthetics.engine.sampling import exponential, lognormal, uniform, weighted_choice
from synthetics.engine.types import (
    JOURNEY_COMPLETED,
    MINDBLOCK_REPORTED,
    SCENE_ENTERED,
    SCENE_ERROR,
    Catalogue,
    GeneratorSettings,
    MindblockSpec,
    Outcome,
    Plan,
    SceneSpec,
    Step,
    TemplateSpec,
)

# Dwell time in a scene is log-normal around the scene's median with the scene's own spread
# (engine.behaviour.scene_spread): right-skewed, a long tail of people who linger. A draw outside
# DWELL_BOUNDS x the median (a chance of about 1 in 10,000 at the largest spread) is drawn again:
# no pile-up at a floor or a ceiling.
DWELL_BOUNDS = (1 / 60, 60.0)
DWELL_FLOOR_SECONDS = 0.3  # no visit is shorter (a bounce's exponential draw is redrawn below it)

INTENSITIES = (1, 2, 3, 4, 5)

ERROR_CODES: tuple[tuple[str, float], ...] = (
    ("network_timeout", 0.35),
    ("server_error", 0.25),
    ("validation_failed", 0.2),
    ("media_load_failed", 0.15),
    ("client_crash", 0.05),
)


def choose_outcome(
    rng: random.Random, settings: GeneratorSettings, odds: tuple[float, float] | None = None
) -> Outcome:
    """Exclusive outcomes: abandoned with abandon_rate, errored with error_rate, else completed;
    with `odds` (engine.picking.Segments: the session's segment), each rate times its multiplier
    (abandon at most 1, error at most what abandon leaves)."""
    abandon, error = settings.abandon_rate, settings.error_rate
    if odds is not None:
        abandon = min(1.0, abandon * odds[0])
        error = min(1.0 - abandon, error * odds[1])
    draw = rng.random()
    if draw < abandon:
        return "abandoned"
    if draw < abandon + error:
        return "errored"
    return "completed"


def dwell_ms(rng: random.Random, scene: SceneSpec, behaviour: Behaviour = DEFAULT_BEHAVIOUR) -> int:
    median = scene.dwell_median_seconds
    spread = scene_spread(behaviour, scene.slug)
    low, high = max(DWELL_FLOOR_SECONDS, median * DWELL_BOUNDS[0]), median * DWELL_BOUNDS[1]
    for _ in range(16):
        seconds = lognormal(rng, math.log(median), spread)
        if low <= seconds <= high:
            break
    else:
        seconds = median
    return int(seconds * 1000)


def bounce_ms(rng: random.Random, behaviour: Behaviour) -> int:
    """A bounce's visit: exponential with mean bounce_seconds, redrawn below the floor."""
    for _ in range(16):
        seconds = exponential(rng, behaviour.bounce_seconds)
        if seconds >= DWELL_FLOOR_SECONDS:
            return int(seconds * 1000)
    return int(behaviour.bounce_seconds * 1000)


def _step(
    scene: SceneSpec,
    at_ms: int,
    event_type: str,
    kind: str = "scene",
    mindblock_id: int | None = None,
    mindblock_slug: str | None = None,
    extra: dict | None = None,
) -> Step:
    """A step of the plan in `scene`: entering it, failing in it, or a mindblock reported there.
    (Positional all the way to Step: a plan builds a few per session.)"""
    return Step(
        at_ms, kind, event_type, scene.id, scene.slug, scene.position, mindblock_id,
        mindblock_slug, {} if extra is None else extra,
    )  # fmt: skip


def _mindblock_step(
    rng: random.Random,
    *,
    scene: SceneSpec,
    mindblocks: tuple[MindblockSpec, ...],
    entered_ms: int,
    visit_ms: int,
    behaviour: Behaviour,
) -> Step:
    mindblock = weighted_choice(rng, mindblocks, [m.weight for m in mindblocks])
    offset = max(1, int(visit_ms * uniform(rng, 0.1, 0.9)))
    intensity = weighted_choice(rng, INTENSITIES, intensity_weights(behaviour, mindblock.slug))
    return _step(
        scene,
        at_ms=entered_ms + offset,
        kind="mindblock",
        event_type=MINDBLOCK_REPORTED,
        mindblock_id=mindblock.id,
        mindblock_slug=mindblock.slug,
        extra={"intensity": intensity},
    )


def _stop_index(rng: random.Random, scenes, outcome: Outcome) -> int:
    """The scene a session ends in: the last one when completed; else one chosen by the scenes'
    drop-off weights (abandoned) or error weights (errored) — each template's own funnel, while the
    outcome itself, and so the overall abandon and error rates, were drawn before. All weights 0:
    every scene alike."""
    if outcome == "completed":
        return len(scenes) - 1
    weights = [s.dropoff_weight if outcome == "abandoned" else s.error_weight for s in scenes]
    if sum(weights) <= 0:
        weights = [1.0] * len(scenes)
    return weighted_choice(rng, range(len(scenes)), weights)


def plan_journey(
    rng: random.Random,
    *,
    template: TemplateSpec,
    catalogue: Catalogue,
    settings: GeneratorSettings,
    persona: str,
    start_ms: int,
    incident: SessionIncident | None = None,
    odds: tuple[float, float] | None = None,
) -> Plan:
    """Plan a session through `template` that starts at `start_ms` (epoch milliseconds).

    Under an `incident` (engine.incidents) its outcome is drawn with the incident's rates, an
    outcome whose rate a scene's incident set happens in that scene, and every step names the
    incidents. `odds`: the session's segment's multipliers of the abandon and error rates.

    An abandoned session is, with chance bounce_share, a bounce: it leaves the first scene after a
    few seconds (engine.behaviour)."""
    behaviour = catalogue.behaviour
    if incident is not None:
        settings = incident.settings
    outcome = choose_outcome(rng, settings, odds)
    scenes = template.scenes
    bounce = (
        outcome == "abandoned"
        and behaviour.bounce_share > 0
        and rng.random() < behaviour.bounce_share
    )
    # The scene where an abandoned session is left, or where an errored one fails.
    stop_index = 0 if bounce else _stop_index(rng, scenes, outcome)
    if incident is not None and incident.stop_scene(outcome):
        stop_index = next(i for i, s in enumerate(scenes) if s.slug == incident.stop_scene(outcome))
    multiplier = (
        PERSONA_BY_SLUG[persona].mindblock_multiplier if persona in PERSONA_BY_SLUG else 1.0
    )
    steps: list[Step] = []
    clock = start_ms
    for index, scene in enumerate(scenes[: stop_index + 1]):
        visit = bounce_ms(rng, behaviour) if bounce else dwell_ms(rng, scene, behaviour)
        steps.append(_step(scene, clock, SCENE_ENTERED))
        failing_here = outcome == "errored" and index == stop_index
        if failing_here:
            visit = max(1, int(visit * uniform(rng, 0.2, 0.9)))  # fails part-way through the visit
        mindblock_chance = 0.0 if bounce else min(1.0, scene.mindblock_rate * multiplier)
        if catalogue.mindblocks and rng.random() < mindblock_chance:
            steps.append(
                _mindblock_step(
                    rng,
                    scene=scene,
                    mindblocks=catalogue.mindblocks,
                    entered_ms=clock,
                    visit_ms=visit,
                    behaviour=behaviour,
                )
            )
        clock += visit
        if failing_here:
            code = weighted_choice(rng, [c for c, _ in ERROR_CODES], [w for _, w in ERROR_CODES])
            steps.append(
                _step(scene, at_ms=clock, event_type=SCENE_ERROR, extra={"error_code": code})
            )
    if outcome == "completed":
        last = scenes[-1]
        steps.append(
            Step(
                at_ms=clock,
                kind="scene",
                event_type=JOURNEY_COMPLETED,
                scene_id=last.id,
                scene_slug=last.slug,
                scene_position=last.position,
            )
        )
    steps.sort(key=lambda step: step.at_ms)  # stable: equal times keep their planned order
    plan = Plan(
        template_slug=template.slug,
        persona=persona,
        outcome=outcome,
        end_ms=clock,
        steps=tuple(steps),
    )
    return incident.marked(plan) if incident is not None else plan
