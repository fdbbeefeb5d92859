"""The activity chart's totals and zero-filled series, from the run ledger and its per-hour sums."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import BigIntegerField, Count, F, Func, Q, QuerySet, Sum
from django.db.models.functions import TruncHour, TruncMinute

from synthetics.models import RunStatus, SyntheticRun, SyntheticRunHour
from synthetics.selectors.prepared import Prepared

# Activity series: per minute up to this many hours, per hour above.
MINUTE_BUCKETS_UP_TO_HOURS = 6


@dataclass(frozen=True, slots=True)
class ActivitySeries:
    hours: int
    bucket: str  # "minute" or "hour"
    since: datetime
    until: datetime
    totals: dict[str, int]
    series: list[dict]


_SERIES_FIELDS = {
    "scene_events": "scene_events_created",
    "mindblock_events": "mindblock_events_created",
    "sessions_started": "sessions_started",
    "journeys_completed": "journeys_completed",
    "journeys_abandoned": "journeys_abandoned",
    "journeys_errored": "journeys_errored",
}


def activity_series(*, hours: int, now: datetime) -> ActivitySeries:
    """Totals and a zero-filled series over the last `hours`, from the run ledger alone.

    Each run's counts fall in the bucket of the simulated time it covered up to (window_end); the
    event tables are not read at all. Per-minute series aggregate the ledger's runs; hourly ones
    read the whole hours from the per-hour sums (synthetic_run_hours) and only the first and the
    last, partial, hours from the ledger, so 30 days cost 720 sums, not 43,200 runs.
    """
    per_minute = hours <= MINUTE_BUCKETS_UP_TO_HOURS
    since = now - timedelta(hours=hours)
    by_bucket = _sums_by_bucket(since=since, until=now, per_minute=per_minute)
    totals, series = _zero_filled(
        by_bucket, since=since, until=now, step=60 if per_minute else 3600
    )
    return ActivitySeries(
        hours=hours,
        bucket="minute" if per_minute else "hour",
        since=since,
        until=now,
        totals=totals,
        series=series,
    )


# A chosen range (activity_range): per minute up to 6 hours, per hour up to 7 days (at most 168
# points), per UTC day above, up to 90 days (90 points, read from 2,160 hourly sums).
HOUR_BUCKETS_UP_TO = timedelta(days=7)
MAX_ACTIVITY_RANGE = timedelta(days=90)
_BUCKET_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True, slots=True)
class ActivityRange:
    since: datetime
    until: datetime
    bucket: str  # "minute", "hour" or "day"
    totals: dict[str, int]
    series: list[dict]


def activity_bucket(span: timedelta) -> str:
    """The bucket that gives a chart of this length a sensible number of points (7 to 360)."""
    if span <= timedelta(hours=MINUTE_BUCKETS_UP_TO_HOURS):
        return "minute"
    return "hour" if span <= HOUR_BUCKETS_UP_TO else "day"


def activity_range(*, since: datetime, until: datetime) -> ActivityRange:
    """Totals and a zero-filled series over (since, until], at most MAX_ACTIVITY_RANGE long, in
    buckets chosen from its length (activity_bucket): read as activity_series reads them, from the
    ledger and its hourly sums; a day's sums are its hours' sums added up here."""
    bucket = activity_bucket(until - since)
    by_bucket = _sums_by_bucket(since=since, until=until, per_minute=bucket == "minute")
    if bucket == "day":
        by_day: dict[int, tuple] = {}
        for second, sums in by_bucket.items():
            day = second - second % 86400
            before = by_day.get(day)
            by_day[day] = (
                sums if before is None else tuple(map(sum, zip(before, sums, strict=True)))
            )
        by_bucket = by_day
    totals, series = _zero_filled(by_bucket, since=since, until=until, step=_BUCKET_SECONDS[bucket])
    return ActivityRange(since=since, until=until, bucket=bucket, totals=totals, series=series)


def _sums_by_bucket(*, since: datetime, until: datetime, per_minute: bool) -> dict[int, tuple]:
    """The succeeded runs' sums (_SUMS) in (since, until] by the epoch second of the minute or hour
    of their window_end: per minute from the ledger; per hour from the per-hour sums for the whole
    hours, and from the ledger for the first and the last, partial, ones."""
    first = _truncate(since, per_minute)
    last = _truncate(until, per_minute)
    if per_minute:
        return _buckets(_PER_MINUTE.rows(since=since, until=until))
    # The edges from the ledger: the runs of the first hour (after `since`) and of the last (up to
    # `until`); the whole hours between from their sums.
    by_bucket = _buckets(
        _PER_HOUR_EDGES.rows(since=since, until=until, second=first + timedelta(hours=1), last=last)
    )
    by_bucket.update(_buckets(_WHOLE_HOURS.rows(first=first, last=last)))
    return by_bucket


def _zero_filled(
    by_bucket: dict[int, tuple], *, since: datetime, until: datetime, step: int
) -> tuple[dict[str, int], list[dict]]:
    """The totals and the series of buckets `step` seconds long from since's to until's."""
    first = _epoch(since) - _epoch(since) % step
    last = _epoch(until) - _epoch(until) % step
    # 721 points for 30 days: each built as a literal (the keys of _SERIES_FIELDS in order, the
    # fastest dict CPython makes; tests/test_reads.py compares them with the ledger's own sums).
    series = []
    counted = []
    for second in range(first, last + 1, step):
        sums = by_bucket.get(second)
        if sums is None:
            sums = _NO_SUMS
        else:
            counted.append(sums)
        series.append(
            {
                "bucket": _from_epoch(second, UTC),
                "scene_events": sums[0],
                "mindblock_events": sums[1],
                "sessions_started": sums[2],
                "journeys_completed": sums[3],
                "journeys_abandoned": sums[4],
                "journeys_errored": sums[5],
            }
        )
    totals = dict(zip(_SERIES_FIELDS, map(sum, zip(*counted, strict=True)), strict=False))
    return (
        {
            **dict.fromkeys(_SERIES_FIELDS, 0),
            **totals,
            "runs": sum(sums[-1] for sums in by_bucket.values()),
        },
        series,
    )


_SUMS = (*_SERIES_FIELDS, "runs")
_NO_SUMS = (0,) * len(_SUMS)
_from_epoch = datetime.fromtimestamp


def _bucket_seconds(expression):
    """A bucket's start as whole seconds since 1970 on PostgreSQL (an int: the driver's loader for
    a timestamptz, with Django's zone on top, costs ~4 µs a row — 3 ms of a 30-day chart), the
    time itself elsewhere (_buckets turns it into seconds). The truncated times are UTC wall
    times, so their epoch is the instant's."""
    if connection.vendor == "postgresql":
        return Func(
            expression,
            template="EXTRACT(EPOCH FROM %(expressions)s)::bigint",
            output_field=BigIntegerField(),
        )
    return expression


