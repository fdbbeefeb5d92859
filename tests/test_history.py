"""History in spans: on PostgreSQL the engine simulates the next span while another connection writes
the last one. Same rows as one span at a time; anything another run does in between stops the
pipeline at the span it touched, and that span is simulated again from what the database holds."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.db.models import Max, Sum
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from synthetics.engine import EventRecord
from synthetics.engine.run import to_ms
from synthetics.models import (
    Journey,
    JourneySceneEvent,
    MindblockEvent,
    SimUser,
    SyntheticRun,
    SyntheticSettings,
    User,
    run_key_new,
)
from synthetics.services import activity_backfill, history, run_manual, sim_users_seed, writers
from tests.test_golden import generated_rows


def _rows() -> dict[str, list[str]]:
    """The generated rows by content, in a canonical order."""
    return {
        name: sorted(json.dumps(row, sort_keys=True) for row in rows)
        for name, rows in generated_rows().items()
    }


def _tagged() -> dict[str, list[str]]:
    """What generated_rows leaves out, by content: each journey's plan, next_at and the window of
    the run that started it; each event's whole payload with its run_id as that run's window. Also
    checks that every row's run covers it: a journey starts, an event happens, in its run's window."""
    windows = dict(
        (run_id, (start, end))
        for run_id, start, end in SyntheticRun.objects.values_list(
            "id", "window_start", "window_end"
        )
    )
    keys = dict(SyntheticRun.objects.values_list("id", "run_key"))
    journeys = []
    for journey_id, plan, run_id, next_at, started_at in Journey.objects.values_list(
        "id", "plan", "run_id", "next_at", "started_at"
    ):
        start, end = windows[run_id]
        assert start < started_at <= end
        journeys.append(
            json.dumps(
                [str(journey_id), plan, end.isoformat(), next_at and next_at.isoformat()],
                sort_keys=True,
            )
        )
    events = []
    for model in (JourneySceneEvent, MindblockEvent):
        for journey_id, payload, created_at in model.objects.values_list(
            "journey_id", "event_payload", "created_at"
        ):
            start, end = windows[payload["run_id"]]
            assert start < created_at <= end and payload["synthetic"] is True
            assert payload["run_key"] == keys[payload["run_id"]]  # the key of the run it names
            events.append(
                json.dumps(
                    [
                        str(journey_id),
                        created_at.isoformat(),
                        {**payload, "run_id": end.isoformat(), "run_key": None},
                    ],
                    sort_keys=True,
                )
            )
    return {"journeys": sorted(journeys), "events": sorted(events)}


transactional = pytest.mark.django_db(transaction=True, serialized_rollback=True)
END = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


def _ledger():
    return list(
        SyntheticRun.objects.filter(trigger="backfill")
        .order_by("window_start")
        .values_list(
            "window_start", "window_end", "sessions_started", "scene_events_created",
            "mindblock_events_created", "journeys_completed", "journeys_abandoned",
            "journeys_errored", "active_journeys", "users_churned", "users_signed_up",
        )
    )  # fmt: skip


def _wipe():
    for model in (JourneySceneEvent, MindblockEvent, Journey, SyntheticRun):
        model.objects.all().delete()
    SimUser.objects.update(churned_at=None)


@pytest.fixture
def spans(monkeypatch):
    """Spans of 15 minutes, and the count and starts of the spans the pipeline wrote."""
    monkeypatch.setattr(history, "SPAN_ROWS", 15 * 20 * history.ROWS_PER_SESSION)
    counted = {"pipelined": 0, "starts": []}
    commit = history._span_commit

    def counting(span, *args):
        result = commit(span, *args)
        if result is not None:
            counted["pipelined"] += 1
            counted["starts"].append(span.start)
        return result

    monkeypatch.setattr(history, "_span_commit", counting)
    return counted


@pytest.mark.slow
@transactional
def test_pipelined_history_writes_the_rows_one_span_at_a_time_writes(
    postgres_only, spans, monkeypatch
):
    sim_users_seed(count=600, seed=21)
    SyntheticSettings.objects.filter(pk=1).update(
        sessions_per_min=20, max_per_run=100, churn_per_month=1.0
    )
    assert history.span_minutes(history.run_inputs.generator_settings()) == 15
    activity_backfill(hours=3, now=END, seed=4)
    # every span went through the pipeline: 15 minutes each on a grid from the start, the first
    # and the last cut short (2 minutes' part: _pipelined_span_minutes)
    assert spans["pipelined"] == 14
    assert [int((start - END) / timedelta(minutes=1)) for start in spans["starts"]] == [
        -180,
        -179,
        *range(-165, -15, 15),
        -15,
        -1,
    ]
    pipelined, pipelined_ledger, pipelined_tagged = _rows(), _ledger(), _tagged()
    churned = set(SimUser.objects.filter(churned_at__isnull=False).values_list("id", "churned_at"))
    assert churned  # churn was applied by the writer, from the spans' deferred changes
    # each account's last login is the start of its latest session (sent as formatted ahead)
    latest = dict(
        Journey.objects.values("user_id")
        .annotate(last=Max("started_at"))
        .values_list("user_id", "last")
    )
    logins = dict(User.objects.filter(id__in=latest).values_list("id", "last_login"))
    assert latest and logins == latest

    _wipe()
    monkeypatch.setattr(history, "_can_pipeline", lambda: False)
    activity_backfill(hours=3, now=END, seed=4)
    assert spans["pipelined"] == 14  # none more
    assert _rows() == pipelined
    assert _ledger() == pipelined_ledger
    # the pipeline formats its COPY data ahead, with ledger ids it reserved: the same plans and
    # payloads, each row tagged with the run of its own minute
    assert _tagged() == pipelined_tagged
    assert set(
        SimUser.objects.filter(churned_at__isnull=False).values_list("id", "churned_at")
    ) == (churned)


@pytest.mark.slow
@transactional
def test_pipelined_history_with_sign_ups_writes_what_one_span_at_a_time_writes(
    postgres_only, spans, monkeypatch
):
    """Sign-ups simulated ahead take their account numbers from a count kept in memory and their ids
    from blocks reserved in the sequences; the writer creates them with the span. The same accounts,
    sessions, events and churn as spans written as they are simulated (the ids may leave gaps)."""
    sim_users_seed(count=400, seed=24)
    # ~1,500 a day: about 190 sign-ups over 3 hours, in blocks of 32 ids (history._ids_block)
    SyntheticSettings.objects.filter(pk=1).update(
        sessions_per_min=20, max_per_run=100, signups_per_day=1500, churn_per_month=1.0
    )
    reserved = []
    reserve = history.account_ids_reserve
    monkeypatch.setattr(
        history, "account_ids_reserve", lambda count: reserved.append(count) or reserve(count)
    )
    activity_backfill(hours=3, now=END, seed=7)
    assert spans["pipelined"] == 14 and len(reserved) >= 5  # no span went on its own
    pipelined, pipelined_ledger, pipelined_tagged = _rows(), _ledger(), _tagged()
    signed_up = SyntheticRun.objects.aggregate(total=Sum("users_signed_up"))["total"]
    assert 100 < signed_up == SimUser.objects.filter(joined_at__isnull=False).count()
    names = sorted(
        User.objects.filter(is_synthetic=True).values_list("username", flat=True)
    )  # every account number once, none skipped: sim000001 to the last sign-up
    assert names == [f"sim{index:06d}" for index in range(1, 401 + signed_up)]
    churned = sorted(
        SimUser.objects.filter(churned_at__isnull=False).values_list("user__username", "churned_at")
    )
    assert churned

    _wipe()
    SimUser.objects.filter(joined_at__isnull=False).delete()
    User.objects.filter(is_synthetic=True, sim_profile__isnull=True).delete()
    monkeypatch.setattr(history, "_can_pipeline", lambda: False)
    activity_backfill(hours=3, now=END, seed=7)
    assert spans["pipelined"] == 14  # none more
    assert _rows() == pipelined
    assert _ledger() == pipelined_ledger
    assert _tagged() == pipelined_tagged
    assert (
        sorted(
            SimUser.objects.filter(churned_at__isnull=False).values_list(
                "user__username", "churned_at"
            )
        )
        == churned
    )


def _ledger_seq_scans() -> int:
    """Sequential scans of the ledger (synthetic_runs) so far, every backend's that has reported."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT seq_scan FROM pg_stat_user_tables WHERE relid = %s::regclass",
            [SyntheticRun._meta.db_table],
        )
        return cursor.fetchone()[0]


