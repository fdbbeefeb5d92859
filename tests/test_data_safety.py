"""Property tests: cleanup, the statistics, seeding and backfill touch our synthetic rows and nothing else.

A row is ours when its payload carries the JSON boolean `"synthetic": true` and a JSON integer `run_id`
naming a succeeded run of the ledger, it is dated inside that run's span and it carries the run's
`run_key`. Each test generates a random mix of ours and look-alikes (the string "true", a missing,
fractional, huge, negative or textual run id, the id of a failed, skipped or missing run,
`"synthetic": false`, a wrong, numeric or missing key, a time outside the run's span, an empty
payload, extra keys), works out in Python which rows are ours, and holds the product to it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.contrib.auth.hashers import make_password
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from synthetics.engine.population import username_for
from synthetics.models import (
    Journey,
    JourneySceneEvent,
    JourneyStatus,
    MindblockEvent,
    MindblockType,
    Scene,
    SimUser,
    SyntheticRun,
    User,
)
from synthetics.selectors.ledger import synthetic_event_counts
from synthetics.services import activity_backfill, cleanup, sim_users_backfill, sim_users_seed
from synthetics.services.cleanup import cleanup_synthetic
from tests.factories import (
    JourneyFactory,
    JourneySceneEventFactory,
    MindblockEventFactory,
    SyntheticRunFactory,
    SyntheticUserFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 1, 9, 19, 0, tzinfo=UTC)
PROPERTY = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    database=None,
)

# --- what we generate --------------------------------------------------------------------------------

SUCCEEDED, FAILED, SKIPPED, MISSING = "succeeded", "failed", "skipped", "missing"

# How a payload names its run: a function of the referenced run's id (None: no run_id key).
RUN_IDS = {
    "int": lambda run_id: run_id,
    "string": str,
    "float": float,
    "negative": lambda run_id: -run_id,
    "huge": lambda run_id: run_id + 10**20,
    "bool": lambda run_id: True,
    "absent": None,
}
TAGS = {"true": True, "string-true": "true", "false": False, "one": 1, "absent": None}
# How a payload carries its run's key: a function of the named run's key (None: no run_key key).
KEYS = {
    "right": lambda key: key,
    "wrong": lambda key: "k0123456789abcdef",
    "upper": str.upper,
    "number": lambda key: 5,
    "absent": None,
}

text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=6
)
json_scalars = st.none() | st.booleans() | st.integers(-(10**6), 10**6) | text
extras = st.dictionaries(
    text.filter(lambda key: key not in ("synthetic", "run_id", "run_key")), json_scalars, max_size=2
)
# Ages: whole hours (so rows sit exactly on a cutoff of whole hours) or any microsecond within them.
HOURS = 4
ages = st.one_of(
    st.integers(0, HOURS).map(lambda hours: timedelta(hours=hours)),
    st.integers(0, HOURS * 3600 * 10**6).map(lambda us: timedelta(microseconds=us)),
)
cutoffs = st.integers(1, HOURS)
# Whole hours before now at which each run of the ledger ends.
run_ages = st.fixed_dictionaries(
    {status: st.integers(0, HOURS) for status in ("succeeded", "failed", "skipped")}
)
# A payload's origin: (tag, run id, run). Near misses differ from ours in exactly one respect; the
# other half are any combination.
OURS = ("true", "int", SUCCEEDED, "right")
NEAR_MISSES = [
    OURS,
    *[(tag, "int", SUCCEEDED, "right") for tag in sorted(TAGS) if tag != "true"],
    *[("true", run_id, SUCCEEDED, "right") for run_id in sorted(RUN_IDS) if run_id != "int"],
    *[("true", "int", run, "right") for run in (FAILED, SKIPPED, MISSING)],
    *[("true", "int", SUCCEEDED, key) for key in sorted(KEYS) if key != "right"],
]
origins = st.one_of(
    st.sampled_from(NEAR_MISSES),
    st.tuples(
        st.sampled_from(sorted(TAGS)),
        st.sampled_from(sorted(RUN_IDS)),
        st.sampled_from([SUCCEEDED, FAILED, SKIPPED, MISSING]),
        st.sampled_from(sorted(KEYS)),
    ),
)
events = st.lists(
    st.fixed_dictionaries(
        {
            "table": st.sampled_from(["scene", "mindblock"]),
            "origin": origins,
            "extras": extras,
            "age": ages,
            "journey": st.integers(0, 5) | st.none(),
            "synthetic_user": st.booleans(),
        }
    ),
    min_size=4,
    max_size=16,
)
journeys = st.lists(
    st.fixed_dictionaries(
        {
            # ours, a real journey, and a look-alike flagged synthetic without a run of the ledger
            "kind": st.sampled_from(["ours", "real", "no-run"]),
            "active": st.booleans(),
            "age": ages,
        }
    ),
    min_size=1,
    max_size=6,
)


def payload_of(row: dict, runs: dict[str, int]) -> dict:
    tag, run_id, run, key = row["origin"]
    payload = dict(row["extras"])
    if TAGS[tag] is not None:
        payload["synthetic"] = TAGS[tag]
    if RUN_IDS[run_id] is not None:
        payload["run_id"] = RUN_IDS[run_id](runs[run])
    if KEYS[key] is not None:
        named = SyntheticRun.objects.filter(id=runs[run]).first()
        payload["run_key"] = KEYS[key](named.run_key if named else "k00000000deadbeef")
    return payload


def is_ours(payload: dict, created_at: datetime, succeeded: dict[int, dict]) -> bool:
    """Our rule, in Python, written out apart from the product's: the boolean tag, an integer run
    id of a succeeded run, a time in that run's span (from just before its events_from, or for a
    run that kept none its window's start or 15 minutes before its end, to its window's end), and
    the run's key (a run with none: any)."""
    run_id = payload.get("run_id")
    if payload.get("synthetic") is not True or type(run_id) is not int or run_id not in succeeded:
        return False
    run = succeeded[run_id]
    if run["events_from"] is not None:
        after = run["events_from"] - timedelta(microseconds=1)
    else:
        after = min(run["window_start"], run["window_end"] - timedelta(minutes=15))
    in_span = after < created_at <= run["window_end"]
    return in_span and (run["run_key"] == "" or payload.get("run_key") == run["run_key"])


