"""The API's permission classes and base views: the rule itself is synthetics.access, shared with
the admin and the pages."""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.views import APIView

from synthetics.access import (
    CHANGE_REFUSED,
    VIEW_REFUSED,
    can_change_synthetics,
    can_view_synthetics,
)


class CanViewSynthetics(BasePermission):
    message = VIEW_REFUSED

    def has_permission(self, request, view) -> bool:
        return can_view_synthetics(request.user)


class CanChangeSynthetics(BasePermission):
    message = CHANGE_REFUSED

    def has_permission(self, request, view) -> bool:
        return can_change_synthetics(request.user)


# The API's views (no docstring: a view's docstring is its operation's description in the schema)


class SyntheticsView(APIView):  # an operation of the API: reading needs the view permission
    permission_classes = [CanViewSynthetics]


class SteeringView(SyntheticsView):  # an operation that steers the generator
    permission_classes = [CanChangeSynthetics]
