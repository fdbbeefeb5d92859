"""Random draws on a caller's seeded `random.Random`: nothing here touches global random state."""

from __future__ import annotations

import heapq
import math
import random
import uuid
from collections.abc import Sequence
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


def weighted_choice(rng: random.Random, items: Sequence[T], weights: Sequence[float]) -> T:
    return rng.choices(items, weights=weights, k=1)[0]


def random_uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID from the seeded stream, so ids repeat with the seed."""
    return uuid.UUID(int=rng.getrandbits(128), version=4)
