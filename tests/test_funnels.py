"""Funnels: where abandoned and errored sessions end follows each scene's weights, while the overall
abandon and error rates stay the configured ones (no database)."""

import math
import random
from collections import Counter
from statistics import NormalDist

import pytest

from synthetics.engine import GeneratorSettings
from synthetics.engine.planning import plan_journey
from tests.helpers import assert_binomial_share, shipped_catalogue

PLANS = 20_000
# Chi-square critical value at a one-in-a-million false failure, by the Wilson-Hilferty cube-root
# normal approximation of the chi-square quantile (accurate to a few % at these tails and df).
Z6 = NormalDist().inv_cdf(1 - 1e-6)


def chi_square_critical(df: int) -> float:
    return df * (1 - 2 / (9 * df) + Z6 * math.sqrt(2 / (9 * df))) ** 3


def _last_scene_positions(template, settings, seed):
    rng = random.Random(seed)
    ends = Counter()
    outcomes = Counter()
    for index in range(PLANS):
        plan = plan_journey(
            rng,
            template=template,
            catalogue=shipped_catalogue(),
            settings=settings,
            persona="regular",
            start_ms=index * 1000,
        )
        outcomes[plan.outcome] += 1
        if plan.outcome != "completed":
            ends[plan.outcome, max(s.scene_position for s in plan.steps if s.kind == "scene")] += 1
    return ends, outcomes


@pytest.mark.slow
@pytest.mark.parametrize("template", shipped_catalogue().templates, ids=lambda t: t.slug)
@pytest.mark.parametrize("outcome", ["abandoned", "errored"])
def test_where_sessions_end_follows_the_scene_weights(template, outcome):
    settings = GeneratorSettings(
        abandon_rate=1.0 if outcome == "abandoned" else 0.0,
        error_rate=1.0 if outcome == "errored" else 0.0,
    )
    ends, _ = _last_scene_positions(template, settings, seed=f"funnel:{template.slug}:{outcome}")
    weights = [
        s.dropoff_weight if outcome == "abandoned" else s.error_weight for s in template.scenes
    ]
    total = sum(weights)
    # An abandoned session is a bounce with chance bounce_share (it leaves the first scene), else
    # it stops by the weights: the first scene's share is b + (1 - b) w1 / total.
    bounce = shipped_catalogue().behaviour.bounce_share if outcome == "abandoned" else 0.0
    shares = [(1 - bounce) * weight / total for weight in weights]
    shares[0] += bounce
    statistic = sum(
        (ends[outcome, scene.position] - PLANS * share) ** 2 / (PLANS * share)
        for scene, share in zip(template.scenes, shares, strict=True)
    )
    # Pearson's statistic is chi-square with (scenes - 1) degrees of freedom when the ends follow
    # these shares.
    assert statistic <= chi_square_critical(len(weights) - 1), (statistic, ends, weights)


def test_the_shipped_funnels_are_not_flat():
    # a flat funnel would put every scene at 1/n: the chi-square test above would then be trivial
    for template in shipped_catalogue().templates:
        weights = {s.dropoff_weight for s in template.scenes}
        assert len(weights) > 1, template.slug


def test_funnels_leave_the_overall_rates_as_configured():
    settings = GeneratorSettings(abandon_rate=0.15, error_rate=0.05)
    template = next(t for t in shipped_catalogue().templates if t.slug == "first-steps")
    _, outcomes = _last_scene_positions(template, settings, seed="funnel:rates")
    assert_binomial_share(outcomes["abandoned"], PLANS, 0.15)
    assert_binomial_share(outcomes["errored"], PLANS, 0.05)
