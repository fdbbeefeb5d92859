"""Scheduling and cancelling incidents (engine.incidents): every value checked, every refusal a
message, nothing written by a refused request.

Incidents are written under the settings row's lock, so two requests cannot each pass the overlap
check against the other. A run reads the incidents over its window when it starts (selectors.
run_inputs.incidents_over): one created or cancelled during a run applies from the next run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F

from synthetics.engine.minute import floor_minute
from synthetics.errors import ApplicationError, Conflict, NotFound
from synthetics.models import (
    MAX_INCIDENT_MINUTES,
    MAX_SESSIONS_MULTIPLIER,
    Incident,
    JourneyTemplate,
    Scene,
    SyntheticSettings,
)
from synthetics.selectors import run_inputs
from synthetics.services.runs import MAX_CATCH_UP_MINUTES

MAX_LABEL_LENGTH = 100
EFFECTS = ("error_rate", "abandon_rate", "sessions_multiplier")
# How far from now an incident may start: a year either way (a backfill reaches a year back).
MAX_DISTANCE = timedelta(days=366)
# Incidents in force at once over any minute: each one is a check per session and a tag per event.
MAX_OVERLAPPING = 20


class IncidentNotFound(NotFound):
    """No incident with that id (API: 404)."""


def _refused(field: str, message: str) -> ApplicationError:
    return ApplicationError(message, extra={"field": field})


def _refused_all(problems: dict[str, list[str]]) -> ApplicationError:
    """One refusal naming every bad field: `fields` holds each one's messages (the API answers
    them all), `field` the first."""
    message = "; ".join(text for texts in problems.values() for text in texts)
    return ApplicationError(message, extra={"field": next(iter(problems)), "fields": problems})


def _rate(name: str, value: object, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _refused(name, f"{name} must be a number from 0 to {high:g}, got {value!r}")
    if not 0 <= value <= high:
        raise _refused(name, f"{name} must be from 0 to {high:g}, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class _Scope:
    """Which templates' sessions an incident reaches: their slugs."""

    templates: frozenset[str]


def _scope(template: JourneyTemplate | None, scene: str) -> _Scope:
    if scene:
        slugs = Scene.objects.filter(slug=scene).values_list("template__slug", flat=True)
        templates = frozenset(slugs)
        if template is not None:
            templates &= {template.slug}
        return _Scope(templates)
    if template is not None:
        return _Scope(frozenset({template.slug}))
    return _Scope(frozenset(JourneyTemplate.objects.values_list("slug", flat=True)))


def _same(new: Incident, other: Incident) -> bool:
    """Whether `other` (not cancelled) is `new` again: a request sent twice."""
    fields = ("label", "starts_at", "minutes", "template_id", "scene", *EFFECTS)
    return other.cancelled_at is None and all(
        getattr(new, field) == getattr(other, field) for field in fields
    )


def _contradiction(new: Incident, other: Incident) -> str:
    """Why `other`, overlapping `new` in time, contradicts it ("" when it does not): their scopes
    meet and they set one value differently, or the same rate in different scenes."""
    shared = (
        _scope(new.template, new.scene).templates & _scope(other.template, other.scene).templates
    )
    if not shared:
        return ""
    for field in EFFECTS:
        mine, theirs = getattr(new, field), getattr(other, field)
        if mine is None or theirs is None:
            continue
        if mine != theirs:
            return f"it sets {field} {theirs:g}, this one {mine:g}"
        if field != "sessions_multiplier" and new.scene != other.scene:
            return f"it sets {field} in scene {other.scene or '(any)'}, this one in {new.scene or '(any)'}"
    errors = new.error_rate if new.error_rate is not None else other.error_rate
    abandons = new.abandon_rate if new.abandon_rate is not None else other.abandon_rate
    if errors is not None and abandons is not None and errors + abandons > 1:
        return f"together they set error_rate {errors:g} and abandon_rate {abandons:g}, over 1"
    return ""


