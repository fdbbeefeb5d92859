"""Generate the last H hours (or M minutes) of synthetic history on the simulated clock."""

from synthetics.management.cli import SyntheticsCommand, bounded_int, progress_bar
from synthetics.services import activity_backfill
from synthetics.services.history import MAX_BACKFILL_HOURS


class Command(SyntheticsCommand):
    help = (
        "Generate the last --hours hours (or --minutes minutes) of activity, minute by minute on "
        "the simulated clock, ending now. Minutes a scheduled or backfill run already covered are "
        "left alone, so it is safe to run while the scheduler runs."
    )

    def add_arguments(self, parser):
        length = parser.add_mutually_exclusive_group(required=True)
        length.add_argument(
            "--hours",
            type=bounded_int(1, MAX_BACKFILL_HOURS),
            help=f"how many hours of history to generate (1..{MAX_BACKFILL_HOURS})",
        )
        length.add_argument(
            "--minutes",
            type=bounded_int(1, MAX_BACKFILL_HOURS * 60),
            help=f"how many minutes of history to generate (1..{MAX_BACKFILL_HOURS * 60:,})",
        )
        parser.add_argument(
            "--seed",
            type=bounded_int(0, 2**63 - 1),
            default=None,
            help="seed of the runs' random streams (default: SYNTHETICS_SEED)",
        )

    def handle(self, *args, hours, minutes, seed, **options):
        total = minutes if hours is None else hours * 60
        with progress_bar(total=total, unit="min", description="backfill") as advance:
            summary = activity_backfill(minutes=total, seed=seed, progress=advance)
        totals = summary.totals
        finished = (
            totals["journeys_completed"] + totals["journeys_abandoned"] + totals["journeys_errored"]
        )
        self.stdout.write(
            f"backfill_activity: {summary.minutes_generated} of {summary.minutes} minutes generated "
            f"({summary.minutes_already_covered} already covered) from {summary.start:%Y-%m-%d %H:%M} "
            f"to {summary.end:%Y-%m-%d %H:%M} UTC: {totals['sessions_started']} sessions, "
            f"{totals['scene_events_created']} scene events, {totals['mindblock_events_created']} "
            f"mindblock events; {finished} journeys finished ({totals['journeys_completed']} "
            f"completed, {totals['journeys_abandoned']} abandoned, {totals['journeys_errored']} "
            "errored)."
        )
