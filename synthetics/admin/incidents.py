"""Incidents: scheduled in a form checked by the service (services.incidents), cancelled by an
action, steered with the settings' permission."""

from __future__ import annotations

import re

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from synthetics.access import can_change_synthetics, can_view_synthetics
from synthetics.admin.forms import SteeringForm
from synthetics.errors import ApplicationError
from synthetics.inputs import label_read, number_read, slug_read, whole_number_read
from synthetics.models import MAX_INCIDENT_MINUTES, Incident, JourneyTemplate
from synthetics.selectors.incidents import incident_state
from synthetics.services.incidents import incident_cancel, incident_checked


class IncidentForm(SteeringForm):
    """The service's rules (services.incidents.incident_checked), each refusal under its field."""

    template = forms.ModelChoiceField(
        JourneyTemplate.objects.all(), required=False, to_field_name="slug"
    )

    class Meta:
        model = Incident
        fields = (
            "label",
            "starts_at",
            "minutes",
            "error_rate",
            "abandon_rate",
            "sessions_multiplier",
            "template",
            "scene",
        )

    raw_readers = {
        "label": label_read,
        "minutes": lambda text: whole_number_read(text, low=0, high=MAX_INCIDENT_MINUTES * 10),
        "error_rate": number_read,
        "abandon_rate": number_read,
        "sessions_multiplier": number_read,
        "scene": slug_read,
    }

    def raw_values_read(self) -> None:
        super().raw_values_read()
        for part in ("0", "1"):  # the date and the time of the split widget
            raw = self.data.get(f"{self.add_prefix('starts_at')}_{part}", "")
            if raw and not re.fullmatch(r"[0-9][0-9:.\-]*[0-9]", raw):
                self.add_error(
                    "starts_at",
                    f"Write the date as YYYY-MM-DD and the time as HH:MM[:SS] in the digits 0-9, "
                    f"got {raw!r}.",
                )

    def clean_under_lock(self, data: dict) -> None:
        try:
            self.checked = incident_checked(**self._service_fields(data), now=timezone.now())
        except ApplicationError as error:
            # Every field the service refused, each under its own field (or the form's top).
            problems = error.extra.get("fields") or {error.extra.get("field"): [error.message]}
            for field, messages in problems.items():
                for message in messages:
                    self.add_error(field if field in self.fields else None, message)

    @staticmethod
    def _service_fields(data) -> dict:
        template = data.get("template")
        return {
            "label": data.get("label"),
            "starts_at": data.get("starts_at"),
            "minutes": data.get("minutes"),
            "error_rate": data.get("error_rate"),
            "abandon_rate": data.get("abandon_rate"),
            "sessions_multiplier": data.get("sessions_multiplier"),
            "template": template.slug if template is not None else None,
            "scene": data.get("scene") or None,
        }


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    form = IncidentForm
    list_display = (
        "label",
        "state",
        "starts_at",
        "minutes",
        "ends_at",
        "error_rate",
        "abandon_rate",
        "sessions_multiplier",
        "template",
        "scene",
    )
    list_select_related = ("template",)
    search_fields = ("label",)
    date_hierarchy = None
    actions = ["cancel_incidents"]

    readonly_fields = ("ends_at", "cancelled_at", "created_by", "created_at")

    # Steering the generator is the *change synthetic settings* permission's, here as in the API
    # and the Studio (not Django's own add/change incident permissions); reading, the view one's.
    def has_view_permission(self, request, obj=None):
        return can_view_synthetics(request.user)

    def has_add_permission(self, request):
        return can_change_synthetics(request.user)

    def has_change_permission(self, request, obj=None):
        # An incident is never edited (cancel it and schedule another): its page is read-only,
        # and the list's cancel action needs the permission.
        return obj is None and can_change_synthetics(request.user)

    def has_delete_permission(self, request, obj=None):
        return False  # rows it labelled name it: cancel instead

    def has_module_permission(self, request):
        return can_view_synthetics(request.user)

    @admin.display(description="state")
    def state(self, obj) -> str:
        return incident_state(obj, now=timezone.now()).replace("_", " ")

    def save_model(self, request, obj, form, change):
        # Checked under the settings row's lock by the form's clean(), in this same transaction.
        checked = form.checked
        checked.created_by = request.user.get_username()[:150]
        checked.save()
        obj.pk = checked.pk

    @admin.action(description="Cancel the selected incidents from the current minute on")
    def cancel_incidents(self, request, queryset):
        if not self.has_change_permission(request):
            raise PermissionDenied
        now, done = timezone.now(), 0
        for incident in queryset.order_by("id"):
            try:
                incident_cancel(incident_id=incident.id, now=now)
                done += 1
            except ApplicationError as error:
                self.message_user(request, error.message, messages.WARNING)
        if done:
            self.message_user(request, f"{done} incident(s) cancelled.")
