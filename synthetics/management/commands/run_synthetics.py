"""Run the generator once, now or at a simulated time."""

import json

from django.core.management.base import CommandError

from synthetics.engine import EngineError
from synthetics.management.cli import SyntheticsCommand, aware_datetime, bounded_int
from synthetics.models import MAX_PER_RUN_LIMIT, RunStatus, RunTrigger
from synthetics.services import RunFailed, tick_run


class Command(SyntheticsCommand):
    help = (
        "Run the generator once. With --target N, a manual run that starts exactly N sessions "
        "(1..max_per_run); without it, a scheduled run covering the minutes since the last one. "
        "Prints the counts the run-now endpoint returns."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--target",
            type=bounded_int(1, MAX_PER_RUN_LIMIT),
            default=None,
            help="sessions to start (a manual run); must not exceed max_per_run",
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
        trigger = RunTrigger.MANUAL if target is not None else RunTrigger.SCHEDULED
        try:
            result = tick_run(trigger=trigger, now=now, target=target, force=force)
        except (EngineError, RunFailed) as error:
            raise CommandError(str(error)) from error
        body = {
            "success": result.status != RunStatus.FAILED,
            "sessions_created": result.sessions_created,
            "scene_events_created": result.scene_events_created,
            "mindblock_events_created": result.mindblock_events_created,
            "settings": {
                "target": result.target,
                "abandon_rate": result.abandon_rate,
                "error_rate": result.error_rate,
            },
            "timestamp": result.window_end.isoformat().replace("+00:00", "Z"),
            "run_id": result.run_id,
            "status": result.status,
        }
        self.stdout.write(json.dumps(body, indent=2))
        if result.status == RunStatus.FAILED:
            raise CommandError(f"run {result.run_id} failed: {result.note}")
        note = f" ({result.note})" if result.note else ""
        self.stdout.write(
            f"run_synthetics: {trigger} run {result.run_id} {result.status}{note}: "
            f"{result.sessions_created} sessions, {result.scene_events_created} scene events, "
            f"{result.mindblock_events_created} mindblock events."
        )
