"""The identity rule holds in time: a real row that names a run id not issued yet never becomes ours.

A row is ours only when the run it names exists and succeeded, the row is dated inside that run's
span (from its earliest event to its window's end) and it carries the run's random key. A row
written before its run existed cannot know that key, so no later run — scheduled, manual, or a
backfill whose span reaches back to the row's time — makes it ours: cleanup, the counts, status and
the admin's marks all leave it alone (issue: such a row was deleted by cleanup once the ledger
reached its id).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from synthetics.models import (
    JourneySceneEvent,
    MindblockEvent,
    MindblockType,
    RunStatus,
    Scene,
    SyntheticRun,
    SyntheticSettings,
)
from synthetics.selectors.ledger import synthetic_event_counts, written_event_counts
from synthetics.services import activity_backfill, run_manual, run_scheduled, sim_users_seed
from synthetics.services.cleanup import cleanup_counts, cleanup_synthetic
from tests.factories import JourneySceneEventFactory, MindblockEventFactory, UserFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 9, 19, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
PROPERTY = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)

# Planted rows: a run id relative to the ledger's newest when planted (-2 .. +8: past, current and
# not issued yet), a time from two hours before to half an hour after `NOW` (inside the spans of
# later scheduled and manual runs and of a backfill's minutes, or not), and a key: none, a guess,
# or the key of the newest run (a different run).
plants = st.lists(
    st.fixed_dictionaries(
        {
            "offset": st.integers(-2, 8),
            "seconds": st.integers(-2 * 3600, 30 * 60),
            "key": st.sampled_from(["absent", "guess", "newest", "number"]),
            "table": st.sampled_from(["scene", "mindblock"]),
        }
    ),
    min_size=1,
    max_size=8,
)
# What comes after the planting: scheduled runs (minutes after NOW), manual runs and a backfill of
# the hour before the first scheduled run (its minutes lie where most planted rows are dated).
later = st.lists(
    st.one_of(
        st.tuples(st.just("scheduled"), st.integers(1, 30)),
        st.tuples(st.just("manual"), st.integers(0, 30)),
        st.tuples(st.just("backfill"), st.integers(0, 30)),
    ),
    min_size=1,
    max_size=6,
)


def _plant(rows: list[dict], world: dict) -> tuple[list[tuple[type, int]], dict[str, int]]:
    """Write the planted rows; return (model, pk) of each that is real when planted, and how many
    of each table are not (copies of the newest run's own rows)."""
    newest = SyntheticRun.objects.order_by("-id").first()
    base = newest.id if newest else 0
    planted, copies = [], {"scene_events": 0, "mindblock_events": 0}
    for row in rows:
        run_id = base + row["offset"]
        if run_id < 1:
            continue
        payload = {"synthetic": True, "run_id": run_id, "source": "app"}
        if row["key"] == "guess":
            payload["run_key"] = f"k{secrets.token_hex(8)}"
        elif row["key"] == "newest" and newest is not None:
            payload["run_key"] = newest.run_key
        elif row["key"] == "number":
            payload["run_key"] = 5
        fields = {
            "user": world["user"],
            "scene": world["scene"],
            "created_at": NOW + timedelta(seconds=row["seconds"]),
            "event_payload": payload,
        }
        if row["table"] == "scene":
            event = JourneySceneEventFactory(**fields)
        else:
            event = MindblockEventFactory(**fields, mindblock=world["mindblock"])
        model = type(event)
        # A row naming the newest run, dated in its span and carrying its key, is that run's in
        # every respect the table can tell: not a real row, so not part of the property.
        if model.objects.real().filter(pk=event.pk).exists():
            planted.append((model, event.pk))
        else:
            copies["scene_events" if model is JourneySceneEvent else "mindblock_events"] += 1
    return planted, copies


def _later(steps: list[tuple[str, int]]) -> None:
    for kind, minutes in steps:
        if kind == "scheduled":
            run_scheduled(now=NOW + minutes * MINUTE + timedelta(seconds=5))
        elif kind == "manual":
            run_manual(now=NOW + minutes * MINUTE + timedelta(seconds=20), target=3)
        else:
            activity_backfill(hours=1, now=NOW + minutes * MINUTE)


@pytest.fixture
def world(db) -> dict:
    sim_users_seed(count=40, seed=7)
    SyntheticSettings.objects.filter(pk=1).update(sessions_per_min=6, max_per_run=20)
    return {
        "user": UserFactory(),
        "scene": Scene.objects.order_by("id").first(),
        "mindblock": MindblockType.objects.order_by("id").first(),
    }


def _reset() -> None:
    from synthetics.models import Journey

    JourneySceneEvent.objects.all().delete()
    MindblockEvent.objects.all().delete()
    Journey.objects.all().delete()
    SyntheticRun.objects.all().delete()


@pytest.mark.slow
@PROPERTY
@given(rows=plants, steps=later)
@example(  # the case: the next ids, dated two hours ago, then three manual runs
    rows=[{"offset": 2, "seconds": -7200, "key": "absent", "table": "scene"}],
    steps=[("manual", 1), ("manual", 2), ("manual", 3)],
)
@example(  # dated inside the next scheduled run's window, naming the id it will get
    rows=[
        {"offset": 1, "seconds": 90, "key": key, "table": "scene"}
        for key in ("absent", "guess", "newest", "number")
    ],
    steps=[("scheduled", 2)],
)
@example(  # dated an hour back, where a backfill's minutes will write with the ids it names
    rows=[
        {"offset": offset, "seconds": -1800, "key": "absent", "table": "mindblock"}
        for offset in range(1, 8)
    ],
    steps=[("backfill", 0)],
)
def test_no_later_run_makes_a_real_row_ours(world, rows, steps):
    # given a little history (the last 5 minutes before NOW) and rows of the app that name past,
    # current and future run ids at any time
    _reset()
    for minute in range(-4, 1):
        run_scheduled(now=NOW + minute * MINUTE + timedelta(seconds=5))
    planted, copies = _plant(rows, world)
    # when later runs of every kind issue those ids (and write where the rows are dated)
    _later(steps)
    # then every planted row is still real, by the SQL rule and by the admin's Python rule
    for model, pk in planted:
        assert model.objects.real().filter(pk=pk).exists(), pk
        assert not model.objects.synthetic().filter(pk=pk).exists(), pk
        event = model.objects.get(pk=pk)
        named = SyntheticRun.objects.filter(pk=event.event_payload["run_id"]).first()
        assert named is None or not named.wrote(
            payload=event.event_payload, created_at=event.created_at
        )
    # and the counts equal what the runs wrote (the planted rows are not counted; the ledger's
    # counts leave out the copies too, the full count sees them as ours)
    written = SyntheticRun.objects.filter(status=RunStatus.SUCCEEDED)
    totals = {
        "scene_events": sum(run.scene_events_created for run in written),
        "mindblock_events": sum(run.mindblock_events_created for run in written),
    }
    since = datetime(2000, 1, 1, tzinfo=UTC)
    assert synthetic_event_counts(since=since) == {key: totals[key] + copies[key] for key in totals}
    assert written_event_counts(since=since, until=NOW + timedelta(days=1)) == totals
    # and a cleanup of everything older than an hour from a day later counts and deletes ours only
    later_now = NOW + timedelta(days=1)
    counts = cleanup_counts(cutoff=later_now - timedelta(hours=1))
    assert counts["journey_scene_events"] + counts["mindblock_events"] == sum(
        totals.values()
    ) + sum(copies.values())
    cleanup_synthetic(older_than_hours=1, dry_run=False, now=later_now)
    for model, pk in planted:
        assert model.objects.filter(pk=pk).exists(), f"cleanup deleted planted row {pk}"
    assert not JourneySceneEvent.objects.synthetic().exists()
    assert not MindblockEvent.objects.synthetic().exists()
