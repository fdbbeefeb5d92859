"""Who may read and who may steer: Django's view and change permissions on the settings.

One rule for every surface: the API (synthetics.api.permissions), the admin, the Studio page, the
OpenAPI schema and its docs page all ask `can_view_synthetics` / `can_change_synthetics`. Nothing
here imports the REST framework: the admin loads this module in every process, management commands
included, and the REST framework with what it pulls in was a third of a command's start (0.2 s).
"""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

VIEW_PERMISSION = "synthetics.view_syntheticsettings"
CHANGE_PERMISSION = "synthetics.change_syntheticsettings"

VIEW_REFUSED = "You need the 'view synthetic settings' permission to read Synthetics."
CHANGE_REFUSED = "You need the 'change synthetic settings' permission to steer Synthetics."


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


def synthetics_viewer_required(view):
    """For pages: log in first (a redirect), then the view permission or a 403."""

    @wraps(view)
    def guarded(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not can_view_synthetics(request.user):
            raise PermissionDenied(VIEW_REFUSED)
        return view(request, *args, **kwargs)

    return guarded
