"""Random draws on a caller's seeded `random.Random`: nothing here touches global random state."""

from __future__ import annotations

import heapq
import math
import random
import uuid
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import TypeVar

T = TypeVar("T")

# Above this mean the Poisson draw uses its normal approximation (exp(-mean) would underflow and
# the sequential search would be slow); the cap on sessions per run is far below it anyway.
POISSON_NORMAL_ABOVE = 500.0


def poisson(rng: random.Random, mean: float) -> int:
    """Draw from Poisson(mean) by sequential inversion of the CDF."""
    if mean < 0 or math.isnan(mean):
        raise ValueError(f"Poisson mean must be >= 0, got {mean}")
    if mean == 0:
        return 0
    if mean > POISSON_NORMAL_ABOVE:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
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
) -> list[T]:
    """Pick k distinct items not `excluded`, each with chance proportional to its weight.

    Draws from the whole list by bisection and redraws an excluded or repeated pick: fast when few
    items are excluded (a handful of busy users among thousands). When redraws pile up it falls back
    to `weighted_sample` over the eligible items, which gives the same distribution.
    """
    if k <= 0 or not items:
        return []
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


def weighted_choice(rng: random.Random, items: Sequence[T], weights: Sequence[float]) -> T:
    return rng.choices(items, weights=weights, k=1)[0]


def random_uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID from the seeded stream, so ids repeat with the seed."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)