@transaction.atomic
def incident_create(**fields) -> Incident:
    """Schedule an incident (see incident_checked for every rule), under the settings row's lock so
    that two requests cannot each pass the overlap check against the other, or refuse it."""
    SyntheticSettings.objects.select_for_update().get(pk=1)
    incident = incident_checked(**fields)
    incident.save()
    return incident


def incident_checked(
    *,
    starts_at: datetime,
    minutes: int,
    label: str,
    now: datetime,
    error_rate: float | None = None,
    abandon_rate: float | None = None,
    sessions_multiplier: float | None = None,
    template: str | None = None,
    scene: str | None = None,
    allow_past: bool = False,
    created_by: str = "",
) -> Incident:
    """The incident asked for, checked and not saved, or an ApplicationError naming the bad value.

    Refused: a start not on a whole minute or without a time zone; minutes outside 1..7 days; an
    empty or long label; no effect; a rate outside 0..1, or error + abandon above 1 with the
    settings' value for the one not given; a multiplier outside 0..100, or with a scene (a
    multiplier reaches whole sessions: all, or one template's); an unknown template or scene, or a
    scene the template does not visit; an end before the schedule's catch-up reach (now - 10
    minutes: no run would ever cover it), unless `allow_past` (for a backfill of history); and an
    incident that overlaps one whose scope meets it and sets a value differently (Conflict).
    """
    settings_row = SyntheticSettings.objects.get(pk=1)
    # Every field's problems at once (a form flags them all), then the rules that need them valid.
    problems: dict[str, list[str]] = {}

    def refuse(field: str, message: str) -> None:
        problems.setdefault(field, []).append(message)

    if not isinstance(label, str) or not label.strip():
        refuse("label", "label must be a non-empty text")
    else:
        label = label.strip()
        if len(label) > MAX_LABEL_LENGTH:
            refuse("label", f"label must be at most {MAX_LABEL_LENGTH} characters")
    if not isinstance(starts_at, datetime) or starts_at.tzinfo is None:
        refuse("starts_at", "starts_at must be a date and time with a time zone")
    elif not now - MAX_DISTANCE <= starts_at <= now + MAX_DISTANCE:
        refuse("starts_at", f"starts_at must be within a year of now, got {starts_at.isoformat()}")
    elif starts_at.second or starts_at.microsecond:
        refuse(
            "starts_at",
            f"starts_at must be on a whole minute (runs cover whole minutes), got "
            f"{starts_at.isoformat()}",
        )
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        refuse("minutes", f"minutes must be a whole number, got {minutes!r}")
    elif not 1 <= minutes <= MAX_INCIDENT_MINUTES:
        refuse(
            "minutes", f"minutes must be from 1 to {MAX_INCIDENT_MINUTES} (7 days), got {minutes}"
        )
    values: dict[str, float | None] = {}
    for name, value, high in (
        ("error_rate", error_rate, 1.0),
        ("abandon_rate", abandon_rate, 1.0),
        ("sessions_multiplier", sessions_multiplier, MAX_SESSIONS_MULTIPLIER),
    ):
        try:
            values[name] = _rate(name, value, high)
        except ApplicationError as refusal:
            refuse(name, refusal.message)
    if len(values) == len(EFFECTS):  # every rate given is valid: the rules between them
        if all(value is None for value in values.values()):
            refuse(
                "error_rate",
                "an incident must set at least one of error_rate, abandon_rate and "
                "sessions_multiplier",
            )
        errors = (
            values["error_rate"] if values["error_rate"] is not None else settings_row.error_rate
        )
        abandons = (
            values["abandon_rate"]
            if values["abandon_rate"] is not None
            else settings_row.abandon_rate
        )
        if errors + abandons > 1:
            refuse(
                "error_rate",
                f"error_rate + abandon_rate must be at most 1 under the incident; it would be "
                f"{errors:g} + {abandons:g} (a rate not given is the settings' value)",
            )
    template_row = None
    if template not in (None, ""):
        template_row = JourneyTemplate.objects.filter(slug=template).first()
        if template_row is None:
            refuse("template", f"no journey template has the slug {template!r}")
        elif not template_row.is_active:
            refuse(
                "template", f"journey template {template!r} is inactive: no session would use it"
            )
    scene = scene or ""
    if scene and "template" not in problems:
        scenes = Scene.objects.filter(slug=scene)
        if template_row is not None:
            scenes = scenes.filter(template=template_row)
        if not scenes.exists():
            where = f"template {template_row.slug!r}" if template_row else "any template"
            refuse("scene", f"no scene of {where} has the slug {scene!r}")
        if values.get("sessions_multiplier") is not None:
            refuse(
                "sessions_multiplier",
                "a sessions multiplier changes whole sessions, so it cannot be limited to a scene: "
                "give a template instead",
            )
    if "starts_at" not in problems and "minutes" not in problems:
        ends_at = starts_at + timedelta(minutes=minutes)
        if not allow_past:
            reach = floor_minute(now) - timedelta(minutes=MAX_CATCH_UP_MINUTES)
            covered = run_inputs.covered_until()
            if covered is not None and covered > reach:
                reach = covered
            if ends_at <= reach:
                refuse(
                    "starts_at",
                    f"the incident would end at {ends_at.isoformat()}, but runs have covered (or "
                    f"can no longer cover) every minute up to {reach.isoformat()}: no run would "
                    "write it. For history, create it with `manage.py incidents add --past` and "
                    "backfill a range no run has covered yet (or cleaned up)",
                )
    if problems:
        raise _refused_all(problems)
    incident = Incident(
        label=label,
        starts_at=starts_at,
        minutes=minutes,
        ends_at=ends_at,
        template=template_row,
        scene=scene,
        created_by=created_by[:150],
        **values,
    )
    overlapping = (
        Incident.objects.filter(starts_at__lt=ends_at, ends_at__gt=starts_at)
        .filter(ends_at__gt=F("starts_at"))  # not one cancelled before it began
        .select_related("template")
    )
    others = list(overlapping.order_by("id")[: MAX_OVERLAPPING + 1])
    if len(others) >= MAX_OVERLAPPING:
        raise Conflict(
            f"{MAX_OVERLAPPING} incidents already overlap this window: cancel some first",
            extra={"field": "starts_at"},
        )
    for other in others:
        if _same(incident, other):
            raise Conflict(
                f"incident {other.id} ({other.label!r}) is already this incident: the same "
                "window, label, values and sessions (sent twice?)",
                extra={"field": "starts_at"},
            )
        why = _contradiction(incident, other)
        if why:
            raise Conflict(
                f"the incident overlaps incident {other.id} ({other.label!r}, "
                f"{other.starts_at.isoformat()} to {other.ends_at.isoformat()}) on the same "
                f"sessions and contradicts it: {why}",
                extra={"field": "starts_at"},
            )
    incident.full_clean()
    return incident


@transaction.atomic
def incident_cancel(*, incident_id: int, now: datetime) -> Incident:
    """Stop an incident after the current minute: one not started never applies, one in progress
    applies up to the end of the minute under way (runs of this minute may have used it already;
    the minutes after it never will). Refused for one already over or already cancelled
    (Conflict)."""
    SyntheticSettings.objects.select_for_update().get(pk=1)
    incident = Incident.objects.select_for_update().filter(pk=incident_id).first()
    if incident is None:
        raise IncidentNotFound(f"no incident has the id {incident_id}")
    if incident.cancelled_at is not None:
        raise Conflict(
            f"incident {incident.id} was already cancelled at {incident.cancelled_at.isoformat()}"
        )
    if incident.ends_at <= now:
        raise Conflict(
            f"incident {incident.id} is over (it ended at {incident.ends_at.isoformat()}): its "
            "rows are written and stay labelled"
        )
    incident.cancelled_at = now
    incident.ends_at = max(
        incident.starts_at, min(incident.ends_at, floor_minute(now) + timedelta(minutes=1))
    )
    incident.save(update_fields=["cancelled_at", "ends_at", "updated_at"])
    return incident
