"""The API's strict fields and base serializers: a string is not a number, a number is not a
boolean, a body names only the fields its operation takes, and text is read as sent (synthetics.inputs)."""

from __future__ import annotations

import math
from datetime import UTC

from django.http import QueryDict
from rest_framework import serializers

from synthetics.inputs import (
    aware_datetime_read,
    label_read,
    slug_read,
    whole_number_read,
)

# --- strict fields: a string is not a number, a number is not a boolean ------------------------------


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false (a JSON boolean), got {input!r}."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class _DocumentedRangeMixin:
    """A range shown in the OpenAPI schema only: the range itself is checked where it is defined (the
    model's full_clean for settings, the services for a run's target and cleanup's hours), so each
    range and its message are written once."""

    def __init__(self, *, documented_range: tuple[int, int] | None = None, **kwargs):
        super().__init__(**kwargs)
        if documented_range is not None:
            self.min_value, self.max_value = documented_range


class StrictIntegerField(_DocumentedRangeMixin, serializers.IntegerField):
    """A JSON integer: 5, never 5.0 or 5e0 (a float, whole or not, is refused)."""

    default_error_messages = {
        "invalid": "Must be a whole number written as a JSON integer (no decimal point or "
        "exponent), got {input!r}."
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid", input=data)
        return data


class StrictFloatField(_DocumentedRangeMixin, serializers.FloatField):
    default_error_messages = {"invalid": "Must be a number (a JSON number), got {input!r}."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid", input=data)
        try:
            value = float(data)
        except OverflowError:  # an integer of hundreds of digits
            self.fail("invalid", input=data)
        if not math.isfinite(value):
            self.fail("invalid", input=data)
        return value


class StrictInputSerializer(serializers.Serializer):
    """Refuses a body that is not a JSON object or that names a field this operation doesn't know."""

    def to_internal_value(self, data):
        if isinstance(data, QueryDict):
            # An empty body under a form Content-Type arrives as an empty QueryDict; read it as a
            # plain object so HTML-form defaults (a missing boolean meaning false) never apply.
            data = data.dict()
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["The body must be a JSON object."]}
            )
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {
                    name: [f"Unknown field; this operation takes: {', '.join(self.fields)}."]
                    for name in unknown
                }
            )
        return super().to_internal_value(data)


class StrictTextField(serializers.CharField):
    """A JSON string of printable text, taken as sent: not trimmed (label_read)."""

    default_error_messages = {"invalid": "Must be text (a JSON string), got {input!r}."}
    read = staticmethod(label_read)

    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", input=data)
        try:
            return self.read(data)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


class StrictSlugField(StrictTextField):
    """A JSON string that is a slug exactly (slug_read)."""

    read = staticmethod(slug_read)

    def __init__(self, **kwargs):
        super().__init__(max_length=64, **kwargs)


class StrictDateTimeField(serializers.DateTimeField):
    """A JSON string read by aware_datetime_read: ISO 8601 with a time zone, in UTC."""

    def to_internal_value(self, data):
        try:
            return aware_datetime_read(data)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


# --- query strings and paths: text, read by the strict readers ------------------------------------


class QueryWholeNumberField(serializers.IntegerField):
    """A whole number in a query string or a path: whole_number_read from min_value to max_value."""

    def __init__(self, *, min_value: int, max_value: int, **kwargs):
        super().__init__(min_value=min_value, max_value=max_value, **kwargs)

    def to_internal_value(self, data):
        try:
            return whole_number_read(data, low=self.min_value, high=self.max_value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


class QueryChoiceField(serializers.ChoiceField):
    """One of the choices exactly: not trimmed, not folded to lower case."""

    def __init__(self, *, choices, **kwargs):
        names = ", ".join(str(choice) for choice in choices)
        kwargs.setdefault(
            "error_messages", {"invalid_choice": f"Must be one of: {names}; got {{input!r}}."}
        )
        super().__init__(choices=choices, **kwargs)


class StrictQuerySerializer(serializers.Serializer):
    """Reads its parameters from a query string (or a path), each given at most once and each read
    as sent: an empty value is a value to refuse, not an absent one (as DRF would read it).
    Parameters it does not know (a cache-buster, a paginator's) are left to others."""

    def to_internal_value(self, data):
        values, repeated = {}, []
        for name in self.fields:
            if hasattr(data, "getlist"):  # a QueryDict
                given = data.getlist(name)
            else:
                given = [data[name]] if name in data else []
            if len(given) > 1:
                repeated.append(name)
            elif given:
                values[name] = given[0]
        if repeated:
            raise serializers.ValidationError(
                {name: ["Given more than once: give it once."] for name in repeated}
            )
        return super().to_internal_value(values)


# --- outputs --------------------------------------------------------------------------------------


class MillisecondDateTimeField(serializers.DateTimeField):
    """ISO-8601 in UTC with milliseconds and Z, as the seed writes it: 2026-01-09T19:15:00.000Z."""

    def to_representation(self, value):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


DETAILS_MASKED = "The details are for users who may change Synthetics."


def details_shown(serializer: serializers.Field) -> bool:
    """Whether the view's context (the root serializer's `can_change`) lets this reader see a
    failure's details: closed unless told."""
    return bool(serializer.root.context.get("can_change", False))


def details_for(text: str, *, shown: bool) -> str:
    """A failure's details (a traceback) for readers who may change Synthetics; others are told
    where they are (or get nothing when there are none)."""
    return text if shown or not text else DETAILS_MASKED


class DetailsField(serializers.CharField):
    """A failure's details, for readers who may change Synthetics (details_shown); view-only
    readers read the note and a pointer."""

    def to_representation(self, value) -> str:
        return details_for(str(value), shown=details_shown(self))
