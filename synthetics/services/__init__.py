"""Writes: generator runs, backfill, settings changes, cleanup and seeding of simulated users."""

from synthetics.services.history import BackfillSummary, activity_backfill
from synthetics.services.runs import (
    GeneratorPaused,
    GeneratorUnavailable,
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
