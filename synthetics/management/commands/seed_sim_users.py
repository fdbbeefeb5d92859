"""Create synthetic accounts and their sim_users up to a count (idempotent)."""

from django.conf import settings

from synthetics.management.cli import SyntheticsCommand, bounded_int, progress_bar
from synthetics.models import User
from synthetics.services import sim_users_seed
from synthetics.services.seeding import MAX_SIM_USERS


class Command(SyntheticsCommand):
    help = (
        "Create synthetic accounts (inactive, unusable password, e-mail under .invalid) and their "
        "sim_users rows until there are --count of them. Running it again creates nothing more."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--count",
            type=bounded_int(0, MAX_SIM_USERS),
            default=3000,
            help="how many synthetic accounts there should be (default 3000)",
        )
        parser.add_argument(
            "--seed",
            type=bounded_int(0, 2**63 - 1),
            default=None,
            help="seed for names and traits (default: SYNTHETICS_SEED)",
        )

    def handle(self, *args, count, seed, **options):
        seed = settings.SYNTHETICS_SEED if seed is None else seed
        existing = User.objects.filter(is_synthetic=True).count()
        with progress_bar(
            total=max(0, count - existing), unit="user", description="sim users"
        ) as advance:
            summary = sim_users_seed(count=count, seed=seed, progress=advance)
        self.stdout.write(
            f"seed_sim_users: created {summary.created} sim users; {summary.total} in total."
        )
