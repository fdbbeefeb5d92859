"""Writes: generator runs, backfill, settings changes and seeding of simulated users."""

from synthetics.services.runs import (
    BackfillSummary,
    GeneratorPaused,
    GeneratorUnavailable,
    RunFailed,
    RunResult,
    activity_backfill,
    tick_run,
)
from synthetics.services.seeding import (
    SeedSummary,
    sim_users_backfill,
    sim_users_seed,
    staff_account_ensure,
)
from synthetics.services.settings import settings_update

__all__ = [
    "BackfillSummary",
    "GeneratorPaused",
    "GeneratorUnavailable",
    "RunFailed",
    "RunResult",
    "SeedSummary",
    "activity_backfill",
    "settings_update",
    "sim_users_backfill",
    "sim_users_seed",
    "staff_account_ensure",
    "tick_run",
]
