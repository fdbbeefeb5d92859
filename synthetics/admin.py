"""The admin: the settings row edited in place (with pause/resume and run-now), sim users, the run ledger,
journeys and events (read-only, fast on millions of rows) and the editable journey catalogue."""

from __future__ import annotations

import copy
import re

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import OperationalError, router, transaction
from django.db.models import Count
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.views.decorators.http import require_POST

from synthetics.admin_tools import (
    BigTableAdmin,
    CappedCountPaginator,
    EventTypeFilter,
    OriginFilter,
    TimeLimitedListMixin,
)
from synthetics.api.parsers import label_read, number_read, slug_read, whole_number_read
from synthetics.api.permissions import can_change_synthetics, can_view_synthetics
from synthetics.db import origin_run_id
from synthetics.engine.population import LOCALES, PERSONAS
from synthetics.engine.types import MINDBLOCK_EVENT_TYPES, SCENE_EVENT_TYPES
from synthetics.errors import ApplicationError, GeneratorBusy, RunFailed
from synthetics.models import (
    MAX_INCIDENT_MINUTES,
    Incident,
    Journey,
    JourneySceneEvent,
    JourneyTemplate,
    MindblockEvent,
    MindblockType,
    RhythmProfile,
    Scene,
    SimUser,
    SyntheticRun,
    SyntheticSettings,
    User,
)
from synthetics.selectors.incidents import incident_state
from synthetics.selectors.insights import capacity_summary
from synthetics.services import run_manual, settings_update
from synthetics.services.catalogue import (
    CatalogueInUse,
    catalogue_change_check,
    catalogue_change_refusal,
    catalogue_runnable_refusal,
)
from synthetics.services.incidents import incident_cancel, incident_checked
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

admin.site.site_header = "Synthetics"
admin.site.site_title = "Synthetics admin"
admin.site.index_title = "Synthetics"
admin.site.index_template = "admin/synthetics_index.html"


class SceneEventTypeFilter(EventTypeFilter):
    event_types = SCENE_EVENT_TYPES


class MindblockEventTypeFilter(EventTypeFilter):
    event_types = MINDBLOCK_EVENT_TYPES


class OriginChangeList(ChangeList):
    """An event list that marks each row of the page as ours or not with one look-up in the ledger.

    The page's rows carry their payloads: the run ids they name are read in Python (the twin of the
    SQL rule, `origin_run_id`), the ledger is asked once for those runs and each row is judged by
    `SyntheticRun.wrote` (the rule in Python: status, span and key), instead of an EXISTS per row
    that PostgreSQL may turn into a hash of the whole ledger.
    """

    def get_results(self, request):
        super().get_results(request)
        named = {origin_run_id(event.event_payload) for event in self.result_list}
        named.discard(None)
        runs = SyntheticRun.objects.in_bulk(named) if named else {}
        for event in self.result_list:
            run = runs.get(origin_run_id(event.event_payload))
            event.is_ours = run is not None and run.wrote(
                payload=event.event_payload, created_at=event.created_at
            )


@admin.register(JourneySceneEvent)
class JourneySceneEventAdmin(BigTableAdmin):
    list_display = ("created_at", "event_type", "scene", "user", "journey_id", "is_synthetic")
    list_filter = (OriginFilter, SceneEventTypeFilter)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    raw_id_fields = ("user", "journey", "scene")
    list_select_related = ("scene__template", "user")  # a scene is named by its template

    def get_changelist(self, request, **kwargs):
        return OriginChangeList

    @admin.display(boolean=True, description="synthetic")
    def is_synthetic(self, obj) -> bool:
        return obj.is_ours


@admin.register(MindblockEvent)
class MindblockEventAdmin(JourneySceneEventAdmin):
    list_display = ("created_at", "event_type", "mindblock", "scene", "user", "is_synthetic")
    list_filter = (OriginFilter, MindblockEventTypeFilter)
    raw_id_fields = ("user", "journey", "scene", "mindblock")
    list_select_related = ("scene__template", "user", "mindblock")


