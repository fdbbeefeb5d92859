"""Status: the settings, recent activity, the newest runs and whether the generator is running."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from synthetics.access import can_change_synthetics
from synthetics.api import fast
from synthetics.api.errors import READ_ERRORS, error_responses
from synthetics.api.fields import DetailsField, details_shown
from synthetics.api.permissions import SyntheticsView
from synthetics.api.schema import FIDELITY_CHOICES, GENERATOR_STATUS_CHOICES
from synthetics.api.settings import SettingsOutput
from synthetics.selectors.status import status_summary


class EventCountsOutput(serializers.Serializer):
    scene_events = serializers.IntegerField()
    mindblock_events = serializers.IntegerField()


class LedgerTotalsOutput(serializers.Serializer):
    runs = serializers.IntegerField()
    sessions_started = serializers.IntegerField()
    scene_events = serializers.IntegerField()
    mindblock_events = serializers.IntegerField()
    completed = serializers.IntegerField()
    abandoned = serializers.IntegerField()
    errored = serializers.IntegerField()


class StatusActivityOutput(serializers.Serializer):
    last_5_min = EventCountsOutput()
    active_journeys = serializers.IntegerField()
    last_24_hours = LedgerTotalsOutput(help_text="From the run ledger.")


class RunOutput(serializers.Serializer):
    """A ledger row. Status shows eleven of them: they are written by one direct loop instead of
    DRF's walk over fresh copies of every field, the same JSON (a test compares the two)."""

    id = serializers.IntegerField()
    trigger = serializers.CharField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    sessions_started = serializers.IntegerField()
    sessions_created = serializers.IntegerField(
        source="sessions_started", help_text="An alias of sessions_started."
    )
    scene_events_created = serializers.IntegerField()
    mindblock_events_created = serializers.IntegerField()
    note = serializers.CharField()
    error = DetailsField(
        help_text="A failed run's traceback, for readers with the change permission only."
    )
    shard = serializers.IntegerField(
        help_text="The slice of the pool a scheduled run simulated: sim users with id % shards = "
        "shard (0 for a run of the whole pool)."
    )
    shards = serializers.IntegerField(
        help_text="Shards the scheduled runs were split into (SYNTHETICS_SHARDS); 1: one run "
        "for the whole pool."
    )

    def to_representation(self, run) -> dict:  # api.fast
        return fast.run_body(run, details_shown=details_shown(self))


class FidelityOutput(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=FIDELITY_CHOICES,
        help_text="ok: every metric inside its band; drifting: one is outside; unknown: not "
        "computed yet, or too little generated to tell.",
    )
    metric = serializers.CharField(allow_null=True, help_text="The first metric drifting.")


class StatusResponse(serializers.Serializer):  # written by api.fast.status_body
    settings = SettingsOutput()
    activity = StatusActivityOutput(source="*")
    status = serializers.ChoiceField(
        choices=GENERATOR_STATUS_CHOICES,
        source="status.status",
        help_text=(
            "running: scheduled runs succeed; paused: disabled; failing: the newest scheduled run "
            "failed; stalled: no scheduled run for 3 minutes (the scheduler is down); "
            "clock_behind: the clock stepped back behind what is already covered."
        ),
    )
    status_reason = serializers.CharField(source="status.reason", help_text="The status, in words.")
    last_run = RunOutput(allow_null=True)
    recent_runs = RunOutput(many=True, help_text="The newest scheduled and manual runs.")
    sim_users = serializers.IntegerField(
        help_text="Sim users a run may pick: the pool less the churned ones."
    )
    sim_users_churned = serializers.IntegerField(
        help_text="Sim users who churned: they keep their rows and start no new session."
    )
    timestamp = serializers.DateTimeField(source="now")
    fidelity = FidelityOutput(
        help_text="The last hour's expected versus observed (GET /api/synthetics/expectations), "
        "as the worker computed it after its last scheduled minute."
    )

    def to_representation(self, summary) -> dict:
        return fast.status_body(summary, details_shown=details_shown(self))


class StatusView(SyntheticsView):
    @extend_schema(
        operation_id="synthetics_status",
        summary="Settings, recent activity and whether the generator is running",
        responses={200: StatusResponse, **error_responses(*READ_ERRORS)},
    )
    def get(self, request):
        summary = status_summary(now=timezone.now())
        context = {"can_change": can_change_synthetics(request.user)}
        return Response(StatusResponse(summary, context=context).data)
