"""The API's hand-written fast paths, fenced in one place: status (its settings, counts and up to
eleven runs), the activity chart's points and the sim-user page's rows.

Why: DRF writes a serializer by walking fresh deep copies of every declared field, nested ones
included. On the pages read most (status, which every open Studio tab reads every 10 s; a 30-day
chart of 721 points; a page of up to 500 sim users) that walk was most of their time in Python.
Each function here writes directly what DRF's own walk over the serializer declared in the
resource's module writes: the same keys in the same order and the same values, times as DRF writes
them (ISO 8601 in the current time zone, "Z" for UTC). tests/test_api_fast.py compares the two for
several inputs (empty, None values, non-UTC zones): change a declaration, change its function here.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING

from django.utils import timezone
from rest_framework import serializers

from synthetics.api.fields import details_for
from synthetics.engine.types import GENERATOR_SETTINGS

if TYPE_CHECKING:
    from synthetics.models import SimUser, SyntheticRun
    from synthetics.selectors.status import StatusSummary

# DRF's own conversions, shared (they keep no state)
_datetime = serializers.DateTimeField().to_representation
_date = serializers.DateField().to_representation


def status_body(summary: StatusSummary, *, details_shown: bool) -> dict:
    """api.status.StatusResponse."""
    row = summary.settings
    totals = summary.last_24_hours
    last_run = summary.last_run
    metric = summary.fidelity["metric"]
    return {
        "settings": {name: kind(getattr(row, name)) for name, kind in GENERATOR_SETTINGS},
        "activity": {
            "last_5_min": {
                "scene_events": int(summary.last_5_min["scene_events"]),
                "mindblock_events": int(summary.last_5_min["mindblock_events"]),
            },
            "active_journeys": int(summary.active_journeys),
            "last_24_hours": {
                "runs": int(totals["runs"]),
                "sessions_started": int(totals["sessions_started"]),
                "scene_events": int(totals["scene_events"]),
                "mindblock_events": int(totals["mindblock_events"]),
                "completed": int(totals["completed"]),
                "abandoned": int(totals["abandoned"]),
                "errored": int(totals["errored"]),
            },
        },
        "status": str(summary.status.status),
        "status_reason": str(summary.status.reason),
        "last_run": None if last_run is None else run_body(last_run, details_shown=details_shown),
        "recent_runs": [run_body(run, details_shown=details_shown) for run in summary.recent_runs],
        "sim_users": int(summary.sim_users),
        "sim_users_churned": int(summary.sim_users_churned),
        "timestamp": _datetime(summary.now),
        "fidelity": {
            "status": str(summary.fidelity["status"]),
            "metric": None if metric is None else str(metric),
        },
    }


def run_body(run: SyntheticRun, *, details_shown: bool) -> dict:
    """api.status.RunOutput: a ledger row."""
    return {
        "id": int(run.id),
        "trigger": str(run.trigger),
        "status": str(run.status),
        "started_at": _datetime(run.started_at),
        "finished_at": _datetime(run.finished_at),  # None stays None
        "duration_ms": None if run.duration_ms is None else int(run.duration_ms),
        "window_start": _datetime(run.window_start),
        "window_end": _datetime(run.window_end),
        "sessions_started": int(run.sessions_started),
        "sessions_created": int(run.sessions_started),
        "scene_events_created": int(run.scene_events_created),
        "mindblock_events_created": int(run.mindblock_events_created),
        "note": str(run.note),
        "error": details_for(str(run.error), shown=details_shown),
        "shard": int(run.shard),
        "shards": int(run.shards),
    }


# The fields of api.activity.ActivityPointOutput, in order: activity_points writes them.
ACTIVITY_POINT_FIELDS = (
    "scene_events",
    "mindblock_events",
    "sessions_started",
    "journeys_completed",
    "journeys_abandoned",
    "journeys_errored",
    "bucket",
)


def activity_points(points: list[dict]) -> list[dict]:
    """api.activity.ActivityPointOutput(many=True): the selector's points (ints and a UTC time),
    the counts copied, each built as a literal (the fastest dict CPython makes)."""
    zone = timezone.get_current_timezone()
    in_utc = getattr(zone, "key", None) == "UTC"
    written = []
    for point in points:
        moment = point["bucket"]
        # A UTC time in UTC as is; else in the current zone (astimezone, as DRF does)
        text = (moment if in_utc and moment.tzinfo is UTC else moment.astimezone(zone)).isoformat()
        written.append(
            {
                "scene_events": point["scene_events"],
                "mindblock_events": point["mindblock_events"],
                "sessions_started": point["sessions_started"],
                "journeys_completed": point["journeys_completed"],
                "journeys_abandoned": point["journeys_abandoned"],
                "journeys_errored": point["journeys_errored"],
                "bucket": text[:-6] + "Z" if text.endswith("+00:00") else text,
            }
        )
    return written


def sim_user_body(sim_user: SimUser) -> dict:
    """api.sim_users.SimUserOutput."""
    churned_at = sim_user.churned_at
    return {
        "id": int(sim_user.id),
        "username": str(sim_user.user.username),
        "display_name": str(sim_user.display_name),
        "persona": str(sim_user.persona),
        "activity_weight": float(sim_user.activity_weight),
        "timezone": str(sim_user.timezone),
        "locale": str(sim_user.locale),
        "signup_date": _date(sim_user.signup_date),
        "settles_into": str(sim_user.settles_into),
        "churned_at": None if churned_at is None else _datetime(churned_at),
        "in_active_journey": bool(sim_user.in_active_journey),
    }
