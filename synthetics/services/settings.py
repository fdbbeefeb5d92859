"""Changing the generator settings: validated as a whole, saved under a row lock, or not at all."""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from synthetics.models import SyntheticSettings

EDITABLE_FIELDS: dict[str, type] = {
    "enabled": bool,
    "sessions_per_min": int,
    "max_per_run": int,
    "error_rate": float,
    "abandon_rate": float,
}


def _coerce(field: str, value: Any) -> Any:
    kind = EDITABLE_FIELDS[field]
    if kind is bool:
        if not isinstance(value, bool):
            raise ValidationError({field: f"{field} must be true or false, got {value!r}."})
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError({field: f"{field} must be a number, got {value!r}."})
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError({field: f"{field} must be a finite number, got {value!r}."})
    if kind is int:
        if isinstance(value, float) and not value.is_integer():
            raise ValidationError({field: f"{field} must be a whole number, got {value!r}."})
        return int(value)
    return float(value)


@transaction.atomic
def settings_update(*, changes: dict[str, Any]) -> SyntheticSettings:
    """Apply a partial update; on any invalid field raise ValidationError and change nothing."""
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise ValidationError(
            {
                name: f"Unknown setting {name!r}; editable: {', '.join(EDITABLE_FIELDS)}."
                for name in unknown
            }
        )
    errors: dict[str, list[str]] = {}
    coerced: dict[str, Any] = {}
    for field, value in changes.items():
        try:
            coerced[field] = _coerce(field, value)
        except ValidationError as error:
            errors.update(error.message_dict)
    if errors:
        raise ValidationError(errors)
    row = SyntheticSettings.objects.select_for_update().get(pk=1)
    for field, value in coerced.items():
        setattr(row, field, value)
    row.full_clean()
    row.save()
    return row
