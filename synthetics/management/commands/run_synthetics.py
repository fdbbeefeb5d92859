"""Run the generator once, now or at a simulated time."""

import json

from django.conf import settings

from synthetics.api.runs import RunResultOutput
from synthetics.engine.run import MAX_MANUAL_TARGET
from synthetics.errors import RunFailed
from synthetics.management.cli import SyntheticsCommand, aware_datetime, whole_number
from synthetics.services import run_manual, run_scheduled, run_scheduled_shards


class Command(SyntheticsCommand):
    help = (
        "Run the generator once. With --target N, a manual run that starts exactly N sessions "
        "(1..max_per_run); without it, a scheduled run covering the minutes since the last one. "
        "Prints what the run-now endpoint returns as its result."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--target",
            type=whole_number,
            default=None,
            help="sessions to start (a manual run): 1 to max_per_run, at most "
            f"{MAX_MANUAL_TARGET:,}",
        )
        parser.add_argument(
            "--now",
            type=aware_datetime,
            default=None,
            help="simulated time of the run, ISO-8601 with a time zone",
        )
        parser.add_argument(
            "--force", action="store_true", help="run a manual run even while generation is paused"
        )

    def handle(self, *args, target, now, force, **options):
        if target is not None:
            self._report(run_manual(target=target, force=force, now=now))
            return
        if settings.SYNTHETICS_SHARDS == 1:
            self._report(run_scheduled(now=now))
            return
        # Split into shards: every shard's run for the same now, one after another here.
        failures = []
        for result in run_scheduled_shards(now=now):
            if isinstance(result, RunFailed):
                failures.append(result)
                self.stderr.write(f"run_synthetics: {result}")
            else:
                self._report(result)
        if failures:
            raise failures[0]

    def _report(self, run) -> None:
        self.stdout.write(json.dumps(RunResultOutput(run).data, indent=2))
        note = f" ({run.note})" if run.note else ""
        shard = f" (shard {run.shard} of {run.shards})" if run.shards > 1 else ""
        self.stdout.write(
            f"run_synthetics: {run.trigger} run {run.id}{shard} {run.status}{note}: "
            f"{run.sessions_started} sessions, {run.scene_events_created} scene events, "
            f"{run.mindblock_events_created} mindblock events."
        )
