"""Activity: totals and a chart series over the last `hours` (per minute up to 6 h, else per hour),
or over a chosen range (per minute, hour or UTC day, chosen from its length)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from synthetics.api import fast
from synthetics.api.errors import READ_ERRORS, error_responses
from synthetics.api.fields import QueryWholeNumberField, StrictQuerySerializer
from synthetics.api.permissions import SyntheticsView
from synthetics.inputs import aware_datetime_read
from synthetics.selectors.activity import (
    HOUR_BUCKETS_UP_TO,
    MAX_ACTIVITY_RANGE,
    MINUTE_BUCKETS_UP_TO_HOURS,
    activity_range,
    activity_series,
)

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


# --- a chosen range: GET /activity?hours=168, or ?since=...&until=... -------------------------------

MAX_RANGE_HOURS = int(MAX_ACTIVITY_RANGE / timedelta(hours=1))
_BUCKETS = (
    f"per minute up to {MINUTE_BUCKETS_UP_TO_HOURS} h, per hour up to "
    f"{HOUR_BUCKETS_UP_TO.days} days, per UTC day above"
)


class QueryDateTimeField(serializers.DateTimeField):
    """ISO 8601 with a time zone in a query string (inputs.aware_datetime_read), in UTC."""

    def to_internal_value(self, data):
        try:
            return aware_datetime_read(data)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


class ActivityRangeQuery(StrictQuerySerializer):
    hours = QueryWholeNumberField(
        required=False,
        min_value=1,
        max_value=MAX_RANGE_HOURS,
        help_text="The last this many hours up to `until` (instead of `since`).",
    )
    since = QueryDateTimeField(
        required=False, help_text="Start of the range (excluded), with a time zone."
    )
    until = QueryDateTimeField(
        required=False, help_text="End of the range (included), with a time zone; default now."
    )

    def validate(self, attrs):
        now = self.context["now"]
        if ("hours" in attrs) == ("since" in attrs):
            raise serializers.ValidationError(
                {"since": ["Give either hours or since (with until, or up to now), not both."]}
                if "hours" in attrs
                else {"hours": ["Give hours (the last hours) or since (and until): a range."]}
            )
        until = attrs.get("until", now)
        if until > now:
            raise serializers.ValidationError(
                {"until": [f"until must not be after now ({now.isoformat()})."]}
            )
        since = attrs["since"] if "since" in attrs else until - timedelta(hours=attrs["hours"])
        if since >= until:
            raise serializers.ValidationError({"since": ["since must be before until."]})
        if until - since > MAX_ACTIVITY_RANGE:
            days = (until - since) / timedelta(days=1)
            raise serializers.ValidationError(
                {
                    "since": [
                        f"The range is {days:.1f} days long; it may be at most "
                        f"{MAX_ACTIVITY_RANGE.days} days ({MAX_RANGE_HOURS} hours)."
                    ]
                }
            )
        return {"since": since, "until": until}


class ActivityRangeResponse(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    bucket = serializers.ChoiceField(
        choices=["minute", "hour", "day"], help_text=f"Chosen from the range's length: {_BUCKETS}."
    )
    totals = ActivityTotalsOutput()
    series = ActivityPointOutput(
        many=True, help_text="Zero-filled, one point per bucket; `bucket` is its start."
    )


class ActivityRangeView(SyntheticsView):
    @extend_schema(
        operation_id="synthetics_activity_range",
        summary="Totals and a chart series over a chosen range (the last `hours`, or `since` to "
        f"`until`, at most {MAX_ACTIVITY_RANGE.days} days)",
        description=f"Buckets {_BUCKETS}. Read from the run ledger and its hourly sums.",
        parameters=[ActivityRangeQuery],
        responses={200: ActivityRangeResponse, **error_responses(400, *READ_ERRORS)},
    )
    def get(self, request):
        query = ActivityRangeQuery(data=request.query_params, context={"now": timezone.now()})
        query.is_valid(raise_exception=True)
        found = activity_range(**query.validated_data)
        return Response(ActivityRangeResponse(found).data)
