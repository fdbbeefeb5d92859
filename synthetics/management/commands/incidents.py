"""Schedule, list and cancel incidents (services.incidents): `incidents add|list|cancel`.

Arguments are read by the API's strict readers (synthetics.inputs), so a value the API refuses is a
usage error here too; times are printed in UTC, as stored, with "UTC" after them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC

from django.utils import timezone

from synthetics.inputs import (
    aware_datetime_read,
    label_read,
    number_read,
    slug_read,
    whole_number_read,
)
from synthetics.management.cli import SyntheticsCommand
from synthetics.models import MAX_INCIDENT_MINUTES
from synthetics.selectors.incidents import STATES, incident_list, with_state
from synthetics.services.incidents import incident_cancel, incident_create

MAX_ID = 2**63 - 1


def _argument(read: Callable[[str], object]) -> Callable[[str], object]:
    """An argparse type from a strict reader: its refusal becomes a usage error."""

    def parse(text: str):
        try:
            return read(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def _whole_number(low: int, high: int) -> Callable[[str], object]:
    return _argument(lambda text: whole_number_read(text, low=low, high=high))


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
        f"{incident.id:>5}  {incident.state:<11}  "
        f"{incident.starts_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC  "
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
        required = (  # (flag, reader, help)
            (
                "--starts-at",
                _argument(aware_datetime_read),
                "ISO 8601 with a time zone: 2026-12-06T14:00:00Z or 2026-12-06T06:00:00-08:00",
            ),
            ("--minutes", _whole_number(1, MAX_INCIDENT_MINUTES), "how long"),
            ("--label", _argument(label_read), "written into every event it changes"),
        )
        for flag, reader, text in required:
            add.add_argument(flag, type=reader, required=True, help=text)
        add.add_argument("--error-rate", type=_argument(number_read))
        add.add_argument("--abandon-rate", type=_argument(number_read))
        add.add_argument("--sessions-multiplier", type=_argument(number_read))
        add.add_argument(
            "--template",
            type=_argument(slug_read),
            help="a journey template's slug: only its sessions",
        )
        add.add_argument(
            "--scene", type=_argument(slug_read), help="a scene's slug: only sessions that visit it"
        )
        add.add_argument(
            "--past",
            action="store_true",
            help="allow an incident the schedule can no longer reach (to backfill it)",
        )
        listing = actions.add_parser("list", help="list incidents, newest start first")
        listing.add_argument("--state", choices=sorted(STATES))
        cancel = actions.add_parser("cancel", help="cancel an incident from the current minute on")
        cancel.add_argument("incident_id", type=_whole_number(1, MAX_ID))

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
