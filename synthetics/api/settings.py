"""Settings: pause or resume (toggle) and a partial update of the generator's settings.

The settings' fields are made from the one list of them (engine.types.GENERATOR_SETTINGS): their
kinds from it, their ranges from models.SETTING_RANGES, their help from the model's fields."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.response import Response

from synthetics.api.errors import WRITE_ERRORS, error_responses
from synthetics.api.fields import (
    StrictBooleanField,
    StrictFloatField,
    StrictInputSerializer,
    StrictIntegerField,
)
from synthetics.api.permissions import SteeringView
from synthetics.engine.types import GENERATOR_SETTINGS
from synthetics.models import SETTING_RANGES, SyntheticSettings
from synthetics.selectors.insights import capacity_summary
from synthetics.services import settings_update

_INPUT_FIELDS = {bool: StrictBooleanField, int: StrictIntegerField, float: StrictFloatField}
_OUTPUT_FIELDS = {
    bool: serializers.BooleanField,
    int: serializers.IntegerField,
    float: serializers.FloatField,
}


def _setting_input(name: str, kind: type) -> serializers.Field:
    """A setting as the API reads it: its JSON type strictly, its range documented (checked by
    the model, through settings_update), the model field's help."""
    documented = {"documented_range": SETTING_RANGES[name]} if name in SETTING_RANGES else {}
    help_text = str(SyntheticSettings._meta.get_field(name).help_text) or None
    return _INPUT_FIELDS[kind](required=False, help_text=help_text, **documented)


class ToggleInput(StrictInputSerializer):
    enabled = StrictBooleanField(help_text="true resumes generation, false pauses it.")


class SettingsInput(StrictInputSerializer):
    """Types only; the ranges (SETTING_RANGES) are the model's, checked by settings_update."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {name: _setting_input(name, kind) for name, kind in GENERATOR_SETTINGS}

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError(
                f"Send at least one setting to change: {', '.join(self.fields)}."
            )
        return attrs


class SettingsOutput(serializers.Serializer):
    def get_fields(self) -> dict[str, serializers.Field]:
        return {name: _OUTPUT_FIELDS[kind]() for name, kind in GENERATOR_SETTINGS}


class SettingsResponse(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    settings = SettingsOutput(source="*")
    warnings = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Set when the new settings are more than the pool can sustain (Little's law): "
        "saved all the same, with the numbers.",
    )


class SettingsChangeView(SteeringView):
    """Validate the body with `input_serializer`, apply it with settings_update, answer the settings."""

    input_serializer: type[StrictInputSerializer]

    def post(self, request):
        data = self.input_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = settings_update(**data.validated_data)
        body = SettingsResponse(row).data
        if set(data.validated_data) - {"enabled"}:  # a rate, a rate's cap or the rhythm changed
            warning = capacity_summary(now=timezone.now()).warning()
            if warning:
                body["warnings"] = [warning]
        return Response(body)


def _documented(*, operation_id: str, summary: str, example: tuple[str, dict]):
    """Document a settings change: its body is the view's input_serializer, its answer the settings."""

    def document(view: type[SettingsChangeView]) -> type[SettingsChangeView]:
        schema = extend_schema(
            operation_id=operation_id,
            summary=summary,
            request=view.input_serializer,
            responses={200: SettingsResponse, **error_responses(*WRITE_ERRORS)},
            examples=[OpenApiExample(example[0], value=example[1], request_only=True)],
        )
        return extend_schema_view(post=schema)(view)

    return document


@_documented(
    operation_id="synthetics_toggle",
    summary="Pause or resume generation",
    example=("Pause", {"enabled": False}),
)
class ToggleView(SettingsChangeView):
    input_serializer = ToggleInput


@_documented(
    operation_id="synthetics_settings_update",
    summary="Change any of the settings (a partial update, all or nothing)",
    example=("Faster", {"sessions_per_min": 5}),
)
class SettingsView(SettingsChangeView):
    input_serializer = SettingsInput
