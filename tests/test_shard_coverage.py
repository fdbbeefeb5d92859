"""Sharded coverage is per slice (issue 21, defect 6): a minute is covered for slice k of N by a run of
the whole pool or by a run of slice k of N, so a backfill generates the slices that a split's runs
left of a minute, in time order, before the minutes after it. No minute of any slice is skipped or
covered twice, whatever order shard runs, manual runs, backfills and failures come in.

Coverage is counted here from the ledger itself, not through the selectors under test."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from synthetics.errors import RunFailed
from synthetics.models import Journey, RunStatus, RunTrigger, SimUser, SyntheticRun
from synthetics.selectors import run_inputs
from synthetics.services import (
    activity_backfill,
    history,
    run_failures,
    run_manual,
    run_scheduled,
    runs,
    settings_update,
    sim_users_seed,
)
from tests.test_faults import (
    assert_ledger_matches_tables,
    assert_no_sim_user_in_two_active_journeys,
)

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
SEEDED = 90
transactional = pytest.mark.django_db(transaction=True, serialized_rollback=True)


# --- what the ledger says -------------------------------------------------------------------------


def slice_coverage(*, shards: int, start: datetime, end: datetime) -> Counter:
    """How many runs covered each (minute end, slice) of (start, end] for a split into `shards`: a
    scheduled or backfill run that succeeded or skipped covers its window, for every slice when it
    ran the whole pool, else for its own slice."""
    counts: Counter = Counter()
    for window_start, window_end, shard, split in SyntheticRun.objects.filter(
        trigger__in=[RunTrigger.SCHEDULED, RunTrigger.BACKFILL],
        status__in=[RunStatus.SUCCEEDED, RunStatus.SKIPPED],
        window_end__gt=start,
        window_start__lt=end,
    ).values_list("window_start", "window_end", "shard", "shards"):
        assert split in (1, shards), f"a run split into {split} shards in a test of {shards}"
        minute_end = max(window_start, start) + MINUTE
        while minute_end <= min(window_end, end):
            for covered in range(shards) if split == 1 else [shard]:
                counts[minute_end, covered] += 1
            minute_end += MINUTE
    return counts


def assert_each_slice_covered_once(*, shards: int, start: datetime, end: datetime) -> None:
    counts = slice_coverage(shards=shards, start=start, end=end)
    minutes = int((end - start) / MINUTE)
    wrong = {
        f"{minute_end:%H:%M} slice {covered}": counts[minute_end, covered]
        for minute_end in (start + index * MINUTE for index in range(1, minutes + 1))
        for covered in range(shards)
        if counts[minute_end, covered] != 1
    }
    assert not wrong, f"(minute ending, slice): times covered, where not once: {wrong}"


def assert_rows_match_their_runs(*, shards: int) -> None:
    """Every journey is of a sim user in the slice of the run that started it, but a newcomer's first
    session, which starts with the sign-up in shard 0's run (engine.onboarding: it signs up the
    newcomers of every slice); the ledger's sign-ups and churn are the sim users' rows."""
    for sim_user_id, shard, split, started, joined in Journey.objects.values_list(
        "sim_user_id", "run__shard", "run__shards", "started_at", "sim_user__joined_at"
    ):
        first = started == joined and shard == 0
        assert split in (1, shards) and (sim_user_id % split == shard or first), (
            sim_user_id,
            shard,
            split,
        )
    succeeded = SyntheticRun.objects.filter(status=RunStatus.SUCCEEDED)
    signed_up = sum(succeeded.values_list("users_signed_up", flat=True))
    churned = sum(succeeded.values_list("users_churned", flat=True))
    assert SimUser.objects.count() == SEEDED + signed_up
    assert SimUser.objects.filter(churned_at__isnull=False).count() == churned


def assert_invariants(*, shards: int, start: datetime, end: datetime) -> None:
    assert_each_slice_covered_once(shards=shards, start=start, end=end)
    assert_no_sim_user_in_two_active_journeys()
    assert_ledger_matches_tables()
    assert_rows_match_their_runs(shards=shards)


# --- faults -----------------------------------------------------------------------------------------


class Killed(BaseException):
    """A kill -9 mid-run as the run sees it: nothing after it runs, not even the failure record."""


def _not_recorded(**_) -> None:
    raise RuntimeError("the process was killed: nothing records the run")


@contextmanager
def fault(kind: str | None, *, at_write: int = 0) -> Iterator[None]:
    """The `at_write`-th write of a run's rows (0: the first) in the block writes them, then fails:
    "error" raises an exception (the run is rolled back and recorded failed), "kill" is a kill -9
    (rolled back, nothing recorded)."""
    if kind is None:
        yield
        return
    writes = {"count": 0}

    def failing(real):
        def write(*args, **kwargs):
            result = real(*args, **kwargs)
            writes["count"] += 1
            if writes["count"] == at_write + 1:
                if kind == "kill":
                    raise Killed
                raise RuntimeError("storage failed after the run's rows were written (injected)")
            return result

        return write

    with ExitStack() as patches:
        for module, name in ((runs, "run_output_write"), (history, "runs_output_write")):
            patches.enter_context(mock.patch.object(module, name, failing(getattr(module, name))))
        if kind == "kill":
            patches.enter_context(
                mock.patch.object(run_failures, "_failure_recorded", _not_recorded)
            )
        yield


# --- the defect as reported ---------------------------------------------------------------------------

SHARDS = 2
AT = datetime(2026, 1, 9, 22, 0, tzinfo=UTC)


def at(hhmm: str, second: int = 0) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return AT.replace(hour=hour, minute=minute, second=second)


def _pool() -> None:
    sim_users_seed(count=SEEDED, seed=61, today=AT.date())
    settings_update(sessions_per_min=8, max_per_run=60)


@transactional  # on PostgreSQL the backfill pipelines its spans until the one with the hole
def test_a_backfill_generates_the_slice_a_shard_left_of_a_minute(monkeypatch):
    # given spans of 15 minutes, two shards that covered 22:42-22:43, and shard 1 alone 22:43-22:44
    monkeypatch.setattr(history, "SPAN_ROWS", 15 * 8 * history.ROWS_PER_SESSION)
    commit, pipelined = history._span_commit, []

    def counted(*args):
        pipelined.append(commit(*args))
        return pipelined[-1]

    monkeypatch.setattr(history, "_span_commit", counted)
    _pool()
    for shard in range(SHARDS):
        run_scheduled(now=at("22:43", 20), shard=shard, shards=SHARDS)
    run_scheduled(now=at("22:44", 20), shard=1, shards=SHARDS)
    # when a backfill of the last hour runs at 22:45, and then shard 0's next tasks
    activity_backfill(hours=1, now=at("22:45", 30))
    last = [run_scheduled(now=at(f"22:{m}", 20), shard=0, shards=SHARDS) for m in (45, 46)]
    run_scheduled(now=at("22:46", 20), shard=1, shards=SHARDS)
    # then shard 0's slice of 22:43-22:44 was generated, by the backfill, as a run of that slice
    filled = SyntheticRun.objects.get(
        trigger=RunTrigger.BACKFILL, window_end=at("22:44"), status=RunStatus.SUCCEEDED
    )
    assert (filled.window_start, filled.shard, filled.shards) == (at("22:43"), 0, SHARDS)
    # and shard 0 goes on from the backfill: nothing to do at 22:45, 22:45-22:46 at 22:46
    assert last[0].status == RunStatus.SKIPPED and last[0].note == "no new minute to cover"
    assert (last[1].window_start, last[1].window_end) == (at("22:45"), at("22:46"))
    # and every minute of every slice is covered once, with the ledger's invariants
    assert_invariants(shards=SHARDS, start=at("22:46") - HOUR, end=at("22:46"))
    if connection.vendor == "postgresql":  # the spans before the hole's were pipelined: three
        # of 15 minutes, the first cut in two (_pipelined_span_minutes: 1 and 14 minutes)
        assert len([result for result in pipelined if result is not None]) == 4


@pytest.mark.django_db
def test_a_shard_run_killed_then_a_backfill_leave_no_minute_of_its_slice_behind():
    # given two shards that covered 22:42-22:43, then at 22:44 shard 0's run killed with kill -9
    # while shard 1's succeeded
    _pool()
    for shard in range(SHARDS):
        run_scheduled(now=at("22:43", 20), shard=shard, shards=SHARDS)
    with fault("kill"), pytest.raises(Killed):
        run_scheduled(now=at("22:44", 20), shard=0, shards=SHARDS)
    run_scheduled(now=at("22:44", 20), shard=1, shards=SHARDS)
    assert not SyntheticRun.objects.filter(window_end=at("22:44"), shard=0).exists()
    # when a backfill runs at 22:45, then both shards' tasks of 22:45 and 22:46
    activity_backfill(hours=1, now=at("22:45", 30))
    for minute in (45, 46):
        for shard in range(SHARDS):
            run_scheduled(now=at(f"22:{minute}", 20), shard=shard, shards=SHARDS)
    # then no minute of slice 0 is left behind, and none is covered twice
    assert_invariants(shards=SHARDS, start=at("22:46") - HOUR, end=at("22:46"))


# --- any order, with failures -------------------------------------------------------------------------

BASE = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
# No fault, or which write of a run's rows (0: the first; a backfill writes several) fails and how.
FAULTS = st.sampled_from(
    [None, None, None, ("error", 0), ("kill", 0), ("error", 1), ("kill", 1), ("kill", 2)]
)
TASK = st.tuples(st.integers(min_value=0, max_value=2), FAULTS)  # a shard (mod N), its fault
STEPS = st.lists(
    st.one_of(
        # the clock moves on a minute and these shards' tasks run, in this order (the others' are
        # late or lost)
        st.tuples(st.just("minute"), st.lists(TASK, max_size=3)),
        # a shard's task for the minute this many minutes ago
        st.tuples(st.just("late"), TASK, st.integers(min_value=1, max_value=3)),
        st.tuples(st.just("manual"), st.integers(min_value=1, max_value=4), FAULTS),
        st.tuples(st.just("backfill"), FAULTS),
    ),
    min_size=3,
    max_size=20,
)
# The defect as reported: both shards cover a minute, shard 1 alone the next, then a backfill.
REPORTED = [
    ("minute", [(0, None), (1, None)]),
    ("minute", [(1, None)]),
    ("minute", []),
    ("backfill", None),
]


class _Undo(Exception):
    pass


def _sequences_level() -> None:
    """PostgreSQL's sequences do not roll back: put them back at the tables' highest ids, so every
    example numbers its newcomers, and so slices them, alike (SQLite's roll back)."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in ("users", "sim_users"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
            )


