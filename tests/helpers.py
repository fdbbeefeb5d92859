"""Helpers the tests import: the shipped catalogue as engine input, a pool, the database's state, and
bounds derived from the distributions the engine draws from (never widened until green)."""

import importlib
import math
from datetime import UTC, datetime
from statistics import NormalDist

from synthetics.engine import (
    Catalogue,
    GeneratorSettings,
    MindblockSpec,
    PoolMember,
    RhythmProfile,
    SceneSpec,
    TemplateSpec,
)
from synthetics.engine.behaviour import scene_spread
from synthetics.engine.planning import DWELL_BOUNDS, DWELL_FLOOR_SECONDS
from synthetics.engine.population import PERSONAS

T0 = datetime(2026, 1, 9, 19, 0, tzinfo=UTC)

# The data migrations that ship the defaults; their names start with a digit, so no plain import.
SHIPPED = importlib.import_module("synthetics.migrations.0002_default_settings_and_catalogue")
SHIPPED_RHYTHMS = importlib.import_module("synthetics.migrations.0008_rhythm")
SHIPPED_FUNNELS = importlib.import_module("synthetics.migrations.0009_funnels")


# --- engine inputs without a database ---------------------------------------------------------------


def shipped_settings() -> GeneratorSettings:
    """The settings row the data migrations write (rhythm_strength: the model field's default)."""
    return GeneratorSettings(**SHIPPED.DEFAULT_SETTINGS)


def shipped_catalogue() -> Catalogue:
    """The catalogue the data migration ships, as `run_inputs.catalogue_load()` reads it back.

    Ids are numbered in the migration's insertion order, as in a freshly migrated database;
    templates and mindblock types come in slug order, scenes in position order, as the selector
    returns them (the order decides which item a weighted draw picks).
    """
    templates, scene_id = [], 0
    for template_id, (slug, _name, popularity, scenes) in enumerate(SHIPPED.JOURNEYS, start=1):
        specs = []
        for position, (scene_slug, _scene_name, dwell, rate) in enumerate(scenes, start=1):
            scene_id += 1
            dropoff, error = SHIPPED_FUNNELS.FUNNEL_WEIGHTS.get((slug, scene_slug), (1.0, 1.0))
            specs.append(SceneSpec(scene_id, scene_slug, position, dwell, rate, dropoff, error))
        templates.append(TemplateSpec(template_id, slug, popularity, tuple(specs)))
    mindblocks = [
        MindblockSpec(mindblock_id, slug, weight)
        for mindblock_id, (slug, _name, weight) in enumerate(SHIPPED.MINDBLOCKS, start=1)
        if weight > 0
    ]
    rhythms = [
        RhythmProfile(slug, persona, tuple(hourly), tuple(weekly), holiday_factor)
        for slug, _name, persona, hourly, weekly, holiday_factor in SHIPPED_RHYTHMS.PROFILES
    ]
    return Catalogue(
        templates=tuple(sorted(templates, key=lambda t: t.slug)),
        mindblocks=tuple(sorted(mindblocks, key=lambda m: m.slug)),
        rhythms=tuple(sorted(rhythms, key=lambda r: (r.persona, r.slug))),
    )


def realistic_pool(
    count: int = 3000, *, seed: int = 20260109, spread: float | None = None
) -> list[PoolMember]:
    """A pool drawn from the distributions `seed_sim_users` draws from (personas, weights, locales,
    time zones: population._traits), no database; `spread`: the engagement spread (default: the
    behaviour model's). Each user's traits come from a string-seeded random.Random, as seeding's
    did before issue 26: the statistical tests keep the pools they were written against (with
    seeding's own stream, population.ProfileDraws, two pools in three gave test_expectations'
    abandoned share 34-36 misses of 150 against a bound of 33)."""
    from datetime import date

    from synthetics.engine.population import DEFAULT_ENGAGEMENT_SPREAD, _rng_for, _traits

    pool = []
    for index in range(1, count + 1):
        traits = _traits(
            _rng_for(seed, str(index)),
            date(2026, 1, 9),
            DEFAULT_ENGAGEMENT_SPREAD if spread is None else spread,
        )
        pool.append(
            PoolMember(
                index,
                10_000 + index,
                traits["persona"],
                traits["activity_weight"],
                traits["timezone"],
                traits["locale"],
            )
        )
    return pool


def make_engine_pool() -> list[PoolMember]:
    """3,000 simulated users with the personas' activity weights."""
    return [
        PoolMember(
            sim_user_id=i,
            user_id=10_000 + i,
            persona=PERSONAS[i % len(PERSONAS)].slug,
            activity_weight=PERSONAS[i % len(PERSONAS)].activity_weight,
        )
        for i in range(1, 3001)
    ]


# --- the database -----------------------------------------------------------------------------------


def database_state() -> tuple:
    """Everything an API request could change: the settings row and the row counts."""
    from synthetics.models import (
        Incident,
        Journey,
        JourneySceneEvent,
        MindblockEvent,
        SyntheticRun,
        SyntheticSettings,
    )

    return (
        tuple(SyntheticSettings.objects.values_list().get()),
        SyntheticRun.objects.count(),
        Journey.objects.count(),
        JourneySceneEvent.objects.count(),
        MindblockEvent.objects.count(),
        tuple(Incident.objects.order_by("id").values_list()),
    )


