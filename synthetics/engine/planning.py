"""Planning one session: its outcome, the scenes it visits, when, and the mindblocks it reports.

Everything about a session is decided when it starts, from the run's random stream; runs then write
the planned steps as their time comes. See README "Behaviour model" for the numbers.
"""

from __future__ import annotations

import math
import random

from synthetics.engine.incidents import SessionIncident
from synthetics.engine.population import PERSONA_BY_SLUG
from synthetics.engine.sampling import integer_between, lognormal, uniform, weighted_choice
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

# Dwell time in a scene is log-normal around the scene's median: right-skewed, most visits near the
# median and a long tail of people who linger. Mean = median * exp(sigma^2 / 2) ~ 1.38 x median.
DWELL_SIGMA = 0.8
DWELL_MIN_SECONDS = 3.0
DWELL_MAX_FACTOR = 20.0  # a visit never lasts more than 20 x the scene's median

ERROR_CODES: tuple[tuple[str, float], ...] = (
    ("network_timeout", 0.35),
    ("server_error", 0.25),
    ("validation_failed", 0.2),
    ("media_load_failed", 0.15),
    ("client_crash", 0.05),
)


def choose_outcome(rng: random.Random, settings: GeneratorSettings) -> Outcome:
    """Exclusive outcomes: abandoned with abandon_rate, errored with error_rate, else completed."""
    draw = rng.random()
    if draw < settings.abandon_rate:
        return "abandoned"
    if draw < settings.abandon_rate + settings.error_rate:
        return "errored"
    return "completed"


def dwell_ms(rng: random.Random, scene: SceneSpec) -> int:
    seconds = lognormal(rng, math.log(scene.dwell_median_seconds), DWELL_SIGMA)
    seconds = min(max(seconds, DWELL_MIN_SECONDS), scene.dwell_median_seconds * DWELL_MAX_FACTOR)
    return int(seconds * 1000)


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
) -> Step:
    mindblock = weighted_choice(rng, mindblocks, [m.weight for m in mindblocks])
    offset = max(1, int(visit_ms * uniform(rng, 0.1, 0.9)))
    return _step(
        scene,
        at_ms=entered_ms + offset,
        kind="mindblock",
        event_type=MINDBLOCK_REPORTED,
        mindblock_id=mindblock.id,
        mindblock_slug=mindblock.slug,
        extra={"intensity": integer_between(rng, 1, 5)},
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
) -> Plan:
    """Plan a session through `template` that starts at `start_ms` (epoch milliseconds).

    Under an `incident` (engine.incidents) its outcome is drawn with the incident's rates, an
    outcome whose rate a scene's incident set happens in that scene, and every step names the
    incidents."""
    if incident is not None:
        settings = incident.settings
    outcome = choose_outcome(rng, settings)
    scenes = template.scenes
    # The scene where an abandoned session is left, or where an errored one fails.
    stop_index = _stop_index(rng, scenes, outcome)
    if incident is not None and incident.stop_scene(outcome):
        stop_index = next(i for i, s in enumerate(scenes) if s.slug == incident.stop_scene(outcome))
    multiplier = (
        PERSONA_BY_SLUG[persona].mindblock_multiplier if persona in PERSONA_BY_SLUG else 1.0
    )
    steps: list[Step] = []
    clock = start_ms
    for index, scene in enumerate(scenes[: stop_index + 1]):
        visit = dwell_ms(rng, scene)
        steps.append(_step(scene, clock, SCENE_ENTERED))
        failing_here = outcome == "errored" and index == stop_index
        if failing_here:
            visit = max(1, int(visit * uniform(rng, 0.2, 0.9)))  # fails part-way through the visit
        if catalogue.mindblocks and rng.random() < min(1.0, scene.mindblock_rate * multiplier):
            steps.append(
                _mindblock_step(
                    rng,
                    scene=scene,
                    mindblocks=catalogue.mindblocks,
                    entered_ms=clock,
                    visit_ms=visit,
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