def succeeded_runs() -> dict[int, dict]:
    return {row["id"]: row for row in SyntheticRun.objects.filter(status=SUCCEEDED).values()}


# --- building and reading the tables -----------------------------------------------------------------


@pytest.fixture
def world(db) -> dict:
    """The accounts, scene and mindblock type every example's rows point at (kept across examples)."""
    return {
        "real": UserFactory(),
        "synthetic": SyntheticUserFactory(),
        "scene": Scene.objects.order_by("id").first(),
        "mindblock": MindblockType.objects.order_by("id").first(),
    }


def build(
    world: dict, event_rows: list[dict], journey_rows: list[dict], run_ages: dict | None = None
) -> dict:
    """Empty the activity tables, then write the generated runs, journeys and events."""
    run_ages = run_ages or {}
    JourneySceneEvent.objects.all().delete()
    MindblockEvent.objects.all().delete()
    Journey.objects.all().delete()
    SyntheticRun.objects.all().delete()
    # Each run's window: five hours up to a whole hour between now and 4 hours ago, so a cutoff
    # may fall after a run's end, and events (0 to 4 hours old) may fall inside its window or not.
    runs = {
        status: SyntheticRunFactory(
            status=status,
            window_end=NOW - timedelta(hours=run_ages.get(status, 0)),
            window_start=NOW - timedelta(hours=run_ages.get(status, 0) + 5),
        ).id
        for status in (SUCCEEDED, FAILED, SKIPPED)
    }
    runs[MISSING] = max(runs.values()) + 1000
    template = world["scene"].template
    made_journeys = []
    for row in journey_rows:
        run = {"ours": runs[SUCCEEDED]}.get(row["kind"])
        user = world["real"] if row["kind"] == "real" else world["synthetic"]
        moment = NOW - row["age"]
        made_journeys.append(
            JourneyFactory(
                user=user,
                template=template,
                is_synthetic=row["kind"] != "real",
                run_id=run,
                status=JourneyStatus.ACTIVE if row["active"] else JourneyStatus.COMPLETED,
                started_at=moment - timedelta(minutes=5),
                ended_at=None if row["active"] else moment,
            )
        )
    for row in event_rows:
        journey = (
            made_journeys[row["journey"] % len(made_journeys)]
            if made_journeys and row["journey"] is not None
            else None
        )
        fields = {
            "user": world["synthetic"] if row["synthetic_user"] else world["real"],
            "journey": journey,
            "scene": world["scene"],
            "created_at": NOW - row["age"],
            "event_payload": payload_of(row, runs),
        }
        if row["table"] == "scene":
            JourneySceneEventFactory(**fields)
        else:
            MindblockEventFactory(**fields, mindblock=world["mindblock"])
    return runs