# --- statistical bounds -----------------------------------------------------------------------------
#
# Every statistical assertion compares an observed value with the value the behaviour model
# predicts, and allows K standard errors. The observed values are sums or means of hundreds to
# tens of thousands of independent draws, so by the central limit theorem they are close to normal;
# K is the two-sided normal quantile for FALSE_FAILURE, the chance that a correct engine fails one
# bound with an arbitrary seed. With about twenty bounds in the suite, a correct engine fails
# somewhere with probability about 2e-5, whatever the seeds or the random stream's recipe.

FALSE_FAILURE = 1e-6
K = NormalDist().inv_cdf(1 - FALSE_FAILURE / 2)  # 4.89


def capped_poisson_moments(mean: float, cap: int) -> tuple[float, float, float]:
    """Mean, variance and fourth central moment of min(Poisson(mean), cap), summed from the pmf.

    P(X = k) = e^-mean mean^k / k! for k < cap, and P(X >= cap) = 1 - the sum of those; the
    moments are the sums of k^j times those probabilities. Meant for small means (exp(-mean) must
    not underflow), which is every mean a test draws from with a cap.
    """
    probabilities, probability = [], math.exp(-mean)
    for k in range(cap):
        probabilities.append(probability)
        probability *= mean / (k + 1)
    probabilities.append(max(0.0, 1.0 - sum(probabilities)))
    expected = sum(k * p for k, p in enumerate(probabilities))
    variance = sum((k - expected) ** 2 * p for k, p in enumerate(probabilities))
    fourth = sum((k - expected) ** 4 * p for k, p in enumerate(probabilities))
    return expected, variance, fourth


def assert_near(observed: float, expected: float, standard_error: float, slack: float = 0.0):
    """|observed - expected| <= K standard errors, plus `slack` for a known, bounded bias."""
    bound = K * standard_error + slack
    assert abs(observed - expected) <= bound, (
        f"{observed} is {abs(observed - expected):.4g} from the expected {expected:.6g}; "
        f"the bound is {K:.2f} x {standard_error:.4g} + {slack:.4g} = {bound:.4g}"
    )


def assert_sample_mean_and_variance(counts: list[int], mean: float, cap: int):
    """The sample mean and variance of draws of min(Poisson(mean), cap) match the exact ones.

    The sample mean of n draws has standard error sqrt(variance / n); the sample variance has
    standard error sqrt((mu4 - variance^2) / n), mu4 being the fourth central moment (the
    asymptotic variance of the sample variance, whatever the distribution).
    """
    expected, variance, fourth = capped_poisson_moments(mean, cap)
    n = len(counts)
    sample_mean = sum(counts) / n
    sample_variance = sum((c - sample_mean) ** 2 for c in counts) / (n - 1)
    assert_near(sample_mean, expected, math.sqrt(variance / n))
    assert_near(sample_variance, variance, math.sqrt((fourth - variance**2) / n))


def assert_binomial_share(count: int, trials: int, probability: float, slack: int = 0):
    """`count` successes in `trials` independent trials of `probability`, give or take `slack`.

    A binomial count has mean n p and standard error sqrt(n p (1 - p)). `slack` is a number of
    trials whose outcome may be missing from `count` (journeys still in progress at the end).
    """
    standard_error = math.sqrt(trials * probability * (1 - probability))
    assert_near(count, trials * probability, standard_error, slack=slack)


def assert_outcome_shares(
    *, outcomes: dict[str, int], started: int, settings: GeneratorSettings
) -> None:
    """Each outcome's count among `started` sessions is binomial with the configured rate.

    Every session draws its outcome independently when it starts, so among the `started` sessions
    the number that planned outcome o is Binomial(started, rate_o). Only the finished ones are
    counted: a count can be short by at most the number still in progress, started - finished.
    """
    in_progress = started - sum(outcomes.values())
    assert in_progress >= 0
    rates = {
        "abandoned": settings.abandon_rate,
        "errored": settings.error_rate,
        "completed": 1 - settings.abandon_rate - settings.error_rate,
    }
    for outcome, rate in rates.items():
        # finished_o is in [planned_o - in_progress, planned_o]: shift the centre by half of that
        assert_binomial_share(
            outcomes[outcome] + in_progress / 2, started, rate, slack=in_progress / 2
        )


def clipped_lognormal_mean(median: float, sigma: float, low: float, high: float) -> float:
    """E[min(max(X, low), high)] for X log-normal with this median and sigma.

    With mu = ln(median): E[X; a <= X <= b] = e^(mu + sigma^2 / 2)
    (Phi((ln b - mu - sigma^2) / sigma) - Phi((ln a - mu - sigma^2) / sigma)), plus
    low P(X < low) and high P(X > high).
    """
    mu, phi = math.log(median), NormalDist().cdf
    below = phi((math.log(low) - mu) / sigma)
    above = 1 - phi((math.log(high) - mu) / sigma)
    inside = math.exp(mu + sigma**2 / 2) * (
        phi((math.log(high) - mu - sigma**2) / sigma) - phi((math.log(low) - mu - sigma**2) / sigma)
    )
    return low * below + inside + high * above


