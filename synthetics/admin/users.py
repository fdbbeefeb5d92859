"""The accounts and the sim users: a pool of up to a million listed a page at a time, filtered by the
population's own choices."""

from __future__ import annotations

from operator import methodcaller

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from synthetics.admin.big_tables import (
    CappedCountPaginator,
    KnownValuesFilter,
    OptionsFilter,
    TimeLimitedListMixin,
)
from synthetics.engine.population import LOCALES, PERSONAS
from synthetics.models import SimUser, User
from synthetics.target.mapping import target_in_force


class ActivityFilter(OptionsFilter):
    title = "activity"
    parameter_name = "activity"
    options = {
        "active": ("In an active journey", methodcaller("filter", in_active_journey=True)),
        "idle": ("Idle", methodcaller("filter", in_active_journey=False)),
    }


class PersonaFilter(KnownValuesFilter):
    title = parameter_name = "persona"
    values = tuple(persona.slug for persona in PERSONAS)


class LocaleFilter(KnownValuesFilter):
    title = parameter_name = "locale"
    values = tuple(sorted(locale for locale, _, _ in LOCALES))


class TimezoneFilter(KnownValuesFilter):
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
    readonly_fields = ("created_at", "updated_at", "account_key")

    def get_queryset(self, request):
        return super().get_queryset(request).with_activity()

    def has_delete_permission(self, request, obj=None):
        # Attach mode: the account lives in the application's table; `target detach` takes it
        # out with its rows, accounts last. Deleting the sim user here would leave it behind.
        return target_in_force() is None and super().has_delete_permission(request, obj)

    @admin.display(boolean=True, description="active", ordering="in_active_journey")
    def is_active_now(self, obj) -> bool:
        return obj.in_active_journey


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "is_staff", "is_active", "is_synthetic")
    list_filter = ("is_synthetic", "is_staff", "is_superuser", "is_active")
    list_per_page = 100
    fieldsets = (*DjangoUserAdmin.fieldsets, ("Synthetics", {"fields": ("is_synthetic",)}))

    def has_delete_permission(self, request, obj=None):
        attached_sim = target_in_force() is not None and (obj is None or obj.is_synthetic)
        return not attached_sim and super().has_delete_permission(request, obj)
