"""First-run setup for `make run`: sim users, a day of history and a staff account, when missing."""

import os

from django.conf import settings
from django.core.management import call_command

from synthetics.management.cli import SyntheticsCommand, address_arguments, bounded_int
from synthetics.models import SyntheticRun
from synthetics.selectors import run_inputs
from synthetics.services import staff_account_ensure
from synthetics.services.history import MAX_BACKFILL_HOURS
from synthetics.services.seeding import MAX_SIM_USERS
from synthetics.tasks import schedule_ensure


class Command(SyntheticsCommand):
    help = (
        "Prepare a new install: seed 3,000 sim users and a day of history if the database has none, "
        "create a staff account on first run (SYNTHETICS_ADMIN_USERNAME / _PASSWORD / _EMAIL, or a "
        "generated password printed once), and print the URLs."
    )

    def add_arguments(self, parser):
        address_arguments(parser)
        parser.add_argument(
            "--sim-users",
            type=bounded_int(0, MAX_SIM_USERS),
            default=3000,
            help=f"sim users to seed on an empty install (0..{MAX_SIM_USERS})",
        )
        parser.add_argument(
            "--history-hours", type=bounded_int(0, MAX_BACKFILL_HOURS), default=24,
            help=f"hours of history to generate on an empty install (0..{MAX_BACKFILL_HOURS})",
        )  # fmt: skip

    def handle(self, *args, host, port, sim_users, history_hours, **options):
        if run_inputs.sim_user_count() == 0:
            self.stdout.write(f"bootstrap: seeding {sim_users} sim users ...")
            call_command("seed_sim_users", count=sim_users, stdout=self.stdout)
        if not SyntheticRun.objects.exists() and history_hours > 0:
            self.stdout.write(f"bootstrap: generating {history_hours} hours of history ...")
            call_command("backfill_activity", hours=history_hours, stdout=self.stdout)
        schedule, created = schedule_ensure()
        if created:
            self.stdout.write(f"bootstrap: created the every-minute schedule {schedule.name!r}.")
        username = os.environ.get("SYNTHETICS_ADMIN_USERNAME", "admin")
        account = staff_account_ensure(
            username=username,
            email=os.environ.get("SYNTHETICS_ADMIN_EMAIL", ""),
            password=os.environ.get("SYNTHETICS_ADMIN_PASSWORD") or None,
        )
        if account.created and account.generated_password:
            self.stdout.write(
                f"bootstrap: created staff account {account.username!r} with password "
                f"{account.generated_password!r} (shown once; change it in the admin)."
            )
        elif account.created:
            self.stdout.write(f"bootstrap: created staff account {account.username!r}.")
        base = f"http://{host}:{port}"
        database = settings.DATABASES["default"]
        where = database["NAME"] if database["ENGINE"].endswith("sqlite3") else "PostgreSQL"
        self.stdout.write(
            f"bootstrap: ready on {where}.\n"
            f"  Studio:    {base}/studio/   (log in as {account.username!r})\n"
            f"  Admin:     {base}/admin/\n"
            f"  API docs:  {base}/api/docs/\n"
            f"  API:       {base}/api/synthetics/status\n"
            "  New activity every minute from the django-q2 cluster started alongside the web server."
        )
