"""The admin: the settings row edited in place, sim users, the run ledger, journeys and events (read-only,
fast on millions of rows), and the editable journey catalogue. Changes go through the services."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Exists, Max, Min, OuterRef, QuerySet
from django.http import HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.functional import cached_property
from django.views.decorators.http import require_POST

from synthetics.engine import EngineError
from synthetics.models import (
    Journey,
    JourneySceneEvent,
    JourneyStatus,
    JourneyTemplate,
    MindblockEvent,
    MindblockType,
    RunTrigger,
    Scene,
    SimUser,
    SyntheticRun,
    SyntheticSettings,
    User,
)
from synthetics.services import RunFailed, settings_update, tick_run
from synthetics.services.locks import GeneratorBusy

admin.site.site_header = "Synthetics"
admin.site.site_title = "Synthetics admin"
admin.site.index_title = "Synthetics"
admin.site.index_template = "admin/synthetics_index.html"

# --- big tables: bounded counts and a date hierarchy without scans -----------------------------------

COUNT_CAP = 10_000


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP rows (a LIMITed subquery), so a list of millions never runs a full COUNT."""

    @cached_property
    def count(self) -> int:
        return self.object_list.values("pk")[: COUNT_CAP + 1].count()


class RangeDatesMixin:
    """`datetimes()` from the index's first and last value instead of a DISTINCT over every row.

    The admin's date hierarchy asks for the distinct years, months or days of the filtered rows; on
    tables of millions that is a scan. This lists every period between the first and the last row
    (two index look-ups), so a drill-down may offer an empty day, and stays instant.
    """

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None):
        bounds = self.aggregate(first=Min(field_name), last=Max(field_name))
        first, last = bounds["first"], bounds["last"]
        if first is None:
            return []
        zone = tzinfo or timezone.get_current_timezone()
        first, last = first.astimezone(zone), last.astimezone(zone)
        periods = []
        moment = _truncate(first, kind)
        while moment <= last:
            periods.append(moment)
            moment = _next_period(moment, kind)
        return periods if order == "ASC" else periods[::-1]


@functools.cache
def _range_dates_class(queryset_class: type[QuerySet]) -> type[QuerySet]:
    """The model's own QuerySet class (its `synthetic()`, `real()` ...) with range-based dates."""
    return type(f"RangeDates{queryset_class.__name__}", (RangeDatesMixin, queryset_class), {})


def _truncate(moment: datetime, kind: str) -> datetime:
    moment = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if kind in ("month", "year"):
        moment = moment.replace(day=1)
    if kind == "year":
        moment = moment.replace(month=1)
    return moment


def _next_period(moment: datetime, kind: str) -> datetime:
    if kind == "day":
        return _truncate(moment + timedelta(days=1), "day")
    if kind == "month":
        return _truncate((moment.replace(day=28) + timedelta(days=4)), "month")
    return moment.replace(year=moment.year + 1)


