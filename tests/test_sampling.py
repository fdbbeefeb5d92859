"""The random primitives of synthetics.engine.sampling: each one's law, and its values for a fixed seed.

The law tests check a distribution, so their bounds come from it (not from the seed):

- a mean or a frequency must lie within 5 standard errors of its expectation. By the central limit
  theorem a correct sampler fails one such check with probability P(|Z| > 5) ~ 5.7e-7.
- the empirical CDF of N draws must lie within KS_EPSILON of the true CDF everywhere (the
  Kolmogorov-Smirnov statistic). By the Dvoretzky-Kiefer-Wolfowitz inequality (Massart's constant)
  P(sup |F_N - F| > eps) <= 2 exp(-2 N eps^2), exactly, for any N; KS_EPSILON makes that 1e-6.

With about 40 checks below, a correct implementation fails this file for fewer than 1 seed in 20,000.

The fixed-value tests pin the algorithms: the first draws for a fixed seed are literals, so a change
of algorithm (ours, or Python's Mersenne Twister or string seeding underneath) fails here instead of
silently changing users' generated history.
"""

import ast
import math
import random
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

import synthetics.engine
from synthetics.engine import population, simulation
from synthetics.engine.sampling import (
    choice,
    exponential,
    integer_between,
    lognormal,
    normal,
    poisson,
    random_uuid,
    run_random,
    uniform,
    weighted_choice,
    weighted_sample,
    weighted_sample_excluding,
)
from synthetics.engine.types import (
    Catalogue,
    GeneratorSettings,
    MindblockSpec,
    PoolMember,
    SceneSpec,
    TemplateSpec,
)

N = 20_000
Z_BOUND = 5.0
KS_FAILURE_PROBABILITY = 1e-6
KS_EPSILON = math.sqrt(math.log(2 / KS_FAILURE_PROBABILITY) / (2 * N))  # ~0.0190 at N = 20,000

# Floats from the same algorithm agree to the last bit on one platform; another platform's libm may
# differ in the last bit of log, cos or exp. A changed algorithm moves them far more than 1e-12.
SAME_FLOAT = 1e-12


def fresh() -> random.Random:
    return random.Random("synthetics:sampling-golden")


def draws(sampler, n: int = N) -> list[float]:
    rng = random.Random(f"synthetics:sampling-law:{sampler.__name__}")
    return [sampler(rng) for _ in range(n)]


def assert_mean_within(values: list[float], *, mean: float, sd: float) -> None:
    """The sample mean is within Z_BOUND standard errors (sd / sqrt(n)) of `mean`."""
    observed = sum(values) / len(values)
    standard_error = sd / math.sqrt(len(values))
    assert abs(observed - mean) <= Z_BOUND * standard_error, (observed, mean, standard_error)


def assert_cdf_within(values: list[float], cdf) -> None:
    """The Kolmogorov-Smirnov distance between the draws and `cdf` is at most KS_EPSILON."""
    ordered = sorted(values)
    n = len(ordered)
    distance = max(max((i + 1) / n - cdf(x), cdf(x) - i / n) for i, x in enumerate(ordered))
    assert distance <= KS_EPSILON, (distance, KS_EPSILON)


def assert_frequencies(picks: list, probabilities: dict) -> None:
    """Each outcome's count is within Z_BOUND binomial standard deviations of n * p; nothing else."""
    n = len(picks)
    assert set(picks) <= {item for item, p in probabilities.items() if p > 0}
    for item, p in probabilities.items():
        count = picks.count(item)
        assert abs(count - n * p) <= Z_BOUND * math.sqrt(n * p * (1 - p)), (item, count, n * p)


def normal_cdf(x: float, mu: float = 0.0, sigma: float = 1.0) -> float:
    return 0.5 * (1 + math.erf((x - mu) / (sigma * math.sqrt(2))))


# --- laws ------------------------------------------------------------------------------------------


def test_uniform_is_uniform_on_the_half_open_interval():
    def sampler(rng):
        return uniform(rng, 0.2, 0.9)

    values = draws(sampler)
    assert all(0.2 <= v < 0.9 for v in values)
    assert_mean_within(values, mean=0.55, sd=0.7 / math.sqrt(12))
    assert_cdf_within(values, lambda x: (x - 0.2) / 0.7)


def test_integer_between_gives_every_whole_number_of_the_range_equally_both_ends_included():
    def sampler(rng):
        return integer_between(rng, 1, 5)

    assert_frequencies(draws(sampler), dict.fromkeys(range(1, 6), 0.2))


def test_integer_between_handles_negative_one_value_and_wide_ranges():
    rng = fresh()
    assert_frequencies(
        [integer_between(rng, -3, 3) for _ in range(N)], dict.fromkeys(range(-3, 4), 1 / 7)
    )
    state = rng.getstate()
    assert integer_between(rng, 7, 7) == 7
    assert rng.getstate() == state  # a one-value range draws nothing
    wide = 2**40
    # uniform on 0..wide: variance ((wide + 1)^2 - 1) / 12
    assert_mean_within(
        [integer_between(rng, 0, wide) for _ in range(N)],
        mean=wide / 2,
        sd=math.sqrt(((wide + 1) ** 2 - 1) / 12),
    )
    with pytest.raises(ValueError, match="empty range"):
        integer_between(rng, 5, 4)


