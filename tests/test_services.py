"""Generator runs against the database: windows, the ledger, pause, all-or-nothing, real rows."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.exceptions import ValidationError

from synthetics.errors import ApplicationError, RunFailed
from synthetics.models import (
    Journey,
    JourneySceneEvent,
    JourneyStatus,
    MindblockEvent,
    RunStatus,
    RunTrigger,
    SyntheticRun,
    SyntheticSettings,
)
from synthetics.selectors import run_inputs
from synthetics.selectors.ledger import run_totals, synthetic_event_counts
from synthetics.services import (
    GeneratorPaused,
    activity_backfill,
    run_manual,
    run_scheduled,
    settings_update,
    sim_users_seed,
)
from synthetics.services import runs as runs_module
from tests.factories import JourneySceneEventFactory, MindblockEventFactory

NOW = datetime(2026, 1, 9, 19, 15, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)

pytestmark = pytest.mark.django_db


def _synthetic_counts():
    return (
        JourneySceneEvent.objects.synthetic().count(),
        MindblockEvent.objects.synthetic().count(),
        Journey.objects.filter(is_synthetic=True).count(),
    )


def _pause():
    SyntheticSettings.objects.filter(pk=1).update(enabled=False)


# --- what a run writes ----------------------------------------------------------------------------


def test_scheduled_run_writes_tagged_rows_and_a_matching_ledger_row(sim_users):
    # given generation covered up to 20 minutes ago
    activity_backfill(hours=1, now=NOW - 20 * MINUTE)
    before = {run.id for run in SyntheticRun.objects.all()}
    # when a scheduled run comes (10 minutes of catch-up at most)
    result = run_scheduled(now=NOW)
    # then it is in the ledger, and every row it wrote carries the tag and its id
    run = SyntheticRun.objects.exclude(id__in=before).get()
    assert run.id == result.id
    assert run.status == RunStatus.SUCCEEDED
    assert run.window_end == datetime(2026, 1, 9, 19, 15, tzinfo=UTC)
    assert run.window_start == run.window_end - 10 * MINUTE
    scene = JourneySceneEvent.objects.filter(event_payload__run_id=run.id)
    mindblock = MindblockEvent.objects.filter(event_payload__run_id=run.id)
    assert scene.count() == run.scene_events_created
    assert mindblock.count() == run.mindblock_events_created
    assert Journey.objects.filter(run=run).count() == run.sessions_started <= 5
    for event in [*scene, *mindblock]:
        assert event.event_payload["synthetic"] is True
        assert event.created_at <= run.window_end
    assert run.finished_at is not None and run.error == ""


def test_ledger_agrees_with_the_tables_after_many_runs(sim_users):
    activity_backfill(hours=2, now=NOW)
    totals = run_totals(since=NOW - timedelta(days=1))
    scene, mindblock, journeys = _synthetic_counts()
    assert totals["runs"] == 120
    assert totals["scene_events"] == scene > 0
    assert totals["mindblock_events"] == mindblock > 0
    assert totals["sessions_started"] == journeys > 0
    finished = Journey.objects.filter(is_synthetic=True).exclude(status=JourneyStatus.ACTIVE)
    assert totals["completed"] == finished.filter(status="completed").count()
    assert totals["abandoned"] == finished.filter(status="abandoned").count()
    assert totals["errored"] == finished.filter(status="errored").count()
    last = SyntheticRun.objects.order_by("-window_end").first()
    assert last.active_journeys == run_inputs.active_journey_count()


def test_journey_rows_are_consistent(sim_users):
    activity_backfill(hours=1, now=NOW)
    for journey in Journey.objects.filter(is_synthetic=True):
        events = list(
            JourneySceneEvent.objects.filter(journey=journey).order_by("created_at", "id")
        )
        assert (
            journey.next_step
            == len(events) + MindblockEvent.objects.filter(journey=journey).count()
        )
        assert events[0].created_at == journey.started_at
        if journey.status != JourneyStatus.ACTIVE:
            assert journey.ended_at >= events[-1].created_at
            assert journey.status == journey.plan["outcome"]
        assert journey.sim_user.user_id == journey.user_id
        users = {e.user_id for e in events}
        assert users == {journey.user_id}


# --- windows: each minute once ----------------------------------------------------------------------


def test_two_runs_in_the_same_minute_generate_it_once(sim_users):
    first = run_scheduled(now=NOW)
    second = run_scheduled(now=NOW + timedelta(seconds=20))
    assert first.status == RunStatus.SUCCEEDED
    assert second.status == RunStatus.SKIPPED
    assert second.note == "no new minute to cover"
    assert second.sessions_started == 0


def test_a_run_covers_only_the_minutes_since_the_last_one(sim_users):
    run_scheduled(now=NOW)
    result = run_scheduled(now=NOW + 3 * MINUTE)
    assert result.window_end - result.window_start == 3 * MINUTE
    assert result.window_start == datetime(2026, 1, 9, 19, 15, tzinfo=UTC)


def test_catch_up_after_downtime_is_bounded(sim_users):
    run_scheduled(now=NOW)
    result = run_scheduled(now=NOW + timedelta(hours=5))
    assert result.window_end - result.window_start == runs_module.MAX_CATCH_UP_MINUTES * MINUTE
    assert result.sessions_started <= 5, "never a burst: the cap still holds"


def test_backfill_twice_generates_nothing_the_second_time(sim_users):
    first = activity_backfill(hours=1, now=NOW)
    second = activity_backfill(hours=1, now=NOW)
    assert first.minutes_generated == 60
    assert second.minutes_generated == 0
    assert second.minutes_already_covered == 60
    assert second.totals["sessions_started"] == 0


def test_backfill_leaves_minutes_the_scheduler_covered(sim_users):
    # given the scheduler ran for the last five minutes
    for minute in range(5, -1, -1):
        run_scheduled(now=NOW - minute * MINUTE)
    # when a one-hour backfill runs
    summary = activity_backfill(hours=1, now=NOW)
    # then the scheduler's minutes are left alone and no minute is covered twice
    assert summary.minutes_already_covered == 6  # each run covered the minute ending at its time
    assert summary.minutes_generated == 54
    windows = SyntheticRun.objects.filter(status=RunStatus.SUCCEEDED).exclude(
        trigger=RunTrigger.MANUAL
    )
    minutes = []
    for run in windows:
        start = run.window_start
        while start < run.window_end:
            minutes.append(start)
            start += MINUTE
    assert len(minutes) == len(set(minutes)) == 60


# --- pause ----------------------------------------------------------------------------------------


def test_paused_scheduled_run_is_skipped_and_writes_nothing(sim_users):
    run_scheduled(now=NOW)
    counts = _synthetic_counts()
    _pause()
    result = run_scheduled(now=NOW + 2 * MINUTE)
    assert result.status == RunStatus.SKIPPED
    assert result.note == "paused"
    assert _synthetic_counts() == counts
    assert SyntheticRun.objects.get(id=result.id).status == RunStatus.SKIPPED


def test_resuming_does_not_fill_the_paused_period(sim_users):
    run_scheduled(now=NOW)
    _pause()
    for minute in range(1, 6):
        run_scheduled(now=NOW + minute * MINUTE)
    settings_update(enabled=True)
    result = run_scheduled(now=NOW + 6 * MINUTE)
    assert result.window_end - result.window_start == MINUTE
    paused_start = datetime(2026, 1, 9, 19, 15, tzinfo=UTC)
    started_in_pause = Journey.objects.filter(
        is_synthetic=True, started_at__gt=paused_start, started_at__lte=paused_start + 5 * MINUTE
    )
    assert not started_in_pause.exists()


def test_manual_run_while_paused_is_refused_and_writes_nothing(sim_users):
    _pause()
    with pytest.raises(GeneratorPaused, match="paused"):
        run_manual(now=NOW, target=3)
    assert _synthetic_counts() == (0, 0, 0)
    assert not SyntheticRun.objects.exists()


def test_forced_manual_run_while_paused_generates(sim_users):
    _pause()
    result = run_manual(now=NOW, target=3, force=True)
    assert result.sessions_started == 3
    assert result.status == RunStatus.SUCCEEDED


# --- manual runs ----------------------------------------------------------------------------------


def test_manual_run_starts_exactly_target_sessions(sim_users):
    result = run_manual(now=NOW, target=5)
    assert result.sessions_started == 5
    assert result.target == 5
    assert result.scene_events_created == JourneySceneEvent.objects.synthetic().count() >= 5
    assert (result.abandon_rate, result.error_rate) == (0.15, 0.05)


def test_manual_runs_do_not_consume_scheduled_minutes(sim_users):
    run_manual(now=NOW, target=2)
    run_manual(now=NOW, target=2)  # same instant twice: distinct sessions
    result = run_scheduled(now=NOW)
    assert result.status == RunStatus.SUCCEEDED
    assert Journey.objects.filter(is_synthetic=True).count() == 4 + result.sessions_started


@pytest.mark.parametrize("target", [0, 6, -2, None])
def test_manual_target_outside_bounds_changes_nothing(sim_users, target):
    with pytest.raises(ApplicationError, match="target must be"):
        run_manual(now=NOW, target=target)
    assert _synthetic_counts() == (0, 0, 0)
    assert not SyntheticRun.objects.exists()


def test_naive_now_is_refused(sim_users):
    with pytest.raises(ApplicationError, match="time zone"):
        run_scheduled(now=NOW.replace(tzinfo=None))
    assert not SyntheticRun.objects.exists()


# --- all or nothing ---------------------------------------------------------------------------------


def test_a_failing_run_leaves_no_partial_rows_and_is_recorded(db, monkeypatch):
    # given a pool seeded on this test's clock (the sim_users fixture's is seeded on the wall
    # clock's day: fewer of its users are old enough to start a session at NOW every day that
    # passes, 6 of 40 on 2026-12-08), and generation that has already written some history
    sim_users_seed(count=40, seed=7, today=NOW.date())
    activity_backfill(hours=1, now=NOW - MINUTE)
    counts = _synthetic_counts()
    journeys_before = {
        (j.id, j.status, j.next_step) for j in Journey.objects.filter(is_synthetic=True)
    }
    real_write = runs_module.run_output_write

    def write_then_fail(**kwargs):
        real_write(**kwargs)  # every insert and update of the run happens ...
        raise RuntimeError("disk full (injected)")  # ... then the run dies before committing

    monkeypatch.setattr(runs_module, "run_output_write", write_then_fail)
    # when a run fails part-way
    with pytest.raises(RunFailed, match="injected") as failure:
        run_manual(now=NOW, target=5)
    # then none of its rows remain, and the ledger says it failed, with the error
    assert _synthetic_counts() == counts
    assert {
        (j.id, j.status, j.next_step) for j in Journey.objects.filter(is_synthetic=True)
    } == journeys_before
    failed = SyntheticRun.objects.get(id=failure.value.run_id)
    assert failed.status == RunStatus.FAILED
    assert "disk full (injected)" in failed.error
    assert "Traceback" in failed.error
    # and the next run proceeds normally
    monkeypatch.setattr(runs_module, "run_output_write", real_write)
    assert run_manual(now=NOW, target=5).sessions_started == 5


def test_a_failing_scheduled_run_lets_the_next_minute_proceed(sim_users, monkeypatch):
    def fail(**kwargs):
        raise RuntimeError("database went away (injected)")

    real_write = runs_module.run_output_write
    monkeypatch.setattr(runs_module, "run_output_write", fail)
    with pytest.raises(RunFailed):
        run_scheduled(now=NOW)
    monkeypatch.setattr(runs_module, "run_output_write", real_write)
    result = run_scheduled(now=NOW + MINUTE)
    assert result.status == RunStatus.SUCCEEDED
    statuses = list(SyntheticRun.objects.order_by("id").values_list("status", flat=True))
    assert statuses == [RunStatus.FAILED, RunStatus.SUCCEEDED]


def test_empty_catalogue_is_recorded_as_a_failed_scheduled_run(sim_users):
    from synthetics.models import JourneyTemplate

    JourneyTemplate.objects.update(is_active=False)
    # Poisson(1000) is 0 with probability e^-1000: the run asks for sessions (capped at 5)
    settings_update(sessions_per_min=1000)
    with pytest.raises(RunFailed, match="no active journey template") as failure:
        run_scheduled(now=NOW)
    failed = SyntheticRun.objects.get(id=failure.value.run_id)
    assert failed.status == RunStatus.FAILED
    assert "no active journey template" in failed.error


# --- real rows --------------------------------------------------------------------------------------


def test_real_rows_are_never_counted_or_changed(sim_users):
    # given real users' events and journeys in the same tables, in the same minutes
    real_scene = JourneySceneEventFactory.create_batch(4, created_at=NOW - 2 * MINUTE)
    real_mindblock = MindblockEventFactory.create_batch(3, created_at=NOW - 2 * MINUTE)
    tagged_false = JourneySceneEventFactory(
        created_at=NOW - MINUTE, event_payload={"synthetic": False}
    )
    tagged_string = JourneySceneEventFactory(
        created_at=NOW - MINUTE, event_payload={"synthetic": "yes"}
    )
    real = [*real_scene, *real_mindblock, tagged_false, tagged_string]
    snapshot = {(type(e), e.id, e.event_type, e.created_at, str(e.event_payload)) for e in real}
    real_journeys = {
        (j.id, j.status, j.ended_at) for j in Journey.objects.filter(is_synthetic=False)
    }
    # when the generator runs for an hour and a manual run follows
    activity_backfill(hours=1, now=NOW)
    run_manual(now=NOW, target=5)
    # then the real rows are exactly as they were, and no synthetic count includes them
    for event in real:
        event.refresh_from_db()
    assert {
        (type(e), e.id, e.event_type, e.created_at, str(e.event_payload)) for e in real
    } == snapshot
    assert {
        (j.id, j.status, j.ended_at) for j in Journey.objects.filter(is_synthetic=False)
    } == real_journeys
    totals = run_totals(since=NOW - timedelta(days=1))
    counts = synthetic_event_counts(since=NOW - timedelta(days=1))
    assert counts["scene_events"] == totals["scene_events"]
    assert counts["mindblock_events"] == totals["mindblock_events"]
    assert JourneySceneEvent.objects.count() == counts["scene_events"] + 6
    assert MindblockEvent.objects.count() == counts["mindblock_events"] + 3


# --- determinism through the database ---------------------------------------------------------------


def _event_rows():
    rows = []
    for model in (JourneySceneEvent, MindblockEvent):
        for event in model.objects.order_by("created_at", "journey_id", "event_type"):
            payload = {
                k: v for k, v in event.event_payload.items() if k not in ("run_id", "run_key")
            }
            rows.append(
                (
                    model.__name__,
                    event.journey_id,
                    event.user_id,
                    event.scene_id,
                    event.event_type,
                    event.created_at,
                    tuple(sorted(payload.items())),
                )
            )
    return rows


def test_same_seed_and_clock_give_identical_rows(sim_users):
    activity_backfill(hours=1, now=NOW, seed=99)
    first = _event_rows()
    Journey.objects.all().delete()
    SyntheticRun.objects.all().delete()
    assert not _event_rows()
    activity_backfill(hours=1, now=NOW, seed=99)
    assert _event_rows() == first
    assert len(first) > 100


# --- settings ---------------------------------------------------------------------------------------


def test_settings_update_applies_a_partial_change():
    row = settings_update(sessions_per_min=5, error_rate=0.1)
    assert (row.sessions_per_min, row.error_rate, row.abandon_rate) == (5, 0.1, 0.15)
    assert SyntheticSettings.objects.get().sessions_per_min == 5


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"error_rate": 1.5}, "error_rate", "error_rate must be between 0 and 1 (got 1.5)."),
        ({"abandon_rate": -0.1}, "abandon_rate", "between 0 and 1"),
        ({"abandon_rate": 0.7, "error_rate": 0.4}, "abandon_rate", "must not exceed 1"),
        ({"sessions_per_min": -1}, "sessions_per_min", "between 0 and 100000"),
        ({"max_per_run": 100_001}, "max_per_run", "between 0 and 100000"),
        ({"error_rate": float("nan")}, "error_rate", "between 0 and 1"),
        ({"error_rate": float("inf")}, "error_rate", "between 0 and 1"),
    ],
)
def test_settings_update_refuses_out_of_range_values_and_changes_nothing(changes, field, message):
    """Ranges are the model's (full_clean); types are the serializers' (tests/test_api.py)."""
    before = SyntheticSettings.objects.values().get()
    with pytest.raises(ValidationError) as error:
        settings_update(**changes)
    assert message in " ".join(error.value.message_dict[field])
    assert SyntheticSettings.objects.values().get() == before


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"max_per_run": 2.5}, "max_per_run", "whole number"),
        ({"error_rate": float("nan")}, "error_rate", "Must be a number"),
        ({"error_rate": "0.1"}, "error_rate", "Must be a number"),
        ({"enabled": "false"}, "enabled", "true or false"),
        ({"enabled": 0}, "enabled", "true or false"),
        ({"sessions_per_min": True}, "sessions_per_min", "whole number"),
        ({"colour": "red"}, "colour", "Unknown field"),
    ],
)
def test_settings_input_refuses_wrong_types(body, field, message):
    from synthetics.api.settings import SettingsInput

    data = SettingsInput(data=body)
    assert not data.is_valid()
    assert message in " ".join(str(item) for item in data.errors[field])


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_scheduled_runs_commit_without_waiting_for_the_disk_and_manual_runs_wait(
    postgres_only, sim_users, monkeypatch
):
    # A scheduled run lost to a crash is lost whole (ledger row and rows) and its minutes are
    # covered again; a manual run's answer is read by a person, so it stays durable.
    from django.db import connection

    seen = {}
    original = runs_module.run_generate

    def recording(attempt, settings, window, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('synchronous_commit')")
            seen[window.trigger] = cursor.fetchone()[0]
        return original(attempt, settings, window, **kwargs)

    monkeypatch.setattr(runs_module, "run_generate", recording)
    run_scheduled()
    run_manual(target=1)
    assert seen == {"scheduled": "off", "manual": "on"}
    with connection.cursor() as cursor:  # and it does not outlive the run's transaction
        cursor.execute("SELECT current_setting('synchronous_commit')")
        assert cursor.fetchone()[0] == "on"
