"""Random draws on a caller's seeded `random.Random`: nothing here touches global random state.

Every draw is built here from `rng.random()` and `rng.getrandbits()` alone. Python guarantees the
sequence of `random()` for a given seed ("Notes on Reproducibility"), and `getrandbits()` reads the
same Mersenne Twister words; its other methods (`gauss`, `choices`, `randint`, `lognormvariate` ...)
may change their algorithm in any release, which would silently rewrite users' generated history.
tests/test_sampling.py pins each primitive's first values for a fixed seed, and tests/test_golden.py
the rows a fixed seed produces.
"""

from __future__ import annotations

import heapq
import math
import random
import uuid
from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import accumulate
from typing import TypeVar

T = TypeVar("T")

# Above this mean the Poisson draw uses its normal approximation (exp(-mean) would underflow and
# the sequential search would be slow); the cap on sessions per run is far below it anyway.
POISSON_NORMAL_ABOVE = 500.0


def run_random(
    *,
    seed: int,
    trigger: str,
    window_start: datetime,
    window_end: datetime,
    serial: int = 0,
    shard: int = 0,
    shards: int = 1,
) -> random.Random:
    """The random stream of one run, the only recipe (services and the in-memory simulator alike).

    The same seed, trigger and window give the same draws; `serial` tells apart manual runs with the
    same window (the number of manual runs before it), and `shard` of `shards` the runs of one
    window split into shards (one shard: the stream of an unsplit run). A string seed is hashed
    with SHA-512 by `random.Random` (seed version 2): the same stream in every process and Python
    version.
    """
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of 0..{shards - 1}")
    parts = [seed, trigger, window_start.isoformat(), window_end.isoformat()]
    if serial:
        parts.append(serial)
    if shards > 1:
        parts.append(f"shard{shard}/{shards}")
    return random.Random(":".join(str(part) for part in parts))


# --- the primitives: each one line of law, each from rng.random() / rng.getrandbits() only ---------


def uniform(rng: random.Random, low: float, high: float) -> float:
    """Uniform on [low, high): low + (high - low) * U, with U = rng.random() uniform on [0, 1)."""
    return low + (high - low) * rng.random()


def integer_between(rng: random.Random, low: int, high: int) -> int:
    """Uniform on the whole numbers low..high, both included: exact, by rejection on getrandbits."""
    if high < low:
        raise ValueError(f"empty range {low}..{high}")
    span = high - low + 1
    if span == 1:
        return low  # no draw: there is nothing to choose
    bits = (span - 1).bit_length()
    while True:  # each try succeeds with probability span / 2**bits > 1/2
        candidate = rng.getrandbits(bits)
        if candidate < span:
            return low + candidate


def choice(rng: random.Random, items: Sequence[T]) -> T:
    """One of `items`, each with chance 1 / len(items)."""
    if not items:
        raise ValueError("cannot choose from an empty sequence")
    return items[integer_between(rng, 0, len(items) - 1)]


def weighted_choice(rng: random.Random, items: Sequence[T], weights: Sequence[float]) -> T:
    """One of `items`, with chance weight / sum(weights): bisection of U * total on the running sums."""
    if len(items) != len(weights) or not items:
        raise ValueError("weighted_choice needs as many weights as items, and at least one")
    cumulative = list(accumulate(weights))
    total = cumulative[-1]
    if not total > 0 or math.isinf(total):
        raise ValueError(f"the weights must add up to a positive finite total, got {total}")
    # `hi` guards against U * total rounding up to total itself.
    return items[bisect_right(cumulative, rng.random() * total, 0, len(items) - 1)]


def normal(rng: random.Random, mu: float, sigma: float) -> float:
    """Normal(mu, sigma) by Box-Muller: mu + sigma * sqrt(-2 ln(1 - U1)) * cos(2 pi U2).

    Stateless, unlike `random.gauss` (which keeps the pair's second value for the next call): two
    draws per value, the sine half of the pair unused.
    """
    radius = math.sqrt(-2.0 * math.log(1.0 - rng.random()))  # 1 - U is in (0, 1]: log is finite
    return mu + sigma * radius * math.cos(math.tau * rng.random())


def lognormal(rng: random.Random, mu: float, sigma: float) -> float:
    """Log-normal: exp(Normal(mu, sigma)); median exp(mu), mean exp(mu + sigma^2 / 2)."""
    return math.exp(normal(rng, mu, sigma))


def exponential(rng: random.Random, mean: float) -> float:
    """Exponential with the given mean (rate 1 / mean) by inversion: -mean * ln(1 - U)."""
    return -mean * math.log(1.0 - rng.random())


def poisson(rng: random.Random, mean: float) -> int:
    """Draw from Poisson(mean) by sequential inversion of the CDF (rounded normal above 500)."""
    if mean < 0 or math.isnan(mean):
        raise ValueError(f"Poisson mean must be >= 0, got {mean}")
    if mean == 0:
        return 0
    if mean > POISSON_NORMAL_ABOVE:
        return max(0, round(normal(rng, mean, math.sqrt(mean))))
    u = rng.random()
    k = 0
    probability = math.exp(-mean)
    cumulative = probability
    while u > cumulative:
        k += 1
        probability *= mean / k
        cumulative += probability
        if probability < 1e-300:  # u within floating-point noise of 1
            break
    return k


def weighted_sample(
    rng: random.Random, items: Sequence[T], weights: Sequence[float], k: int
) -> list[T]:
    """Pick k distinct items, each with chance proportional to its weight (Efraimidis-Spirakis)."""
    if k <= 0 or not items:
        return []
    keyed = []
    for index, (item, weight) in enumerate(zip(items, weights, strict=True)):
        if weight <= 0:
            continue
        key = (
            math.log(1.0 - rng.random()) / weight
        )  # log(u)/w: larger is likelier; 1-u avoids log(0)
        keyed.append((key, index, item))
    top = heapq.nlargest(k, keyed, key=lambda entry: (entry[0], -entry[1]))
    return [item for _, _, item in top]


def weighted_sample_excluding(
    rng: random.Random,
    items: Sequence[T],
    weights: Sequence[float],
    k: int,
    excluded: Callable[[T], bool],
    cumulative: Sequence[float] | None = None,
) -> list[T]:
    """Pick k distinct items not `excluded`, each with chance proportional to its weight.

    Draws from the whole list by bisection and redraws an excluded or repeated pick: fast when few
    items are excluded (a handful of busy users among thousands). When redraws pile up it falls back
    to `weighted_sample` over the eligible items, which gives the same distribution.
    """
    if k <= 0 or not items:
        return []
    if cumulative is None:  # the running sums of `weights`, unless the caller keeps them
        cumulative = list(accumulate(weights))
    total = cumulative[-1]
    chosen: list[T] = []
    taken: set[int] = set()
    redraws = 0
    while len(chosen) < k and total > 0 and redraws <= 4 * k + 16:
        index = bisect_right(cumulative, rng.random() * total)
        if index >= len(items) or index in taken or excluded(items[index]):
            redraws += 1
            continue
        taken.add(index)
        chosen.append(items[index])
    if len(chosen) < k:
        eligible = [
            (i, item) for i, item in enumerate(items) if i not in taken and not excluded(item)
        ]
        chosen += weighted_sample(
            rng, [item for _, item in eligible], [weights[i] for i, _ in eligible], k - len(chosen)
        )
    return chosen


def random_uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID from the seeded stream, so ids repeat with the seed."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)
