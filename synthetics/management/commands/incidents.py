"""Schedule, list and cancel incidents (services.incidents): `incidents add|list|cancel`."""

from __future__ import annotations

import argparse

from django.utils import timezone

from synthetics.management.cli import SyntheticsCommand, aware_datetime, bounded_int
from synthetics.models import MAX_INCIDENT_MINUTES
from synthetics.selectors.incidents import STATES, incident_list, with_state
from synthetics.services.incidents import incident_cancel, incident_create


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None


def _describe(incident) -> str:
    effects = [
        f"{name} {value:g}"
        for name, value in (
            ("error_rate", incident.error_rate),
            ("abandon_rate", incident.abandon_rate),
            ("sessions_multiplier", incident.sessions_multiplier),
        )
        if value is not None
    ]
    scope = [f"template {incident.template.slug}"] if incident.template else []
    scope += [f"scene {incident.scene}"] if incident.scene else []
    return (
        f"{incident.id:>5}  {incident.state:<11}  {incident.starts_at:%Y-%m-%d %H:%M} UTC  "
        f"{incident.minutes:>5} min  {incident.label!r}: {', '.join(effects)}"
        + (f" on {' and '.join(scope)}" if scope else " on every session")
    )


class Command(SyntheticsCommand):
    help = (
        "Incidents: windows in which the generator writes other error or abandon rates or more or "
        "fewer sessions, every event of a session they change labelled with their id and label. "
        "`add` schedules one, `list` shows them, `cancel ID` stops one from the current minute."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="add|list|cancel")
        add = actions.add_parser("add", help="schedule an incident")
        add.add_argument(
            "--starts-at", type=aware_datetime, required=True, help="ISO 8601 with a time zone"
        )
        add.add_argument(
            "--minutes", type=bounded_int(1, MAX_INCIDENT_MINUTES), required=True, help="how long"
        )
        add.add_argument("--label", required=True, help="written into every event it changes")
        add.add_argument("--error-rate", type=_number)
        add.add_argument("--abandon-rate", type=_number)
        add.add_argument("--sessions-multiplier", type=_number)
        add.add_argument("--template", help="a journey template's slug: only its sessions")
        add.add_argument("--scene", help="a scene's slug: only sessions that visit it")
        add.add_argument(
            "--past",
            action="store_true",
            help="allow an incident the schedule can no longer reach (to backfill it)",
        )
        listing = actions.add_parser("list", help="list incidents, newest start first")
        listing.add_argument("--state", choices=sorted(STATES))
        cancel = actions.add_parser("cancel", help="cancel an incident from the current minute on")
        cancel.add_argument("incident_id", type=int)

    def handle(self, *args, action, **options):
        now = timezone.now()
        if action == "add":
            incident = incident_create(
                starts_at=options["starts_at"],
                minutes=options["minutes"],
                label=options["label"],
                error_rate=options["error_rate"],
                abandon_rate=options["abandon_rate"],
                sessions_multiplier=options["sessions_multiplier"],
                template=options["template"],
                scene=options["scene"],
                allow_past=options["past"],
                now=now,
                created_by="manage.py incidents",
            )
            self.stdout.write("incidents: added\n" + _describe(with_state(incident, now=now)))
        elif action == "list":
            found = incident_list(now=now, state=options["state"])
            if not found:
                self.stdout.write("incidents: none")
            for incident in found:
                self.stdout.write(_describe(incident))
        else:
            incident = incident_cancel(incident_id=options["incident_id"], now=now)
            self.stdout.write("incidents: cancelled\n" + _describe(with_state(incident, now=now)))
