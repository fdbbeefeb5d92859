"""Run now: start exactly `target` sessions now (what an external cron calls), answered in the seed's
run-now shape."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from synthetics.api.errors import WRITE_ERRORS, error_responses
from synthetics.api.fields import (
    MillisecondDateTimeField,
    StrictBooleanField,
    StrictInputSerializer,
    StrictIntegerField,
)
from synthetics.api.throttles import CostlyWriteView
from synthetics.engine.run import MAX_MANUAL_TARGET
from synthetics.services import run_manual


class RunNowInput(StrictInputSerializer):
    target = StrictIntegerField(
        documented_range=(1, MAX_MANUAL_TARGET),
        help_text=f"Sessions to start: 1..max_per_run (the current setting), at most "
        f"{MAX_MANUAL_TARGET:,}.",
    )
    force = StrictBooleanField(
        required=False, default=False, help_text="Run even while generation is paused."
    )


class RunSettingsOutput(serializers.Serializer):
    target = serializers.IntegerField(allow_null=True)
    abandon_rate = serializers.FloatField(allow_null=True)
    error_rate = serializers.FloatField(allow_null=True)


class RunResultOutput(serializers.Serializer):
    """A run of the ledger in the seed's run-now shape (`sessions_created` is `sessions_started`)."""

    success = serializers.SerializerMethodField()
    sessions_started = serializers.IntegerField()
    sessions_created = serializers.IntegerField(
        source="sessions_started", help_text="The seed's name for sessions_started (an alias)."
    )
    scene_events_created = serializers.IntegerField()
    mindblock_events_created = serializers.IntegerField()
    settings = RunSettingsOutput(source="*", help_text="The settings the run used.")
    timestamp = MillisecondDateTimeField(source="window_end")
    run_id = serializers.IntegerField(source="id")
    status = serializers.CharField()
    journeys_completed = serializers.IntegerField()
    journeys_abandoned = serializers.IntegerField()
    journeys_errored = serializers.IntegerField()
    active_journeys = serializers.IntegerField()
    note = serializers.CharField()

    def get_success(self, run) -> bool:
        return run.status != "failed"


class RunNowResponse(serializers.Serializer):
    success = serializers.SerializerMethodField()
    result = RunResultOutput(source="*")

    get_success = RunResultOutput.get_success  # the run's, the same


class RunNowView(CostlyWriteView):
    throttle_bucket = "run-now"

    @extend_schema(
        operation_id="synthetics_run_now",
        summary="Start exactly `target` sessions now (what an external cron calls)",
        request=RunNowInput,
        responses={200: RunNowResponse, **error_responses(*WRITE_ERRORS, 409, 429, 500, 503)},
        examples=[OpenApiExample("Cron", value={"target": 3}, request_only=True)],
    )
    def post(self, request):
        data = RunNowInput(data=request.data)
        data.is_valid(raise_exception=True)
        run = run_manual(**data.validated_data)
        return Response(RunNowResponse(run).data)
