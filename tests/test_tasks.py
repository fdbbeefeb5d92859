"""The django-q2 side: the schedule exists once, the scheduled-run task runs in sync mode and survives failures."""

import logging
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q import scheduler as q_scheduler
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import Schedule
from django_q.tasks import async_task

from synthetics.models import RunStatus, RunTrigger, SyntheticRun
from synthetics.services import runs as runs_module
from synthetics.tasks import (
    INTENDED_KWARG,
    SCHEDULE_NAME,
    SCHEDULED_RUN_FUNC,
    schedule_ensure,
    scheduled_run,
)

pytestmark = pytest.mark.django_db


def test_migrations_create_exactly_one_every_minute_schedule():
    schedule = Schedule.objects.get(func=SCHEDULED_RUN_FUNC)
    assert schedule.name == SCHEDULE_NAME
    assert schedule.schedule_type == Schedule.MINUTES
    assert schedule.minutes == 1
    assert schedule.repeats == -1
    assert schedule.intended_date_kwarg == INTENDED_KWARG  # migration 0026


def test_ensuring_the_schedule_again_leaves_exactly_one():
    # given a stray copy under another name, and an edited original
    Schedule.objects.create(
        name="old-copy", func=SCHEDULED_RUN_FUNC, schedule_type=Schedule.MINUTES
    )
    Schedule.objects.filter(name=SCHEDULE_NAME).update(minutes=5)
    # when ensured twice
    schedule_ensure()
    _, created = schedule_ensure()
    # then one schedule, every minute, by name
    assert not created
    assert Schedule.objects.filter(func=SCHEDULED_RUN_FUNC).count() == 1
    assert Schedule.objects.get(name=SCHEDULE_NAME).minutes == 1


class RecordingBroker:
    """Stands in for the queue: keeps what the scheduler enqueues."""

    list_key = "synthetics-test"

    def __init__(self):
        self.tasks = []

    def enqueue(self, task):
        self.tasks.append(task)
        return len(self.tasks)


def test_after_downtime_the_scheduler_queues_one_run_not_a_replay_of_each_missed_minute(
    monkeypatch,
):
    # the cluster closes stale connections before it looks; here that would close the test's
    monkeypatch.setattr(q_scheduler, "close_old_django_connections", lambda: None)
    # given the every-minute schedule, last due three hours ago (the cluster was down)
    Schedule.objects.filter(name=SCHEDULE_NAME).update(next_run=timezone.now() - timedelta(hours=3))
    broker = RecordingBroker()
    # when the scheduler looks, twice
    q_scheduler.scheduler(broker=broker)
    q_scheduler.scheduler(broker=broker)
    # then it queued one run (which catches up by itself, bounded), and the next is due from now on
    assert len(broker.tasks) == 1
    next_run = Schedule.objects.get(name=SCHEDULE_NAME).next_run
    assert timezone.now() < next_run <= timezone.now() + timedelta(minutes=1)


def test_a_run_a_worker_still_holds_is_never_handed_to_a_second_worker(monkeypatch):
    # given a queued run on the database broker, and a clock the test moves
    clock = [timezone.now()]
    monkeypatch.setattr(timezone, "now", lambda: clock[0])
    broker = ORM(list_key="synthetics-test")
    broker.enqueue("a scheduled run")
    # when a worker takes it ...
    clock[0] += timedelta(seconds=1)
    assert len(broker.dequeue()) == 1
    # ... then nobody else gets it for as long as the task timeout lets that worker run
    clock[0] += timedelta(seconds=Conf.TIMEOUT)
    assert not broker.dequeue()
    # (an unacknowledged task does come back once the retry delay has passed)
    clock[0] += timedelta(seconds=Conf.RETRY)
    assert len(broker.dequeue()) == 1