def truncated_lognormal_mean(median: float, sigma: float, low: float, high: float) -> float:
    """E[X | low <= X <= high] for X log-normal with this median and sigma (a draw outside is
    drawn again: engine.planning.dwell_ms): the inside part of clipped_lognormal_mean over
    P(low <= X <= high)."""
    mu, phi = math.log(median), NormalDist().cdf
    inside = math.exp(mu + sigma**2 / 2) * (
        phi((math.log(high) - mu - sigma**2) / sigma) - phi((math.log(low) - mu - sigma**2) / sigma)
    )
    return inside / (phi((math.log(high) - mu) / sigma) - phi((math.log(low) - mu) / sigma))


def dwell_mean_seconds(scene: SceneSpec, behaviour) -> float:
    """A scene's mean visit: its truncated log-normal (engine.planning.dwell_ms)."""
    median = scene.dwell_median_seconds
    return truncated_lognormal_mean(
        median,
        scene_spread(behaviour, scene.slug),
        max(DWELL_FLOOR_SECONDS, median * DWELL_BOUNDS[0]),
        median * DWELL_BOUNDS[1],
    )


# An errored session fails part-way through its last scene: at a uniform 20 %-90 % of the visit
# (synthetics/engine/planning.py, plan_journey), 55 % on average.
ERROR_VISIT_SHARE = (0.2 + 0.9) / 2


def expected_journey_minutes(catalogue: Catalogue, settings: GeneratorSettings) -> float:
    """The mean planned duration of a session, from the behaviour model (docs/behaviour.md).

    A session picks a template by popularity. Each visited scene lasts a truncated log-normal
    dwell (dwell_mean_seconds). A completed session visits every scene; an abandoned one is a
    bounce with chance bounce_share (the first scene, 0.3 s + an exponential of bounce_seconds),
    else it stops after a scene chosen uniformly, so it visits scene j (1-based, of n) with
    probability (n - j + 1) / n; an errored one likewise, but its last scene lasts
    ERROR_VISIT_SHARE of the visit on average. (The segments' odds change who abandons, not how
    many: the shares are the settings'.)
    """
    behaviour = catalogue.behaviour
    templates = [t for t in catalogue.templates if t.popularity > 0 and t.scenes]
    total_popularity = sum(t.popularity for t in templates)
    completed = 1 - settings.abandon_rate - settings.error_rate
    bounce = behaviour.bounce_share
    bounce_seconds = DWELL_FLOOR_SECONDS + behaviour.bounce_seconds
    seconds = 0.0
    for template in templates:
        dwell = [dwell_mean_seconds(s, behaviour) for s in template.scenes]
        n = len(dwell)
        prefix = [sum(dwell[: stop + 1]) for stop in range(n)]  # the visits up to a stop scene
        abandoned = bounce * bounce_seconds + (1 - bounce) * sum(prefix) / n
        errored = (
            sum(p - (1 - ERROR_VISIT_SHARE) * dwell[stop] for stop, p in enumerate(prefix)) / n
        )
        mean = completed * prefix[-1] + settings.abandon_rate * abandoned
        mean += settings.error_rate * errored
        seconds += template.popularity / total_popularity * mean
    return seconds / 60


def longest_journey_minutes(catalogue: Catalogue) -> float:
    """The longest a session can last: every scene of the longest template at its maximum dwell."""
    return max(
        sum(DWELL_BOUNDS[1] * s.dwell_median_seconds for s in t.scenes) / 60
        for t in catalogue.templates
    )


def ledger_with_every_kind_of_run(now) -> None:
    """A ledger with every kind of run before `now`: an hour of backfill two hours back, scheduled
    and manual runs, and a failed shard's run that never finished (None times and duration)."""
    from datetime import timedelta

    from synthetics.models import RunStatus, SyntheticRun
    from synthetics.services import activity_backfill, run_manual, run_scheduled

    activity_backfill(hours=1, now=now - timedelta(hours=2))
    for minute in range(3):
        run_scheduled(now=now - timedelta(minutes=30 - minute))
    run_manual(target=2, now=now - timedelta(minutes=20))
    from django.utils import timezone

    SyntheticRun.objects.create(
        trigger="scheduled",
        status=RunStatus.FAILED,
        # started after the runs above (their started_at is the wall clock), so it is among the
        # ten recent runs whatever `now` is: the backfill's hour of runs is recent runs too
        started_at=max(now - timedelta(minutes=10), timezone.now()),
        finished_at=None,  # never finished: not a "last run"; None times and duration
        window_start=now - timedelta(minutes=11),
        window_end=now - timedelta(minutes=11),
        note="it’s a “note” with\nnewlines",
        error="Traceback …\n  x",
        shard=1,
        shards=3,
    )