class BigTableAdmin(admin.ModelAdmin):
    """Read-only list of a large table: indexed ordering, bounded counts, raw-id foreign keys."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 100

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        range_dates = _range_dates_class(type(queryset))
        return range_dates(model=queryset.model, query=queryset.query, using=queryset.db)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class SyntheticTagFilter(admin.SimpleListFilter):
    title = "origin"
    parameter_name = "origin"

    def lookups(self, request, model_admin):
        return [("synthetic", "Synthetic"), ("real", "Real")]

    def queryset(self, request, queryset):
        if self.value() == "synthetic":
            return queryset.synthetic()
        if self.value() == "real":
            return queryset.real()
        return queryset


class EventTypeFilter(admin.SimpleListFilter):
    title = "event type"
    parameter_name = "event_type"
    event_types: tuple[str, ...] = ()

    def lookups(self, request, model_admin):
        return [(value, value) for value in self.event_types]

    def queryset(self, request, queryset):
        return queryset.filter(event_type=self.value()) if self.value() else queryset


class SceneEventTypeFilter(EventTypeFilter):
    event_types = ("scene_entered", "scene_error", "journey_completed")


class MindblockEventTypeFilter(EventTypeFilter):
    event_types = ("mindblock_reported",)


@admin.register(JourneySceneEvent)
class JourneySceneEventAdmin(BigTableAdmin):
    list_display = ("created_at", "event_type", "scene", "user", "journey_id", "is_synthetic")
    list_filter = (SyntheticTagFilter, SceneEventTypeFilter)
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    raw_id_fields = ("user", "journey", "scene")
    list_select_related = ("scene", "user")

    def get_queryset(self, request):
        return super().get_queryset(request).with_origin()

    @admin.display(boolean=True, description="synthetic")
    def is_synthetic(self, obj) -> bool:
        return obj.is_ours


@admin.register(MindblockEvent)
class MindblockEventAdmin(JourneySceneEventAdmin):
    list_display = ("created_at", "event_type", "mindblock", "scene", "user", "is_synthetic")
    list_filter = (SyntheticTagFilter, MindblockEventTypeFilter)
    raw_id_fields = ("user", "journey", "scene", "mindblock")
    list_select_related = ("scene", "user", "mindblock")


class JourneySyntheticFilter(admin.SimpleListFilter):
    title = "origin"
    parameter_name = "origin"

    def lookups(self, request, model_admin):
        return [("synthetic", "Synthetic"), ("real", "Real")]

    def queryset(self, request, queryset):
        if self.value() == "synthetic":
            return queryset.synthetic()
        if self.value() == "real":
            return queryset.real()
        return queryset


@admin.register(Journey)
class JourneyAdmin(BigTableAdmin):
    list_display = ("started_at", "template", "status", "user", "ended_at", "is_synthetic")
    list_filter = ("status", JourneySyntheticFilter, "template")
    date_hierarchy = "started_at"
    ordering = ("-started_at",)
    raw_id_fields = ("user", "sim_user", "template", "run")
    list_select_related = ("template", "user")


@admin.register(SyntheticRun)
class SyntheticRunAdmin(BigTableAdmin):
    list_display = (
        "started_at", "trigger", "status", "window_end", "sessions_created",
        "scene_events_created", "mindblock_events_created", "duration", "note",
    )  # fmt: skip
    list_filter = ("trigger", "status")
    date_hierarchy = "started_at"
    ordering = ("-started_at",)
    readonly_fields = [field.name for field in SyntheticRun._meta.fields]
    fieldsets = (
        (None, {"fields": ("trigger", "status", "note", "error")}),
        ("When", {"fields": ("started_at", "finished_at", "window_start", "window_end")}),
        (
            "Counts",
            {
                "fields": (
                    "target", "sessions_created", "scene_events_created",
                    "mindblock_events_created", "journeys_completed", "journeys_abandoned",
                    "journeys_errored", "active_journeys",
                )
            },
        ),
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


@admin.register(SimUser)
class SimUserAdmin(admin.ModelAdmin):
    list_display = (
        "display_name", "persona", "timezone", "locale", "activity_weight", "signup_date",
        "is_active_now",
    )  # fmt: skip
    list_filter = (ActivityFilter, "persona", "locale", "timezone")
    search_fields = ("display_name", "user__username", "timezone", "locale")
    raw_id_fields = ("user",)
    list_select_related = ("user",)
    list_per_page = 100
    readonly_fields = ("created_at", "updated_at")

    def get_queryset(self, request):
        in_journey = Journey.objects.filter(sim_user=OuterRef("pk"), status=JourneyStatus.ACTIVE)
        return super().get_queryset(request).annotate(in_active_journey=Exists(in_journey))

    @admin.display(boolean=True, description="active", ordering="in_active_journey")
    def is_active_now(self, obj) -> bool:
        return obj.in_active_journey


# --- the catalogue (editable) ----------------------------------------------------------------------


class SceneInline(admin.TabularInline):
    model = Scene
    extra = 0
    fields = ("position", "slug", "name", "dwell_median_seconds", "mindblock_rate")
    ordering = ("position",)


@admin.register(JourneyTemplate)
class JourneyTemplateAdmin(admin.ModelAdmin):
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


@admin.register(MindblockType)
class MindblockTypeAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "weight", "is_active")
    list_editable = ("weight", "is_active")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


# --- the settings row, edited in place, with pause/resume and run-now ---------------------------------


@admin.register(SyntheticSettings)
class SyntheticSettingsAdmin(admin.ModelAdmin):
    fields = (
        "enabled",
        "sessions_per_min",
        "max_per_run",
        "error_rate",
        "abandon_rate",
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
            settings_update(changes=changes)

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
        settings_update(changes={"enabled": enabled})
        self.message_user(request, "Generation resumed." if enabled else "Generation paused.")
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
            result = tick_run(trigger=RunTrigger.MANUAL, target=target)
        except (EngineError, RunFailed, GeneratorBusy, ValidationError) as error:
            self.message_user(request, str(error), messages.ERROR)
            return self._back()
        self.message_user(
            request,
            f"Run {result.run_id}: {result.sessions_created} sessions, "
            f"{result.scene_events_created} scene events, "
            f"{result.mindblock_events_created} mindblock events.",
        )
        return self._back()


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "is_staff", "is_active", "is_synthetic")
    list_filter = ("is_synthetic", "is_staff", "is_superuser", "is_active")
    list_per_page = 100
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Synthetics", {"fields": ("is_synthetic",)}))
