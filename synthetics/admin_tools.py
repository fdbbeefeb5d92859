"""Generic admin tooling for tables of millions of rows: a capped paginator, date ranges from the index's
first and last value, a read-only big-table base, and the origin and event-type list filters."""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from django.contrib import admin
from django.core.paginator import Paginator
from django.db.models import Max, Min, QuerySet
from django.utils import timezone
from django.utils.functional import cached_property

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


class OriginFilter(admin.SimpleListFilter):
    """Synthetic or real, by the model's own rule (its QuerySet's `synthetic()` and `real()`)."""

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