def test_tick_task_runs_in_sync_mode_and_lands_in_the_ledger(
    sim_users, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        async_task("synthetics.tasks.scheduled_run", sync=True)
    run = SyntheticRun.objects.get()
    assert run.trigger == RunTrigger.SCHEDULED
    assert run.status == RunStatus.SUCCEEDED
    assert run.window_end - run.window_start == runs_module.timedelta(minutes=1)


def test_each_run_writes_one_structured_line(sim_users, caplog, django_capture_on_commit_callbacks):
    caplog.set_level(logging.INFO, logger="synthetics")
    with django_capture_on_commit_callbacks(execute=True):
        result = scheduled_run()
    lines = [r.getMessage() for r in caplog.records if r.name == "synthetics"]
    assert len(lines) == 1
    line = lines[0]
    assert line.startswith(
        f"synthetics run id={result['run_id']} trigger=scheduled status=succeeded"
    )
    assert f"sessions_started={result['sessions_started']} " in line
    assert f"scene_events={result['scene_events_created']} " in line


def test_a_failed_tick_is_recorded_and_the_next_minute_proceeds(sim_users, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("database went away (injected)")

    real = runs_module.run_output_write
    monkeypatch.setattr(runs_module, "run_output_write", broken)
    failed = scheduled_run()  # the task itself never raises: django-q2 must not retry it
    assert failed["status"] == "failed"
    run = SyntheticRun.objects.get(id=failed["run_id"])
    assert run.status == RunStatus.FAILED and "Traceback" in run.error
    assert any("status=failed" in r.getMessage() and r.exc_info for r in caplog.records)
    monkeypatch.setattr(runs_module, "run_output_write", real)
    assert scheduled_run()["status"] == "succeeded"  # the failed minute is covered now


def test_a_second_tick_in_the_same_minute_is_recorded_as_skipped(sim_users, monkeypatch):
    from django.utils import timezone

    moment = timezone.now().replace(second=30)
    monkeypatch.setattr(timezone, "now", lambda: moment)  # both ticks inside one minute
    first = scheduled_run()
    second = scheduled_run()
    assert first["status"] == "succeeded"
    assert second["status"] == "skipped"
    assert second["note"] == "no new minute to cover"


OLD_NAME, OLD_FUNC = "synthetics-tick", "synthetics.tasks.scheduled_tick"  # before 0007


def test_migration_0026_folds_the_old_names_and_drops_tasks_queued_under_the_old_path():
    from importlib import import_module

    from django.apps import apps
    from django_q.models import OrmQ
    from django_q.signing import SignedPackage

    migration = import_module("synthetics.migrations.0026_old_task_names_gone")
    # given a schedule still under the old names beside the one schedule, and queued tasks: two
    # under the old path, one under today's, one of somebody else's, one not readable
    Schedule.objects.create(name=OLD_NAME, func=OLD_FUNC, schedule_type=Schedule.MINUTES)
    Schedule.objects.filter(name=SCHEDULE_NAME).update(intended_date_kwarg=None)

    def queued(func):
        payload = SignedPackage.dumps({"id": func, "func": func, "args": (), "kwargs": {}})
        return OrmQ.objects.create(key="synthetics-test", payload=payload).pk

    old = [queued(OLD_FUNC), queued(OLD_FUNC)]
    kept = [queued(SCHEDULED_RUN_FUNC), queued("someone.elses.task")]
    kept.append(OrmQ.objects.create(key="synthetics-test", payload="not a signed package").pk)
    # when the migration runs
    migration.forward(apps, None)
    # then the old schedule is gone, the one schedule passes its intended time, and only the tasks
    # under the old path were dropped
    assert list(Schedule.objects.values_list("name", "func", "intended_date_kwarg")) == [
        (SCHEDULE_NAME, SCHEDULED_RUN_FUNC, INTENDED_KWARG)
    ]
    assert not OrmQ.objects.filter(pk__in=old).exists()
    assert sorted(OrmQ.objects.values_list("pk", flat=True)) == sorted(kept)
    from synthetics import tasks

    assert not hasattr(tasks, "scheduled_tick")  # the alias is gone with them


def test_migration_0026_makes_an_old_schedule_alone_the_one_schedule_and_goes_back():
    from importlib import import_module

    from django.apps import apps

    migration = import_module("synthetics.migrations.0026_old_task_names_gone")
    # given an install whose only schedule still has the names from before migration 0007
    Schedule.objects.all().delete()
    Schedule.objects.create(
        name=OLD_NAME, func=OLD_FUNC, schedule_type=Schedule.MINUTES, minutes=1, repeats=-1
    )
    # when the migration runs, then that schedule is the one schedule, passing its intended time
    migration.forward(apps, None)
    assert list(Schedule.objects.values_list("name", "func", "intended_date_kwarg")) == [
        (SCHEDULE_NAME, SCHEDULED_RUN_FUNC, INTENDED_KWARG)
    ]
    # and migrating back leaves a schedule the code before it can call: scheduled_run() took no
    # argument, so the schedule passes none
    migration.backward(apps, None)
    assert Schedule.objects.get(name=SCHEDULE_NAME).intended_date_kwarg is None


def test_migration_0026_drops_old_tasks_from_a_redis_queue_and_keeps_the_rest():
    import socket
    import uuid
    from importlib import import_module

    import redis
    from django_q.brokers.redis_broker import Redis
    from django_q.signing import SignedPackage

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    migration = import_module("synthetics.migrations.0026_old_task_names_gone")
    broker = Redis(list_key=f"synthetics-test-{uuid.uuid4().hex[:8]}")
    broker.connection = redis.from_url("redis://127.0.0.1:6379/15")  # the tests' own Redis db
    try:
        for func in (OLD_FUNC, SCHEDULED_RUN_FUNC, OLD_FUNC, "someone.elses.task"):
            broker.enqueue(SignedPackage.dumps({"id": func, "func": func}))
        broker.enqueue("not a signed package")
        # when the migration looks into the queue
        assert migration.drop_from_redis(broker) == 2
        # then the tasks under the old path are gone and the rest are there, in order
        left = broker.connection.lrange(broker.list_key, 0, -1)
        kept = [SignedPackage.loads(item.decode())["func"] for item in left[:2]]
        assert kept == [SCHEDULED_RUN_FUNC, "someone.elses.task"]
        assert left[2] == b"not a signed package"
    finally:
        broker.delete_queue()


def test_the_scheduler_hands_the_task_the_minute_it_was_due(monkeypatch):
    from django_q.signing import SignedPackage

    monkeypatch.setattr(q_scheduler, "close_old_django_connections", lambda: None)
    # given the schedule, due 40 seconds ago (a busy cluster)
    due = timezone.now() - timedelta(seconds=40)
    Schedule.objects.filter(name=SCHEDULE_NAME).update(next_run=due)
    broker = RecordingBroker()
    # when the scheduler looks
    q_scheduler.scheduler(broker=broker)
    # then the task it queued carries the time it was due
    (task,) = [SignedPackage.loads(package) for package in broker.tasks]
    assert task["func"] == SCHEDULED_RUN_FUNC
    assert task["kwargs"] == {INTENDED_KWARG: due.isoformat()}


@pytest.mark.parametrize(
    ("late", "covers_to"),
    [
        # taken late by a worker: the minute the schedule meant, not the worker's
        (timedelta(seconds=95), "intended"),
        (timedelta(minutes=9), "intended"),
        # older than a run catches up (the cluster was down): up to now, as after any downtime
        (timedelta(minutes=30), "now"),
        # ahead of this worker's clock (its clock behind the scheduler's): never a row ahead
        (-timedelta(minutes=5), "now"),
    ],
)
def test_a_scheduled_task_covers_up_to_the_minute_it_was_meant_for(
    sim_users, monkeypatch, late, covers_to
):
    now = timezone.now().replace(second=30, microsecond=0)
    monkeypatch.setattr(timezone, "now", lambda: now)
    intended = now - late
    result = scheduled_run(intended=intended.isoformat())
    run = SyntheticRun.objects.get(id=result["run_id"])
    moment = intended if covers_to == "intended" else now
    assert run.window_end == moment.replace(second=0)


def test_the_same_intended_instant_gives_the_same_run_however_it_is_written(sim_users, monkeypatch):
    from synthetics import tasks

    now = timezone.now().replace(second=30, microsecond=0)
    monkeypatch.setattr(timezone, "now", lambda: now)
    intended = now - timedelta(minutes=3)
    written = [
        intended.isoformat(),  # UTC, as django-q2 writes it
        intended.astimezone(timezone.get_fixed_timezone(330)).isoformat(),  # +05:30
        intended.astimezone(timezone.get_fixed_timezone(-210)),  # a datetime, -03:30
    ]
    moments = [tasks._moment(text) for text in written]
    assert moments == [intended] * 3
    assert {moment.utcoffset() for moment in moments} == {timedelta(0)}  # the stream's text
