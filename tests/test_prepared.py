"""Statements compiled once and run again with new times give the ORM's own answer for any times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Count, Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthetics.models import RunStatus, SyntheticRun
from synthetics.selectors.ledger import run_totals
from synthetics.selectors.prepared import Prepared
from synthetics.selectors.status import last_run, recent_runs, status_scalars
from synthetics.services import activity_backfill
from tests.helpers import ledger_with_every_kind_of_run

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def history(sim_users):
    activity_backfill(hours=3, now=NOW)


def orm_totals(since, until):
    runs = SyntheticRun.objects.filter(status=RunStatus.SUCCEEDED, window_end__gt=since)
    if until is not None:
        runs = runs.filter(window_end__lte=until)
    sums = runs.aggregate(
        runs=Count("id"),
        sessions_started=Sum("sessions_started"),
        scene_events=Sum("scene_events_created"),
        mindblock_events=Sum("mindblock_events_created"),
        completed=Sum("journeys_completed"),
        abandoned=Sum("journeys_abandoned"),
        errored=Sum("journeys_errored"),
    )
    return {key: value or 0 for key, value in sums.items()}


minutes = st.integers(min_value=-240, max_value=60)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=minutes,
    length=st.none() | st.integers(min_value=0, max_value=300),
    second=st.integers(0, 59),
)
def test_run_totals_equal_the_orms_aggregate_for_any_window(history, start, length, second):
    # given any window around the 3 hours of history (open-ended or not, on or off minute bounds)
    since = NOW + timedelta(minutes=start, seconds=second)
    until = None if length is None else since + timedelta(minutes=length)
    # then the prepared statement answers what the ORM's aggregate answers
    assert run_totals(since=since, until=until) == orm_totals(since, until)


def test_a_window_with_no_run_has_zero_totals(history):
    totals = run_totals(since=NOW + timedelta(days=1))
    assert totals == dict.fromkeys(totals, 0) and len(totals) == 7


def test_a_statement_that_does_not_bind_a_time_is_refused_when_compiled(db):
    # given a build that ignores its time (it would answer the same for every window)
    prepared = Prepared(lambda since: SyntheticRun.objects.values_list("id"), "since")
    # then it is refused, not run with the time silently dropped
    with pytest.raises(RuntimeError, match="since"):
        prepared.rows(since=NOW)


def test_the_status_statement_answers_what_each_selector_answers(history):
    from synthetics.models import SimUser
    from synthetics.selectors import run_inputs

    SimUser.objects.filter(pk=SimUser.objects.order_by("id").first().pk).update(churned_at=NOW)
    for _ in range(2):  # compiled on the first call, reused on the second
        row = status_scalars()
        assert row.covered == run_inputs.covered_until() is not None
        assert row.active_journeys == run_inputs.active_journey_count() > 0
        assert row.sim_users == run_inputs.active_sim_user_count() == 39
        assert row.sim_users_churned == run_inputs.churned_sim_user_count() == 1
        assert row.pk == 1 and row.sessions_per_min == run_inputs.settings_get().sessions_per_min


# --- status's ledger reads and its run objects -----------------------------------------------------


def test_status_ledger_reads_are_the_orms_own(sim_users):
    # given every kind of run in the ledger, finished or not
    ledger_with_every_kind_of_run(NOW)
    fields = [field.attname for field in SyntheticRun._meta.concrete_fields]

    def as_rows(runs):
        return [tuple(getattr(run, name) for name in fields) for run in runs]

    # then the compiled reads give the very rows the ORM's querysets give
    orm_last = SyntheticRun.objects.filter(finished_at__isnull=False).order_by("-finished_at")
    assert as_rows([last_run()]) == as_rows([orm_last.first()])
    for limit in (1, 3, 10):
        orm_recent = SyntheticRun.objects.order_by("-started_at", "-id")  # every trigger
        assert as_rows(recent_runs(limit=limit)) == as_rows(orm_recent[:limit])
    assert all(not run._state.adding for run in recent_runs())  # loaded, as from a query
    SyntheticRun.objects.all().delete()
    assert last_run() is None and recent_runs() == []


def test_the_sim_user_page_is_counted_by_the_per_persona_counts(sim_users):
    from rest_framework.test import APIClient

    from synthetics.models import SimUser
    from tests.factories import StaffUserFactory

    # the page's count is the per-persona counts' own, filtered or not
    client = APIClient()
    client.force_authenticate(StaffUserFactory())
    body = client.get("/api/synthetics/sim-users").json()
    assert body["count"] == SimUser.objects.count() == sum(body["by_persona"].values())
    for persona, n in body["by_persona"].items():
        assert client.get("/api/synthetics/sim-users", {"persona": persona}).json()["count"] == n


# --- status in two statements ---------------------------------------------------------------------


def _as_rows(runs):
    fields = [field.attname for field in SyntheticRun._meta.concrete_fields]
    return [tuple(getattr(run, name) for name in fields) for run in runs]


def _each_selector_alone(now):
    """What status showed when each of its parts was read by its own statement (before
    status_ledger and the totals joined to status_scalars)."""
    from synthetics.selectors.ledger import written_event_counts
    from synthetics.selectors.status import generator_status

    row = status_scalars()
    return {
        "status": generator_status(row=row, now=now, covered=row.covered),
        "last_5_min": written_event_counts(since=now - timedelta(minutes=5), until=now),
        "last_24_hours": run_totals(since=now - timedelta(hours=24)),
        "last_run": _as_rows([last_run()] if last_run() else []),
        "recent_runs": _as_rows(recent_runs()),
        "active_journeys": row.active_journeys,
        "sim_users": (row.sim_users, row.sim_users_churned),
    }


def _status_in_two_statements(now):
    from synthetics.selectors.status import status_summary

    summary = status_summary(now=now)
    return {
        "status": summary.status,
        "last_5_min": summary.last_5_min,
        "last_24_hours": summary.last_24_hours,
        "last_run": _as_rows([summary.last_run] if summary.last_run else []),
        "recent_runs": _as_rows(summary.recent_runs),
        "active_journeys": summary.active_journeys,
        "sim_users": (summary.sim_users, summary.sim_users_churned),
    }


def test_status_in_two_statements_answers_what_each_selector_answers(sim_users):
    from synthetics.models import SyntheticSettings

    # an empty ledger (a fresh install: starting, then stalled)
    for later in (0, 10):
        now = NOW + timedelta(minutes=later)
        assert _status_in_two_statements(now) == _each_selector_alone(now)
    # every kind of run: failed shards, manual runs, a backfill, at moments around them
    ledger_with_every_kind_of_run(NOW)
    for later in (-31, -29, -20, -11, -10, -1, 0, 1, 2, 4, 5, 30, 60 * 24 + 1):
        now = NOW + timedelta(minutes=later, seconds=17)
        assert _status_in_two_statements(now) == _each_selector_alone(now), later
    # paused
    SyntheticSettings.objects.filter(pk=1).update(enabled=False)
    assert _status_in_two_statements(NOW) == _each_selector_alone(NOW)


def test_status_in_two_statements_through_a_steady_history(history):
    # the last 5 minutes straddled by a run's events, counted through the tag index
    for later in (-125, -60, -3, 0):
        now = NOW + timedelta(minutes=later, seconds=31)
        assert _status_in_two_statements(now) == _each_selector_alone(now), later
        assert _status_in_two_statements(now)["last_5_min"]["scene_events"] > 0


def test_status_reads_in_at_most_three_statements(history, django_assert_max_num_queries):
    from synthetics.selectors.status import status_summary

    status_summary(now=NOW)  # the pool counted once (kept under its stamp)
    # the settings and scalars, the ledger's rows, the events straddling the 5 minutes' edge
    with django_assert_max_num_queries(3):
        status_summary(now=NOW + timedelta(seconds=31))


def test_the_status_api_reads_in_at_most_four_statements(history, django_assert_max_num_queries):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from tests.factories import StaffUserFactory

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=StaffUserFactory())}")
    first = client.get("/api/synthetics/status")
    assert first.status_code == 200
    # the token with its user, the user's permissions, then status's three
    with django_assert_max_num_queries(6):
        again = client.get("/api/synthetics/status")
    body, earlier = again.json(), first.json()
    body.pop("timestamp"), earlier.pop("timestamp")
    assert body == earlier


def test_parts_of_one_statement_give_each_part_its_own_rows(history):
    from synthetics.selectors.prepared import PreparedParts

    def newest(since):
        return SyntheticRun.objects.filter(window_end__gt=since).order_by("-window_end")

    parts = PreparedParts(
        (
            lambda since, until: newest(since).values_list("id", "window_end")[:3],
            lambda since, until: (
                SyntheticRun.objects.filter(window_end__lte=until)
                .order_by("window_end")
                .values_list("id", "window_end")[:2]
            ),
        ),
        "since",
        "until",
    )
    since, until = NOW - timedelta(hours=1), NOW - timedelta(hours=2)
    for _ in range(2):  # compiled, then reused
        rows = parts.rows(since=since, until=until)
        assert sorted(row[:-1] for row in rows if row[-1] == 0) == sorted(
            newest(since).values_list("id", "window_end")[:3]
        )
        assert sorted(row[:-1] for row in rows if row[-1] == 1) == sorted(
            SyntheticRun.objects.filter(window_end__lte=until)
            .order_by("window_end")
            .values_list("id", "window_end")[:2]
        )
