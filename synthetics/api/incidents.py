"""Incidents: schedule one (other rates or volumes over a window, its rows labelled), list them,
cancel one."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from synthetics.api.errors import READ_ERRORS, WRITE_ERRORS, error_responses
from synthetics.api.fields import (
    QueryChoiceField,
    QueryWholeNumberField,
    StrictDateTimeField,
    StrictFloatField,
    StrictInputSerializer,
    StrictIntegerField,
    StrictQuerySerializer,
    StrictSlugField,
    StrictTextField,
)
from synthetics.api.permissions import CanChangeSynthetics, SteeringView, SyntheticsView
from synthetics.models import MAX_INCIDENT_MINUTES, MAX_SESSIONS_MULTIPLIER
from synthetics.selectors.incidents import incident_list, with_state
from synthetics.services.incidents import incident_cancel, incident_create


class IncidentInput(StrictInputSerializer):
    """Types only; the rules (whole minutes, ranges, scope, overlaps) are services.incidents'."""

    starts_at = StrictDateTimeField(
        help_text="When it starts, on a whole minute, with a time zone."
    )
    minutes = StrictIntegerField(
        documented_range=(1, MAX_INCIDENT_MINUTES), help_text="How long, in minutes."
    )
    label = StrictTextField(
        max_length=100, help_text="Written into the payload of every event it changes."
    )
    error_rate = StrictFloatField(
        required=False, documented_range=(0, 1), help_text="The error rate of sessions in scope."
    )
    abandon_rate = StrictFloatField(
        required=False, documented_range=(0, 1), help_text="The abandon rate of sessions in scope."
    )
    sessions_multiplier = StrictFloatField(
        required=False,
        documented_range=(0, int(MAX_SESSIONS_MULTIPLIER)),
        help_text="Multiplies the rate of new sessions in scope (0: none start; 3: a surge).",
    )
    template = StrictSlugField(
        required=False, help_text="A journey template's slug: only its sessions."
    )
    scene = StrictSlugField(
        required=False,
        help_text="A scene's slug: only sessions of templates that visit it; the errors and "
        "abandonments the incident draws happen there.",
    )


class IncidentListQuery(StrictQuerySerializer):
    state = QueryChoiceField(
        choices=["upcoming", "in_progress", "over", "cancelled"],
        required=False,
        help_text="Only incidents in this state.",
    )
    hours = QueryWholeNumberField(
        required=False,
        min_value=1,
        max_value=720,
        help_text="Only incidents not over before this many hours ago (what a chart of the last "
        "hours shades), upcoming ones included.",
    )


class IncidentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField()
    state = serializers.ChoiceField(choices=["upcoming", "in_progress", "over", "cancelled"])
    starts_at = serializers.DateTimeField()
    minutes = serializers.IntegerField(help_text="How long it was asked to last.")
    ends_at = serializers.DateTimeField(
        help_text="Where it stops applying: starts_at + minutes, or the minute it was cancelled."
    )
    error_rate = serializers.FloatField(allow_null=True)
    abandon_rate = serializers.FloatField(allow_null=True)
    sessions_multiplier = serializers.FloatField(allow_null=True)
    template = serializers.CharField(source="template.slug", allow_null=True, default=None)
    scene = serializers.CharField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def to_representation(self, incident):
        body = super().to_representation(incident)
        body["scene"] = incident.scene or None
        return body


class IncidentResponse(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    incident = IncidentOutput()


class IncidentListResponse(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    incidents = IncidentOutput(many=True, help_text="Newest start first, at most 200.")


class IncidentsView(SyntheticsView):
    def get_permissions(self):
        if self.request.method == "POST":
            return [CanChangeSynthetics()]
        return super().get_permissions()

    @extend_schema(
        operation_id="synthetics_incidents",
        summary="The incidents: upcoming, in progress, over and cancelled, newest start first",
        parameters=[IncidentListQuery],
        responses={200: IncidentListResponse, **error_responses(400, *READ_ERRORS)},
    )
    def get(self, request):
        query = IncidentListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        found = incident_list(
            now=timezone.now(),
            state=query.validated_data.get("state"),
            hours=query.validated_data.get("hours"),
        )
        return Response(IncidentListResponse({"incidents": found}).data)

    @extend_schema(
        operation_id="synthetics_incident_create",
        summary="Schedule an incident: other rates or volumes over a window, its rows labelled",
        request=IncidentInput,
        responses={201: IncidentResponse, **error_responses(*WRITE_ERRORS, 409)},
        examples=[
            OpenApiExample(
                "Errors on one journey for ten minutes",
                value={
                    # a placeholder: the schema hook fresh_examples puts the next hour in
                    "starts_at": "2026-12-06T14:00:00Z",
                    "minutes": 10,
                    "label": "checkout errors",
                    "error_rate": 0.5,
                    "template": "focus-session",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request):
        data = IncidentInput(data=request.data)
        data.is_valid(raise_exception=True)
        now = timezone.now()
        incident = incident_create(
            **data.validated_data, now=now, created_by=request.user.get_username()
        )
        incident = with_state(incident, now=now)
        return Response(IncidentResponse({"incident": incident}).data, status=201)


class IncidentView(SteeringView):
    @extend_schema(
        operation_id="synthetics_incident_cancel",
        summary="Cancel an incident from the current minute on (one already over stays)",
        responses={200: IncidentResponse, **error_responses(*READ_ERRORS, 404, 409)},
    )
    def delete(self, request, incident_id: int):
        now = timezone.now()
        incident = incident_cancel(incident_id=incident_id, now=now)
        incident = with_state(incident, now=now)
        return Response(IncidentResponse({"incident": incident}).data)