@admin.register(Journey)
class JourneyAdmin(BigTableAdmin):
    list_display = ("started_at", "template", "status", "user", "ended_at", "is_synthetic")
    list_filter = ("status", OriginFilter, "template")
    date_hierarchy = "started_at"
    ordering = ("-started_at",)
    raw_id_fields = ("user", "sim_user", "template", "run")
    list_select_related = ("template", "user")


@admin.register(SyntheticRun)
class SyntheticRunAdmin(BigTableAdmin):
    list_display = (
        "started_at", "trigger", "status", "window_end", "sessions_started",
        "scene_events_created", "mindblock_events_created", "duration", "note",
    )  # fmt: skip
    list_filter = ("trigger", "status")
    date_hierarchy = "started_at"
    ordering = ("-started_at",)
    readonly_fields = [field.name for field in SyntheticRun._meta.fields]
    fieldsets = (
        (None, {"fields": ("trigger", "status", "note", "error", "shard", "shards")}),
        ("When", {"fields": ("started_at", "finished_at", "window_start", "window_end")}),
        (
            "Counts",
            {
                "fields": (
                    "target", "sessions_started", "scene_events_created",
                    "mindblock_events_created", "journeys_completed", "journeys_abandoned",
                    "journeys_errored", "active_journeys",
                )
            },
        ),
        ("Settings the run used", {"fields": ("abandon_rate", "error_rate")}),
    )  # fmt: skip

    @admin.display(description="duration")
    def duration(self, obj) -> str:
        return "–" if obj.duration_ms is None else f"{obj.duration_ms} ms"


# --- sim users ------------------------------------------------------------------------------------


class ActivityFilter(admin.SimpleListFilter):
    title = "activity"
    parameter_name = "activity"

    def lookups(self, request, model_admin):
        return [("active", "In an active journey"), ("idle", "Idle")]

    def queryset(self, request, queryset):
        if self.value() == "active":
            return queryset.filter(in_active_journey=True)
        if self.value() == "idle":
            return queryset.filter(in_active_journey=False)
        return queryset


class PopulationChoiceFilter(admin.SimpleListFilter):
    """A filter whose choices are the population's own (engine.population), not a SELECT DISTINCT
    over the pool: a page of a million-user pool reads a page, not the pool. A value set by hand
    outside them still filters when asked for in the address."""

    values: tuple[str, ...] = ()

    def lookups(self, request, model_admin):
        return [(value, value) for value in self.values]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset if value is None else queryset.filter(**{self.parameter_name: value})


class PersonaFilter(PopulationChoiceFilter):
    title = parameter_name = "persona"
    values = tuple(persona.slug for persona in PERSONAS)


class LocaleFilter(PopulationChoiceFilter):
    title = parameter_name = "locale"
    values = tuple(sorted(locale for locale, _, _ in LOCALES))


class TimezoneFilter(PopulationChoiceFilter):
    title = parameter_name = "timezone"
    values = tuple(sorted({zone for _, _, zones in LOCALES for zone in zones}))


@admin.register(SimUser)
class SimUserAdmin(TimeLimitedListMixin, admin.ModelAdmin):
    paginator = CappedCountPaginator  # pools of up to a million: no full COUNT per page
    show_full_result_count = False
    list_display = (
        "display_name", "persona", "timezone", "locale", "activity_weight", "signup_date",
        "is_active_now",
    )  # fmt: skip
    list_filter = (ActivityFilter, PersonaFilter, LocaleFilter, TimezoneFilter)
    # No bulk action: a sim user goes with its rows through cleanup, or one at a time from its
    # page; the checkbox column and the action bar were a fifth of the list's rendering.
    actions = None

    search_fields = ("display_name", "user__username", "timezone", "locale")
    raw_id_fields = ("user",)
    list_select_related = ("user",)
    list_per_page = 50
    readonly_fields = ("created_at", "updated_at")

    def get_queryset(self, request):
        return super().get_queryset(request).with_activity()

    @admin.display(boolean=True, description="active", ordering="in_active_journey")
    def is_active_now(self, obj) -> bool:
        return obj.in_active_journey


# --- the catalogue: steered with the settings' permission, never into stranding a session -----------


