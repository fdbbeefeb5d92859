"""Who may read and who may steer: Django's view and change permissions on the settings."""

from rest_framework.permissions import BasePermission

VIEW_PERMISSION = "synthetics.view_syntheticsettings"
CHANGE_PERMISSION = "synthetics.change_syntheticsettings"


class CanViewSynthetics(BasePermission):
    message = "You need the 'view synthetic settings' permission to read Synthetics."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and (user.has_perm(VIEW_PERMISSION) or user.has_perm(CHANGE_PERMISSION))
        )


class CanChangeSynthetics(BasePermission):
    message = "You need the 'change synthetic settings' permission to steer Synthetics."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.has_perm(CHANGE_PERMISSION))
