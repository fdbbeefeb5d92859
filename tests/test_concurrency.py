"""Runs started at once are serialised: each minute is generated once (PostgreSQL, real connections)."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections

from synthetics.models import Journey, RunStatus, SyntheticRun
from synthetics.selectors.ledger import run_totals, synthetic_event_counts
from synthetics.services import run_manual, run_scheduled, sim_users_seed

NOW = datetime(2026, 1, 9, 19, 15, 30, tzinfo=UTC)


def _run_at_once(count: int, service, **kwargs) -> list:
    barrier = threading.Barrier(count)
    results, errors = [], []

    def worker():
        try:
            barrier.wait(timeout=10)
            results.append(service(**kwargs))
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_scheduled_runs_started_together_generate_the_minute_once(postgres_only):
    # given a pool and a run that covered the previous minutes
    sim_users_seed(count=60, seed=3, today=NOW.date())  # signed up by NOW, whatever the wall clock
    run_scheduled(now=NOW - timedelta(minutes=3))
    # when six workers run the same scheduled run at the same moment
    results = _run_at_once(6, run_scheduled, now=NOW)
    # then exactly one generated the new minutes, the others found them covered
    succeeded = [r for r in results if r.status == RunStatus.SUCCEEDED]
    skipped = [r for r in results if r.status == RunStatus.SKIPPED]
    assert len(succeeded) == 1
    assert len(skipped) == 5
    assert all(r.note == "no new minute to cover" for r in skipped)
    assert succeeded[0].window_end - succeeded[0].window_start == timedelta(minutes=3)
    # and the ledger agrees with the rows
    totals = run_totals(since=NOW - timedelta(days=1))
    assert totals["sessions_started"] == Journey.objects.filter(is_synthetic=True).count()
    counts = synthetic_event_counts(since=NOW - timedelta(days=1))
    assert counts["scene_events"] == totals["scene_events"]
    windows = SyntheticRun.objects.filter(status=RunStatus.SUCCEEDED).values_list(
        "window_start", "window_end"
    )
    assert len(set(windows)) == len(windows)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_manual_runs_at_once_each_start_their_target(postgres_only):
    sim_users_seed(count=60, seed=4, today=NOW.date())  # signed up by NOW, whatever the wall clock
    results = _run_at_once(4, run_manual, now=NOW, target=5)
    assert [r.sessions_started for r in results] == [5, 5, 5, 5]
    active_users = list(
        Journey.objects.filter(status="active", is_synthetic=True).values_list(
            "sim_user", flat=True
        )
    )
    assert len(active_users) == len(set(active_users)), "no user is in two active journeys"