def _ledger_buckets(*, per_minute: bool, edges: bool) -> Prepared:
    """Sums of the ledger's succeeded runs in (since, until] per minute or hour of their
    window_end (with `edges`: only the runs of the first and the last hour), as rows of
    (bucket, *_SUMS)."""

    def build(since, until, second=None, last=None) -> QuerySet:
        if edges:  # two ranges, each an index range of its own (a BitmapOr), not 30 days filtered
            window = Q(window_end__gt=since, window_end__lt=second) | Q(
                window_end__gte=last, window_end__lte=until
            )
        else:
            window = Q(window_end__gt=since, window_end__lte=until)
        trunc = TruncMinute if per_minute else TruncHour
        sums = {key: Sum(column) for key, column in _SERIES_FIELDS.items()}
        sums["runs"] = Count("id")
        return (
            SyntheticRun.objects.filter(window, status=RunStatus.SUCCEEDED)
            .annotate(bucket=_bucket_seconds(trunc("window_end", tzinfo=UTC)))
            .values("bucket")
            .annotate(**sums)
            .order_by("bucket")
            .values_list("bucket", *_SUMS)
        )

    return Prepared(build, "since", "until", *(("second", "last") if edges else ()))


_PER_MINUTE = _ledger_buckets(per_minute=True, edges=False)
_PER_HOUR_EDGES = _ledger_buckets(per_minute=False, edges=True)
# The whole hours strictly between the first and the last, from their sums.
_WHOLE_HOURS = Prepared(
    lambda first, last: (
        SyntheticRunHour.objects.filter(hour__gt=first, hour__lt=last)
        .order_by()
        .annotate(second=_bucket_seconds(F("hour")))
        .values_list("second", *(_SERIES_FIELDS[key] for key in _SERIES_FIELDS), "runs")
    ),
    "first",
    "last",
)


def _buckets(rows: list[tuple]) -> dict[int, tuple]:
    """Rows of (bucket, *_SUMS) by the bucket's epoch second (an int already on PostgreSQL). Every
    sum is over at least one row of NOT NULL counts, so none is NULL."""
    if rows and type(rows[0][0]) is not int:
        return {_epoch(row[0]): row[1:] for row in rows}
    return {row[0]: row[1:] for row in rows}


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _truncate(moment: datetime, per_minute: bool) -> datetime:
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    return moment if per_minute else moment.replace(minute=0)
