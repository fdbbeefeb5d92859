"""Sim users: the simulated users, counted per persona and listed a page at a time."""

from __future__ import annotations

import functools

from django.core.paginator import Paginator as DjangoPaginator
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.generics import ListAPIView
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response

from synthetics.api import fast
from synthetics.api.errors import READ_ERRORS, error_responses
from synthetics.api.fields import QueryChoiceField, QueryWholeNumberField, StrictQuerySerializer
from synthetics.api.permissions import CanViewSynthetics
from synthetics.engine.population import PERSONAS
from synthetics.inputs import whole_number_read
from synthetics.selectors.sim_users import sim_user_list, sim_user_persona_counts

MAX_PAGE_SIZE = 500


class SimUserQuery(StrictQuerySerializer):
    persona = QueryChoiceField(choices=[persona.slug for persona in PERSONAS], required=False)


class PageSizeQuery(StrictQuerySerializer):
    page_size = QueryWholeNumberField(
        required=False, min_value=1, max_value=MAX_PAGE_SIZE, help_text="Rows per page."
    )


class SimUserOutput(serializers.Serializer):  # written by api.fast.sim_user_body
    id = serializers.IntegerField()
    username = serializers.CharField(source="user.username")
    display_name = serializers.CharField()
    persona = serializers.CharField()
    activity_weight = serializers.FloatField()
    timezone = serializers.CharField()
    locale = serializers.CharField()
    signup_date = serializers.DateField()
    settles_into = serializers.CharField(help_text="A newcomer's persona after their first weeks.")
    churned_at = serializers.DateTimeField(allow_null=True, help_text="Set once the user churned.")
    in_active_journey = serializers.BooleanField()

    def to_representation(self, sim_user) -> dict:
        return fast.sim_user_body(sim_user)


class _CountedPaginator(DjangoPaginator):
    """Django's paginator with the count already known."""

    def __init__(self, *args, count: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.__dict__["count"] = count  # the cached_property's slot


class SimUserPagination(PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE

    def get_page_size(self, request):
        """Refuse a bad page_size (DRF would silently fall back to the default)."""
        query = PageSizeQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        return query.validated_data.get("page_size", self.page_size)

    def get_page_number(self, request, paginator):
        """The page asked for, read as strictly as every number (or `last`): any other is no such
        page, a 404 as DRF answers one past the last."""
        given = request.query_params.getlist(self.page_query_param)
        if not given:
            return 1
        if len(given) > 1:  # a 400 as for every parameter given twice (StrictQuerySerializer)
            raise ValidationError({self.page_query_param: ["Given more than once: give it once."]})
        if given[0] in self.last_page_strings:
            return paginator.num_pages
        try:
            return whole_number_read(given[0], low=1, high=paginator.num_pages)
        except ValueError as error:
            raise NotFound(f"Invalid page: {error}") from None

    def paginate_queryset(self, queryset, request, view=None):
        self.by_persona = sim_user_persona_counts()
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
    serializer_class = SimUserOutput
    pagination_class = SimUserPagination

    @extend_schema(
        operation_id="synthetics_sim_users",
        summary="The simulated users: count and a paginated list, filterable by persona",
        parameters=[
            SimUserQuery,
            OpenApiParameter(
                "page_size",
                {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE},
                description=f"Users per page, 1..{MAX_PAGE_SIZE} (default 50).",
            ),
        ],
        responses={200: SimUserOutput(many=True), **error_responses(400, 404, *READ_ERRORS)},
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = SimUserQuery(data=self.request.query_params)
        query.is_valid(raise_exception=True)
        self.persona = query.validated_data.get("persona")
        return sim_user_list(persona=self.persona)
