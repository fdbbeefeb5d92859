"""The REST API: one view per operation that validates the input, calls a service or selector and serialises the output."""

from __future__ import annotations

import functools

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Paginator as DjangoPaginator
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.views import APIView

from synthetics.api import serializers as io
from synthetics.api.parsers import whole_number_read
from synthetics.api.permissions import (
    CanChangeSynthetics,
    CanViewSynthetics,
    can_change_synthetics,
)
from synthetics.api.throttles import BurstThrottle
from synthetics.selectors import dashboards, insights
from synthetics.selectors import incidents as incidents_selectors
from synthetics.selectors.dashboards import cleanup_job_get
from synthetics.services import run_manual, settings_update
from synthetics.services.cleanup import cleanup_job_hand_off, cleanup_synthetic
from synthetics.services.expectations import expectations_report
from synthetics.services.incidents import incident_cancel, incident_create


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    descriptions = {
        400: "Invalid input: a message per field.",
        401: "No or invalid credentials.",
        403: "Authenticated, but without the needed permission (or no CSRF token with a session).",
        404: "No such page, or no such incident.",
        409: "The generator's state refuses it now: generation is paused (send force: true to "
        "run anyway), there are no sim users, another cleanup job is still running, or an incident "
        "contradicts one it overlaps or is already over.",
        413: "The body is larger than the API takes.",
        429: "Too many calls; retry after the given number of seconds.",
        500: "The run failed and was rolled back; `run_id` names its row in the ledger.",
        503: "The generator is busy with another run; retry after the given number of seconds.",
    }
    return {
        code: OpenApiResponse(io.ErrorResponse, description=descriptions[code]) for code in codes
    }


READ_ERRORS = (401, 403)
WRITE_ERRORS = (400, 401, 403, 413)


class SyntheticsView(APIView):
    permission_classes = [CanViewSynthetics]


class StatusView(SyntheticsView):
    @extend_schema(
        operation_id="synthetics_status",
        summary="Settings, recent activity and whether the generator is running",
        responses={200: io.StatusResponse, **_errors(*READ_ERRORS)},
    )
    def get(self, request):
        summary = dashboards.status_summary(now=timezone.now())
        context = {"can_change": can_change_synthetics(request.user)}
        return Response(io.StatusResponse(summary, context=context).data)


class SettingsChangeView(SyntheticsView):
    """Validate the body with `input_serializer`, apply it with settings_update, answer the settings."""

    permission_classes = [CanChangeSynthetics]
    input_serializer: type[io.StrictInputSerializer]

    def post(self, request):
        data = self.input_serializer(data=request.data)
        data.is_valid(raise_exception=True)
        row = settings_update(**data.validated_data)
        body = io.SettingsResponse(row).data
        if set(data.validated_data) - {"enabled"}:  # a rate, a rate's cap or the rhythm changed
            warning = insights.capacity_summary(now=timezone.now()).warning()
            if warning:
                body["warnings"] = [warning]
        return Response(body)


class ToggleView(SettingsChangeView):
    input_serializer = io.ToggleInput

    @extend_schema(
        operation_id="synthetics_toggle",
        summary="Pause or resume generation",
        request=io.ToggleInput,
        responses={200: io.SettingsResponse, **_errors(*WRITE_ERRORS)},
        examples=[OpenApiExample("Pause", value={"enabled": False}, request_only=True)],
    )
    def post(self, request):
        return super().post(request)


class SettingsView(SettingsChangeView):
    input_serializer = io.SettingsInput

    @extend_schema(
        operation_id="synthetics_settings_update",
        summary="Change any of the settings (a partial update, all or nothing)",
        request=io.SettingsInput,
        responses={200: io.SettingsResponse, **_errors(*WRITE_ERRORS)},
        examples=[OpenApiExample("Faster", value={"sessions_per_min": 5}, request_only=True)],
    )
    def post(self, request):
        return super().post(request)


class RunNowView(SyntheticsView):
    permission_classes = [CanChangeSynthetics]
    throttle_classes = [BurstThrottle]
    throttle_bucket = "run-now"

    @extend_schema(
        operation_id="synthetics_run_now",
        summary="Start exactly `target` sessions now (what an external cron calls)",
        request=io.RunNowInput,
        responses={200: io.RunNowResponse, **_errors(*WRITE_ERRORS, 409, 429, 500, 503)},
        examples=[OpenApiExample("Cron", value={"target": 3}, request_only=True)],
    )
    def post(self, request):
        data = io.RunNowInput(data=request.data)
        data.is_valid(raise_exception=True)
        run = run_manual(**data.validated_data)
        return Response(io.RunNowResponse(run).data)


