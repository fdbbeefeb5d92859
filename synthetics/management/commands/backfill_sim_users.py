"""Register every synthetic account that lacks a sim_users row."""

from django.conf import settings

from synthetics.management.cli import SyntheticsCommand, bounded_int
from synthetics.services import sim_users_backfill


class Command(SyntheticsCommand):
    help = (
        "Give every synthetic account (users.is_synthetic) without a sim_users row one, with a "
        "persona, activity weight, time zone and locale. Running it again adds nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seed",
            type=bounded_int(0, 2**63 - 1),
            default=None,
            help="seed for the traits (default: SYNTHETICS_SEED)",
        )

    def handle(self, *args, seed, **options):
        seed = settings.SYNTHETICS_SEED if seed is None else seed
        summary = sim_users_backfill(seed=seed)
        self.stdout.write(
            f"backfill_sim_users: added {summary.created} sim users; {summary.total} in total."
        )
