"""How runs end and what status says about it: the future, clock steps, interruptions and budgets."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.exceptions import TimeoutException

from synthetics.engine import minute as engine_minute
from synthetics.errors import RunFailed
from synthetics.models import RunStatus, SyntheticRun, SyntheticSettings
from synthetics.selectors.ledger import synthetic_event_counts
from synthetics.selectors.run_inputs import RunInputs
from synthetics.selectors.status import status_summary
from synthetics.services import run_backfill_minute, run_manual, run_scheduled
from synthetics.services.runs import RunInTheFuture
from tests.factories import SyntheticRunFactory
from tests.helpers import database_state

pytestmark = pytest.mark.django_db

MINUTE = timedelta(minutes=1)


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


# --- no row is ever dated after the real now ----------------------------------------------------


@pytest.mark.parametrize(
    "run",
    [
        lambda later: run_scheduled(now=later),
        lambda later: run_manual(now=later, target=1),
        lambda later: run_backfill_minute(minute_end=later, inputs=RunInputs.load()),
    ],
    ids=["scheduled", "manual", "backfill"],
)
def test_a_run_in_the_future_is_refused_and_writes_nothing(sim_users, run):
    before = database_state()
    with pytest.raises(RunInTheFuture, match="after the current time"):
        run(timezone.now() + timedelta(hours=3))
    assert database_state() == before


def test_run_synthetics_refuses_a_future_now(sim_users):
    before = database_state()
    future = (timezone.now() + timedelta(hours=3)).isoformat()
    with pytest.raises(CommandError, match="after the current time"):
        call_command("run_synthetics", "--now", future)
    assert database_state() == before


def test_last_5_min_never_counts_rows_dated_after_now(sim_users):
    # given real generation in the last minutes, and rows of ours dated an hour ahead (written
    # before this rule existed, or by a clock that stepped back)
    now = timezone.now()
    run_scheduled(now=now - 2 * MINUTE)
    counted = status_summary(now=now).last_5_min["scene_events"]
    future_run = SyntheticRunFactory(started_at=now, window_end=_minute(now) + timedelta(hours=1))
    from tests.factories import JourneySceneEventFactory

    JourneySceneEventFactory.create_batch(
        3,
        created_at=now + timedelta(minutes=30),
        event_payload={"synthetic": True, "run_id": future_run.id},
    )
    # then last_5_min is unchanged by them
    assert status_summary(now=now).last_5_min["scene_events"] == counted


# --- a clock that steps back ----------------------------------------------------------------------


def test_a_clock_step_back_is_skipped_with_a_reason_and_shown_in_status(sim_users):
    # given the ledger covers up to 3 hours after now (the clock then stepped back 3 hours)
    now = timezone.now()
    SyntheticRunFactory(
        started_at=now, window_start=_minute(now), window_end=_minute(now) + timedelta(hours=3)
    )
    # when the scheduler runs
    result = run_scheduled(now=now)
    # then nothing is generated twice, the ledger says why, and status tells it apart from a stall
    assert result.status == RunStatus.SKIPPED
    assert result.note.startswith("clock stepped back")
    state = status_summary(now=now).status
    assert state.status == "clock_behind"
    assert "stepped back" in state.reason


# --- every way a run ends is recorded -------------------------------------------------------------


def _explode_in_simulation(monkeypatch, error: BaseException) -> None:
    def simulate(**kwargs):
        raise error

    monkeypatch.setattr(engine_minute, "simulate_run", simulate)


def test_a_run_stopped_by_django_q_timeout_is_recorded_and_the_retry_takes_one_minute(
    sim_users, monkeypatch
):
    # given generation covered up to 20 minutes ago
    now = timezone.now()
    run_scheduled(now=now - 20 * MINUTE)
    # when django-q2's timeout (a SystemExit) stops the next run inside the engine
    _explode_in_simulation(monkeypatch, TimeoutException("Task exceeded maximum timeout value"))
    with pytest.raises(SystemExit):
        run_scheduled(now=now - 2 * MINUTE)
    # then the run is in the ledger as failed, saying how it ended
    failed = SyntheticRun.objects.get(status=RunStatus.FAILED)
    assert "task timeout" in failed.note
    assert "TimeoutException" in failed.error
    assert status_summary(now=now - 2 * MINUTE).status.status == "failing"
    # and the retry covers only the last minute instead of a longer window than the one that failed
    monkeypatch.undo()
    retry = run_scheduled(now=now)
    assert retry.status == RunStatus.SUCCEEDED
    assert retry.window_end - retry.window_start == MINUTE
    assert status_summary(now=now).status.status == "running"


def test_ctrl_c_inside_a_run_is_recorded(sim_users, monkeypatch):
    _explode_in_simulation(monkeypatch, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        run_manual(target=1)
    failed = SyntheticRun.objects.get(status=RunStatus.FAILED)
    assert "Ctrl-C" in failed.note


def test_a_run_over_its_time_budget_fails_itself_before_writing(sim_users, monkeypatch, settings):
    # given a budget already used up by the time the engine returns
    settings.SYNTHETICS_RUN_BUDGET_SECONDS = 0.001
    before = synthetic_event_counts(since=datetime(2000, 1, 1, tzinfo=UTC))
    # when a scheduled run goes
    with pytest.raises(RunFailed, match="time budget"):
        run_scheduled()
    # then it wrote nothing and is recorded as failed with the reason
    assert synthetic_event_counts(since=datetime(2000, 1, 1, tzinfo=UTC)) == before
    failed = SyntheticRun.objects.get(status=RunStatus.FAILED)
    assert "time budget" in failed.note
    assert SyntheticRun.objects.filter(status=RunStatus.SUCCEEDED).count() == 0


# --- status: failing is not stalled -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("runs", "expected"),
    [
        ([], "stalled"),  # installed an hour ago, no run at all
        ([("backfill", "succeeded", 1)], "starting"),  # its history just written, e.g. make run
        ([("backfill", "succeeded", 5)], "stalled"),  # ... but no scheduled run since
        ([("backfill", "succeeded", 1), ("scheduled", "succeeded", 5)], "stalled"),
        ([("scheduled", "succeeded", 1)], "running"),
        ([("scheduled", "skipped", 1)], "running"),
        ([("scheduled", "failed", 1)], "failing"),
        ([("scheduled", "failed", 2), ("scheduled", "succeeded", 1)], "running"),
        ([("scheduled", "succeeded", 2), ("scheduled", "failed", 1)], "failing"),
        ([("scheduled", "failed", 5)], "stalled"),  # nothing at all for 3 minutes
        (
            [("manual", "succeeded", 1)],
            "stalled",
        ),  # a cron's manual runs don't hide a dead scheduler
    ],
)
def test_status_tells_running_failing_and_stalled_apart(runs, expected):
    now = timezone.now()
    SyntheticSettings.objects.filter(pk=1).update(created_at=now - timedelta(hours=1))
    for trigger, status, minutes_ago in runs:
        finished = now - timedelta(minutes=minutes_ago)
        SyntheticRunFactory(
            trigger=trigger,
            status=status,
            started_at=finished - timedelta(seconds=1),
            finished_at=finished,
            window_end=_minute(finished) - 10 * MINUTE,
            window_start=_minute(finished) - 11 * MINUTE,
            note="database gone" if status == "failed" else "",
        )
    state = status_summary(now=now).status
    assert state.status == expected
    if expected == "failing":
        assert "database gone" in state.reason


def test_paused_wins_over_everything():
    SyntheticSettings.objects.filter(pk=1).update(enabled=False)
    SyntheticRunFactory(status="failed", started_at=timezone.now(), finished_at=timezone.now())
    assert status_summary(now=timezone.now()).status.status == "paused"


def test_the_status_endpoint_reports_the_state_and_its_reason(admin_client):
    SyntheticSettings.objects.filter(pk=1).update(created_at=timezone.now() - timedelta(hours=1))
    response = admin_client.get("/api/synthetics/status")
    body = response.json()
    assert body["status"] == "stalled"
    assert "django-q2" in body["status_reason"]


@pytest.mark.parametrize(
    ("installed_minutes_ago", "expected"), [(0, "starting"), (2.9, "starting"), (3, "stalled")]
)
def test_a_fresh_install_is_starting_until_its_first_scheduled_run_is_due(
    admin_client, installed_minutes_ago, expected
):
    # given an install with no run at all (its settings row made that long ago)
    now = timezone.now()
    created = now - timedelta(minutes=installed_minutes_ago)
    SyntheticSettings.objects.filter(pk=1).update(created_at=created)
    # then it is starting, not stalled, until a scheduled run would have finished
    assert status_summary(now=now).status.status == expected
    # and a manual run (an external cron's) never makes a dead scheduler look like it is starting
    finished = created + timedelta(minutes=10)
    SyntheticRunFactory(
        trigger="manual", status="succeeded", started_at=finished, finished_at=finished
    )
    later = status_summary(now=finished + timedelta(seconds=30)).status.status
    assert later == "stalled"


def test_a_failed_manual_run_does_not_shrink_the_schedules_catch_up(sim_users, monkeypatch):
    now = timezone.now()
    run_scheduled(now=now - 20 * MINUTE)
    _explode_in_simulation(monkeypatch, RuntimeError("boom"))
    with pytest.raises(RunFailed):
        run_manual(target=1)
    monkeypatch.undo()
    result = run_scheduled(now=now)
    assert result.window_end - result.window_start == 10 * MINUTE
