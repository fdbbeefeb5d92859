"""Cleanup: delete synthetic activity older than a cutoff (never a real row), and follow the job."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from synthetics.access import can_change_synthetics
from synthetics.api.errors import READ_ERRORS, WRITE_ERRORS, error_responses
from synthetics.api.fields import (
    StrictBooleanField,
    StrictInputSerializer,
    StrictIntegerField,
    details_shown,
)
from synthetics.api.permissions import SyntheticsView
from synthetics.api.schema import CLEANUP_STATUS_CHOICES
from synthetics.api.throttles import CostlyWriteView
from synthetics.selectors.cleanup import cleanup_job_get
from synthetics.services.cleanup import (
    DEFAULT_OLDER_THAN_HOURS,
    MAX_OLDER_THAN_HOURS,
    cleanup_job_hand_off,
    cleanup_synthetic,
)


class CleanupInput(StrictInputSerializer):
    """A destructive call says what it wants: `dry_run` is required, so an empty body deletes nothing."""

    older_than_hours = StrictIntegerField(
        required=False,
        default=DEFAULT_OLDER_THAN_HOURS,
        documented_range=(1, MAX_OLDER_THAN_HOURS),
        help_text=f"Delete synthetic activity older than this (default {DEFAULT_OLDER_THAN_HOURS}).",
    )
    dry_run = StrictBooleanField(
        help_text="Required: true only counts what would be deleted, false deletes it.",
        error_messages={
            "required": (
                "Required: send true to count what would be deleted, or false to delete it "
                f"(with older_than_hours, default {DEFAULT_OLDER_THAN_HOURS})."
            )
        },
    )


class CleanupCountsOutput(serializers.Serializer):
    journey_scene_events = serializers.IntegerField()
    mindblock_events = serializers.IntegerField()
    sessions = serializers.IntegerField(
        help_text="Rows of an attached application's sessions table (0 without one)."
    )
    journeys = serializers.IntegerField()
    synthetic_runs = serializers.IntegerField(
        help_text="Ledger rows of runs that ended before the cutoff and name no row left."
    )


class CleanupJobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.SerializerMethodField(help_text="Where to follow the job (GET).")
    status = serializers.ChoiceField(
        choices=CLEANUP_STATUS_CHOICES,
        help_text="running: rows are left and django-q2 tasks are deleting them, batch by batch.",
    )
    stage = serializers.CharField(help_text="The table being cleaned, or done.")
    older_than_hours = serializers.IntegerField()
    cutoff = serializers.DateTimeField()
    requested_by = serializers.CharField(
        help_text="Who started it (empty for readers without the change permission)."
    )
    counts = CleanupCountsOutput(help_text="Rows deleted so far, per table.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField(help_text="The last batch: the job's heartbeat.")
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(
        help_text="Why it failed (the error's type and message; for readers with the change "
        "permission only)."
    )

    def get_url(self, job) -> str:
        return _job_url(job)

    def to_representation(self, job):
        body = super().to_representation(job)
        if not details_shown(self):
            # Who asked and why it failed are for those who may steer (view-only readers get the
            # job's progress; an error says where the details are)
            body["requested_by"] = ""
            if body["error"]:
                body["error"] = (
                    "The job failed; the details are for users who may change Synthetics."
                )
        return body


def _job_url(job) -> str:
    return f"/api/synthetics/cleanup/{job.id}"


class CleanupResponse(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    dry_run = serializers.BooleanField()
    older_than_hours = serializers.IntegerField()
    cutoff = serializers.DateTimeField()
    counts = CleanupCountsOutput(
        help_text="Rows deleted (or, with dry_run, that would be) per table; while the job is "
        "still running, deleted so far."
    )
    job = CleanupJobOutput(
        allow_null=True,
        required=False,
        help_text="The cleanup job (null for a dry run). 200: done within the request; 202: "
        "the job goes on in django-q2 tasks: follow job.url.",
    )


class CleanupJobResponse(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    job = CleanupJobOutput()


class CleanupView(CostlyWriteView):
    throttle_bucket = "cleanup"

    @extend_schema(
        operation_id="synthetics_cleanup",
        summary="Delete synthetic activity older than a cutoff (never a real row)",
        request=CleanupInput,
        responses={
            200: CleanupResponse,
            202: CleanupResponse,
            **error_responses(*WRITE_ERRORS, 409, 429),
        },
        examples=[
            OpenApiExample(
                "Count a week's worth",
                value={"older_than_hours": 168, "dry_run": True},
                request_only=True,
            )
        ],
    )
    def post(self, request):
        data = CleanupInput(data=request.data)
        data.is_valid(raise_exception=True)
        older_than_hours = data.validated_data["older_than_hours"]
        result = cleanup_synthetic(
            older_than_hours=older_than_hours,
            dry_run=data.validated_data["dry_run"],
            now=timezone.now(),
            budget_seconds=settings.SYNTHETICS_CLEANUP_REQUEST_SECONDS,
            requested_by=request.user.get_username(),
        )
        if not result.done:
            cleanup_job_hand_off(result.job.id)
        body = {
            "dry_run": result.dry_run,
            "older_than_hours": older_than_hours,
            "cutoff": result.cutoff,
            "counts": result.counts,
            "job": result.job,
        }
        headers = {} if result.done else {"Location": _job_url(result.job)}
        return Response(
            CleanupResponse(body, context={"can_change": True}).data,  # a steerer asked
            status=200 if result.done else 202,
            headers=headers,
        )


class CleanupJobView(SyntheticsView):
    @extend_schema(
        operation_id="synthetics_cleanup_job",
        summary="Follow a cleanup job: its status, stage and the rows deleted so far",
        responses={200: CleanupJobResponse, **error_responses(*READ_ERRORS, 404)},
    )
    def get(self, request, job_id: int):
        job = cleanup_job_get(job_id)
        context = {"can_change": can_change_synthetics(request.user)}
        return Response(CleanupJobResponse({"job": job}, context=context).data)