def snapshot(model) -> dict:
    """Every row of an event table, its payload in canonical JSON: equal means byte-for-byte equal."""
    return {
        pk: (user_id, journey_id, event_type, created_at, json.dumps(payload, sort_keys=True))
        for pk, user_id, journey_id, event_type, created_at, payload in model.objects.values_list(
            "pk", "user_id", "journey_id", "event_type", "created_at", "event_payload"
        )
    }


def journey_snapshot() -> dict:
    return {row["id"]: row for row in Journey.objects.values()}


def ours(model, succeeded: dict[int, dict]) -> dict:
    """Our rows of an event table, pk -> created_at, by the Python rule."""
    return {
        pk: created_at
        for pk, created_at, payload in model.objects.values_list(
            "pk", "created_at", "event_payload"
        )
        if is_ours(payload, created_at, succeeded)
    }


# --- 1. cleanup deletes exactly ours, older than the cutoff -------------------------------------------


def ours_at(age: timedelta, journey: int | None = None) -> dict:
    return {
        "table": "scene",
        "origin": OURS,
        "extras": {},
        "age": age,
        "journey": journey,
        "synthetic_user": True,
    }


@pytest.mark.slow
@PROPERTY
@given(
    event_rows=events,
    journey_rows=journeys,
    older_than_hours=cutoffs,
    run_ages=run_ages,
    # Batches of 1 to 3 rows: ties on the keyset's key (rows of the same whole-hour age) fall
    # across batch boundaries, which must neither skip nor repeat a row.
    batch=st.integers(1, 3) | st.just(cleanup.CLEANUP_BATCH),
)
@example(  # ours exactly on the cutoff stays, a microsecond older goes
    event_rows=[ours_at(timedelta(hours=2)), ours_at(timedelta(hours=2, microseconds=1))],
    journey_rows=[{"kind": "ours", "active": False, "age": timedelta(hours=3)}],
    older_than_hours=2,
    run_ages={"succeeded": 3, "failed": 3, "skipped": 1},
    batch=cleanup.CLEANUP_BATCH,
)
@example(  # two of our journeys starting together, with journey windows of one
    event_rows=[ours_at(timedelta(hours=3), journey=0)],
    journey_rows=[{"kind": "ours", "active": False, "age": timedelta(hours=3)}] * 2,
    older_than_hours=2,
    run_ages={"succeeded": 4, "failed": 0, "skipped": 4},
    batch=1,
)
@example(  # three of ours with the same created_at, deleted one batch of one at a time
    event_rows=[ours_at(timedelta(hours=3))] * 3 + [ours_at(timedelta(hours=4))],
    journey_rows=[],
    older_than_hours=2,
    run_ages={"succeeded": 4, "failed": 0, "skipped": 4},
    batch=1,
)
def test_cleanup_deletes_exactly_our_old_rows_and_leaves_every_other_row_unchanged(
    world, event_rows, journey_rows, older_than_hours, run_ages, batch
):
    # Rule: cleanup deletes an event iff it is ours and created before the cutoff, a journey iff
    # it is a finished synthetic journey of a succeeded run, ended before the cutoff, with no event
    # left, and a ledger row iff its run succeeded, ended before the cutoff, and no journey left
    # and no event left with the boolean tag in its window names it (runs that wrote nothing are
    # the scheduled runs' to prune); every other row stays exactly as it was.
    # given
    runs = build(world, event_rows, journey_rows, run_ages)
    runs_before = {row["id"]: row for row in SyntheticRun.objects.values()}
    succeeded = succeeded_runs()
    cutoff = NOW - timedelta(hours=older_than_hours)
    tables = {"journey_scene_events": JourneySceneEvent, "mindblock_events": MindblockEvent}
    before = {name: snapshot(model) for name, model in tables.items()}
    doomed = {
        name: {pk for pk, at in ours(model, succeeded).items() if at < cutoff}
        for name, model in tables.items()
    }
    journeys_before = journey_snapshot()
    # when
    with mock.patch.object(cleanup, "CLEANUP_BATCH", batch):
        result = cleanup_synthetic(older_than_hours=older_than_hours, dry_run=False, now=NOW)
    # then every event outside `doomed` is exactly as it was, and `doomed` is gone
    for name, model in tables.items():
        expected = {pk: row for pk, row in before[name].items() if pk not in doomed[name]}
        assert snapshot(model) == expected, name
        assert result.counts[name] == len(doomed[name]), name
    left = {row[1] for name in tables for row in snapshot(tables[name]).values()}
    doomed_journeys = {
        pk
        for pk, row in journeys_before.items()
        if row["is_synthetic"]
        and row["run_id"] == runs[SUCCEEDED]
        and row["status"] != JourneyStatus.ACTIVE
        and row["ended_at"] < cutoff
        and pk not in left
    }
    assert journey_snapshot() == {
        pk: row for pk, row in journeys_before.items() if pk not in doomed_journeys
    }
    assert result.counts["journeys"] == len(doomed_journeys)
    events_left = [
        (created_at, payload)
        for model in tables.values()
        for created_at, payload in model.objects.values_list("created_at", "event_payload")
    ]
    journey_runs_left = set(Journey.objects.values_list("run_id", flat=True))

    def named_in_window(run: dict) -> bool:
        return any(
            payload.get("synthetic") is True
            and type(payload.get("run_id")) is int
            and payload["run_id"] == run["id"]
            and run["window_start"] < created_at <= run["window_end"]
            for created_at, payload in events_left
        )

    doomed_runs = {
        pk
        for pk, run in runs_before.items()
        if run["status"] == SUCCEEDED
        and run["window_end"] < cutoff
        and pk not in journey_runs_left
        and not named_in_window(run)
    }
    assert {row["id"]: row for row in SyntheticRun.objects.values()} == {
        pk: row for pk, row in runs_before.items() if pk not in doomed_runs
    }
    assert result.counts["synthetic_runs"] == len(doomed_runs)