class ActivityView(SyntheticsView):
    @extend_schema(
        operation_id="synthetics_activity",
        summary="Totals and a chart series over the last `hours` (per minute up to 6 h, else per hour)",
        parameters=[
            OpenApiParameter(
                "hours",
                {"type": "integer", "minimum": 1, "maximum": io.MAX_ACTIVITY_HOURS},
                OpenApiParameter.PATH,
                description=f"Window length in hours, 1..{io.MAX_ACTIVITY_HOURS}.",
            )
        ],
        responses={200: io.ActivityResponse, **_errors(400, *READ_ERRORS)},
    )
    def get(self, request, hours: str):
        path = io.ActivityPath(data={"hours": hours})
        path.is_valid(raise_exception=True)
        series = dashboards.activity_series(hours=path.validated_data["hours"], now=timezone.now())
        return Response(io.ActivityResponse(series).data)


class InsightsView(SyntheticsView):
    @extend_schema(
        operation_id="synthetics_insights",
        summary="Funnels of the last 24 h, the rhythm and the cap's trim, daily active users, cohorts",
        responses={200: io.InsightsResponse, **_errors(*READ_ERRORS)},
    )
    def get(self, request):
        # The same for every reader and slow to change: computed at most once a minute, so open
        # Studio tabs refreshing every 10 s don't recompute it each time.
        return Response(
            cache.get_or_set(INSIGHTS_CACHE_KEY, _insights_body, INSIGHTS_CACHE_SECONDS)
        )


INSIGHTS_CACHE_KEY = insights.CACHE_KEY
INSIGHTS_CACHE_SECONDS = 60


def _insights_body() -> dict:
    now = timezone.now()
    rhythm, capacity = insights.rhythm_and_capacity(now=now)
    body = {
        "funnels": insights.funnels(now=now),
        "rhythm": rhythm,
        "capacity": capacity,
        "daily_active_users": insights.daily_active_users(now=now),
        "cohorts": insights.cohort_retention(now=now),
    }
    return io.InsightsResponse(body).data


