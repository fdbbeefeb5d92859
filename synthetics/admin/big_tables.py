"""Generic admin tooling for tables of millions of rows: a capped paginator, date ranges from the index's
first and last value, a list with a time limit, a read-only big-table base, and list filters that never
ask the table for its choices."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from operator import methodcaller

from django.conf import settings
from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db import OperationalError, connection, transaction
from django.db.models import F, Max, Min, QuerySet
from django.http import HttpResponse, HttpResponseRedirect
from django.utils import timezone
from django.utils.functional import cached_property

# A list of millions counts at most this many rows: enough for 20 pages of 50, and the count stays
# a few milliseconds of index reading.
COUNT_CAP = 1_000
QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement cut by statement_timeout
# SQLite checks the clock every this many virtual-machine steps.
_SQLITE_STEPS_PER_CHECK = 10_000


class ListTooSlow(Exception):
    """A list's queries ran past their time limit and were cancelled (nothing was written)."""


@contextmanager
def statement_time_limit(seconds: float) -> Iterator[None]:
    """Cancel the block's reads once they have run `seconds` (ListTooSlow), on either database.

    PostgreSQL: each statement's statement_timeout is what is left of the block's time (in the
    block's own transaction). SQLite: a progress handler that interrupts the statement in progress
    once the deadline has passed.
    """
    deadline = time.monotonic() + seconds
    if connection.vendor == "postgresql":

        def bounded(execute, sql, params, many, context):
            # Each statement gets what is left of the block's time, so the block as a whole stops.
            left_ms = int((deadline - time.monotonic()) * 1000)
            if left_ms <= 0:
                raise ListTooSlow("no time left")
            context["cursor"].cursor.execute(  # the driver's cursor: not wrapped again
                "SELECT set_config('statement_timeout', %s, true)", [f"{left_ms}ms"]
            )
            return execute(sql, params, many, context)

        try:
            with transaction.atomic(), connection.execute_wrapper(bounded):
                yield
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) == QUERY_CANCELED:
                raise ListTooSlow(str(error)) from error
            raise
        return
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    raw.set_progress_handler(lambda: time.monotonic() > deadline, _SQLITE_STEPS_PER_CHECK)
    try:
        yield
    except OperationalError as error:
        if "interrupted" in str(error):
            raise ListTooSlow(str(error)) from error
        raise
    finally:
        raw.set_progress_handler(None, 0)


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

    def _first_and_last(self, field_name: str):
        """Two ordered LIMIT 1 reads, not MIN/MAX: with a filter that joins (the origin's EXISTS),
        PostgreSQL aggregates every matching row, where an ordered index read stops at the first."""
        ordered = self.order_by(field_name).values_list(field_name, flat=True)
        first = ordered.first()
        return first, (None if first is None else ordered.reverse().first())

    def aggregate(self, *args, **kwargs):
        # The admin's date hierarchy asks aggregate(first=Min(field), last=Max(field)).
        first, last = kwargs.get("first"), kwargs.get("last")
        if (
            not args
            and set(kwargs) == {"first", "last"}
            and isinstance(first, Min)
            and isinstance(last, Max)
            and len(first.source_expressions) == len(last.source_expressions) == 1
            and isinstance(first.source_expressions[0], F)
            and first.source_expressions[0] == last.source_expressions[0]
        ):
            low, high = self._first_and_last(first.source_expressions[0].name)
            return {"first": low, "last": high}
        return super().aggregate(*args, **kwargs)

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None):
        first, last = self._first_and_last(field_name)
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


class TimeLimitedListMixin:
    """A ModelAdmin whose list stops at SYNTHETICS_ADMIN_LIST_SECONDS (see changelist_view)."""

    def changelist_view(self, request, extra_context=None):
        """The list, its count and its date hierarchy within SYNTHETICS_ADMIN_LIST_SECONDS.

        Most filters read the newest rows through an index and stop at a page; a combination
        that matches few rows of millions (real mindblock events, say) would read them all. It is
        cancelled at the limit and the list comes back unfiltered with a message that says so.
        """
        limit = settings.SYNTHETICS_ADMIN_LIST_SECONDS
        try:
            with statement_time_limit(limit):
                response = super().changelist_view(request, extra_context)
                if hasattr(response, "render"):
                    response.render()  # the rows are read while the template renders
                return response
        except ListTooSlow:
            asked = ", ".join(
                f"{key}={value}" for key, value in request.GET.items() if key not in ("p", "o")
            )
            self.message_user(
                request,
                f"This list ({asked or 'unfiltered'}) took longer than {limit:g} s and was "
                "stopped: few rows match among millions. Narrow it to a day with the dates "
                "above the list, or choose fewer filters.",
                messages.ERROR,
            )
            if not request.GET:  # the unfiltered list itself: nothing to go back to
                return HttpResponse(
                    f"The list took longer than {limit:g} s and was stopped; try again.",
                    status=503,
                    content_type="text/plain",
                )
            return HttpResponseRedirect(request.path)


class BigTableAdmin(TimeLimitedListMixin, admin.ModelAdmin):
    """Read-only list of a large table: indexed ordering, bounded counts, raw-id foreign keys."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    # 50 rows: the admin's own rendering costs about half a millisecond a row.
    list_per_page = 50

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


class OptionsFilter(admin.SimpleListFilter):
    """A filter of a few named choices, each a label and what it does to the QuerySet; any other
    value in the address leaves the list unfiltered."""

    options: dict[str, tuple[str, Callable[[QuerySet], QuerySet]]] = {}

    def lookups(self, request, model_admin):
        return [(value, label) for value, (label, _) in self.options.items()]

    def queryset(self, request, queryset):
        option = self.options.get(self.value())
        return queryset if option is None else option[1](queryset)


class OriginFilter(OptionsFilter):
    """Synthetic or real, by the model's own rule (its QuerySet's `synthetic()` and `real()`)."""

    title = "origin"
    parameter_name = "origin"
    options = {
        "synthetic": ("Synthetic", methodcaller("synthetic")),
        "real": ("Real", methodcaller("real")),
    }


class KnownValuesFilter(admin.SimpleListFilter):
    """A filter whose choices are known in advance (the engine's event types, the population's
    personas ...), not a SELECT DISTINCT over the table: a page of millions of rows reads a page.
    A value outside them still filters when asked for in the address."""

    values: tuple[str, ...] = ()

    def lookups(self, request, model_admin):
        return [(value, value) for value in self.values]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset if value is None else queryset.filter(**{self.parameter_name: value})


class EventTypeFilter(KnownValuesFilter):
    title = "event type"
    parameter_name = "event_type"