@transactional
def test_span_commits_look_up_each_journeys_run_by_its_index(postgres_only, spans):
    """The writer connection's first commit plans the journeys' deferred key check of their run
    while the ledger holds a page: without deferred_key_checks_indexed that plan is a sequential
    scan of the ledger, kept and run for every journey of every later span."""
    sim_users_seed(count=300, seed=23)
    SyntheticSettings.objects.filter(pk=1).update(sessions_per_min=20, max_per_run=100)
    with connection.cursor() as cursor:  # statistics as a tidied database has them: an empty ledger
        cursor.execute(f"VACUUM ANALYZE {SyntheticRun._meta.db_table}")
    before = _ledger_seq_scans()
    activity_backfill(hours=2, now=END, seed=6)
    journeys = Journey.objects.count()
    scans = _ledger_seq_scans() - before
    assert spans["pipelined"] >= 8 and journeys > 1500
    # What scans the ledger is the spans' own reads of a one-page table (31 here), never one per
    # journey (2,353 here without deferred_key_checks_indexed).
    assert scans < 10 * spans["pipelined"], (scans, journeys)


@transactional
def test_a_run_between_two_spans_stops_the_pipeline_and_every_minute_is_covered_once(
    postgres_only, spans, monkeypatch
):
    sim_users_seed(count=200, seed=22)
    SyntheticSettings.objects.filter(pk=1).update(sessions_per_min=20, max_per_run=100)
    commit = history._span_commit
    interfered = {"done": False}

    def interfering(span, *args):
        if span.start == END - timedelta(minutes=30) and not interfered["done"]:
            interfered["done"] = True
            # another run gets in before this span's write: its users are busy from now on
            interfered["run"] = run_manual(target=5)
        return commit(span, *args)

    monkeypatch.setattr(history, "_span_commit", interfering)
    summary = activity_backfill(hours=1, now=END, seed=5)
    assert interfered["done"]
    assert summary.minutes_generated == 60
    ends = list(
        SyntheticRun.objects.filter(trigger="backfill").values_list("window_end", flat=True)
    )
    assert sorted(ends) == [END - timedelta(minutes=60 - m) for m in range(1, 61)]  # once each
    # the span simulated before the manual run was thrown away and simulated again with the manual
    # run's journeys in view: none of its busy users starts a session in the spans after it
    # (a session of the manual run may end inside its minute: only those still going are busy)
    busy = set(
        Journey.objects.filter(run_id=interfered["run"].id, status="active").values_list(
            "sim_user_id", flat=True
        )
    )
    assert busy
    assert not Journey.objects.filter(
        sim_user_id__in=busy, run__trigger="backfill", started_at__gt=END - timedelta(minutes=30)
    ).exists()
    # the pipeline stopped at the span the manual run touched (END - 30): that span was written
    # again on its own, and a new pipeline wrote the rest
    assert [int((start - END) / timedelta(minutes=1)) for start in spans["starts"]] == [
        -60,
        -59,
        -45,
        -15,
        -14,
        -1,
    ]


