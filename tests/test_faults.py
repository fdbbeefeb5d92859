"""Faults and contention: killed connections, errors and timeouts mid-run, a held generator lock,
parallel callers through the real HTTP stack and a worker killed with SIGKILL.

Every test here uses real connections (transactional database): a run's transaction, its rollback
and its lock are the ones production gets. The invariants checked after each fault are the README's
"Guarantees": all or nothing, each minute once, the ledger agreeing with the tables.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from unittest import mock

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection, connections
from django.db.models import F, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.exceptions import TimeoutException
from django_q.models import Schedule
from django_q.tasks import async_task
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from synthetics.errors import RunFailed
from synthetics.models import (
    Journey,
    JourneySceneEvent,
    MindblockEvent,
    RunStatus,
    RunTrigger,
    SyntheticRun,
    SyntheticSettings,
)
from synthetics.selectors.status import status_summary
from synthetics.services import (
    run_failures,
    run_manual,
    run_scheduled,
    settings_update,
    sim_users_seed,
)
from synthetics.services import runs as runs_module
from synthetics.services import writers as writers_module
from synthetics.services.locks import GENERATOR_LOCK_KEY, GeneratorBusy
from synthetics.tasks import SCHEDULE_NAME, SCHEDULED_RUN_FUNC, schedule_ensure
from tests.factories import StaffUserFactory

ROOT = Path(__file__).resolve().parent.parent
API = "/api/synthetics"
NOW = datetime(2026, 1, 9, 19, 15, 30, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
BUSY_NOTE = "generator busy: another run held the lock"
# A held lock is let go after this long even if the test fails first, so a failure stays bounded.
HOLD_LIMIT_SECONDS = 12
# Threads that have not finished by then are stuck (a deadlock or a lost wake-up).
THREADS_DONE_WITHIN_SECONDS = 60

transactional = pytest.mark.django_db(transaction=True, serialized_rollback=True)


# --- invariants -------------------------------------------------------------------------------------


def assert_ledger_matches_tables() -> None:
    """Succeeded runs' counts equal the rows in the tables, and no row belongs to any other run.

    These tests write no real rows, so every journey flagged synthetic and every event must come
    from a succeeded run: anything else was left behind by a run that failed or was killed.
    """
    ledger = SyntheticRun.objects.filter(status=RunStatus.SUCCEEDED).aggregate(
        sessions=Coalesce(Sum("sessions_started"), 0),
        scene_events=Coalesce(Sum("scene_events_created"), 0),
        mindblock_events=Coalesce(Sum("mindblock_events_created"), 0),
    )
    tables = {
        "sessions": Journey.objects.synthetic().count(),
        "scene_events": JourneySceneEvent.objects.synthetic().count(),
        "mindblock_events": MindblockEvent.objects.synthetic().count(),
    }
    assert ledger == tables, f"ledger totals {ledger} != rows in the tables {tables}"
    all_rows = {
        "sessions": Journey.objects.filter(is_synthetic=True).count(),
        "scene_events": JourneySceneEvent.objects.count(),
        "mindblock_events": MindblockEvent.objects.count(),
    }
    assert all_rows == tables, (
        f"rows not written by a succeeded run remain: all rows {all_rows}, "
        f"rows of succeeded runs {tables}"
    )


def assert_no_sim_user_in_two_active_journeys() -> None:
    active = Counter(Journey.objects.synthetic().active().values_list("sim_user_id", flat=True))
    twice = {sim_user: count for sim_user, count in active.items() if count > 1}
    assert not twice, f"sim users in more than one active journey: {twice}"


def covered_windows() -> list[tuple[datetime, datetime]]:
    """The simulated windows of scheduled and backfill runs that covered at least a minute."""
    return sorted(
        SyntheticRun.objects.filter(
            trigger__in=[RunTrigger.SCHEDULED, RunTrigger.BACKFILL],
            status__in=[RunStatus.SUCCEEDED, RunStatus.SKIPPED],
            window_end__gt=F("window_start"),
        ).values_list("window_start", "window_end")
    )


def assert_each_minute_covered_once() -> list[tuple[datetime, datetime]]:
    windows = covered_windows()
    for (start, end), (next_start, next_end) in pairwise(windows):
        assert next_start >= end, (
            f"minutes covered twice: ({start:%H:%M}, {end:%H:%M}] and "
            f"({next_start:%H:%M}, {next_end:%H:%M}]"
        )
    return windows


def table_counts() -> dict[str, int]:
    return {
        "journeys": Journey.objects.count(),
        "scene_events": JourneySceneEvent.objects.count(),
        "mindblock_events": MindblockEvent.objects.count(),
    }


def journey_states() -> set[tuple]:
    return set(Journey.objects.values_list("id", "status", "next_step", "ended_at"))


def rows_of_run(run_id: int) -> dict[str, int]:
    return {
        "journeys": Journey.objects.filter(run_id=run_id).count(),
        "scene_events": JourneySceneEvent.objects.filter(event_payload__run_id=run_id).count(),
        "mindblock_events": MindblockEvent.objects.filter(event_payload__run_id=run_id).count(),
    }


# --- helpers ----------------------------------------------------------------------------------------


def pg_connect(**options) -> psycopg.Connection:
    """A psycopg connection of our own to the test database (not Django's)."""
    db = connection.settings_dict
    return psycopg.connect(
        dbname=db["NAME"],
        user=db["USER"],
        password=db["PASSWORD"] or None,
        host=db["HOST"] or "127.0.0.1",
        port=db["PORT"] or 5432,
        **options,
    )


def backend_terminate(pid: int) -> None:
    """Kill a PostgreSQL backend from a second connection and wait until it is gone."""
    with pg_connect(autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        deadline = time.monotonic() + 10
        while admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} survived pg_terminate_backend"
            time.sleep(0.05)


@contextmanager
def generator_lock_held() -> Iterator[None]:
    """Hold the generator lock from a connection of our own, as a long run in another process would.

    PostgreSQL: the advisory lock in an open transaction. SQLite: BEGIN IMMEDIATE, the write lock.
    The lock is let go when the block ends, or after HOLD_LIMIT_SECONDS at the latest.
    """
    vendor = connection.vendor
    path = connection.settings_dict["NAME"]
    held, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def hold() -> None:
        try:
            if vendor == "postgresql":
                with pg_connect() as holder:
                    holder.execute("SELECT pg_advisory_xact_lock(%s)", [GENERATOR_LOCK_KEY])
                    held.set()
                    release.wait(HOLD_LIMIT_SECONDS)
                    holder.rollback()
            else:
                holder = sqlite3.connect(path, isolation_level=None, timeout=10)
                try:
                    holder.execute("BEGIN IMMEDIATE")
                    held.set()
                    release.wait(HOLD_LIMIT_SECONDS)
                    holder.execute("ROLLBACK")
                finally:
                    holder.close()
        except BaseException as error:  # reported by the caller
            failures.append(error)
            held.set()

    thread = threading.Thread(target=hold, name="lock-holder")
    thread.start()
    try:
        assert held.wait(10) and not failures, f"could not take the generator lock: {failures}"
        yield
    finally:
        release.set()
        thread.join(timeout=30)


def run_together(jobs: list[Callable[[], object]]) -> list[object]:
    """Start every job at the same moment in its own thread; their results (or exceptions) in order."""
    barrier = threading.Barrier(len(jobs))
    outcomes: list[object] = [None] * len(jobs)

    def work(index: int, job: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=20)
            outcomes[index] = job()
        except BaseException as error:  # inspected by the caller
            outcomes[index] = error
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=work, args=(index, job), name=f"job-{index}")
        for index, job in enumerate(jobs)
    ]
    deadline = time.monotonic() + THREADS_DONE_WITHIN_SECONDS
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = [thread.name for thread in threads if thread.is_alive()]
    assert not stuck, (
        f"{stuck} still running after {THREADS_DONE_WITHIN_SECONDS} s: a deadlock or a lost lock"
    )
    return outcomes


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer as a client saw it."""

    status: int
    body: str
    headers: dict[str, str]

    def json(self) -> dict:
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"{self.status} {self.body[:300]!r}"


def http_call(url: str, *, token: str, payload: dict | None = None) -> Answer:
    """GET (or POST `payload` as JSON) through a real socket; 4xx and 5xx are answers, not errors."""
    request = urllib.request.Request(
        url,
        data=None if payload is None else json.dumps(payload).encode(),
        method="GET" if payload is None else "POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=THREADS_DONE_WITHIN_SECONDS) as response:
            return Answer(response.status, response.read().decode(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read().decode(), dict(error.headers))


def api_call(token: str, path: str, payload: dict | None = None) -> Answer:
    """A call through Django's whole request stack (middleware, auth, throttle, view) in this thread.

    For bursts larger than the test server's listen backlog (Django's WSGIServer queues 10
    connections and resets the rest), which would test the test server instead of the API.
    """
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    if payload is None:
        response = client.get(f"{API}/{path}")
    else:
        response = client.post(f"{API}/{path}", payload, format="json")
    return Answer(response.status_code, response.content.decode(), dict(response.items()))


def assert_answers_are_clean(answers: list[object], *, allowed: set[int]) -> list[Answer]:
    """Every call got an answer with an allowed status; errors are JSON; no lock error leaks out."""
    broken = [answer for answer in answers if not isinstance(answer, Answer)]
    assert not broken, f"calls that got no HTTP answer: {broken[:5]}"
    unexpected = [str(a) for a in answers if a.status not in allowed]
    assert not unexpected, f"answers outside {sorted(allowed)}: {unexpected[:5]}"
    leaked = [str(a) for a in answers if "locked" in a.body.lower()]
    assert not leaked, f"a database lock error reached a client: {leaked[:5]}"
    for answer in answers:
        if answer.status >= 400:
            body = answer.json()
            assert body["success"] is False and body["error"], (
                f"not the API's error shape: {answer}"
            )
        if answer.status == 503:
            assert "busy" in answer.json()["error"].lower(), f"a 503 that is not 'busy': {answer}"
            assert int(answer.headers["Retry-After"]) >= 1, f"503 without Retry-After: {answer}"
    return answers


@pytest.fixture
def admin_token() -> str:
    return Token.objects.create(user=StaffUserFactory()).key


@pytest.fixture
def history(db) -> None:
    """Sim users and a manual run five minutes before NOW, so a run at NOW starts and advances journeys."""
    sim_users_seed(count=60, seed=5)
    run_manual(now=NOW - 5 * MINUTE, target=5)


# --- 1. the database connection dies mid-run ---------------------------------------------------------


@transactional
def test_a_connection_killed_mid_run_leaves_nothing_and_the_next_run_reconnects(
    postgres_only, history, monkeypatch
):
    # given a writer whose connection is terminated by the server while it copies the scene events
    before, states_before = table_counts(), journey_states()
    seen: dict = {}
    real_copy = writers_module._copy

    def copy_then_lose_the_connection(table, columns, rows):
        if table != JourneySceneEvent._meta.db_table or "killed_pid" in seen:
            return real_copy(table, columns, rows)
        seen["journeys_written"] = Journey.objects.filter(run_id=seen["run_id"]).count()
        pid = connection.connection.info.backend_pid
        rows = list(rows)
        half = len(rows) // 2

        def rows_with_a_kill_half_way():
            yield from rows[:half]
            backend_terminate(pid)
            seen["killed_pid"] = pid
            yield from rows[half:]

        return real_copy(table, columns, rows_with_a_kill_half_way())

    real_write = runs_module.run_output_write

    def write(**kwargs):
        seen["run_id"] = kwargs["run_id"]
        return real_write(**kwargs)

    monkeypatch.setattr(writers_module, "_copy", copy_then_lose_the_connection)
    monkeypatch.setattr(runs_module, "run_output_write", write)
    # when a manual run loses its connection half-way through its writes
    with pytest.raises(RunFailed) as failure:
        run_manual(now=NOW, target=5)
    # then the kill really landed mid-run, after the run had written rows
    assert "killed_pid" in seen, "the injected kill never ran"
    assert seen["journeys_written"] == 5, "the run had written its journeys before the kill"
    # and nothing of the run remains; the failure is in the ledger, recorded on a new connection
    assert table_counts() == before, "a run killed mid-way left rows behind"
    assert journey_states() == states_before, "a run killed mid-way changed journeys"
    assert rows_of_run(seen["run_id"]) == dict.fromkeys(table_counts(), 0)
    assert not SyntheticRun.objects.filter(id=seen["run_id"]).exists()
    failed = SyntheticRun.objects.get(id=failure.value.run_id)
    assert (failed.trigger, failed.status) == (RunTrigger.MANUAL, RunStatus.FAILED)
    assert "terminating connection due to administrator command" in failed.error, failed.error
    assert_ledger_matches_tables()
    # and the next run on this same thread succeeds: Django reconnected, nothing was restarted
    assert (
        connection.connection is None
        or connection.connection.info.backend_pid != seen["killed_pid"]
    )
    result = run_manual(now=NOW + MINUTE, target=5)
    assert (result.status, result.sessions_started) == (RunStatus.SUCCEEDED, 5)
    assert connection.connection.info.backend_pid != seen["killed_pid"]
    assert_ledger_matches_tables()
    assert_no_sim_user_in_two_active_journeys()


# --- 2. an error after half of a run's rows -----------------------------------------------------------


@transactional
def test_an_error_after_half_the_rows_rolls_the_whole_run_back(history, monkeypatch):
    # given a writer that writes the journeys, half the events and half the journey changes, then fails
    before, states_before = table_counts(), journey_states()
    seen: dict = {}
    real_write = runs_module.run_output_write

    def write_half_then_fail(*, run_id, new_journeys, updates, events, written_at, **options):
        seen["run_id"] = run_id
        real_write(
            run_id=run_id,
            run_key=options["run_key"],
            new_journeys=new_journeys,
            updates=updates[: len(updates) // 2],
            events=events[: len(events) // 2],
            written_at=written_at,
        )
        seen["inside"] = rows_of_run(run_id)
        seen["events"], seen["updates"] = len(events), len(updates)
        raise RuntimeError("storage failed after half the rows (injected)")

    monkeypatch.setattr(runs_module, "run_output_write", write_half_then_fail)
    # when a manual run fails half-way through its writes
    with pytest.raises(RunFailed, match="injected") as failure:
        run_manual(now=NOW, target=5)
    # then the half really was written inside the run's transaction ...
    assert seen["inside"]["journeys"] == 5 and seen["events"] >= 2, seen
    assert (
        seen["inside"]["scene_events"] + seen["inside"]["mindblock_events"] == seen["events"] // 2
    )
    assert seen["updates"] >= 1, "the run should also have changed earlier journeys"
    # ... and none of it survived
    assert table_counts() == before, "a failed run left rows behind"
    assert journey_states() == states_before, "a failed run's journey changes were kept"
    assert rows_of_run(seen["run_id"]) == dict.fromkeys(table_counts(), 0)
    failed = SyntheticRun.objects.get(id=failure.value.run_id)
    assert failed.status == RunStatus.FAILED
    assert "storage failed after half the rows (injected)" in failed.error
    assert_ledger_matches_tables()
    # and the next run succeeds
    monkeypatch.setattr(runs_module, "run_output_write", real_write)
    result = run_manual(now=NOW + MINUTE, target=5)
    assert (result.status, result.sessions_started) == (RunStatus.SUCCEEDED, 5)
    assert_ledger_matches_tables()
    assert_no_sim_user_in_two_active_journeys()


# --- 3. django-q2's task timeout interrupts a run -------------------------------------------------------


@transactional
def test_a_run_stopped_by_the_task_timeout_is_rolled_back_and_the_next_covers_one_minute(
    monkeypatch,
):
    # given scheduled runs that surely start sessions, and minutes covered up to NOW - 5 min
    sim_users_seed(count=60, seed=6)
    settings_update(sessions_per_min=60, max_per_run=5)
    first = run_scheduled(now=NOW - 5 * MINUTE)
    assert first.status == RunStatus.SUCCEEDED
    before, states_before = table_counts(), journey_states()
    seen: dict = {}
    real_write = runs_module.run_output_write
    timeout = TimeoutException("Task exceeded maximum timeout value (50 seconds)")

    def write_half_then_time_out(*, run_id, new_journeys, updates, events, written_at, **options):
        seen["run_id"] = run_id
        real_write(
            run_id=run_id,
            run_key=options["run_key"],
            new_journeys=new_journeys,
            updates=[],
            events=events[: len(events) // 2],
            written_at=written_at,
        )
        seen["inside"] = rows_of_run(run_id)
        raise timeout  # what django-q2's SIGALRM handler raises inside the task

    monkeypatch.setattr(runs_module, "run_output_write", write_half_then_time_out)
    # when the worker's timeout interrupts the scheduled run at NOW half-way through its writes
    with pytest.raises(SystemExit) as interrupted:
        run_scheduled(now=NOW)
    # then the interruption went on to the worker, and the run left nothing
    assert interrupted.value is timeout
    assert seen["inside"]["journeys"] == 5, "the run had written rows before the timeout"
    assert table_counts() == before, "an interrupted run left rows behind"
    assert journey_states() == states_before
    assert rows_of_run(seen["run_id"]) == dict.fromkeys(table_counts(), 0)
    failed = SyntheticRun.objects.latest("id")
    assert (failed.trigger, failed.status) == (RunTrigger.SCHEDULED, RunStatus.FAILED)
    assert "timeout" in failed.note.lower(), failed.note
    assert "TimeoutException" in failed.error, failed.error
    assert_ledger_matches_tables()
    assert status_summary(now=timezone.now()).status.status == "failing"
    # and the next scheduled run succeeds, covering only its own minute instead of six
    monkeypatch.setattr(runs_module, "run_output_write", real_write)
    result = run_scheduled(now=NOW + MINUTE)
    assert result.status == RunStatus.SUCCEEDED
    assert (result.window_start, result.window_end) == (
        runs_module.floor_minute(NOW - 5 * MINUTE),
        runs_module.floor_minute(NOW - 4 * MINUTE),
    ), "after a failed scheduled run the next one covers one minute: the first not covered yet"
    assert_each_minute_covered_once()
    assert_ledger_matches_tables()
    assert status_summary(now=timezone.now()).status.status == "running"


# --- 4. the generator lock is held elsewhere ------------------------------------------------------------


@transactional
def test_a_manual_run_while_the_lock_is_held_is_refused_busy_quickly(
    history, settings, admin_token
):
    # given a manual run may wait half a second for the generator lock
    settings.SYNTHETICS_MANUAL_LOCK_WAIT_SECONDS = 0.5
    counts_before = table_counts()
    settings_before = tuple(SyntheticSettings.objects.values_list().get())
    last_id = SyntheticRun.objects.latest("id").id
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_token}")
    waits = []  # the lock wait each run was given (not a clock: what it was told to wait)
    deadline_start = run_failures.run_deadline_start

    def deadline_seen(**kwargs):
        deadline = deadline_start(**kwargs)
        waits.append(deadline.lock_wait_seconds)
        return deadline

    with (
        mock.patch.object(run_failures, "run_deadline_start", deadline_seen),
        generator_lock_held(),
    ):
        # when a manual run is asked for while another connection holds the lock
        with pytest.raises(GeneratorBusy) as busy:
            run_manual(now=NOW, target=3)
        # and the same through the API
        response = api.post(f"{API}/run-now", {"target": 3}, format="json")
    # then both waited the manual run's half second for the lock, not a scheduled run's budget,
    # and said busy; the service recorded a failed run (on SQLite the ledger row needs the very
    # write lock another connection holds: it is logged instead, so that the caller still hears
    # "busy" in time; the API's request writes its throttle bucket first, and hears "busy" there)
    assert waits == ([0.5, 0.5] if connection.vendor == "postgresql" else [0.5])
    if connection.vendor == "postgresql":
        skipped = SyntheticRun.objects.get(id=busy.value.run_id)
        assert (skipped.trigger, skipped.status, skipped.note) == (
            RunTrigger.MANUAL,
            RunStatus.FAILED,
            BUSY_NOTE,
        )
        expected_runs = [(RunTrigger.MANUAL, RunStatus.FAILED, BUSY_NOTE)] * 2
    else:
        assert busy.value.run_id is None
        expected_runs = []
    # and the API answered 503 in the API's JSON shape with a Retry-After
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["success"] is False and "busy" in body["error"].lower(), body
    assert int(response["Retry-After"]) >= 1
    assert body["retry_after"] == int(response["Retry-After"])
    # and nothing else was written: the skipped ledger rows, no journey, no event, same settings
    new_runs = list(
        SyntheticRun.objects.filter(id__gt=last_id).values_list("trigger", "status", "note")
    )
    assert new_runs == expected_runs, new_runs
    assert table_counts() == counts_before
    assert tuple(SyntheticSettings.objects.values_list().get()) == settings_before


# --- 5. parallel callers on PostgreSQL ------------------------------------------------------------------


@transactional
def test_parallel_run_now_calls_and_scheduled_runs_keep_every_guarantee(
    postgres_only, live_server, admin_token
):
    # given a pool large enough for every run
    sim_users_seed(count=80, seed=8)
    url = f"{live_server.url}{API}/run-now"

    def run_now() -> Answer:
        return http_call(url, token=admin_token, payload={"target": 4})

    def scheduled() -> object:
        return run_scheduled()

    # when 8 run-now calls through the HTTP stack and 3 scheduled ticks start at the same moment
    outcomes = run_together([run_now] * 8 + [scheduled] * 3)
    answers, ticks = outcomes[:8], outcomes[8:]
    # then every call was answered 200, 503 (busy) or 429, never another 5xx
    assert_answers_are_clean(answers, allowed={200, 429, 503})
    succeeded = [a for a in answers if a.status == 200]
    assert succeeded, "no run-now call succeeded"
    for answer in succeeded:
        run = SyntheticRun.objects.get(id=answer.json()["result"]["run_id"])
        assert (run.status, run.sessions_started) == (RunStatus.SUCCEEDED, 4), answer
    # and the scheduled ticks ran without an error, one of them generating the minute
    errors = [tick for tick in ticks if isinstance(tick, BaseException)]
    assert not errors, errors
    assert RunStatus.SUCCEEDED in {tick.status for tick in ticks}
    # and the ledger agrees with the rows, no user is in two sessions, no minute is covered twice
    assert_ledger_matches_tables()
    assert_no_sim_user_in_two_active_journeys()
    assert assert_each_minute_covered_once(), "the scheduled ticks covered no minute"


# --- 6. SQLite under a web server and a scheduler ------------------------------------------------------


@transactional
def test_sqlite_serves_callers_while_the_scheduler_runs_without_lock_errors(
    live_server, admin_token
):
    if connection.vendor != "sqlite":
        pytest.skip("the single-writer lock is SQLite's")
    # given sim users, four API clients and a scheduler loop, for ten seconds
    sim_users_seed(count=80, seed=9)
    run_now, status = f"{live_server.url}{API}/run-now", f"{live_server.url}{API}/status"
    stop_at = time.monotonic() + 10

    def client(index: int) -> Callable[[], list[Answer]]:
        def calls() -> list[Answer]:
            answers = []
            while time.monotonic() < stop_at:
                if (index + len(answers)) % 2 == 0:  # half the clients start with run-now
                    answer = http_call(run_now, token=admin_token, payload={"target": 1})
                else:
                    answer = http_call(status, token=admin_token)
                answers.append(answer)
            return answers

        return calls

    def scheduler() -> list:
        results = []
        while time.monotonic() < stop_at:
            results.append(run_scheduled())
            time.sleep(0.05)
        return results

    # when they all run at once
    outcomes = run_together([client(index) for index in range(4)] + [scheduler])
    # then no client saw a 5xx other than a JSON "busy", nor "database is locked"
    failed_threads = [o for o in outcomes if isinstance(o, BaseException)]
    assert not failed_threads, failed_threads
    answers = [answer for calls in outcomes[:4] for answer in calls]
    assert len(answers) >= 20, f"only {len(answers)} calls in 10 s"
    assert_answers_are_clean(answers, allowed={200, 429, 503})
    assert any(a.status == 200 and "result" in a.body for a in answers), "no run-now succeeded"
    # and the scheduler never failed, and every guarantee holds
    ticks = outcomes[4]
    assert ticks and all(t.status in {RunStatus.SUCCEEDED, RunStatus.SKIPPED} for t in ticks), [
        (t.status, t.note)
        for t in ticks
        if t.status not in {RunStatus.SUCCEEDED, RunStatus.SKIPPED}
    ]
    assert_ledger_matches_tables()
    assert_no_sim_user_in_two_active_journeys()
    assert_each_minute_covered_once()


# --- 7. the throttle under a burst ---------------------------------------------------------------------


@transactional
def test_forty_simultaneous_run_now_calls_let_exactly_twenty_through(admin_token, settings):
    # given a burst rate of 20 calls a minute
    settings.API_BURST_RATE = "20/min"
    sim_users_seed(count=40, seed=10)
    # when one user sends 40 run-now calls at the same moment, each on a connection of its own
    answers = run_together([lambda: api_call(admin_token, "run-now", {"target": 1})] * 40)
    # then exactly 20 got past the throttle and the rest were throttled; on SQLite a call may
    # wait out the write lock before the throttle decides (a 503 "database is busy"): it took no
    # slot, so it is neither let through nor throttled
    assert_answers_are_clean(answers, allowed={200, 429, 503})
    undecided = sum(1 for a in answers if a.status == 503 and "database is busy" in a.body)
    statuses = Counter(answer.status for answer in answers)
    assert undecided <= 5, f"the throttle could not decide {undecided} of 40 calls"
    passed = sum(count for status, count in statuses.items() if status != 429) - undecided
    assert passed == 20, f"expected exactly 20 calls let through, got {dict(statuses)}"
    assert statuses[429] == 20 - undecided, f"{dict(statuses)}, {undecided} undecided"
    throttled = [a for a in answers if a.status == 429]
    assert all(int(a.headers["Retry-After"]) >= 1 for a in throttled)
    # and a throttled call generated nothing: one ledger row per call let through
    assert SyntheticRun.objects.filter(trigger=RunTrigger.MANUAL).count() == 20
    assert_ledger_matches_tables()


# --- 8. a worker killed with SIGKILL in the middle of a run -------------------------------------------


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host, port = db["HOST"] or "127.0.0.1", db["PORT"] or 5432
    return f"postgres://{db['USER']}{password}@{host}:{port}/{db['NAME']}"


def _cluster_start(tmp_path: Path, name: str, log: Path) -> subprocess.Popen:
    """`manage.py qcluster` with one worker on the test database and a queue of its own."""
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(
        DATABASE_URL=_database_url(),
        SECRET_KEY=django_settings.SECRET_KEY,  # the cluster must verify the tasks we sign
        Q_WORKERS="1",
        Q_CLUSTER_NAME=name,
        SYNTHETICS_LOCAL_DIR=str(tmp_path),
    )
    with log.open("a") as output:  # the child keeps its own copy of the file
        return subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _scheduled_run_enqueue(cluster_name: str, monkeypatch) -> None:
    """Queue the scheduled tick for the cluster, as its scheduler does every minute."""
    # django-q2 signs a task with its cluster's name as salt, read from Conf (settings read once).
    monkeypatch.setattr(Conf, "PREFIX", cluster_name)
    async_task(SCHEDULED_RUN_FUNC, broker=ORM(list_key=cluster_name))


def _cluster_stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _descendants(pid: int) -> set[int]:
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _process_with_local_port(port: int, candidates: set[int]) -> int:
    """The process among `candidates` that owns the TCP socket bound to local `port`."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{fields[9]}]")
    for pid in candidates:
        try:
            if any(os.readlink(fd) in inodes for fd in Path(f"/proc/{pid}/fd").iterdir()):
                return pid
        except OSError:
            continue
    raise AssertionError(f"no process of the cluster owns local port {port}")


