"""The settings row, edited in place, with pause/resume, run-now and the scenario file's export and
import: the form's fields and readers follow the one list of the generator settings
(engine.types.GENERATOR_SETTINGS)."""

from __future__ import annotations

import copy

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import OperationalError
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_POST

from synthetics.admin.forms import SteeringForm
from synthetics.engine.run import manual_target_limit
from synthetics.engine.types import GENERATOR_SETTINGS, SETTING_NAMES
from synthetics.errors import ApplicationError, RunFailed
from synthetics.inputs import number_read, whole_number_read
from synthetics.models import SyntheticSettings
from synthetics.selectors.insights import capacity_summary
from synthetics.selectors.run_inputs import generator_settings
from synthetics.services import run_manual, settings_update
from synthetics.services.locks import is_database_locked
from synthetics.services.scenarios import (
    SCENARIO_MAX_BYTES,
    ScenarioInvalid,
    scenario_dumps,
    scenario_export,
    scenario_import,
    scenario_loads,
)
from synthetics.services.settings import incidents_still_fit

# How a setting of each kind is read from the form (the model's ranges are checked after).
_SETTING_READERS = {
    int: lambda text: whole_number_read(text, low=0, high=10**12),
    float: number_read,
}


class SettingsForm(SteeringForm):
    """The settings row: the model's rules under each field, and the upcoming incidents' (an
    incident that sets one rate keeps the other: services.settings.incidents_still_fit, the API's
    refusal word for word), checked under the row's lock, held until the save in this
    transaction (incidents are created under the same lock)."""

    raw_readers = {
        name: _SETTING_READERS[kind] for name, kind in GENERATOR_SETTINGS if kind is not bool
    }

    def clean_under_lock(self, data: dict) -> None:
        row = copy.copy(self.instance)
        for name, value in data.items():
            setattr(row, name, value)
        try:
            row.clean()
        except ValidationError:
            return  # the model's own rules, reported under each field after this
        try:
            incidents_still_fit(row)
        except ValidationError as refusal:
            self.add_error(None, refusal)  # a message per field


@admin.register(SyntheticSettings)
class SyntheticSettingsAdmin(admin.ModelAdmin):
    form = SettingsForm
    fields = (*SETTING_NAMES, "updated_at")
    readonly_fields = ("updated_at",)
    change_form_template = "admin/synthetics/settings_change_form.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        if obj is not None:  # the run-now field's bound: the one rule of engine.run
            context["run_target_max"] = manual_target_limit(generator_settings(obj))
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    def changelist_view(self, request, extra_context=None):
        return redirect("admin:synthetics_syntheticsettings_change", object_id=1)

    def save_model(self, request, obj, form, change):
        changes = {
            name: form.cleaned_data[name] for name in form.changed_data if name in self.fields
        }
        if changes:
            settings_update(**changes)
            warning = capacity_summary(now=timezone.now()).warning()
            if warning:
                self.message_user(request, warning, messages.WARNING)

    def get_urls(self):
        return [
            path(
                "1/toggle/", self.admin_site.admin_view(self.toggle_view), name="synthetics_toggle"
            ),
            path(
                "1/run-now/",
                self.admin_site.admin_view(self.run_now_view),
                name="synthetics_run_now",
            ),
            path(
                "1/scenario/export/",
                self.admin_site.admin_view(self.scenario_export_view),
                name="synthetics_scenario_export",
            ),
            path(
                "1/scenario/import/",
                self.admin_site.admin_view(self.scenario_import_view),
                name="synthetics_scenario_import",
            ),
            *super().get_urls(),
        ]

    def _back(self):
        return HttpResponseRedirect(reverse("admin:synthetics_syntheticsettings_change", args=[1]))

    def _require_change(self, request) -> None:
        if not self.has_change_permission(request):
            raise PermissionDenied(
                "Steering Synthetics needs the 'change synthetic settings' permission."
            )

    @method_decorator(require_POST)
    def toggle_view(self, request):
        """Set generation to the state the form asks for: a double submit cannot undo itself."""
        self._require_change(request)
        wanted = request.POST.get("enabled")
        if wanted not in ("true", "false"):
            self.message_user(request, "Say enabled=true or enabled=false.", messages.ERROR)
            return self._back()
        enabled = wanted == "true"
        settings_update(enabled=enabled)
        self.message_user(request, "Generation resumed." if enabled else "Generation paused.")
        return self._back()

    def scenario_export_view(self, request):
        """The configuration as a scenario file to download (services.scenarios)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        fmt = "yaml" if request.GET.get("format") == "yaml" else "json"
        body = scenario_dumps(scenario_export(), fmt=fmt)
        kind = "application/yaml" if fmt == "yaml" else "application/json"
        response = HttpResponse(body, content_type=f"{kind}; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="synthetics-scenario.{fmt}"'
        return response

    @method_decorator(require_POST)
    def scenario_import_view(self, request):
        """Import an uploaded scenario, or with dry_run only list what it would change."""
        self._require_change(request)
        upload = request.FILES.get("file")
        if upload is None:
            self.message_user(request, "Choose a scenario file to upload.", messages.ERROR)
            return self._back()
        dry_run = request.POST.get("dry_run") == "1"
        try:
            # (a byte past the limit is enough for scenario_loads to say the file is larger)
            document = scenario_loads(upload.read(SCENARIO_MAX_BYTES + 1))
            plan = scenario_import(document, now=timezone.now(), dry_run=dry_run)
        except OperationalError as error:
            if not is_database_locked(error):
                raise
            # SQLite's single writer was busy (a run in progress): nothing was written
            self.message_user(
                request,
                "The database is busy with another write; nothing was imported. Try again in a "
                "few seconds.",
                messages.ERROR,
            )
            return self._back()
        except ScenarioInvalid as invalid:
            # One banner: what is wrong, each problem on a line of its own
            shown = invalid.errors[:50]
            more = len(invalid.errors) - len(shown)
            self.message_user(
                request,
                format_html(
                    "Nothing was imported. The file has {} problem{}:<ul>{}</ul>{}",
                    len(invalid.errors),
                    "" if len(invalid.errors) == 1 else "s",
                    format_html_join("", "<li>{}</li>", ((error,) for error in shown)),
                    f"and {more} more." if more else "",
                ),
                messages.ERROR,
            )
            return self._back()
        if not plan.changes:
            self.message_user(request, "Nothing to change: the configuration is the file's.")
            return self._back()
        verb = "Would change" if dry_run else "Changed"
        for line in plan.changes[:50]:
            self.message_user(request, line, messages.INFO)
        self.message_user(request, f"{verb} {len(plan.changes)} thing(s).")
        return self._back()

    @method_decorator(require_POST)
    def run_now_view(self, request):
        self._require_change(request)
        try:
            target = int(request.POST.get("target", ""))
        except ValueError:
            self.message_user(request, "Target must be a whole number.", messages.ERROR)
            return self._back()
        try:
            run = run_manual(target=target)
        except (ApplicationError, RunFailed) as error:
            self.message_user(request, str(error), messages.ERROR)
            return self._back()
        self.message_user(
            request,
            f"Run {run.id}: {run.sessions_started} sessions, "
            f"{run.scene_events_created} scene events, "
            f"{run.mindblock_events_created} mindblock events.",
        )
        return self._back()
