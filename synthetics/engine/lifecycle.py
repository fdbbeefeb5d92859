"""Sign-ups and churn: how many sim users sign up and leave in a run's window, and which ones leave.

Sign-ups arrive as a Poisson process of `signups_per_day`; each newcomer is a persona "newcomer" for
their first NEWCOMER_DAYS and then settles into the persona drawn for them at sign-up (with that
persona's activity weight and rhythm). Churn retires Poisson(churn_per_month x active pool x
minutes / 30 days) users a window — the count follows the setting — chosen among idle users with a
hazard that is highest in a user's first weeks (CHURN_EARLY_HAZARD), so weekly sign-up cohorts shrink
fastest at first: a real retention curve. A churned user keeps their rows and starts no new session.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import date

from synthetics.engine.sampling import poisson, weighted_sample
from synthetics.engine.types import GeneratorSettings, PoolMember

MINUTES_PER_DAY = 24 * 60
MINUTES_PER_MONTH = 30 * MINUTES_PER_DAY
NEWCOMER_DAYS = 21  # a newcomer settles into their persona after three weeks
# A user's churn hazard relative to a settled one: 1 + CHURN_EARLY_HAZARD x exp(-age / CHURN_EARLY_DAYS)
CHURN_EARLY_HAZARD = 4.0
CHURN_EARLY_DAYS = 10.0


def signups_due(*, settings: GeneratorSettings, minutes: float, rng: random.Random) -> int:
    """New sim users in a window of `minutes`: Poisson(signups_per_day x minutes / 1,440)."""
    if settings.signups_per_day <= 0 or minutes <= 0:
        return 0
    return poisson(rng, settings.signups_per_day * minutes / MINUTES_PER_DAY)


def churn_hazard(age_days: float) -> float:
    return 1 + CHURN_EARLY_HAZARD * math.exp(-max(0.0, age_days) / CHURN_EARLY_DAYS)


def churned(
    *,
    settings: GeneratorSettings,
    pool: Sequence[PoolMember],
    busy: set[int],
    minutes: float,
    today: date,
    rng: random.Random,
) -> list[PoolMember]:
    """The idle users who churn in the window: Poisson(churn_per_month x pool x minutes / 30 days)
    of them, each picked with weight churn_hazard(age): newer users are likelier to leave."""
    if settings.churn_per_month <= 0 or minutes <= 0 or not pool:
        return []
    count = poisson(rng, settings.churn_per_month * len(pool) * minutes / MINUTES_PER_MONTH)
    if count == 0:
        return []
    idle = [member for member in pool if member.sim_user_id not in busy]
    weights = [
        churn_hazard((today - member.signup_date).days if member.signup_date else 365.0)
        for member in idle
    ]
    return weighted_sample(rng, idle, weights, count)