def _blocked_run_backend(deadline: float, log: Path) -> tuple[int, int]:
    """Wait for the cluster's run to block on its scene-events COPY: (backend pid, client port)."""
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT pid, client_port FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE %s",
                [f"COPY {JourneySceneEvent._meta.db_table} %"],
            )
            row = cursor.fetchone()
            if row:
                return row
            time.sleep(0.2)
    raise AssertionError(f"no scheduled run reached its writes in time:\n{log.read_text()}")


def _backend_gone(pid: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone() is None:
                return
            time.sleep(0.1)
    raise AssertionError(f"the killed run's backend {pid} is still there after {seconds} s")


@pytest.mark.waits
@pytest.mark.slow
@transactional
@pytest.mark.parametrize("kill", ["worker", "cluster"])
def test_a_run_killed_with_sigkill_leaves_nothing_and_the_next_run_covers_the_gap(
    postgres_only, kill, tmp_path, monkeypatch
):
    # given sim users, a rate that surely starts sessions and minutes covered up to 4 minutes ago
    sim_users_seed(count=50, seed=12)
    settings_update(sessions_per_min=60, max_per_run=5)
    earlier = run_scheduled(now=timezone.now() - 4 * MINUTE)
    assert earlier.status == RunStatus.SUCCEEDED
    # the test queues the ticks itself (the scheduler only fires every 30 s): keep the schedule out
    schedule_ensure()
    Schedule.objects.filter(name=SCHEDULE_NAME).update(next_run=timezone.now() + timedelta(days=1))
    # and a run's COPY into the scene events will wait behind this lock, so the kill lands mid-run
    table_lock = pg_connect()
    table_lock.execute(f"LOCK TABLE {JourneySceneEvent._meta.db_table} IN SHARE MODE")
    name, log = f"synthetics-faults-{uuid.uuid4().hex[:8]}", tmp_path / "qcluster.log"
    clusters = [_cluster_start(tmp_path, name, log)]
    try:
        _scheduled_run_enqueue(name, monkeypatch)
        pid, client_port = _blocked_run_backend(time.monotonic() + 60, log)
        # when the worker (or the whole cluster) is killed with SIGKILL while the run is writing
        if kill == "worker":
            worker = _process_with_local_port(client_port, _descendants(clusters[0].pid))
            os.kill(worker, signal.SIGKILL)
        else:
            os.killpg(clusters[0].pid, signal.SIGKILL)
            clusters[0].wait(timeout=10)
        table_lock.rollback()
        # then the server rolls the orphaned transaction back and lets its locks go
        _backend_gone(pid, seconds=20)
        assert SyntheticRun.objects.filter(trigger=RunTrigger.SCHEDULED).count() == 1
        assert_ledger_matches_tables()
        # when the cluster carries on (the worker reincarnated, or the cluster restarted)
        if kill == "cluster":
            clusters.append(_cluster_start(tmp_path, name, log))
        _scheduled_run_enqueue(name, monkeypatch)
        deadline = time.monotonic() + 60
        later = None
        while later is None and time.monotonic() < deadline:
            assert clusters[-1].poll() is None, log.read_text()
            later = SyntheticRun.objects.filter(
                trigger=RunTrigger.SCHEDULED, id__gt=earlier.id
            ).first()
            time.sleep(0.3)
        assert later is not None, f"no scheduled run after the kill:\n{log.read_text()}"
        # then the next run covers every minute since the last covered one, none twice
        assert later.status == RunStatus.SUCCEEDED, (later.status, later.note, later.error)
        assert later.window_start == earlier.window_end, (
            "the minutes since the last run are covered"
        )
        assert later.window_end == runs_module.floor_minute(later.started_at)
        assert later.window_end - later.window_start <= runs_module.MAX_CATCH_UP_MINUTES * MINUTE
        assert covered_windows() == [
            (earlier.window_start, earlier.window_end),
            (later.window_start, later.window_end),
        ]
        assert_ledger_matches_tables()
        assert_no_sim_user_in_two_active_journeys()
    finally:
        table_lock.close()
        for cluster in clusters:
            _cluster_stop(cluster)


# --- 9. every connection killed: the web process and the cluster carry on -----------------------------


def _scheduled_run_after(run_id: int, cluster: subprocess.Popen, log: Path) -> SyntheticRun:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert cluster.poll() is None, log.read_text()
        later = SyntheticRun.objects.filter(trigger=RunTrigger.SCHEDULED, id__gt=run_id).first()
        if later is not None:
            return later
        time.sleep(0.3)
    raise AssertionError(f"no scheduled run came:\n{log.read_text()}")


@pytest.mark.waits
@pytest.mark.slow
@transactional
def test_the_web_process_and_the_cluster_recover_from_killed_connections_without_a_restart(
    postgres_only, live_server, admin_token, tmp_path, monkeypatch
):
    # given a running cluster that has run the generator, and a web server that has answered
    sim_users_seed(count=30, seed=14)
    schedule_ensure()
    Schedule.objects.filter(name=SCHEDULE_NAME).update(next_run=timezone.now() + timedelta(days=1))
    first = run_scheduled(now=timezone.now() - 3 * MINUTE)
    name, log = f"synthetics-recover-{uuid.uuid4().hex[:8]}", tmp_path / "qcluster.log"
    cluster = _cluster_start(tmp_path, name, log)
    status_url = f"{live_server.url}{API}/status"

    def status() -> int:
        request = urllib.request.Request(
            status_url, headers={"Authorization": f"Bearer {admin_token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    try:
        _scheduled_run_enqueue(name, monkeypatch)
        before = _scheduled_run_after(first.id, cluster, log)
        assert before.status == RunStatus.SUCCEEDED, (before.note, before.error)
        assert status() == 200
        # when the database server drops every other connection to this database
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 1, "the web server and the cluster had connections"
        # then the web server answers again, and the same cluster runs the generator again
        assert status() == 200
        _scheduled_run_enqueue(name, monkeypatch)
        after = _scheduled_run_after(before.id, cluster, log)
        assert after.status in {RunStatus.SUCCEEDED, RunStatus.SKIPPED}, (after.note, after.error)
        assert cluster.poll() is None, "the cluster had to be restarted"
        assert_ledger_matches_tables()
    finally:
        _cluster_stop(cluster)
