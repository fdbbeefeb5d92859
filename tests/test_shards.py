"""Scheduled runs split into shards: disjoint slices of the pool, each with its own random stream,
lock and coverage; every minute of every slice covered once; the same windows give the same rows
whichever order the shards' runs take; one shard is exactly the run of the whole pool."""

from __future__ import annotations

import hashlib
import json
import math
import threading
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections, transaction

from synthetics import tasks
from synthetics.engine.run import capped_poisson_mean, scheduled_session_count
from synthetics.engine.sampling import run_random
from synthetics.engine.types import GeneratorSettings
from synthetics.errors import ApplicationError, GeneratorBusy
from synthetics.models import (
    Journey,
    JourneySceneEvent,
    MindblockEvent,
    RunStatus,
    RunTrigger,
    SimUser,
    SyntheticRun,
    User,
)
from synthetics.selectors import run_inputs
from synthetics.services import (
    run_manual,
    run_scheduled,
    run_scheduled_shards,
    settings_update,
    sim_users_seed,
)
from synthetics.services.locks import (
    GENERATOR_LOCK_KEY,
    SHARD_LOCK_CLASS,
)
from synthetics.services.seeding import next_sim_index
from synthetics_site.settings import _shards
from tests.helpers import K

START = datetime(2026, 1, 9, 19, 0, tzinfo=UTC)
MINUTES = 10


def _minute(index: int) -> datetime:
    return START + timedelta(minutes=index, seconds=20)


def _generated() -> dict:
    """Everything the runs wrote, as content: no autoincrement id, no wall-clock time."""
    username = dict(SimUser.objects.values_list("id", "user__username"))
    return {
        "journeys": sorted(
            (
                str(j["id"]),
                username[j["sim_user_id"]],
                j["status"],
                j["started_at"],
                j["ended_at"],
                j["next_step"],
                j["run__window_end"],
                j["run__shard"],
            )
            for j in Journey.objects.values(
                "id",
                "sim_user_id",
                "status",
                "started_at",
                "ended_at",
                "next_step",
                "run__window_end",
                "run__shard",
            )
        ),
        "scene_events": sorted(
            (str(journey_id), event_type, created_at, str(sorted(payload.items())))
            for journey_id, event_type, created_at, payload in JourneySceneEvent.objects.values_list(
                "journey_id", "event_type", "created_at", "event_payload"
            )
            for payload in [{k: v for k, v in payload.items() if k not in ("run_id", "run_key")}]
        ),
        "mindblock_events": sorted(
            (str(journey_id), event_type, created_at)
            for journey_id, event_type, created_at in MindblockEvent.objects.values_list(
                "journey_id", "event_type", "created_at"
            )
        ),
        "sim_users": sorted(
            SimUser.objects.values_list(
                "user__username", "persona", "churned_at", "joined_at", "settles_into"
            )
        ),
        "runs": sorted(
            SyntheticRun.objects.values_list(
                "trigger",
                "status",
                "window_start",
                "window_end",
                "shard",
                "shards",
                "sessions_started",
                "scene_events_created",
                "users_signed_up",
                "users_churned",
                "note",
            )
        ),
    }


class _Undo(Exception):
    pass