class CataloguePermissions:
    """Changing the catalogue steers the generator, as changing the settings does: the model's own
    add, change or delete permission and the *change synthetic settings* one. Without the latter
    the catalogue is read-only (the model's view or change permission shows it)."""

    def has_add_permission(self, request, *args):
        return super().has_add_permission(request, *args) and can_change_synthetics(request.user)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and can_change_synthetics(request.user)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and can_change_synthetics(request.user)


def _catalogue_checked(form: forms.ModelForm, **change) -> None:
    """Add the catalogue rule's refusal of `change` to `form`: under the field it names, else
    above the form (services.catalogue)."""
    try:
        catalogue_change_check(row=form.instance, **change)
    except CatalogueInUse as refusal:
        field = refusal.extra.get("field")
        form.add_error(field if field in form.fields else None, refusal.message)
    except GeneratorBusy as busy:
        form.add_error(None, str(busy))


class CatalogueForm(forms.ModelForm):
    """A catalogue row's form: a change to a field that sessions in progress planned is refused
    under that field (services.catalogue), in the transaction that saves the row."""

    def clean(self):
        data = super().clean()
        if self.instance.pk is not None:  # (`instance` still holds the row as it is)
            _catalogue_checked(self, changed=self.changed_data)
            refusal = _runnable_refusal(self.instance, data, self.changed_data)
            if refusal is not None:
                self.add_error(None, refusal)
        return data


def _runnable_refusal(row, data: dict, changed: list[str]) -> str | None:
    """The catalogue's runnable rule for a saved row's form: a template's new state, a scene moved
    to another template (services.catalogue.catalogue_runnable_refusal)."""
    if isinstance(row, JourneyTemplate):
        state = (data.get("is_active", row.is_active), data.get("popularity", row.popularity))
        return catalogue_runnable_refusal(templates={row.pk: state})
    if isinstance(row, Scene) and "template" in changed:
        return catalogue_runnable_refusal(removed_scenes=[row.pk])
    return None


class SceneFormSet(forms.BaseInlineFormSet):
    """A template's scenes: a scene deleted in the inline is checked by the catalogue's rule (its
    other changes by its own form's)."""

    def clean(self):
        refusals = []
        for form in self.forms:
            if form.instance.pk is None or not self._should_delete_form(form):
                continue
            try:
                catalogue_change_check(row=form.instance, delete=True)
            except (CatalogueInUse, GeneratorBusy) as refusal:
                refusals.append(str(refusal))
        if refusals:
            # Before Django's own check of protected rows, which would list every event.
            raise ValidationError(refusals)
        template = self.instance  # with the template form's changes, not saved yet
        if template.pk is not None and any(
            form.instance.pk is not None and self._should_delete_form(form) for form in self.forms
        ):  # (the template's own state alone: its form's check)
            removed = [
                form.instance.pk
                for form in self.forms
                if form.instance.pk is not None and self._should_delete_form(form)
            ]
            refusal = catalogue_runnable_refusal(
                templates={template.pk: (template.is_active, template.popularity)},
                removed_scenes=removed,
            )
            if refusal is not None:
                raise ValidationError(refusal)
        super().clean()


class CatalogueListFormSet(forms.BaseModelFormSet):
    """The list's editable rows saved together: the runnable rule over all of them at once (each
    row's form sees the others as the database has them, so two templates switched off in one
    save would each pass alone)."""

    def clean(self):
        super().clean()
        if self.model is not JourneyTemplate:
            return
        states = {
            form.instance.pk: (
                form.cleaned_data.get("is_active", form.instance.is_active),
                form.cleaned_data.get("popularity", form.instance.popularity),
            )
            for form in self.forms
            if form.instance.pk is not None and hasattr(form, "cleaned_data")
        }
        refusal = catalogue_runnable_refusal(templates=states)
        if refusal is not None:
            raise ValidationError(refusal)


