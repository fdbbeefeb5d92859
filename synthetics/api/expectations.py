"""Expectations: expected versus observed over the last hours, each metric's interval and verdict."""

from __future__ import annotations

from django.core.cache import cache
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from synthetics.api.errors import READ_ERRORS, error_responses
from synthetics.api.fields import QueryWholeNumberField, StrictQuerySerializer
from synthetics.api.permissions import SyntheticsView
from synthetics.api.schema import FIDELITY_CHOICES
from synthetics.engine.expectations import METRICS as EXPECTATION_METRICS
from synthetics.services.expectations import expectations_report


class ExpectationsQuery(StrictQuerySerializer):
    hours = QueryWholeNumberField(
        required=False, default=1, min_value=1, max_value=168, help_text="The last N hours, 1..168."
    )


class MetricCheckOutput(serializers.Serializer):
    metric = serializers.ChoiceField(choices=list(EXPECTATION_METRICS))
    expected = serializers.FloatField()
    low = serializers.FloatField(help_text="The interval's lower end.")
    high = serializers.FloatField(help_text="The interval's upper end.")
    observed = serializers.FloatField(allow_null=True)
    ratio = serializers.FloatField(allow_null=True, help_text="observed / expected.")
    verdict = serializers.ChoiceField(choices=["ok", "drifting", "too_few"])


class ExpectationsResponse(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    hours = serializers.IntegerField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    level = serializers.FloatField(
        help_text="The family's confidence level: each of the metrics' intervals is at 1 - (1 - "
        "level) / metrics, so a healthy generator is called drifting in at most 1 - level of "
        "windows."
    )
    runs = serializers.IntegerField(help_text="Scheduled and backfill runs compared.")
    fidelity = serializers.ChoiceField(
        choices=FIDELITY_CHOICES,
        help_text="unknown: no metric could be judged (too little generated).",
    )
    drifting = serializers.ListField(child=serializers.CharField())
    settling = serializers.CharField(
        help_text="Why only sessions are judged now (an incident's edge, a pause, a catch-up "
        "within the last hours), or empty."
    )
    summary = serializers.CharField(help_text="The verdict, in words.")
    metrics = MetricCheckOutput(many=True, source="checks")


EXPECTATIONS_CACHE_KEY = "synthetics:expectations"
EXPECTATIONS_CACHE_SECONDS = 60


class ExpectationsView(SyntheticsView):
    @extend_schema(
        operation_id="synthetics_expectations",
        summary="Expected versus observed over the last hours: each metric's interval and verdict",
        parameters=[ExpectationsQuery],
        responses={200: ExpectationsResponse, **error_responses(400, *READ_ERRORS)},
    )
    def get(self, request):
        query = ExpectationsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        hours = query.validated_data["hours"]
        # The same for every reader, and it reads the pool: kept a minute per window length.
        return Response(
            cache.get_or_set(
                f"{EXPECTATIONS_CACHE_KEY}:{hours}",
                lambda: (
                    ExpectationsResponse(expectations_report(hours=hours, now=timezone.now())).data
                ),
                EXPECTATIONS_CACHE_SECONDS,
            )
        )
