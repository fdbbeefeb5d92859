"""What the API, the Studio and the command show of incidents: a few rows, newest first."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q, QuerySet

from synthetics.models import Incident

MAX_LISTED = 200

STATES = {
    "cancelled": lambda now: Q(cancelled_at__isnull=False),
    "upcoming": lambda now: Q(cancelled_at__isnull=True, starts_at__gte=now),
    "in_progress": lambda now: Q(cancelled_at__isnull=True, starts_at__lt=now, ends_at__gte=now),
    "over": lambda now: Q(cancelled_at__isnull=True, ends_at__lt=now),
}


def incident_state(incident: Incident, *, now: datetime) -> str:
    """upcoming, in_progress, over or cancelled (the same rules as STATES)."""
    if incident.cancelled_at is not None:
        return "cancelled"
    if now <= incident.starts_at:
        return "upcoming"
    if now <= incident.ends_at:
        return "in_progress"
    return "over"


def _with_state(incidents: QuerySet[Incident] | list[Incident], now: datetime) -> list[Incident]:
    found = list(incidents)
    for incident in found:
        incident.state = incident_state(incident, now=now)
    return found


def incident_list(
    *, now: datetime, state: str | None = None, hours: int | None = None
) -> list[Incident]:
    """The incidents (only those in `state`; with `hours`, only those not over before now - hours:
    what the charts of the last hours shade, and what is to come), newest start first, at most
    MAX_LISTED, each with its `state`."""
    incidents = Incident.objects.select_related("template").order_by("-starts_at", "-id")
    if state is not None:
        incidents = incidents.filter(STATES[state](now))
    if hours is not None:
        incidents = incidents.filter(ends_at__gt=now - timedelta(hours=hours))
    return _with_state(incidents[:MAX_LISTED], now)


def with_state(incident: Incident, *, now: datetime) -> Incident:
    return _with_state([incident], now)[0]
