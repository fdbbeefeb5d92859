"""Who may read and who may steer: Django's view and change permissions on the settings.

One rule for every surface: the API, the Studio page, the OpenAPI schema and its docs page all ask
`can_view_synthetics` / `can_change_synthetics`.
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission
from rest_framework.views import APIView

VIEW_PERMISSION = "synthetics.view_syntheticsettings"
CHANGE_PERMISSION = "synthetics.change_syntheticsettings"


def can_view_synthetics(user) -> bool:
    """Reading needs the view permission (the change permission includes it)."""
    return bool(
        user
        and user.is_authenticated
        and user.is_active
        and (user.has_perm(VIEW_PERMISSION) or user.has_perm(CHANGE_PERMISSION))
    )


def can_change_synthetics(user) -> bool:
    return bool(
        user and user.is_authenticated and user.is_active and user.has_perm(CHANGE_PERMISSION)
    )


class CanViewSynthetics(BasePermission):
    message = "You need the 'view synthetic settings' permission to read Synthetics."

    def has_permission(self, request, view) -> bool:
        return can_view_synthetics(request.user)


class CanChangeSynthetics(BasePermission):
    message = "You need the 'change synthetic settings' permission to steer Synthetics."

    def has_permission(self, request, view) -> bool:
        return can_change_synthetics(request.user)


# The API's views (no docstring: a view's docstring is its operation's description in the schema)


class SyntheticsView(APIView):  # an operation of the API: reading needs the view permission
    permission_classes = [CanViewSynthetics]


class SteeringView(SyntheticsView):  # an operation that steers the generator
    permission_classes = [CanChangeSynthetics]


def synthetics_viewer_required(view):
    """For pages: log in first (a redirect), then the view permission or a 403."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not can_view_synthetics(request.user):
            raise PermissionDenied(CanViewSynthetics.message)
        return view(request, *args, **kwargs)

    return guarded