class CatalogueAdmin(CataloguePermissions, admin.ModelAdmin):
    """A catalogue model's admin: its form and its deletions (the delete page, the bulk delete)
    checked by the catalogue's rule under the generator lock, with the settings' permission."""

    form = CatalogueForm
    list_editable_form = CatalogueForm  # the list's editable columns: the same checks
    delete_confirmation_template = "admin/synthetics/catalogue_delete_confirmation.html"
    delete_selected_confirmation_template = (
        "admin/synthetics/catalogue_delete_selected_confirmation.html"
    )

    def get_changelist_form(self, request, **kwargs):
        return super().get_changelist_form(request, form=self.list_editable_form, **kwargs)

    def get_changelist_formset(self, request, **kwargs):
        return super().get_changelist_formset(request, formset=CatalogueListFormSet, **kwargs)

    def get_deleted_objects(self, objs, request):
        # A refused deletion: Django's "cannot delete" page, the rule's message as what protects
        # the rows. Asked before the confirmation (GET) it is a look without the lock; when it
        # is confirmed (POST, in the transaction that deletes) it is the check under the lock.
        refusals = []
        for row in objs:
            if request.method != "POST":
                refusal = catalogue_change_refusal(row=row, delete=True)
                refusals += [refusal] if refusal else []
                continue
            try:
                catalogue_change_check(row=row, delete=True)
            except (CatalogueInUse, GeneratorBusy) as error:
                refusals.append(str(error))
        if not refusals:
            ids = [row.pk for row in objs]
            refusal = catalogue_runnable_refusal(
                removed_templates=ids if self.model is JourneyTemplate else (),
                removed_scenes=ids if self.model is Scene else (),
            )
            refusals += [refusal] if refusal else []
        if refusals:
            return [], {}, set(), refusals
        return super().get_deleted_objects(objs, request)

    def response_action(self, request, queryset):
        # The bulk delete checks (get_deleted_objects) and deletes in one transaction.
        with transaction.atomic(using=router.db_for_write(self.model)):
            return super().response_action(request, queryset)

    def delete_model(self, request, obj):
        self._deletion_checked([obj])
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        self._deletion_checked(queryset)
        super().delete_queryset(request, queryset)

    @staticmethod
    def _deletion_checked(rows) -> None:
        """The rule once more where the rows go (the lock is already held: a no-op unless a
        caller skipped get_deleted_objects)."""
        for row in rows:
            try:
                catalogue_change_check(row=row, delete=True)
            except (CatalogueInUse, GeneratorBusy) as refusal:
                raise PermissionDenied(str(refusal)) from refusal


class SceneInline(CataloguePermissions, admin.TabularInline):
    model = Scene
    form = CatalogueForm
    formset = SceneFormSet
    extra = 0
    fields = (
        "position", "slug", "name", "dwell_median_seconds", "mindblock_rate", "dropoff_weight",
        "error_weight",
    )  # fmt: skip
    ordering = ("position",)


