"""The activity chart over a chosen range (GET /api/synthetics/activity?hours=... or ?since=&until=):
buckets chosen from its length, the same sums as the fixed windows, every bad range refused with
its reason, and (PostgreSQL) plans that read the ledger's indexes and hourly sums, never an event
table."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from synthetics.selectors.activity import activity_bucket, activity_range, activity_series
from synthetics.services import activity_backfill
from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db
API = "/api/synthetics/activity"
COUNTS = (
    "scene_events",
    "mindblock_events",
    "sessions_started",
    "journeys_completed",
    "journeys_abandoned",
    "journeys_errored",
)


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=StaffUserFactory())}")
    return client


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_the_bucket_follows_the_length_of_the_range():
    assert activity_bucket(timedelta(hours=1)) == "minute"
    assert activity_bucket(timedelta(hours=6)) == "minute"
    assert activity_bucket(timedelta(hours=6, minutes=1)) == "hour"
    assert activity_bucket(timedelta(days=7)) == "hour"
    assert activity_bucket(timedelta(days=7, minutes=1)) == "day"
    assert activity_bucket(timedelta(days=90)) == "day"


def test_a_range_gives_the_sums_of_the_fixed_windows(sim_users):
    # given 30 hours of history
    now = datetime.now(UTC).replace(microsecond=0)
    activity_backfill(hours=30, now=now - timedelta(minutes=2))

    # when the last hour, the last day and the last 30 days are read as ranges
    hour = activity_range(since=now - timedelta(hours=1), until=now)
    day = activity_range(since=now - timedelta(hours=24), until=now)
    month = activity_range(since=now - timedelta(days=30), until=now)

    # then the hour and the day are the fixed windows' series, per minute and per hour
    assert hour.bucket == "minute" and len(hour.series) == 61
    assert hour.series == activity_series(hours=1, now=now).series
    assert day.bucket == "hour" and len(day.series) == 25
    assert day.series == activity_series(hours=24, now=now).series
    # and the 30 days are 31 UTC days, each the sum of its hours, with the same totals
    hourly = activity_series(hours=720, now=now)
    assert month.bucket == "day" and len(month.series) == 31
    assert month.totals == hourly.totals and month.totals["sessions_started"] > 0
    for point in month.series:
        hours = [p for p in hourly.series if p["bucket"].date() == point["bucket"].date()]
        assert point["bucket"].hour == 0
        assert {key: point[key] for key in COUNTS} == {
            key: sum(p[key] for p in hours) for key in COUNTS
        }


def test_the_api_answers_a_preset_and_a_custom_range(api, sim_users):
    # given three hours of history
    activity_backfill(hours=3, now=timezone.now() - timedelta(minutes=2))

    # when the last 7 days and a custom range of two hours are asked for
    week = api.get(API, {"hours": "168"})
    until = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=30)
    custom = api.get(API, {"since": _iso(until - timedelta(hours=2)), "until": _iso(until)})

    # then each comes in its bucket, with its bounds and its points
    assert week.status_code == 200, week.content
    body = week.json()
    assert list(body) == ["since", "until", "bucket", "totals", "series"]
    assert body["bucket"] == "hour" and len(body["series"]) == 169
    assert body["totals"]["sessions_started"] > 0
    assert custom.status_code == 200, custom.content
    body = custom.json()
    assert body["bucket"] == "minute" and len(body["series"]) == 121
    assert body["since"] == _iso(until - timedelta(hours=2))
    assert body["until"] == _iso(until)
    assert sum(p["sessions_started"] for p in body["series"]) == body["totals"]["sessions_started"]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"hours": "2161"}, "hours", "from 1 to 2160"),
        ({"hours": "0"}, "hours", "from 1 to 2160"),
        ({"since": "2026-01-01T00:00:00Z", "until": "2026-04-02T00:00:00Z"}, "since", "at most 90"),
        ({"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since", "before"),
        ({"since": "2026-01-01T00:00:00", "until": "2026-01-02T00:00:00Z"}, "since", "time zone"),
        ({"since": "2026-01-01T00:00:00Z", "hours": "3"}, "since", "not both"),
        ({"until": "2026-01-01T00:00:00Z"}, "hours", "a range"),
        ({}, "hours", "a range"),
        ({"hours": "1", "until": "2999-01-01T00:00:00Z"}, "until", "after now"),
    ],
)
def test_a_bad_range_is_refused_with_its_reason(api, query, field, message):
    answer = api.get(API, query)
    assert answer.status_code == 400, answer.content
    assert message in " ".join(answer.json()["fields"][field]), answer.json()


def test_the_range_needs_an_account():
    assert APIClient().get(API, {"hours": "1"}).status_code in (401, 403)


def _statements_of(read) -> list[tuple[str, tuple]]:
    """Every statement `read()` sends, with its parameters."""
    seen: list[tuple[str, tuple]] = []

    def keep(execute, sql, params, many, context):
        seen.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(keep):
        read()
    return seen


@pytest.mark.parametrize("days", [1, 7, 30, 90])
def test_long_ranges_read_the_ledger_indexes_and_the_hourly_sums(postgres_only, sim_users, days):
    # given history in the ledger and its hourly sums, with sequential scans priced out (on a small
    # table the planner would rightly scan; the point is that an index serves every statement)
    now = timezone.now()
    activity_backfill(hours=2, now=now - timedelta(minutes=2))
    statements = _statements_of(lambda: activity_range(since=now - timedelta(days=days), until=now))

    # when each statement the range sends is explained
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for sql, params in statements:
            cursor.execute("EXPLAIN " + sql, params)
            plans.append("\n".join(row[0] for row in cursor.fetchall()))

    # then no statement scans a table or reads an event table; the ledger goes through its index
    assert plans
    joined = "\n".join(plans)
    assert "Seq Scan" not in joined, joined
    for table in ("journey_scene_events", "mindblock_events", "journeys "):
        assert table not in joined, joined
    assert "synthetic_runs_status_idx" in joined, joined