def _sequences_level() -> None:
    """PostgreSQL's sequences do not roll back: put them back at the tables' highest ids, so a
    scenario run again numbers its new sim users as the first time (SQLite's roll back)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in ("users", "sim_users"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )


def _scenario(orders: list[list[int]], *, shards: int) -> dict:
    """Run the shards for minute i in the order orders[i], read what was written, roll it back."""
    _sequences_level()
    run_inputs._POOL_KEPT.clear()
    try:
        with transaction.atomic():
            for index, order in enumerate(orders):
                for shard in order:
                    run_scheduled(now=_minute(index), shard=shard, shards=shards)
            state = _generated()
            raise _Undo
    except _Undo:
        pass
    run_inputs._POOL_KEPT.clear()
    return state


@pytest.fixture
def pool(db):
    sim_users_seed(count=240, seed=11, today=START.date())
    settings_update(sessions_per_min=30, max_per_run=200)


# The digest of 15 unsplit scheduled runs across a midnight, with churn and sign-ups, computed by
# the code before shards existed (commit 29192bc), on SQLite and PostgreSQL alike: one shard is the
# run of the whole pool, row for row. Do not update it for a change to sharding. (Updated once on
# purpose, with the golden digests, for the behaviour model of issue 24: bouts, lapsed periods,
# the rate factor, segments, spells, dwell, intensities, seeded tenure, sign-ups' places and churn
# among faded users change the rows a seed gives; so, the same day, do the personas' own abandon
# odds, normalised by the personas' shares of the remembered sessions, a sign-up's first session
# included. Again on purpose for issue 26: each departure is drawn by rejection — the same law, other
# draws of the run's stream; and a seeded profile draws from its own stream of (seed, index), so
# the same seed seeds other users.)
UNSPLIT_DIGEST = "80aece691699ff25455bea7b01e673634d0923cd01873f5f64aa4ab78a6e1be4"
MIDNIGHT = datetime(2026, 1, 9, 23, 50, tzinfo=UTC)


def unsplit_digest(monkeypatch) -> str:
    sim_users_seed(count=200, seed=11, today=MIDNIGHT.date())
    settings_update(sessions_per_min=30, max_per_run=200, churn_per_month=0.5, signups_per_day=5000)
    monkeypatch.setattr("synthetics.engine.lifecycle.MINUTES_PER_MONTH", 60)
    for minute in [*range(12), 14, 20, 21]:  # across midnight, with catch-up windows
        run_scheduled(now=MIDNIGHT + timedelta(minutes=minute, seconds=7))
    name = dict(SimUser.objects.values_list("id", "user__username"))
    rows = {
        "journeys": sorted(
            (str(a), name[b], c, str(d), str(e), f)
            for a, b, c, d, e, f in Journey.objects.values_list(
                "id", "sim_user_id", "status", "started_at", "ended_at", "next_step"
            )
        ),
        "scene_events": sorted(
            (
                str(a),
                b,
                str(c),
                json.dumps(
                    {k: v for k, v in p.items() if k not in ("run_id", "run_key")}, sort_keys=True
                ),
            )
            for a, b, c, p in JourneySceneEvent.objects.values_list(
                "journey_id", "event_type", "created_at", "event_payload"
            )
        ),
        "mindblock_events": sorted(
            (str(a), b, str(c))
            for a, b, c in MindblockEvent.objects.values_list(
                "journey_id", "event_type", "created_at"
            )
        ),
        "sim_users": sorted(
            map(
                str,
                SimUser.objects.values_list(
                    "user__username",
                    "persona",
                    "churned_at",
                    "settles_into",
                    "activity_weight",
                    "timezone",
                ),
            )
        ),
        "runs": sorted(
            map(
                str,
                SyntheticRun.objects.values_list(
                    "status",
                    "window_start",
                    "window_end",
                    "sessions_started",
                    "scene_events_created",
                    "users_signed_up",
                    "users_churned",
                    "note",
                ),
            )
        ),
    }
    assert all(rows.values())
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


def test_one_shard_is_the_run_of_the_whole_pool_as_before_shards(db, monkeypatch):
    assert (got := unsplit_digest(monkeypatch)) == UNSPLIT_DIGEST, got
    assert set(SyntheticRun.objects.values_list("shard", "shards")) == {(0, 1)}
    assert (
        run_random(
            seed=1, trigger="scheduled", window_start=START, window_end=START, shard=0, shards=1
        ).random()
        == run_random(seed=1, trigger="scheduled", window_start=START, window_end=START).random()
    )


def test_each_shard_writes_only_for_its_slice_and_covers_each_minute_once(pool):
    # when three shards run ten minutes each (the order inside a minute varying)
    orders = [[0, 1, 2], [2, 0, 1], [1, 2, 0], [0, 2, 1], [0, 1, 2]] * 2
    for index, order in enumerate(orders):
        for shard in order:
            run_scheduled(now=_minute(index), shard=shard, shards=3)
    # then every journey belongs to a sim user of the slice of the run that started it
    journeys = list(Journey.objects.values_list("sim_user_id", "run__shard", "run__shards"))
    assert {shard for _, shard, _ in journeys} == {0, 1, 2}
    assert all(sim_user_id % 3 == shard for sim_user_id, shard, _ in journeys)
    assert {shards for _, _, shards in journeys} == {3}
    # and each shard's covering windows tile the minutes exactly once, without a gap or overlap
    for shard in range(3):
        windows = list(
            SyntheticRun.objects.covering()
            .filter(shard=shard, shards=3)
            .order_by("window_end")
            .values_list("window_start", "window_end")
        )
        windows = [(s, e) for s, e in windows if e > s]
        assert windows[0][1] == START and len(windows) == MINUTES
        for (_, end), (start, _) in zip(windows, windows[1:], strict=False):
            assert start == end
    # and no sim user is in two sessions at once
    active = list(Journey.objects.filter(status="active").values_list("sim_user_id", flat=True))
    assert len(active) == len(set(active))


def test_the_same_windows_give_the_same_rows_in_any_order_of_the_shards(pool, monkeypatch):
    # given churn (a month made an hour long, so users leave within minutes) and no sign-ups:
    # the slices depend on nothing but themselves
    settings_update(churn_per_month=0.5)
    monkeypatch.setattr("synthetics.engine.lifecycle.MINUTES_PER_MONTH", 60)
    in_order = _scenario([[0, 1, 2]] * 6, shards=3)
    # when each minute's shards run in another order, or a shard runs all its minutes first
    shuffled = _scenario(
        [[2, 0, 1], [1, 2, 0], [0, 2, 1], [2, 1, 0], [1, 0, 2], [0, 1, 2]], shards=3
    )
    assert shuffled == in_order
    _sequences_level()
    run_inputs._POOL_KEPT.clear()
    try:
        with transaction.atomic():
            for shard in (2, 1, 0):
                for index in range(6):
                    run_scheduled(now=_minute(index), shard=shard, shards=3)
            one_shard_after_another = _generated()
            raise _Undo
    except _Undo:
        pass
    # then the rows are the same
    assert one_shard_after_another == in_order
    assert sum(r[9] for r in in_order["runs"]) > 0, "users churned in the scenario"


def test_with_sign_ups_shard_0_leads_and_the_rows_do_not_depend_on_the_order(pool):
    # given sign-ups (about one a minute, made by shard 0 for every slice)
    settings_update(signups_per_day=1440 * 2)
    in_order = _scenario([[0, 1, 2]] * 6, shards=3)
    # when shard 0's run comes last, in the middle or first in a minute
    shuffled = _scenario(
        [[0, 2, 1], [2, 1, 0], [1, 0, 2], [2, 0, 1], [1, 2, 0], [0, 1, 2]], shards=3
    )
    # then the rows are the same, newcomers start sessions in later windows, whatever the order
    assert shuffled == in_order
    signed_up = sum(r[8] for r in in_order["runs"])
    assert signed_up > 0
    assert {r[4] for r in in_order["runs"] if r[8]} == {0}, "only shard 0 signs users up"
    # and a shard whose window starts after what shard 0 covered waits for it instead of running
    # without the sign-ups it would have seen
    _sequences_level()
    run_scheduled(now=_minute(0), shard=0, shards=3)
    run_scheduled(now=_minute(0), shard=2, shards=3)
    run_scheduled(now=_minute(1), shard=2, shards=3)  # shard 0 has covered its window's start
    waiting = run_scheduled(now=_minute(2), shard=2, shards=3)
    assert waiting.status == RunStatus.SKIPPED
    assert waiting.note.startswith("waiting for shard 0")
    assert waiting.window_end == START + timedelta(minutes=1)  # covers nothing new
    run_scheduled(now=_minute(2), shard=0, shards=3)
    caught_up = run_scheduled(now=_minute(2), shard=2, shards=3)
    assert (caught_up.window_start, caught_up.window_end) == (
        START + timedelta(minutes=1),
        START + timedelta(minutes=2),
    )


def test_a_newcomer_of_a_window_is_not_in_any_shards_pool_for_that_window(pool):
    # given shard 0 ran a window that signed up newcomers
    settings_update(signups_per_day=10_000)
    run_scheduled(now=_minute(0), shard=0, shards=2)
    run = run_scheduled(now=_minute(1), shard=0, shards=2)
    assert run.users_signed_up > 0
    # each joined at its moment of the window (engine.lifecycle), the start of its first session
    signed_up = SimUser.objects.filter(
        joined_at__gt=run.window_start, joined_at__lte=run.window_end
    )
    newcomers = set(signed_up.values_list("id", flat=True))
    assert newcomers
    joins = dict(signed_up.values_list("id", "joined_at"))
    # when another shard loads its pool for the same window, then none of them is in it
    for shard in (0, 1):
        run_inputs._POOL_KEPT.clear()
        same = run_inputs.RunInputs.load(shard=shard, shards=2, window_start=run.window_start)
        assert not newcomers & {m.sim_user_id for m in same.pool}
        # and the slice kept serves the windows starting before the first of them joined, no later
        kept = run_inputs._POOL_KEPT[(connection.alias, connection.settings_dict["NAME"], shard, 2)]
        # the first of its own slice's (the pool is read without the others')
        assert kept.next_join == min(t for pk, t in joins.items() if pk % 2 == shard)
        assert kept.serves(stamp=kept.stamp, rhythms=kept.rhythms, window_start=run.window_start)
        assert not kept.serves(stamp=kept.stamp, rhythms=kept.rhythms, window_start=run.window_end)
        assert not kept.serves(
            stamp=kept.stamp + 1, rhythms=kept.rhythms, window_start=run.window_start
        )
        # and they are in it for the next window, for their own slice
        following = run_inputs.RunInputs.load(shard=shard, shards=2, window_start=run.window_end)
        mine = {i for i in newcomers if i % 2 == shard}
        assert {m.sim_user_id for m in following.pool} & newcomers == mine


def test_a_sharded_runs_sessions_add_up_to_the_whole_rate():
    # Each shard's count is min(Poisson(rate / shards), ceil(cap / shards)); with a cap far above
    # the mean the sum of S independent counts is Poisson(rate) to within e^-100. Over n windows the
    # mean of the sum has standard error sqrt(rate / n): K of them bound it (helpers.K, 1e-6).
    settings = GeneratorSettings(sessions_per_min=40, max_per_run=100_000)
    n, shards = 2000, 4
    totals = []
    for window in range(n):
        moment = START + timedelta(minutes=window)
        totals.append(
            sum(
                scheduled_session_count(
                    settings=settings,
                    minutes=1,
                    rng=run_random(
                        seed=5,
                        trigger="scheduled",
                        window_start=moment,
                        window_end=moment + timedelta(minutes=1),
                        shard=shard,
                        shards=shards,
                    ),
                    shards=shards,
                )
                for shard in range(shards)
            )
        )
    mean = sum(totals) / n
    assert abs(mean - 40) <= K * (40 / n) ** 0.5
    # and the per-shard cap is the run's cap divided, rounded up
    capped = GeneratorSettings(sessions_per_min=10_000, max_per_run=10)
    rng = run_random(seed=1, trigger="scheduled", window_start=START, window_end=START)
    assert scheduled_session_count(settings=capped, minutes=1, rng=rng, shards=3) == 4


def test_a_shard_out_of_range_is_refused(pool):
    for shard, shards in [(3, 3), (-1, 2), (0, 0), (0, 65), (True, 2)]:
        with pytest.raises(ApplicationError):
            run_scheduled(now=_minute(0), shard=shard, shards=shards)
    with pytest.raises(ValueError):
        run_random(
            seed=1, trigger="scheduled", window_start=START, window_end=START, shard=2, shards=2
        )
    assert SyntheticRun.objects.count() == 0


@pytest.mark.parametrize("raw", ["0", "65", "two", "-1", "1.5"])
def test_a_bad_shard_count_stops_the_process_with_a_message(raw):
    with pytest.raises(ImproperlyConfigured, match="SYNTHETICS_SHARDS must be a whole number"):
        _shards(raw)
    assert _shards("8") == 8


def test_the_schedule_fans_the_shards_out_as_tasks(pool, settings):
    # given three shards
    settings.SYNTHETICS_SHARDS = 3
    with (
        mock.patch("synthetics.tasks.timezone.now", return_value=_minute(0)),
        mock.patch("synthetics.tasks.async_task", side_effect=["task-1", "task-2"]) as queued,
    ):
        # when the schedule's task runs
        result = tasks.scheduled_run()
    # then it queues shards 1 and 2 for the same now and runs shard 0 itself
    assert [call.args for call in queued.call_args_list] == [
        (tasks.SHARD_RUN_FUNC, 1, 3, _minute(0).isoformat()),
        (tasks.SHARD_RUN_FUNC, 2, 3, _minute(0).isoformat()),
    ]
    assert result["shards"] == 3 and result["queued"] == ["task-1", "task-2"]
    assert result["shard"] == 0 and result["status"] == RunStatus.SUCCEEDED
    # and a worker running a queued task runs that shard's minute, once however often it is run
    first = tasks.shard_run(*queued.call_args_list[1].args[1:])
    again = tasks.shard_run(*queued.call_args_list[1].args[1:])
    assert first["shard"] == 2 and first["status"] == RunStatus.SUCCEEDED
    assert again["status"] == RunStatus.SKIPPED
    assert SyntheticRun.objects.filter(shard=1).count() == 0


def test_run_synthetics_runs_every_shard(pool, settings, capsys):
    from django.core.management import call_command

    settings.SYNTHETICS_SHARDS = 2
    call_command("run_synthetics", f"--now={_minute(0).isoformat()}")
    out = capsys.readouterr().out
    assert "(shard 0 of 2) succeeded" in out and "(shard 1 of 2) succeeded" in out
    assert [r.shard for r in run_scheduled_shards(now=_minute(0))] == [0, 1]


def test_coverage_of_a_shard_continues_from_any_other_split(pool):
    # given unsplit runs up to minute 3
    for index in range(3):
        run_scheduled(now=_minute(index))
    # when the runs are split into two shards
    first = [run_scheduled(now=_minute(3), shard=shard, shards=2) for shard in (0, 1)]
    # then each shard continues from the unsplit coverage: no minute twice, none lost
    assert all(
        (r.window_start, r.window_end)
        == (START + timedelta(minutes=2), START + timedelta(minutes=3))
        for r in first
    )
    # and back to one run: it continues from the newest coverage of any shard
    back = run_scheduled(now=_minute(4))
    assert back.window_start == START + timedelta(minutes=3)
    # a backfill covers the whole pool, so a minute covered by a shard counts as covered
    assert run_inputs.minute_is_covered(
        minute_start=START + timedelta(minutes=2), minute_end=START + timedelta(minutes=3)
    )


@pytest.mark.django_db
def test_the_next_account_number_after_sim999999_is_sim1000000():
    User.objects.create(username="sim999999", is_active=False, is_synthetic=True)
    assert next_sim_index() == 1_000_000
    User.objects.create(username="sim1000000", is_active=False, is_synthetic=True)
    assert next_sim_index() == 1_000_001


@pytest.mark.django_db
def test_the_next_account_number_is_read_through_its_index_not_every_account(postgres_only):
    # migration 0031: the query's own predicate, so the planner can read one entry of the index
    # where it read every sim account (over a million accounts: seconds a run that signs anyone up)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for name in ("sim000001", "sim000002", "someone", "sim1000000", "simon"):
        User.objects.create(username=name, is_active=False, is_synthetic=name.startswith("sim0"))
    with CaptureQueriesContext(connection) as queries:
        assert next_sim_index() == 1_000_001
    (query,) = (q["sql"] for q in queries.captured_queries)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: make the choice visible
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute(f"EXPLAIN {query}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "users_sim_number_idx" in plan, plan
    assert "Sort" not in plan, plan  # the index's order is the query's


# --- PostgreSQL: real connections, real locks ----------------------------------------------------


def _in_thread(function, *args, **kwargs):
    box = {}

    def work():
        try:
            box["result"] = function(*args, **kwargs)
        except BaseException as error:  # surfaced by the caller
            box["error"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    return thread, box


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_shards_run_at_the_same_time_and_one_shard_never_twice(postgres_only, settings):
    sim_users_seed(count=120, seed=12, today=START.date())
    settings_update(sessions_per_min=20, max_per_run=100)
    settings.SYNTHETICS_RUN_BUDGET_SECONDS = 4  # lock wait: half of it
    # given a transaction holding shard 1's lock and the generator lock shared, as its run does
    holder = connections.create_connection("default")
    holder.set_autocommit(False)
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s::integer, 1)", [SHARD_LOCK_CLASS])
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [GENERATOR_LOCK_KEY])
    try:
        # when shard 0 runs meanwhile, then it runs (had it needed a lock the holder keeps, it
        # would have been busy after its lock wait instead)
        thread, box = _in_thread(run_scheduled, now=_minute(0), shard=0, shards=2)
        thread.join(timeout=30)
        assert box.get("result") and box["result"].status == RunStatus.SUCCEEDED
        # and shard 1 waits its lock wait, then is busy (recorded as failed, nothing written)
        thread, box = _in_thread(run_scheduled, now=_minute(0), shard=1, shards=2)
        thread.join(timeout=30)
        assert isinstance(box.get("error"), GeneratorBusy)
        # and a manual run, which holds the generator lock alone, waits for the shard's run too
        settings.SYNTHETICS_MANUAL_LOCK_WAIT_SECONDS = 0.5
        thread, box = _in_thread(run_manual, target=3, now=_minute(0))
        thread.join(timeout=30)
        assert isinstance(box.get("error"), GeneratorBusy)
    finally:
        holder.rollback()
        holder.close()
    failed = SyntheticRun.objects.get(status=RunStatus.FAILED, trigger=RunTrigger.SCHEDULED)
    assert (failed.shard, failed.shards) == (1, 2)
    # when both shards then run at once from two threads, many times: each minute once per shard
    for index in range(1, 4):
        pair = [
            _in_thread(run_scheduled, now=_minute(index), shard=shard, shards=2)
            for shard in (0, 1, 0, 1)
        ]
        for thread, _ in pair:
            thread.join(timeout=60)
        assert not [box["error"] for _, box in pair if "error" in box]
    for shard in (0, 1):
        windows = [
            (s, e)
            for s, e in SyntheticRun.objects.covering()
            .filter(shard=shard, shards=2)
            .order_by("window_end")
            .values_list("window_start", "window_end")
            if e > s
        ]
        assert windows[-1][1] == START + timedelta(minutes=3)
        for (_, end), (start, _) in zip(windows, windows[1:], strict=False):
            assert start == end
    journeys = Journey.objects.values_list("sim_user_id", "run__shard")
    assert all(sim_user_id % 2 == shard for sim_user_id, shard in journeys)


def test_where_the_cap_binds_each_shard_is_capped_on_its_own_as_expected_sessions_says():
    # At 2 a minute with max_per_run 5 in 8 shards, each shard draws min(Poisson(0.25), 1): the
    # minute's mean is 8 x (1 - e^-0.25) = 1.77, not an unsplit run's 1.98. expected_sessions
    # computes it; the mean of n windows has standard error sd / sqrt(n), the sum of 8 Bernoulli
    # counts having variance 8 p (1 - p): K of them bound it (helpers.K, 1e-6).
    from synthetics.engine.run import expected_sessions

    settings = GeneratorSettings(sessions_per_min=2, max_per_run=5)
    shards, n = 8, 3000
    expected = expected_sessions(settings=settings, rhythm=None, start=START, minutes=1, shards=8)
    p = 1 - math.exp(-0.25)
    assert expected.capped == pytest.approx(8 * p)
    assert expected_sessions(
        settings=settings, rhythm=None, start=START, minutes=1
    ).capped == pytest.approx(capped_poisson_mean(2, 5))
    totals = [
        sum(
            scheduled_session_count(
                settings=settings,
                minutes=1,
                rng=run_random(
                    seed=9,
                    trigger="scheduled",
                    window_start=START + timedelta(minutes=w),
                    window_end=START + timedelta(minutes=w + 1),
                    shard=shard,
                    shards=shards,
                ),
                shards=shards,
            )
            for shard in range(shards)
        )
        for w in range(n)
    ]
    assert abs(sum(totals) / n - expected.capped) <= K * (8 * p * (1 - p) / n) ** 0.5
    assert max(totals) <= 8  # ceil(5 / 8) = 1 each: over max_per_run by up to shards - 1


def test_a_manual_run_starts_at_most_a_thousand_sessions(pool):
    settings_update(max_per_run=50_000)
    with pytest.raises(
        ApplicationError, match=r"from 1 to 1,000 \(a manual run answers within one request"
    ):
        run_manual(target=1001, now=_minute(0))
    assert SyntheticRun.objects.count() == 0


def test_status_is_failing_while_any_shard_fails(pool):
    from synthetics.models import SyntheticSettings
    from synthetics.selectors.status import generator_status

    now = _minute(2)
    row = SyntheticSettings.objects.get()
    for shard in (0, 1, 2):
        run_scheduled(now=_minute(1), shard=shard, shards=3)
    # given shard 1's newest run failed, and the newer runs of shards 0 and 2 succeeded
    SyntheticRun.objects.filter(shard=1).update(finished_at=now - timedelta(seconds=50))
    SyntheticRun.objects.create(
        trigger="scheduled",
        status=RunStatus.FAILED,
        started_at=now - timedelta(seconds=40),
        finished_at=now - timedelta(seconds=40),
        window_start=_minute(2),
        window_end=_minute(2),
        note="the database went away",
        shard=1,
        shards=3,
    )
    SyntheticRun.objects.filter(shard__in=[0, 2]).update(finished_at=now - timedelta(seconds=10))
    # then status says failing, and which shard
    status = generator_status(row=row, now=now, covered=None)
    assert status.status == "failing"
    assert "of shard 1 of 3" in status.reason and "the database went away" in status.reason
    # and once shard 1 runs again and succeeds, running
    SyntheticRun.objects.create(
        trigger="scheduled",
        status=RunStatus.SUCCEEDED,
        started_at=now - timedelta(seconds=5),
        finished_at=now - timedelta(seconds=5),
        window_start=_minute(1),
        window_end=_minute(2),
        shard=1,
        shards=3,
    )
    assert generator_status(row=row, now=now, covered=None).status == "running"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_run_split_another_way_in_progress_is_never_overlapped(postgres_only, settings):
    from synthetics.services.locks import SPLIT_LOCK_CLASS

    sim_users_seed(count=120, seed=13, today=START.date())
    settings_update(sessions_per_min=20, max_per_run=100)
    # given a run of a split into 3 shards in progress (its split's mark held, as its run holds it)
    holder = connections.create_connection("default")
    holder.set_autocommit(False)
    with holder.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s::integer, 3)", [SPLIT_LOCK_CLASS])
    try:
        # when a run of a split into 2 shards comes (a task queued before the count changed)
        thread, box = _in_thread(run_scheduled, now=_minute(0), shard=1, shards=2)
        thread.join(timeout=30)
        # then it covers nothing and says why; a run of the same split as the holder goes on
        skipped = box["result"]
        assert skipped.status == RunStatus.SKIPPED
        assert skipped.note.startswith("a run split into 3 shards is in progress")
        assert skipped.window_end == skipped.window_start
        thread, box = _in_thread(run_scheduled, now=_minute(0), shard=2, shards=3)
        thread.join(timeout=30)
        assert box["result"].status == RunStatus.SUCCEEDED, box["result"].note
    finally:
        holder.rollback()
        holder.close()
    # and once it is over, the other split runs, from where any split covered (never twice)
    after = run_scheduled(now=_minute(1), shard=1, shards=2)
    assert after.status == RunStatus.SUCCEEDED
    assert (after.window_start, after.window_end) == (START, START + timedelta(minutes=1))


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_shards_changing_the_pool_at_once_neither_deadlock_nor_overlap(postgres_only, monkeypatch):
    # given churn within minutes and sign-ups, so every shard's run writes sim_users (the pool
    # stamp's row) and the hourly sums
    sim_users_seed(count=300, seed=14, today=START.date())
    settings_update(sessions_per_min=40, max_per_run=200, churn_per_month=1, signups_per_day=5000)
    monkeypatch.setattr("synthetics.engine.lifecycle.MINUTES_PER_MONTH", 60)
    # when four shards run each of six minutes from four threads at once
    for index in range(6):
        started = [
            _in_thread(run_scheduled, now=_minute(index), shard=shard, shards=4)
            for shard in range(4)
        ]
        for thread, _ in started:
            thread.join(timeout=60)
        assert not [box["error"] for _, box in started if "error" in box]
    # then every run finished, pool changes landed, and no sim user is in two sessions at once
    assert SyntheticRun.objects.filter(status=RunStatus.FAILED).count() == 0
    assert SimUser.objects.filter(churned_at__isnull=False).exists()
    assert SimUser.objects.filter(joined_at__isnull=False).exists()
    active = list(Journey.objects.filter(status="active").values_list("sim_user_id", flat=True))
    assert len(active) == len(set(active))
    # each journey in its run's slice, but a newcomer's first session: shard 0 signs up the
    # newcomers of every slice and starts their first session (engine.onboarding)
    assert all(
        sim_user_id % 4 == shard or (shard == 0 and started == joined)
        for sim_user_id, shard, started, joined in Journey.objects.values_list(
            "sim_user_id", "run__shard", "started_at", "sim_user__joined_at"
        )
    )