@pytest.mark.slow
# 30 examples (not 80): two cleanups an example made it the suite's slowest test; the rule it
# checks (a dry run writes nothing and counts what the real run deletes) is one code path
@settings(PROPERTY, max_examples=30)
@given(event_rows=events, journey_rows=journeys, older_than_hours=cutoffs, run_ages=run_ages)
@example(  # our journey, finished two hours ago, holding one real event: the journey stays
    event_rows=[
        {
            "table": "scene",
            "origin": ("absent", "absent", SUCCEEDED, "absent"),
            "extras": {},
            "age": timedelta(hours=2),
            "journey": 0,
            "synthetic_user": False,
        },
    ],
    journey_rows=[{"kind": "ours", "active": False, "age": timedelta(hours=2)}],
    older_than_hours=1,
    run_ages={"succeeded": 2, "failed": 2, "skipped": 2},
)
def test_a_dry_run_changes_nothing_and_counts_what_the_real_run_deletes(
    world, event_rows, journey_rows, older_than_hours, run_ages
):
    # Rule: the dry run writes nothing, and its counts are the real run's, table by table.
    # given
    build(world, event_rows, journey_rows, run_ages)
    before = (snapshot(JourneySceneEvent), snapshot(MindblockEvent), journey_snapshot())
    # when
    dry = cleanup_synthetic(older_than_hours=older_than_hours, dry_run=True, now=NOW)
    unchanged = (snapshot(JourneySceneEvent), snapshot(MindblockEvent), journey_snapshot())
    real = cleanup_synthetic(older_than_hours=older_than_hours, dry_run=False, now=NOW)
    # then
    assert unchanged == before
    assert dry.cutoff == real.cutoff == NOW - timedelta(hours=older_than_hours)
    assert dry.counts == real.counts