@admin.register(JourneyTemplate)
class JourneyTemplateAdmin(CatalogueAdmin):
    list_display = ("name", "slug", "popularity", "is_active", "scene_count")
    list_editable = ("popularity", "is_active")
    list_filter = ("is_active",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [SceneInline]

    def get_queryset(self, request):
        # One query for the list, not one COUNT per template.
        return super().get_queryset(request).annotate(scene_total=Count("scenes"))

    @admin.display(description="scenes", ordering="scene_total")
    def scene_count(self, obj) -> int:
        return obj.scene_total


@admin.register(Scene)
class SceneAdmin(CatalogueAdmin):
    list_display = ("__str__", "name", "position", "dwell_median_seconds", "mindblock_rate")
    list_filter = ("template",)
    list_select_related = ("template",)  # a scene is named by its template
    ordering = ("template__slug", "position")
    search_fields = ("slug", "name", "template__slug")


@admin.register(RhythmProfile)
class RhythmProfileAdmin(CatalogueAdmin):
    list_display = ("name", "slug", "persona", "holiday_factor")
    search_fields = ("name", "slug", "persona")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(MindblockType)
class MindblockTypeAdmin(CatalogueAdmin):
    list_display = ("name", "slug", "weight", "is_active")
    list_editable = ("weight", "is_active")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


# --- incidents: scheduled in a form checked by the service, cancelled by an action ---------------------


class IncidentForm(forms.ModelForm):
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

    # Read as the API reads them (api.parsers): Django's fields would take "５", " 5", "0_5" and a
    # trimmed slug or label. A value left empty is the form's own business (required or not).
    _RAW_READERS = {
        "label": label_read,
        "minutes": lambda text: whole_number_read(text, low=0, high=MAX_INCIDENT_MINUTES * 10),
        "error_rate": number_read,
        "abandon_rate": number_read,
        "sessions_multiplier": number_read,
        "scene": slug_read,
    }

    def _raw_values_read(self) -> None:
        for name, read in self._RAW_READERS.items():
            raw = self.data.get(self.add_prefix(name), "")
            if raw == "":
                continue
            try:
                read(raw)
            except ValueError as refusal:
                self.add_error(name, str(refusal))
        for part in ("0", "1"):  # the date and the time of the split widget
            raw = self.data.get(f"{self.add_prefix('starts_at')}_{part}", "")
            if raw and not re.fullmatch(r"[0-9][0-9:.\-]*[0-9]", raw):
                self.add_error(
                    "starts_at",
                    f"Write the date as YYYY-MM-DD and the time as HH:MM[:SS] in the digits 0-9, "
                    f"got {raw!r}.",
                )

    def clean(self):
        data = super().clean()
        self._raw_values_read()
        if self.errors:
            return data
        # The admin validates and saves in one transaction: the settings row's lock, as the
        # service's create takes it, holds from this check to the save (no other incident between).
        SyntheticSettings.objects.select_for_update().get(pk=1)
        try:
            self.checked = incident_checked(**self._service_fields(data), now=timezone.now())
        except ApplicationError as error:
            field = error.extra.get("field")
            self.add_error(field if field in self.fields else None, error.message)
        return data

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


# --- the settings row, edited in place, with pause/resume and run-now ---------------------------------


class SettingsForm(forms.ModelForm):
    """The settings row: the model's rules under each field, and the upcoming incidents' (an
    incident that sets one rate keeps the other: services.settings.incidents_still_fit, the API's
    refusal word for word), checked under the row's lock, held until the save in this
    transaction (incidents are created under the same lock)."""

    # Read as the API reads them (api.parsers): Django's fields take "٥", " 5" and "5.0".
    _WHOLE_NUMBERS = ("sessions_per_min", "max_per_run", "signups_per_day")
    _NUMBERS = ("error_rate", "abandon_rate", "rhythm_strength", "churn_per_month")

    def _raw_values_read(self) -> None:
        for name in (*self._WHOLE_NUMBERS, *self._NUMBERS):
            raw = self.data.get(self.add_prefix(name), "")
            if raw == "" or name not in self.fields:
                continue
            try:
                if name in self._WHOLE_NUMBERS:
                    whole_number_read(raw, low=0, high=10**12)
                else:
                    number_read(raw)
            except ValueError as refusal:
                self.add_error(name, str(refusal))

    def clean(self):
        data = super().clean()
        self._raw_values_read()
        if self.errors:
            return data
        SyntheticSettings.objects.select_for_update().get(pk=1)
        row = copy.copy(self.instance)
        for name, value in data.items():
            setattr(row, name, value)
        try:
            row.clean()
        except ValidationError:
            return data  # the model's own rules, reported under each field after this
        try:
            incidents_still_fit(row)
        except ValidationError as refusal:
            self.add_error(None, refusal)  # a message per field
        return data


@admin.register(SyntheticSettings)
class SyntheticSettingsAdmin(admin.ModelAdmin):
    form = SettingsForm
    fields = (
        "enabled",
        "sessions_per_min",
        "max_per_run",
        "error_rate",
        "abandon_rate",
        "rhythm_strength",
        "signups_per_day",
        "churn_per_month",
        "updated_at",
    )
    readonly_fields = ("updated_at",)
    change_form_template = "admin/synthetics/settings_change_form.html"

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

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
            for error in invalid.errors[:50]:
                self.message_user(request, error, messages.ERROR)
            self.message_user(request, "Nothing was imported.", messages.ERROR)
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


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "is_staff", "is_active", "is_synthetic")
    list_filter = ("is_synthetic", "is_staff", "is_superuser", "is_active")
    list_per_page = 100
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Synthetics", {"fields": ("is_synthetic",)}))