@pytest.mark.slow
@pytest.mark.django_db
def test_scheduled_runs_reading_only_due_journeys_write_what_reading_all_of_them_writes(
    monkeypatch,
):
    """A scheduled run reads the journeys due by its time (next_at, indexed), and only the users of
    the others: the same rows as reading every journey in progress, and next_at always right."""
    from synthetics.engine.run import next_due
    from synthetics.engine.types import Plan
    from synthetics.selectors import run_inputs
    from synthetics.services import run_scheduled

    sim_users_seed(count=300, seed=23)
    SyntheticSettings.objects.filter(pk=1).update(sessions_per_min=15, max_per_run=60)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    read = {"due": 0, "all": 0}
    every = run_inputs.active_journeys

    def counted(*, due_by=None, **slice_):
        journeys = every(due_by=due_by, **slice_)
        read["due" if due_by else "all"] += len(journeys)
        read["all" if due_by else "due"] += len(every())
        return journeys

    def minutes():
        for minute in range(1, 41):
            run_scheduled(now=start + timedelta(minutes=minute, seconds=5), seed=8)

    monkeypatch.setattr(run_inputs, "active_journeys", counted)
    minutes()
    due_only, due_only_ledger = (
        _rows(),
        list(
            SyntheticRun.objects.order_by("window_end").values_list(
                "window_end", "sessions_started", "scene_events_created", "active_journeys"
            )
        ),
    )
    assert read["due"] < read["all"] * 0.8  # most journeys in progress had nothing due
    for plan, next_step, next_at in Journey.objects.filter(status="active").values_list(
        "plan", "next_step", "next_at"
    ):
        assert next_at == next_due(Plan.from_json(plan), next_step)
    assert Journey.objects.filter(status="active").exists()

    _wipe()
    monkeypatch.setattr(run_inputs, "active_journeys", lambda *, due_by=None, **_: every())
    monkeypatch.setattr(run_inputs, "waiting_journey_users", lambda *, due_by, **_: [])
    minutes()
    assert _rows() == due_only
    assert (
        list(
            SyntheticRun.objects.order_by("window_end").values_list(
                "window_end", "sessions_started", "scene_events_created", "active_journeys"
            )
        )
        == due_only_ledger
    )