def test_choice_picks_each_item_equally():
    def sampler(rng):
        return choice(rng, ("a", "b", "c"))

    assert_frequencies(draws(sampler), dict.fromkeys("abc", 1 / 3))
    with pytest.raises(ValueError):
        choice(fresh(), ())


def test_weighted_choice_picks_in_proportion_to_the_weights_and_never_a_zero_weight():
    def sampler(rng):
        return weighted_choice(rng, "abcd", [3.0, 0.0, 1.0, 6.0])

    assert_frequencies(draws(sampler), {"a": 0.3, "b": 0.0, "c": 0.1, "d": 0.6})


@pytest.mark.parametrize(
    ("items", "weights"), [("ab", [1.0]), ("", []), ("ab", [0.0, 0.0]), ("ab", [1.0, math.nan])]
)
def test_weighted_choice_refuses_weights_it_cannot_use(items, weights):
    with pytest.raises(ValueError):
        weighted_choice(fresh(), items, weights)


def test_normal_has_its_mean_variance_and_shape():
    def sampler(rng):
        return normal(rng, 3.0, 2.0)

    values = draws(sampler)
    assert_mean_within(values, mean=3.0, sd=2.0)
    # the sample variance of normal draws has standard error sigma^2 * sqrt(2 / (n - 1))
    mean = sum(values) / N
    variance = sum((v - mean) ** 2 for v in values) / (N - 1)
    assert abs(variance - 4.0) <= Z_BOUND * 4.0 * math.sqrt(2 / (N - 1)), variance
    assert_cdf_within(values, lambda x: normal_cdf(x, 3.0, 2.0))


def test_lognormal_is_the_exponential_of_a_normal():
    def sampler(rng):
        return lognormal(rng, math.log(30.0), 0.8)

    values = draws(sampler)
    # mean exp(mu + s^2/2), variance (exp(s^2) - 1) exp(2 mu + s^2)
    assert_mean_within(
        values,
        mean=30.0 * math.exp(0.32),
        sd=math.sqrt((math.exp(0.64) - 1) * 900.0 * math.exp(0.64)),
    )
    assert_cdf_within(values, lambda x: normal_cdf(math.log(x), math.log(30.0), 0.8))


def test_exponential_has_the_given_mean():
    def sampler(rng):
        return exponential(rng, 240.0)

    values = draws(sampler)
    assert min(values) >= 0
    assert_mean_within(values, mean=240.0, sd=240.0)
    assert_cdf_within(values, lambda x: 1 - math.exp(-x / 240.0))


def test_poisson_above_the_threshold_is_its_normal_approximation():
    def sampler(rng):
        return poisson(rng, 1000.0)

    # a rounded Normal(1000, sqrt(1000)): variance 1000 + 1/12 from the rounding
    assert_mean_within(draws(sampler), mean=1000.0, sd=math.sqrt(1000 + 1 / 12))


# --- the same seed gives the same values, in every Python and library version ---------------------


def test_the_core_generator_and_string_seeding_are_unchanged():
    # If this fails, Python changed its Mersenne Twister or its SHA-512 string seeding: every
    # generated row changes with it.
    rng = fresh()
    assert [rng.random() for _ in range(3)] == [
        0.41743947921772684,
        0.9304263030868698,
        0.2312945330665509,
    ]
    rng = fresh()
    assert [rng.getrandbits(32) for _ in range(3)] == [1792888898, 2053451900, 3996150543]
    t0 = datetime(2026, 1, 9, 19, 0, tzinfo=UTC)
    t1 = datetime(2026, 1, 9, 19, 1, tzinfo=UTC)
    run = run_random(seed=42, trigger="scheduled", window_start=t0, window_end=t1)
    assert run.random() == 0.6940878145785134


@pytest.mark.parametrize(
    ("sampler", "expected"),
    [
        (
            lambda rng: uniform(rng, 0.1, 0.9),
            [0.4339515833741815, 0.8443410424694958, 0.28503562645324076],
        ),
        (
            lambda rng: normal(rng, 0.0, 1.0),
            [0.9417865312005966, -0.08890186254718128, -0.27578034514331945],
        ),
        (
            lambda rng: lognormal(rng, 0.0, 0.8),
            [2.12427214767121, 0.9313487356609903, 0.8020179609918929],
        ),
        (
            lambda rng: exponential(rng, 240.0),
            [129.67732814416166, 639.6884882365274, 63.1313737755915],
        ),
    ],
    ids=["uniform", "normal", "lognormal", "exponential"],
)
def test_continuous_primitives_give_fixed_values_for_a_fixed_seed(sampler, expected):
    rng = fresh()
    assert [sampler(rng) for _ in expected] == pytest.approx(expected, rel=SAME_FLOAT, abs=0)


