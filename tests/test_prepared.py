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
