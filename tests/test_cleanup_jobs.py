"""Cleanup as a job: batch after batch, resumable, followed through the API, off the request path.

What cleanup deletes (ours, older than the cutoff, nothing else) is the property of
test_data_safety.py; here: the job's cursor and counts, the hand-off to django-q2 tasks, the 202 and
the job's URL, one job at a time, a lost worker taken over, a failed batch rolled back and recorded,
and the command.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from synthetics import tasks
from synthetics.models import (
    CleanupJob,
    CleanupStage,
    CleanupStatus,
    Journey,
    JourneySceneEvent,
    MindblockEvent,
)
from synthetics.services import activity_backfill, cleanup
from tests.factories import JourneySceneEventFactory, StaffUserFactory, UserFactory
from tests.helpers import database_state

pytestmark = pytest.mark.django_db
API = "/api/synthetics"


@pytest.fixture
def history(sim_users, monkeypatch):
    """Three hours of history ending at a frozen now; returns now."""
    now = timezone.now().replace(microsecond=0)
    monkeypatch.setattr(timezone, "now", lambda: now)
    activity_backfill(hours=3, now=now)
    return now


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=StaffUserFactory())}")
    return client


def old_rows(cutoff) -> dict[str, int]:
    return {
        "journey_scene_events": JourneySceneEvent.objects.synthetic()
        .filter(created_at__lt=cutoff)
        .count(),
        "mindblock_events": MindblockEvent.objects.synthetic()
        .filter(created_at__lt=cutoff)
        .count(),
    }


def test_a_job_stopped_after_every_batch_resumes_where_it_was_and_counts_exactly(
    history, monkeypatch
):
    # given a cleanup of the older half, in batches of 50 rows, stopped after each batch
    monkeypatch.setattr(cleanup, "CLEANUP_BATCH", 50)
    cutoff = history - timedelta(minutes=90)
    expected = cleanup.cleanup_counts(cutoff=cutoff)
    assert expected["journey_scene_events"] > 150 and expected["journeys"] > 0
    result = cleanup.cleanup_synthetic(
        older_than_hours=1, dry_run=False, now=history - timedelta(minutes=30), budget_seconds=0
    )
    assert not result.done and result.job.status == CleanupStatus.RUNNING
    # when the job is continued one batch at a time, as the tasks do
    stages, before = [result.job.stage], dict(result.job.counts)
    while True:
        job = cleanup.cleanup_job_work(result.job.id, budget_seconds=0)
        # then at every step the counts are exactly what is gone from the tables
        gone = {name: expected[name] - left for name, left in old_rows(cutoff).items()}
        assert {name: job.counts[name] for name in gone} == gone
        # and each step was one batch of one stage: at most 50 event or ledger rows (a journey
        # window may hold more than 50 journeys when their start times tie, so it is not bounded)
        step = {name: job.counts[name] - before[name] for name in job.counts}
        assert sum(1 for moved in step.values() if moved) <= 1
        assert all(moved <= 50 for name, moved in step.items() if name != "journeys")
        before = dict(job.counts)
        stages.append(job.stage)
        if job.status != CleanupStatus.RUNNING:
            break
    # then it went through the stages in order and ended with what the dry run counted
    assert job.status == CleanupStatus.SUCCEEDED and job.finished_at is not None
    assert [stage for i, stage in enumerate(stages) if i == 0 or stages[i - 1] != stage] == [
        CleanupStage.SCENE_EVENTS,
        CleanupStage.MINDBLOCK_EVENTS,
        CleanupStage.JOURNEYS,
        CleanupStage.RUNS,
        CleanupStage.DONE,
    ]
    assert job.counts == expected
    assert cleanup.cleanup_counts(cutoff=cutoff) == {
        "journey_scene_events": 0,
        "mindblock_events": 0,
        "sessions": 0,  # demo mode: no sessions table (its stage is skipped)
        "journeys": 0,
        "synthetic_runs": 0,
    }
    assert job.counts["synthetic_runs"] > 0


def test_the_api_answers_202_with_a_job_that_tasks_finish_and_the_job_url_follows(
    history, api, settings, monkeypatch, django_capture_on_commit_callbacks
):
    # given a request budget too small to finish in the request
    settings.SYNTHETICS_CLEANUP_REQUEST_SECONDS = 0
    monkeypatch.setattr(cleanup, "CLEANUP_BATCH", 100)
    dry = api.post(f"{API}/cleanup", {"older_than_hours": 1, "dry_run": True}, format="json")
    # when the cleanup is asked for
    with (
        mock.patch("django_q.tasks.async_task") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = api.post(
            f"{API}/cleanup", {"older_than_hours": 1, "dry_run": False}, format="json"
        )
    # then it answers at once: 202, the job so far, where to follow it, and a task queued for it
    assert response.status_code == 202, response.content
    body = response.json()
    job_id = body["job"]["id"]
    assert response["Location"] == body["job"]["url"] == f"{API}/cleanup/{job_id}"
    assert body["job"]["status"] == "running" and body["job"]["requested_by"]
    assert body["counts"] == body["job"]["counts"]
    assert 0 < sum(body["counts"].values()) < sum(dry.json()["counts"].values())
    queued.assert_called_once_with(cleanup.CLEANUP_TASK_FUNC, job_id)
    # ... a second cleanup meanwhile is refused with the running job's id, nothing deleted
    before = database_state()
    again = api.post(f"{API}/cleanup", {"older_than_hours": 1, "dry_run": False}, format="json")
    assert again.status_code == 409 and str(job_id) in again.json()["error"]
    assert database_state() == before
    # when the queued tasks run, each queuing the next while rows are left
    settings.SYNTHETICS_CLEANUP_TASK_SECONDS = 0
    runs = 0
    while True:
        with (
            mock.patch("django_q.tasks.async_task") as queued,
            django_capture_on_commit_callbacks(execute=True),
        ):
            outcome = tasks.cleanup_continue(job_id)
        runs += 1
        if outcome["status"] != "running":
            queued.assert_not_called()
            break
        queued.assert_called_once_with(cleanup.CLEANUP_TASK_FUNC, job_id)
    # then the job URL says it succeeded with the dry run's counts
    followed = api.get(f"{API}/cleanup/{job_id}")
    assert followed.status_code == 200
    job = followed.json()["job"]
    assert runs > 1 and job["status"] == "succeeded" and job["stage"] == "done"
    assert job["counts"] == dry.json()["counts"] and job["finished_at"]
    assert api.get(f"{API}/cleanup/{job_id + 1000}").status_code == 404


def test_a_cleanup_that_fits_in_the_request_answers_200_and_queues_nothing(
    history, api, django_capture_on_commit_callbacks
):
    with (
        mock.patch("django_q.tasks.async_task") as queued,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = api.post(
            f"{API}/cleanup", {"older_than_hours": 1, "dry_run": False}, format="json"
        )
    assert response.status_code == 200 and "Location" not in response
    assert response.json()["job"]["status"] == "succeeded"
    queued.assert_not_called()


def test_a_job_whose_worker_was_lost_is_taken_over_by_the_next_cleanup(history, monkeypatch):
    # given a running job that stopped moving (its worker died) more than STALE_AFTER ago
    monkeypatch.setattr(cleanup, "CLEANUP_BATCH", 10)
    first = cleanup.cleanup_synthetic(
        older_than_hours=1, dry_run=False, now=history, budget_seconds=0
    ).job
    CleanupJob.objects.filter(pk=first.pk).update(
        updated_at=history - cleanup.STALE_AFTER - timedelta(seconds=1)
    )
    # when a new cleanup is asked for
    second = cleanup.cleanup_synthetic(older_than_hours=1, dry_run=False, now=history).job
    # then it runs to the end, and the lost one is failed with a note naming its successor
    first.refresh_from_db()
    assert second.status == CleanupStatus.SUCCEEDED
    assert first.status == CleanupStatus.FAILED and "a new cleanup took over" in first.error
    assert old_rows(history - timedelta(hours=1)) == {
        "journey_scene_events": 0,
        "mindblock_events": 0,
    }


def test_a_failed_batch_is_rolled_back_and_recorded_and_earlier_batches_stay_counted(
    history, monkeypatch
):
    # given a batch size of 40 and a database error on the third batch
    monkeypatch.setattr(cleanup, "CLEANUP_BATCH", 40)
    cutoff = history - timedelta(hours=1)
    expected = cleanup.cleanup_counts(cutoff=cutoff)
    real_delete, calls = cleanup._delete_events, []

    def failing(stage, **kwargs):
        calls.append(stage)
        if len(calls) == 3:
            real_delete(stage, **kwargs)  # deletes, then fails: the savepoint must undo it
            raise RuntimeError("disk full")
        return real_delete(stage, **kwargs)

    monkeypatch.setattr(cleanup, "_delete_events", failing)
    # when the cleanup runs
    with pytest.raises(RuntimeError, match="disk full"):
        cleanup.cleanup_synthetic(older_than_hours=1, dry_run=False, now=history)
    # then the job is failed with the error, and exactly two batches are gone and counted
    job = CleanupJob.objects.get()
    assert job.status == CleanupStatus.FAILED and "disk full" in job.error
    assert job.counts["journey_scene_events"] == 80
    left = old_rows(cutoff)["journey_scene_events"]
    assert left == expected["journey_scene_events"] - 80


def test_the_command_counts_deletes_and_says_what_it_did(history, capsys):
    # given a real row among old synthetic ones
    real = JourneySceneEventFactory(created_at=history - timedelta(hours=2))
    cutoff = history - timedelta(hours=1)
    expected = cleanup.cleanup_counts(cutoff=cutoff)
    journeys_before = Journey.objects.count()
    # when the command is run dry, then for real
    call_command("cleanup_activity", "--older-than-hours", "1", "--dry-run")
    dry = capsys.readouterr().out
    call_command("cleanup_activity", "--older-than-hours", "1")
    done = capsys.readouterr().out
    # then both name the counts; only the real run deleted them, the real row stays
    assert f"would delete {expected['journey_scene_events']} scene events" in dry
    job = CleanupJob.objects.get()
    assert f"job {job.id} deleted {expected['journey_scene_events']} scene events" in done
    assert f"{expected['journeys']} journeys" in done
    assert Journey.objects.count() == journeys_before - expected["journeys"]
    real.refresh_from_db()
    assert job.requested_by == "manage.py cleanup_activity"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_cleanups_asked_at_the_same_moment_start_one_job(postgres_only, sim_users):
    # given one request that has created its job and not yet committed
    import threading

    from django.db import connection, transaction

    now = timezone.now()
    created, release, outcome = threading.Event(), threading.Event(), {}

    def first():
        try:
            with transaction.atomic():
                outcome["first"] = cleanup.cleanup_job_start(
                    older_than_hours=1, cutoff=now, now=now, requested_by="a"
                )
                created.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    assert created.wait(10)
    # when a second one asks meanwhile (its insert waits for the first to commit)
    timer = threading.Timer(0.5, release.set)
    timer.start()
    try:
        with pytest.raises(cleanup.Conflict, match=r"is still running|has just started"):
            cleanup.cleanup_job_start(older_than_hours=1, cutoff=now, now=now, requested_by="b")
    finally:
        release.set()
        thread.join(10)
        timer.cancel()
    # then exactly one job exists
    assert CleanupJob.objects.count() == 1
    assert CleanupJob.objects.get().requested_by == "a"


def test_a_job_id_out_of_any_range_is_a_404(api):
    assert api.get(f"{API}/cleanup/{2**70}").status_code == 404


def test_a_reader_follows_a_job_without_who_asked_or_the_traceback(db, api):
    # given a failed job, started by someone, with a traceback
    from django.contrib.auth.models import Permission

    job = CleanupJob.objects.create(
        older_than_hours=1,
        cutoff=datetime(2026, 1, 1, tzinfo=UTC),
        requested_by="ops@example.com via the API",
        status=CleanupStatus.FAILED,
        stage=CleanupStage.JOURNEYS,
        error="Traceback (most recent call last): ... password=hunter2",
        finished_at=datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
    )
    reader = UserFactory(is_staff=False)
    reader.user_permissions.add(Permission.objects.get(codename="view_syntheticsettings"))
    as_reader = APIClient()
    as_reader.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=reader)}")
    # when a reader (view permission only) and a steerer (change permission) follow it
    seen = as_reader.get(f"{API}/cleanup/{job.id}")
    full = api.get(f"{API}/cleanup/{job.id}")
    # then both see its progress; only the steerer sees who asked and why it failed
    assert seen.status_code == full.status_code == 200
    assert seen.json()["job"]["status"] == full.json()["job"]["status"] == "failed"
    assert seen.json()["job"]["requested_by"] == ""
    assert "hunter2" not in seen.content.decode() and seen.json()["job"]["error"]
    assert full.json()["job"]["requested_by"] == "ops@example.com via the API"
    assert "hunter2" in full.json()["job"]["error"]
