"""Changing the generator settings: typed values in, checked as a whole by the model, saved under a row lock, or not at all."""

from __future__ import annotations

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from synthetics.engine.types import SETTING_NAMES
from synthetics.models import Incident, SyntheticSettings
from synthetics.selectors import insights


@transaction.atomic
def settings_update(**changes: bool | int | float | None) -> SyntheticSettings:
    """Change the settings given, by name (engine.types.SETTING_NAMES; None leaves a setting as it
    is), and return the row.

    Types are the caller's (the API's serializers, the admin's form); ranges and the rule that
    abandon_rate + error_rate <= 1 are the model's (`full_clean()` and its check constraints): on
    any violation this raises Django's ValidationError with a message per field and changes nothing.
    """
    unknown = sorted(set(changes) - set(SETTING_NAMES))
    if unknown:
        raise TypeError(f"settings_update() got settings it does not know: {', '.join(unknown)}")
    row = SyntheticSettings.objects.select_for_update().get(pk=1)
    for field, value in changes.items():
        if value is not None:
            setattr(row, field, value)
    row.full_clean()
    incidents_still_fit(row)
    row.save()
    # The insights (rhythm, capacity) are computed from the settings: the next read recomputes them.
    transaction.on_commit(lambda: cache.delete(insights.CACHE_KEY))
    return row


def incidents_still_fit(row: SyntheticSettings, *, now=None) -> None:
    """An incident not over that sets one rate keeps the setting's other one: together they may not
    exceed 1 (services.incidents checks the same when the incident is created)."""
    for incident in Incident.objects.filter(
        ends_at__gt=now or timezone.now(), cancelled_at__isnull=True
    ).exclude(error_rate__isnull=True, abandon_rate__isnull=True):
        errors = incident.error_rate if incident.error_rate is not None else row.error_rate
        abandons = incident.abandon_rate if incident.abandon_rate is not None else row.abandon_rate
        if errors + abandons > 1:
            field = "abandon_rate" if incident.error_rate is not None else "error_rate"
            raise ValidationError(
                {
                    field: [
                        f"incident {incident.id} ({incident.label!r}, until "
                        f"{incident.ends_at.isoformat()}) sets the other rate: with it, "
                        f"error_rate {errors:g} + abandon_rate {abandons:g} would exceed 1"
                    ]
                }
            )