# --- 2. the statistics count exactly ours ----------------------------------------------------------------


@pytest.mark.slow
@PROPERTY
@given(event_rows=events, since=ages, width=st.none() | ages)
def test_synthetic_and_real_partition_the_tables_and_the_counts_count_ours(
    world, event_rows, since, width
):
    # Rule: synthetic() is exactly our rows, real() exactly the rest, and synthetic_event_counts
    # counts our rows with created_at in (since, until].
    # given
    build(world, event_rows, [])
    succeeded = succeeded_runs()
    since_at = NOW - since
    until_at = None if width is None else since_at + width
    # when
    counts = synthetic_event_counts(since=since_at, until=until_at)
    # then
    for name, model in (("scene_events", JourneySceneEvent), ("mindblock_events", MindblockEvent)):
        mine = ours(model, succeeded)
        everything = set(model.objects.values_list("pk", flat=True))
        assert set(model.objects.synthetic().values_list("pk", flat=True)) == set(mine)
        assert set(model.objects.real().values_list("pk", flat=True)) == everything - set(mine)
        in_window = [
            pk for pk, at in mine.items() if at > since_at and (until_at is None or at <= until_at)
        ]
        assert counts[name] == len(in_window), name


# --- 3. seeding and backfill never touch a real account or a real row --------------------------------

real_accounts = st.lists(
    st.fixed_dictionaries(
        {
            "first_name": text,
            "last_name": text,
            "is_active": st.booleans(),
            "is_staff": st.booleans(),
            "with_token": st.booleans(),
        }
    ),
    min_size=1,
    max_size=4,
)


def empty_accounts() -> None:
    Token.objects.all().delete()
    JourneySceneEvent.objects.all().delete()
    MindblockEvent.objects.all().delete()
    Journey.objects.all().delete()
    SyntheticRun.objects.all().delete()
    User.objects.all().delete()


def make_real_accounts(rows: list[dict]) -> None:
    for index, row in enumerate(rows):
        user = UserFactory(
            username=f"person{index}",
            email=f"person{index}@example.com",
            password=make_password("correct horse battery staple"),
            first_name=row["first_name"],
            last_name=row["last_name"],
            is_active=row["is_active"],
            is_staff=row["is_staff"],
            last_login=NOW - timedelta(days=index),
        )
        if row["with_token"]:
            Token.objects.create(user=user)


def real_state() -> tuple:
    """Every field of every real account and token, and every real journey and event."""
    return (
        list(User.objects.filter(is_synthetic=False).order_by("id").values()),
        sorted(Token.objects.filter(user__is_synthetic=False).values_list("key", "user_id")),
        list(Journey.objects.filter(is_synthetic=False).order_by("id").values()),
        sorted(JourneySceneEvent.objects.real().values_list("pk", "created_at", "event_payload")),
        sorted(MindblockEvent.objects.real().values_list("pk", "created_at", "event_payload")),
    )


