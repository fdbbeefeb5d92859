"""The django-q2 side: the schedule exists once, the tick task runs in sync mode and survives failures."""

import logging

import pytest
from django_q.models import Schedule
from django_q.tasks import async_task

from synthetics.models import RunStatus, RunTrigger, SyntheticRun
from synthetics.services import runs as runs_module
from synthetics.services.schedule import schedule_ensure
from synthetics.tasks import SCHEDULE_NAME, TICK_FUNC, scheduled_tick

pytestmark = pytest.mark.django_db


def test_migrations_create_exactly_one_every_minute_schedule():
    schedule = Schedule.objects.get(func=TICK_FUNC)
    assert schedule.name == SCHEDULE_NAME
    assert schedule.schedule_type == Schedule.MINUTES
    assert schedule.minutes == 1
    assert schedule.repeats == -1


def test_ensuring_the_schedule_again_leaves_exactly_one():
    # given a stray copy under another name, and an edited original
    Schedule.objects.create(name="old-copy", func=TICK_FUNC, schedule_type=Schedule.MINUTES)
    Schedule.objects.filter(name=SCHEDULE_NAME).update(minutes=5)
    # when ensured twice
    schedule_ensure()
    _, created = schedule_ensure()
    # then one schedule, every minute, by name
    assert not created
    assert Schedule.objects.filter(func=TICK_FUNC).count() == 1
    assert Schedule.objects.get(name=SCHEDULE_NAME).minutes == 1


def test_catch_up_replay_is_off():
    from django_q.conf import Conf

    assert Conf.CATCH_UP is False
    assert Conf.TIMEOUT < Conf.RETRY


def test_tick_task_runs_in_sync_mode_and_lands_in_the_ledger(
    sim_users, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        async_task("synthetics.tasks.scheduled_tick", sync=True)
    run = SyntheticRun.objects.get()
    assert run.trigger == RunTrigger.SCHEDULED
    assert run.status == RunStatus.SUCCEEDED
    assert run.window_end - run.window_start == runs_module.timedelta(minutes=1)


def test_each_run_writes_one_structured_line(sim_users, caplog, django_capture_on_commit_callbacks):
    caplog.set_level(logging.INFO, logger="synthetics")
    with django_capture_on_commit_callbacks(execute=True):
        result = scheduled_tick()
    lines = [r.getMessage() for r in caplog.records if r.name == "synthetics"]
    assert len(lines) == 1
    line = lines[0]
    assert line.startswith(
        f"synthetics run id={result['run_id']} trigger=scheduled status=succeeded"
    )
    assert f"sessions={result['sessions_created']} " in line
    assert f"scene_events={result['scene_events_created']} " in line


def test_a_failed_tick_is_recorded_and_the_next_minute_proceeds(sim_users, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("database went away (injected)")

    real = runs_module.run_output_write
    monkeypatch.setattr(runs_module, "run_output_write", broken)
    failed = scheduled_tick()  # the task itself never raises: django-q2 must not retry it
    assert failed["status"] == "failed"
    run = SyntheticRun.objects.get(id=failed["run_id"])
    assert run.status == RunStatus.FAILED and "Traceback" in run.error
    assert any("status=failed" in r.getMessage() and r.exc_info for r in caplog.records)
    monkeypatch.setattr(runs_module, "run_output_write", real)
    assert scheduled_tick()["status"] == "succeeded"  # the failed minute is covered now


def test_a_second_tick_in_the_same_minute_is_recorded_as_skipped(sim_users, monkeypatch):
    from django.utils import timezone

    moment = timezone.now().replace(second=30)
    monkeypatch.setattr(timezone, "now", lambda: moment)  # both ticks inside one minute
    first = scheduled_tick()
    second = scheduled_tick()
    assert first["status"] == "succeeded"
    assert second["status"] == "skipped"
    assert second["note"] == "no new minute to cover"