@pytest.mark.parametrize(
    ("sampler", "expected"),
    [
        (lambda rng: integer_between(rng, 1, 5), [4, 4, 4, 2, 3, 1, 1, 3]),
        (lambda rng: choice(rng, "abcdefg"), list("dddbfcaa")),
        (lambda rng: weighted_choice(rng, "abcd", [3, 0, 1, 6]), list("ddaaacdd")),
        (lambda rng: poisson(rng, 2.0), [2, 4, 1, 1, 0, 1, 3, 2]),
        (lambda rng: poisson(rng, 1000.0), [1030, 997, 991, 958, 959, 987, 974, 1008]),
    ],
    ids=["integer_between", "choice", "weighted_choice", "poisson", "poisson_normal"],
)
def test_discrete_primitives_give_fixed_values_for_a_fixed_seed(sampler, expected):
    rng = fresh()
    assert [sampler(rng) for _ in expected] == expected


def test_samples_and_uuids_give_fixed_values_for_a_fixed_seed():
    weights = [1, 2, 3, 4, 5, 6, 7, 8]
    assert weighted_sample(fresh(), "abcdefgh", weights, 3) == ["e", "f", "d"]
    assert weighted_sample_excluding(
        fresh(), "abcdefgh", weights, 3, excluded=lambda item: item == "h"
    ) == ["f", "d", "c"]
    assert random_uuid(fresh()) == uuid.UUID("78c533b6-ee30-4b0f-ba65-307c6add5042")


# --- the engine draws only through these primitives ---------------------------------------------

CORE_METHODS = {"random", "getrandbits"}


def test_the_engine_calls_no_random_method_but_the_core_ones():
    # given every module of the engine
    offences = []
    for path in sorted(Path(synthetics.engine.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            # when it uses a method of a generator, or of the random module
            if isinstance(node, ast.ImportFrom) and node.module == "random":
                offences.append(f"{path.name}:{node.lineno} from random import ...")
            if not (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)):
                continue
            if node.value.id == "rng" and node.attr not in CORE_METHODS:
                offences.append(f"{path.name}:{node.lineno} rng.{node.attr}")
            if node.value.id == "random" and node.attr != "Random":
                offences.append(f"{path.name}:{node.lineno} random.{node.attr}")
    # then it is only random() and getrandbits(), or the Random class itself
    assert offences == []


VERSION_DEPENDENT_METHODS = (
    "betavariate",
    "binomialvariate",
    "choice",
    "choices",
    "expovariate",
    "gammavariate",
    "gauss",
    "lognormvariate",
    "normalvariate",
    "paretovariate",
    "randbytes",
    "randint",
    "randrange",
    "sample",
    "shuffle",
    "triangular",
    "uniform",
    "vonmisesvariate",
    "weibullvariate",
)


def _refusal(name: str):
    def refuse(self, *args, **kwargs):
        raise AssertionError(f"the engine called rng.{name}, whose algorithm may change")

    return refuse


# A generator whose version-dependent methods refuse to run.
CoreOnlyRandom = type(
    "CoreOnlyRandom",
    (random.Random,),
    {name: _refusal(name) for name in VERSION_DEPENDENT_METHODS},
)


def test_a_simulation_and_a_population_run_on_the_core_methods_alone(monkeypatch, request):
    # given generators that fail on any method but random() and getrandbits()
    monkeypatch.setattr(
        simulation, "run_random", lambda **parts: CoreOnlyRandom(repr(sorted(parts.items())))
    )
    monkeypatch.setattr(population, "_rng_for", lambda seed, key: CoreOnlyRandom(f"{seed}{key}"))
    monkeypatch.setattr(
        population, "_profile_rng", lambda seed, index: CoreOnlyRandom(f"{seed}:{index}")
    )
    # profiles drawn here are not make_profile's: none is left in its cache, before or after
    population.make_profile.cache_clear()
    request.addfinalizer(population.make_profile.cache_clear)
    catalogue = Catalogue(
        templates=(
            TemplateSpec(
                1, "a", 1.0, (SceneSpec(1, "s1", 1, 30, 0.5), SceneSpec(2, "s2", 2, 60, 0.5))
            ),
        ),
        mindblocks=(MindblockSpec(1, "m", 1.0),),
    )
    pool = [PoolMember(i, 100 + i, "regular", 1.0) for i in range(1, 50)]
    settings = GeneratorSettings(sessions_per_min=5, error_rate=0.3, abandon_rate=0.3)

    # when they simulate an hour, and build profiles
    stats = simulation.simulate_minutes(
        settings=settings,
        catalogue=catalogue,
        pool=pool,
        start=datetime(2026, 1, 9, 19, 0, tzinfo=UTC),
        minutes=60,
        seed=7,
    )
    for index in range(1, 30):
        population.make_profile(
            index=index, seed=7, today=date(2026, 1, 9), email_domain="example.test"
        )
        population.profile_for_existing(
            key=f"k{index}", name="A Name", seed=7, today=date(2026, 1, 9)
        )

    # then every outcome was drawn, and nothing reached a version-dependent method
    assert all(count > 0 for count in stats.outcomes.values()), stats.outcomes
    assert stats.mindblock_events > 0
