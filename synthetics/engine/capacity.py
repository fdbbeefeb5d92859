"""Can the pool sustain the settings? Little's law: sessions in progress = start rate x mean length.

Each sim user has at most one session in progress, so a run can only start sessions for idle users.
At a peak start rate of λ sessions a minute and journeys lasting W minutes on average, about λ·W
users are in a session at any moment; a minute's λ new sessions need λ idle users besides. When
λ·W + λ exceeds the active pool, runs start fewer sessions than asked ("no more idle sim users" on
their ledger rows): the settings are then more than the pool can give, and the product says so with
these numbers instead of trimming in silence.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from synthetics.engine.planning import plan_journey
from synthetics.engine.sampling import weighted_choice
from synthetics.engine.types import Catalogue, GeneratorSettings

# Journeys planned to estimate the mean length: the estimate's standard error is the lengths'
# standard deviation / sqrt(4,000), under 2 % of the mean for the shipped catalogue.
LENGTH_SAMPLES = 4000
LENGTH_SEED = 20260109


@dataclass(frozen=True, slots=True)
class Capacity:
    peak_rate_per_min: float  # sessions asked for in the busiest minute of the week (after the cap)
    mean_journey_minutes: float
    in_progress_at_peak: float  # Little's law: peak rate x mean length
    needed_users: float  # those in a session plus a minute's new ones
    active_users: int
    sustainable: bool

    @property
    def utilization(self) -> float | None:
        """needed / active; None with no active user (nothing to divide by)."""
        return self.needed_users / self.active_users if self.active_users else None

    def warning(self) -> str | None:
        """The numbers in words when the pool cannot sustain the settings, else None."""
        if self.sustainable:
            return None
        startable = max(0.0, self.active_users / (self.mean_journey_minutes + 1))
        return (
            f"The pool cannot sustain these settings: at the week's peak {self.peak_rate_per_min:,.0f} "
            f"sessions a minute of {self.mean_journey_minutes:.1f} minutes on average keep about "
            f"{self.in_progress_at_peak:,.0f} users in a session (Little's law), and a minute's "
            f"new sessions need {self.peak_rate_per_min:,.0f} idle users besides: "
            f"{self.needed_users:,.0f} in all, but {self.active_users:,} sim users are active. "
            f"Runs will start only about {startable:,.0f} sessions a minute at the peak. Seed more "
            f"sim users (at least {self.needed_users:,.0f}) or lower sessions_per_min."
        )


def mean_journey_minutes(
    *, catalogue: Catalogue, settings: GeneratorSettings, samples: int = LENGTH_SAMPLES
) -> float:
    """The mean session length at these settings, from journeys planned by the engine itself
    (templates by popularity, the outcome shares of the settings), with a fixed seed. Only the
    catalogue and the two rates matter: the answer is kept for the next call with the same ones."""
    return _mean_journey_minutes(
        catalogue,
        GeneratorSettings(abandon_rate=settings.abandon_rate, error_rate=settings.error_rate),
        samples,
    )


@functools.lru_cache(maxsize=16)
def _mean_journey_minutes(catalogue: Catalogue, settings: GeneratorSettings, samples: int) -> float:
    templates = [t for t in catalogue.templates if t.popularity > 0 and t.scenes]
    if not templates:
        return 0.0
    rng = random.Random(LENGTH_SEED)
    total_ms = 0
    for _ in range(samples):
        template = weighted_choice(rng, templates, [t.popularity for t in templates])
        plan = plan_journey(
            rng,
            template=template,
            catalogue=catalogue,
            settings=settings,
            persona="",
            start_ms=0,
        )
        total_ms += plan.end_ms
    return total_ms / samples / 60_000


def pool_capacity(
    *,
    settings: GeneratorSettings,
    catalogue: Catalogue,
    active_users: int,
    peak_factor: float,
    mean_minutes: float | None = None,
) -> Capacity:
    """Whether a pool of `active_users` sustains the settings at the week's peak rhythm factor R
    (1 without rhythm). `mean_minutes`: mean_journey_minutes's answer where it is kept already."""
    peak = min(settings.sessions_per_min * peak_factor, float(settings.max_per_run))
    minutes = (
        mean_journey_minutes(catalogue=catalogue, settings=settings)
        if mean_minutes is None
        else mean_minutes
    )
    in_progress = peak * minutes
    needed = in_progress + peak
    return Capacity(
        peak_rate_per_min=peak,
        mean_journey_minutes=minutes,
        in_progress_at_peak=in_progress,
        needed_users=needed,
        active_users=active_users,
        sustainable=needed <= active_users,
    )