class CleanupView(SyntheticsView):
    permission_classes = [CanChangeSynthetics]
    throttle_classes = [BurstThrottle]
    throttle_bucket = "cleanup"

    @extend_schema(
        operation_id="synthetics_cleanup",
        summary="Delete synthetic activity older than a cutoff (never a real row)",
        request=io.CleanupInput,
        responses={
            200: io.CleanupResponse,
            202: io.CleanupResponse,
            **_errors(*WRITE_ERRORS, 409, 429),
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
        data = io.CleanupInput(data=request.data)
        data.is_valid(raise_exception=True)
        result = cleanup_synthetic(
            older_than_hours=data.validated_data["older_than_hours"],
            dry_run=data.validated_data["dry_run"],
            now=timezone.now(),
            budget_seconds=settings.SYNTHETICS_CLEANUP_REQUEST_SECONDS,
            requested_by=request.user.get_username(),
        )
        if not result.done:
            cleanup_job_hand_off(result.job.id)
        body = {
            "dry_run": result.dry_run,
            "older_than_hours": data.validated_data["older_than_hours"],
            "cutoff": result.cutoff,
            "counts": result.counts,
            "job": result.job,
        }
        headers = {} if result.done else {"Location": f"/api/synthetics/cleanup/{result.job.id}"}
        return Response(
            io.CleanupResponse(body, context={"can_change": True}).data,  # a steerer asked
            status=200 if result.done else 202,
            headers=headers,
        )


class CleanupJobView(SyntheticsView):
    @extend_schema(
        operation_id="synthetics_cleanup_job",
        summary="Follow a cleanup job: its status, stage and the rows deleted so far",
        responses={200: io.CleanupJobResponse, **_errors(*READ_ERRORS, 404)},
    )
    def get(self, request, job_id: int):
        job = cleanup_job_get(job_id)
        context = {"can_change": can_change_synthetics(request.user)}
        return Response(io.CleanupJobResponse({"job": job}, context=context).data)


class ExpectationsView(SyntheticsView):
    @extend_schema(
        operation_id="synthetics_expectations",
        summary="Expected versus observed over the last hours: each metric's interval and verdict",
        parameters=[io.ExpectationsQuery],
        responses={200: io.ExpectationsResponse, **_errors(400, *READ_ERRORS)},
    )
    def get(self, request):
        query = io.ExpectationsQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        hours = query.validated_data["hours"]
        # The same for every reader, and it reads the pool: kept a minute per window length.
        return Response(
            cache.get_or_set(
                f"{EXPECTATIONS_CACHE_KEY}:{hours}",
                lambda: (
                    io.ExpectationsResponse(
                        expectations_report(hours=hours, now=timezone.now())
                    ).data
                ),
                EXPECTATIONS_CACHE_SECONDS,
            )
        )


EXPECTATIONS_CACHE_KEY = "synthetics:expectations"
EXPECTATIONS_CACHE_SECONDS = 60


class IncidentsView(SyntheticsView):
    def get_permissions(self):
        if self.request.method == "POST":
            return [CanChangeSynthetics()]
        return super().get_permissions()

    @extend_schema(
        operation_id="synthetics_incidents",
        summary="The incidents: upcoming, in progress, over and cancelled, newest start first",
        parameters=[io.IncidentListQuery],
        responses={200: io.IncidentListResponse, **_errors(400, *READ_ERRORS)},
    )
    def get(self, request):
        query = io.IncidentListQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        found = incidents_selectors.incident_list(
            now=timezone.now(),
            state=query.validated_data.get("state"),
            hours=query.validated_data.get("hours"),
        )
        return Response(io.IncidentListResponse({"incidents": found}).data)

    @extend_schema(
        operation_id="synthetics_incident_create",
        summary="Schedule an incident: other rates or volumes over a window, its rows labelled",
        request=io.IncidentInput,
        responses={201: io.IncidentResponse, **_errors(*WRITE_ERRORS, 409)},
        examples=[
            OpenApiExample(
                "Errors on one journey for ten minutes",
                value={
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
        data = io.IncidentInput(data=request.data)
        data.is_valid(raise_exception=True)
        now = timezone.now()
        incident = incident_create(
            **data.validated_data, now=now, created_by=request.user.get_username()
        )
        incident = incidents_selectors.with_state(incident, now=now)
        return Response(io.IncidentResponse({"incident": incident}).data, status=201)


class IncidentView(SyntheticsView):
    permission_classes = [CanChangeSynthetics]

    @extend_schema(
        operation_id="synthetics_incident_cancel",
        summary="Cancel an incident from the current minute on (one already over stays)",
        responses={200: io.IncidentResponse, **_errors(*READ_ERRORS, 404, 409)},
    )
    def delete(self, request, incident_id: int):
        now = timezone.now()
        incident = incident_cancel(incident_id=incident_id, now=now)
        incident = incidents_selectors.with_state(incident, now=now)
        return Response(io.IncidentResponse({"incident": incident}).data)


class _CountedPaginator(DjangoPaginator):
    """Django's paginator with the count already known."""

    def __init__(self, *args, count: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.__dict__["count"] = count  # the cached_property's slot


class SimUserPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = io.MAX_PAGE_SIZE

    def get_page_size(self, request):
        """Refuse a bad page_size (DRF would silently fall back to the default)."""
        query = io.PageSizeQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data.get("page_size", self.page_size)

    def get_page_number(self, request, paginator):
        """The page asked for, read as strictly as every number (or `last`): any other is no such
        page, a 404 as DRF answers one past the last."""
        given = request.query_params.getlist(self.page_query_param)
        if not given:
            return 1
        if len(given) > 1:
            raise NotFound("Invalid page: page is given more than once.")
        if given[0] in self.last_page_strings:
            return paginator.num_pages
        try:
            return whole_number_read(given[0], low=1, high=paginator.num_pages)
        except ValueError as error:
            raise NotFound(f"Invalid page: {error}") from None

    def paginate_queryset(self, queryset, request, view=None):
        self.by_persona = dashboards.sim_user_persona_counts()
        # The count is the per-persona counts' (the same rows, read once): no second COUNT.
        persona = getattr(view, "persona", None)
        count = self.by_persona.get(persona, 0) if persona else sum(self.by_persona.values())
        self.django_paginator_class = functools.partial(_CountedPaginator, count=count)
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        return Response(
            {
                "count": self.page.paginator.count,
                "by_persona": self.by_persona,
                "next": self.get_next_link(),
                "previous": self.get_previous_link(),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema):
        response = super().get_paginated_response_schema(schema)
        response["properties"]["by_persona"] = {
            "type": "object",
            "additionalProperties": {"type": "integer"},
            "description": "Sim users per persona (the whole pool, before the filter).",
        }
        response["required"] = ["count", "by_persona", "next", "previous", "results"]
        return response


class SimUsersView(ListAPIView):
    permission_classes = [CanViewSynthetics]
    serializer_class = io.SimUserOutput
    pagination_class = SimUserPagination

    @extend_schema(
        operation_id="synthetics_sim_users",
        summary="The simulated users: count and a paginated list, filterable by persona",
        parameters=[
            io.SimUserQuery,
            OpenApiParameter(
                "page_size",
                {"type": "integer", "minimum": 1, "maximum": 500},
                description="Users per page, 1..500 (default 50).",
            ),
        ],
        responses={200: io.SimUserOutput(many=True), **_errors(400, 404, *READ_ERRORS)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = io.SimUserQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        self.persona = query.validated_data.get("persona")
        return dashboards.sim_user_list(persona=self.persona)