@pytest.mark.slow
@PROPERTY
@given(
    accounts=real_accounts,
    orphans=st.integers(0, 3),
    count=st.integers(0, 12),
    seed=st.integers(0, 2**63 - 1),
)
def test_seeding_and_the_sim_user_backfill_never_modify_a_real_account(
    db, accounts, orphans, count, seed
):
    # Rule: sim_users_seed and sim_users_backfill create synthetic accounts and profiles only; every
    # real account (every field) and its token are as they were.
    # given
    empty_accounts()
    make_real_accounts(accounts)
    SyntheticUserFactory.create_batch(orphans)  # synthetic accounts without a sim_users row
    before = real_state()
    # when
    sim_users_seed(count=count, seed=seed)
    sim_users_backfill(seed=seed)
    # then
    assert real_state() == before
    assert not SimUser.objects.filter(user__is_synthetic=False).exists()
    assert SimUser.objects.count() == User.objects.filter(is_synthetic=True).count()
    assert User.objects.filter(is_synthetic=True).count() == max(count, orphans)


@settings(PROPERTY, max_examples=10)
@given(taken=st.integers(1, 6), count=st.integers(1, 6), seed=st.integers(0, 1000))
@example(taken=1, count=1, seed=0)
def test_seeding_steps_around_a_real_account_that_holds_a_sim_username(db, taken, count, seed):
    # Rule: a real account named like a synthetic one (sim000001 ...) is neither changed nor in the
    # way: seeding still reaches `count` synthetic accounts.
    # given
    empty_accounts()
    person = UserFactory(username=username_for(taken), email="person@example.com")
    before = real_state()
    # when
    summary = sim_users_seed(count=count, seed=seed)
    # then
    assert real_state() == before
    assert User.objects.get(pk=person.pk).is_synthetic is False
    assert summary.total == count == User.objects.filter(is_synthetic=True).count()


@settings(PROPERTY, max_examples=4)
@given(accounts=real_accounts, minutes_ago=st.integers(0, 600), seed=st.integers(0, 1000))
def test_activity_backfill_never_modifies_a_real_account_or_row(db, accounts, minutes_ago, seed):
    # Rule: an hour of backfill writes synthetic rows only: real accounts, real journeys (active or
    # finished), real events and look-alike journeys flagged synthetic without a run stay unchanged.
    # given real accounts with activity, a pool of sim users and a look-alike in progress
    empty_accounts()
    make_real_accounts(accounts)
    sim_users_seed(count=10, seed=seed)
    now = NOW - timedelta(minutes=minutes_ago)
    person = User.objects.filter(is_synthetic=False).first()
    scene = Scene.objects.order_by("id").first()
    in_progress = JourneyFactory(
        user=person,
        template=scene.template,
        status=JourneyStatus.ACTIVE,
        ended_at=None,
        started_at=now - timedelta(minutes=30),
    )
    JourneySceneEventFactory(user=person, journey=in_progress, scene=scene, created_at=now)
    MindblockEventFactory(user=person, journey=in_progress, scene=scene, created_at=now)
    JourneySceneEventFactory(
        user=person,
        journey=None,
        scene=scene,
        created_at=now - timedelta(minutes=10),
        event_payload={"synthetic": "true", "run_id": 1},
    )
    sim_user = SimUser.objects.order_by("id").first()
    look_alike = JourneyFactory(
        user=sim_user.user,
        sim_user=sim_user,
        template=scene.template,
        is_synthetic=True,
        run=None,
        status=JourneyStatus.ACTIVE,
        ended_at=None,
        started_at=now - timedelta(minutes=30),
    )
    look_alike_before = Journey.objects.filter(pk=look_alike.pk).values().get()
    before = real_state()
    # when
    summary = activity_backfill(hours=1, now=now, seed=seed)
    # then
    assert summary.minutes_generated == 60
    assert real_state() == before
    assert Journey.objects.filter(pk=look_alike.pk).values().get() == look_alike_before
