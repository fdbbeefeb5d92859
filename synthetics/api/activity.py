"""Activity: totals and a chart series over the last `hours` (per minute up to 6 h, else per hour)."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from synthetics.api import fast
from synthetics.api.errors import READ_ERRORS, error_responses
from synthetics.api.fields import QueryWholeNumberField, StrictQuerySerializer
from synthetics.api.permissions import SyntheticsView
from synthetics.selectors.activity import activity_series

MAX_ACTIVITY_HOURS = 720


class ActivityPath(StrictQuerySerializer):
    hours = QueryWholeNumberField(
        min_value=1, max_value=MAX_ACTIVITY_HOURS, help_text="Window length in hours."
    )


class ActivityCountsOutput(serializers.Serializer):
    scene_events = serializers.IntegerField()
    mindblock_events = serializers.IntegerField()
    sessions_started = serializers.IntegerField()
    journeys_completed = serializers.IntegerField()
    journeys_abandoned = serializers.IntegerField()
    journeys_errored = serializers.IntegerField()


class ActivityTotalsOutput(ActivityCountsOutput):
    runs = serializers.IntegerField()


class ActivityPointsOutput(serializers.ListSerializer):
    """The chart's points (721 for 30 days), written by api.fast.activity_points; a child with other
    fields than fast.ACTIVITY_POINT_FIELDS is written by DRF's own loop."""

    def to_representation(self, data):
        fields = self.child.fields
        if tuple(fields) != fast.ACTIVITY_POINT_FIELDS or any(
            name != field.source for name, field in fields.items()
        ):
            return super().to_representation(data)
        return fast.activity_points(data)


class ActivityPointOutput(ActivityCountsOutput):
    bucket = serializers.DateTimeField(help_text="Start of the minute or hour.")

    class Meta:
        list_serializer_class = ActivityPointsOutput


class ActivityResponse(serializers.Serializer):
    hours = serializers.IntegerField()
    bucket = serializers.ChoiceField(choices=["minute", "hour"])
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    totals = ActivityTotalsOutput()
    series = ActivityPointOutput(many=True)


class ActivityView(SyntheticsView):
    @extend_schema(
        operation_id="synthetics_activity",
        summary="Totals and a chart series over the last `hours` (per minute up to 6 h, else per hour)",
        parameters=[
            OpenApiParameter(
                "hours",
                {"type": "integer", "minimum": 1, "maximum": MAX_ACTIVITY_HOURS},
                OpenApiParameter.PATH,
                description=f"Window length in hours, 1..{MAX_ACTIVITY_HOURS}.",
            )
        ],
        responses={200: ActivityResponse, **error_responses(400, *READ_ERRORS)},
    )
    def get(self, request, hours: str):
        path = ActivityPath(data={"hours": hours})
        path.is_valid(raise_exception=True)
        series = activity_series(hours=path.validated_data["hours"], now=timezone.now())
        return Response(ActivityResponse(series).data)
