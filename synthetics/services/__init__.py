"""Writes: generator runs, backfill, settings changes, cleanup and seeding of simulated users."""

from synthetics.services.runs import (
    BackfillSummary,
    GeneratorPaused,
    GeneratorUnavailable,
    RunInputs,
    activity_backfill,
    run_backfill_minute,
    run_manual,
    run_scheduled,
    run_scheduled_shards,
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
    "RunInputs",
    "SeedSummary",
    "activity_backfill",
    "run_backfill_minute",
    "run_manual",
    "run_scheduled",
    "run_scheduled_shards",
    "settings_update",
    "sim_users_backfill",
    "sim_users_seed",
    "staff_account_ensure",
]
