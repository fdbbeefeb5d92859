"""The rows the generator writes, read-only and fast on millions of rows: scene and mindblock events
(each marked synthetic or not by the run ledger), journeys, and the run ledger itself."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList

from synthetics.admin.big_tables import BigTableAdmin, EventTypeFilter, OriginFilter
from synthetics.db import origin_run_id
from synthetics.engine.types import MINDBLOCK_EVENT_TYPES, SCENE_EVENT_TYPES
from synthetics.models import Journey, JourneySceneEvent, MindblockEvent, SyntheticRun
from synthetics.target.mapping import target_in_force


class SceneEventTypeFilter(EventTypeFilter):
    values = SCENE_EVENT_TYPES


class MindblockEventTypeFilter(EventTypeFilter):
    values = MINDBLOCK_EVENT_TYPES


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

    def has_module_permission(self, request):
        # Attach mode: the events live in the application's own tables, not in these (empty)
        # demo ones; the application's tools show them, the Studio and API count them.
        return target_in_force() is None and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return target_in_force() is None and super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return target_in_force() is None and super().has_change_permission(request, obj)

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
