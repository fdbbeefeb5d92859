"""Delete synthetic activity older than a cutoff (never a real row), with a progress bar."""

from django.utils import timezone

from synthetics.management.cli import SyntheticsCommand, bounded_int, progress_bar
from synthetics.services.cleanup import (
    DEFAULT_OLDER_THAN_HOURS,
    MAX_OLDER_THAN_HOURS,
    cleanup_counts,
    cleanup_cutoff,
    cleanup_synthetic,
)


class Command(SyntheticsCommand):
    help = (
        "Delete our synthetic scene events, mindblock events and finished journeys older than "
        "--older-than-hours (default a week), then the ledger rows of the runs none of whose rows "
        "is left, batch by batch; real rows are never touched. --dry-run only counts. The "
        "generator may keep running meanwhile."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than-hours",
            type=bounded_int(1, MAX_OLDER_THAN_HOURS),
            default=DEFAULT_OLDER_THAN_HOURS,
            help=f"delete activity older than this (1..{MAX_OLDER_THAN_HOURS}, "
            f"default {DEFAULT_OLDER_THAN_HOURS})",
        )
        parser.add_argument("--dry-run", action="store_true", help="only count what would go")

    def handle(self, *args, older_than_hours, dry_run, **options):
        now = timezone.now()
        cutoff = cleanup_cutoff(older_than_hours=older_than_hours, now=now)
        counts = cleanup_counts(cutoff=cutoff)
        if not dry_run:
            with progress_bar(total=sum(counts.values()), unit="row", description="cleanup") as bar:
                done = 0

                def advance(job) -> None:
                    nonlocal done
                    moved = sum(job.counts.values()) - done
                    done += moved
                    bar(moved)

                result = cleanup_synthetic(
                    older_than_hours=older_than_hours,
                    dry_run=False,
                    now=now,
                    requested_by="manage.py cleanup_activity",
                    progress=advance,
                )
            counts = result.counts
        verb = "would delete" if dry_run else f"job {result.job.id} deleted"
        self.stdout.write(
            f"cleanup_activity: {verb} {counts['journey_scene_events']} scene events, "
            f"{counts['mindblock_events']} mindblock events, "
            + (f"{counts['sessions']} sessions, " if counts["sessions"] else "")
            + f"{counts['journeys']} journeys and "
            f"{counts['synthetic_runs']} ledger rows older than {cutoff:%Y-%m-%d %H:%M} UTC."
        )