def _step(step: tuple, *, minute: int, shards: int) -> int:
    """Do one step at the clock's `minute`; return the clock after it."""
    kind, *args = step
    if kind == "minute":
        minute += 1
        for shard, faulty in args[0]:
            _with_fault(
                faulty, run_scheduled, now=_at(minute, 20), shard=shard % shards, shards=shards
            )
    elif kind == "late":
        (shard, faulty), late = args
        _with_fault(
            faulty, run_scheduled, now=_at(minute - late, 20), shard=shard % shards, shards=shards
        )
    elif kind == "manual":
        target, faulty = args
        _with_fault(faulty, run_manual, now=_at(minute, 30), target=target)
    else:
        _with_fault(args[0], activity_backfill, hours=1, now=_at(minute, 40))
    return minute


def _at(minute: int, second: int) -> datetime:
    return BASE + minute * MINUTE + timedelta(seconds=second)


def _with_fault(faulty: tuple[str, int] | None, service, **arguments) -> None:
    """Call the service with the fault, if any: a run it fails raises, and the steps go on."""
    kind, at_write = faulty or (None, 0)
    with fault(kind, at_write=at_write):
        try:
            service(**arguments)
        except (RunFailed, Killed):
            assert kind is not None, "a run failed with no fault injected"


@pytest.fixture
def lifecycle(db, monkeypatch):
    """The pool; the hours before BASE covered with nothing (a run skipped while paused), so the
    backfills generate only the minutes the steps reach; and a month made an hour long: churn
    within minutes when an example turns it on."""
    _pool()
    SyntheticRun.objects.create(
        trigger=RunTrigger.SCHEDULED,
        status=RunStatus.SKIPPED,
        started_at=BASE,
        window_start=BASE - 2 * HOUR,
        window_end=BASE,
        note="paused",
    )
    monkeypatch.setattr("synthetics.engine.lifecycle.MINUTES_PER_MONTH", 60)


@pytest.mark.slow
@pytest.mark.parametrize("shards", [2, 3])
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS, pool_changes=st.booleans())
@example(steps=REPORTED, pool_changes=False)
def test_every_minute_of_every_slice_is_covered_once_in_any_order(
    lifecycle, shards, steps, pool_changes
):
    _sequences_level()
    run_inputs._POOL_KEPT.clear()
    try:
        with transaction.atomic():
            # given sign-ups and churn, or neither
            if pool_changes:
                settings_update(signups_per_day=2 * 1440, churn_per_month=0.5)
            # when the steps run, with their faults
            minute = 0
            for step in steps:
                minute = _step(step, minute=minute, shards=shards)
            # and then every shard catches up, and a final backfill
            minute += 1
            end = BASE + minute * MINUTE
            for shard in range(shards):
                run_scheduled(now=end + timedelta(seconds=20), shard=shard, shards=shards)
            activity_backfill(hours=1, now=end + timedelta(seconds=40))
            # then every minute of every slice of the last hour is covered exactly once
            assert_invariants(shards=shards, start=end - HOUR, end=end)
            raise _Undo
    except _Undo:
        pass
    finally:
        run_inputs._POOL_KEPT.clear()