@transactional
def test_a_span_that_fails_while_simulated_ahead_is_recorded_and_the_spans_before_it_stay(
    postgres_only, spans, monkeypatch
):
    from synthetics.engine import EngineError
    from synthetics.errors import RunFailed

    sim_users_seed(count=200, seed=24)
    SyntheticSettings.objects.filter(pk=1).update(sessions_per_min=20, max_per_run=100)
    simulate = history._simulate_span

    def failing(**kwargs):
        if kwargs["start"] == END - timedelta(minutes=30):
            raise EngineError("the catalogue has no active journey template with scenes")
        return simulate(**kwargs)

    monkeypatch.setattr(history, "_simulate_span", failing)
    with pytest.raises(RunFailed, match="no active journey template") as raised:
        activity_backfill(hours=1, now=END, seed=6)
    failed = SyntheticRun.objects.get(id=raised.value.run_id)
    assert (failed.trigger, failed.status) == ("backfill", "failed")
    # the two spans before it were written whole; nothing of the failed one or after it
    ends = sorted(
        SyntheticRun.objects.filter(trigger="backfill", status="succeeded").values_list(
            "window_end", flat=True
        )
    )
    assert ends == [END - timedelta(minutes=60 - m) for m in range(1, 31)]
    # running it again resumes where it stopped
    monkeypatch.setattr(history, "_simulate_span", simulate)
    assert activity_backfill(hours=1, now=END, seed=6).minutes_generated == 30


# text PostgreSQL can hold at all (no NUL, no lone surrogate), whoever writes it
_TEXT = st.text(st.characters(exclude_characters="\x00", exclude_categories=("Cs",)))
_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)  # orjson's range, and the engine's
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_TEXT, children, max_size=3),
    max_leaves=8,
)


@pytest.mark.django_db
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    payload=st.dictionaries(_TEXT, _JSON, max_size=5),
    run_id=st.integers(min_value=1, max_value=2**63 - 1),
)
@example(payload={}, run_id=1)
@example(payload={"synthetic": False, "run_id": 7, "run_key": 1, 'a\\"\n\t': "\u00e9\\"}, run_id=9)
def test_payload_text_is_the_tagged_payload_in_jsonb(postgres_only, payload, run_id):
    # the writer appends the tags to the encoded payload instead of merging dicts: for any payload,
    # including one that carries its own "synthetic" or "run_id", PostgreSQL stores the same jsonb
    event = EventRecord("scene", 1, None, 1, None, "scene_entered", to_ms(END), payload)
    run = (run_id, run_key_new())
    text = writers._payload_text(event, run)
    merged = json.dumps(writers._payload(event, run))
    with transaction.atomic(), connection.cursor() as cursor:  # a savepoint per example
        cursor.execute(
            "SELECT %s::jsonb = %s::jsonb, %s::jsonb ->> 'synthetic'", [text, merged, text]
        )
        same, synthetic = cursor.fetchone()
    assert same and synthetic == "true"


@pytest.mark.django_db
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ms=st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999))
def test_utc_ms_text_is_the_engine_time_in_postgresql(postgres_only, ms):
    # the writers COPY events' and journeys' times as utc_ms_text: PostgreSQL reads each as the
    # very instant the milliseconds name, whatever the session's time zone
    from synthetics.db import utc_ms_text
    from synthetics.engine.run import _EPOCH

    exact = _EPOCH + timedelta(milliseconds=ms)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL TimeZone = 'America/St_Johns'")
        cursor.execute("SELECT %s::timestamptz = %s", [utc_ms_text(ms), exact])
        assert cursor.fetchone()[0]
