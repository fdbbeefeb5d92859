"""The simulation engine on a simulated clock: no database, no sleeping."""

import math
import random
import statistics
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from synthetics.engine import (
    EngineError,
    GeneratorSettings,
    InvalidTarget,
    PoolMember,
    manual_session_count,
    scheduled_session_count,
    simulate_run,
)
from synthetics.engine.behaviour import PLAIN_BEHAVIOUR, rate_factor
from synthetics.engine.planning import JOURNEY_COMPLETED, SCENE_ENTERED, SCENE_ERROR
from synthetics.engine.run import (
    STALE_AFTER,
    from_ms,
    manual_target_limit,
    manual_target_rule,
    to_ms,
)
from synthetics.engine.sampling import poisson, weighted_sample
from synthetics.engine.simulation import simulate_minutes
from synthetics.engine.types import Plan
from tests.helpers import (
    T0,
    assert_binomial_share,
    assert_near,
    assert_outcome_shares,
    assert_sample_mean_and_variance,
    capped_poisson_moments,
    expected_journey_minutes,
    longest_journey_minutes,
    make_engine_pool,
    shipped_catalogue,
    shipped_settings,
)


def _tick(catalogue, pool, *, settings=None, active=(), minutes=1, sessions=3, seed="s", now=T0):
    return simulate_run(
        settings=settings or GeneratorSettings(),
        catalogue=catalogue,
        pool=pool,
        active=list(active),
        window_start=now - timedelta(minutes=minutes),
        now=now,
        sessions=sessions,
        rng=random.Random(seed),
    )


def _as_active(new):
    return new.in_progress()


def _apply(active: dict, outcome) -> None:
    """Carry a tick's changes into the in-memory set of active journeys, as the service does."""
    for update in outcome.journey_updates:
        if update.status == "active":
            active[update.id] = replace(active[update.id], next_step=update.next_step)
        else:
            del active[update.id]
    active.update({j.id: _as_active(j) for j in outcome.new_journeys if j.status == "active"})


# --- determinism -----------------------------------------------------------------------------------


def test_same_seed_same_inputs_give_identical_output(
    engine_catalogue, engine_pool, default_settings
):
    # given two simulations of the same two hours with the same seed
    runs = [
        simulate_minutes(
            settings=default_settings,
            catalogue=engine_catalogue,
            pool=engine_pool,
            start=T0,
            minutes=120,
            seed=42,
            keep_events=True,
        )
        for _ in range(2)
    ]
    # then every event is identical, field by field
    assert runs[0].events == runs[1].events
    assert runs[0].sessions == runs[1].sessions > 0


def test_another_seed_gives_other_data(engine_catalogue, engine_pool, default_settings):
    first, second = (
        simulate_minutes(
            settings=default_settings,
            catalogue=engine_catalogue,
            pool=engine_pool,
            start=T0,
            minutes=60,
            seed=seed,
            keep_events=True,
        )
        for seed in (1, 2)
    )
    assert first.events != second.events


def test_plan_round_trips_through_json(engine_catalogue, engine_pool):
    outcome = _tick(engine_catalogue, engine_pool, sessions=5)
    for journey in outcome.new_journeys:
        assert Plan.from_json(journey.plan.to_json()) == journey.plan


# --- time ------------------------------------------------------------------------------------------


def test_no_event_is_ever_in_the_future(engine_catalogue, engine_pool, default_settings):
    # given a tick-by-tick simulation, collecting each tick's events with that tick's now
    active = {}
    for minute in range(1, 181):
        now = T0 + timedelta(minutes=minute)
        outcome = _tick(
            engine_catalogue, engine_pool, active=active.values(), sessions=3, seed=minute, now=now
        )
        # then nothing is dated after the tick's now
        assert all(event.created_at <= now for event in outcome.events)
        assert all(j.started_at <= now for j in outcome.new_journeys)
        assert all(u.ended_at is None or u.ended_at <= now for u in outcome.journey_updates)
        _apply(active, outcome)


def test_new_sessions_start_inside_the_window(engine_catalogue, engine_pool):
    outcome = _tick(engine_catalogue, engine_pool, minutes=5, sessions=5)
    window_start = T0 - timedelta(minutes=5)
    assert outcome.sessions_started == 5
    assert all(window_start < j.started_at <= T0 for j in outcome.new_journeys)
    starts = [j.started_at for j in outcome.new_journeys]
    assert len(set(starts)) > 1, "sessions are spread over the window, not stacked on one instant"


def test_events_are_ordered_within_each_journey(engine_catalogue, engine_pool, default_settings):
    stats = simulate_minutes(
        settings=default_settings,
        catalogue=engine_catalogue,
        pool=engine_pool,
        start=T0,
        minutes=240,
        seed=5,
        keep_events=True,
    )
    by_journey = defaultdict(list)
    for event in stats.events:
        by_journey[event.journey_id].append(event)
    assert len(by_journey) > 300
    for events in by_journey.values():
        steps = [e.payload["step"] for e in events]
        times = [e.created_at for e in events]
        assert steps == list(range(len(steps))), "each step is written once, in order"
        assert times == sorted(times)
        scene_events = [e for e in events if e.kind == "scene"]
        assert scene_events[0].event_type == SCENE_ENTERED
        positions = [
            e.payload["scene_position"] for e in scene_events if e.event_type == SCENE_ENTERED
        ]
        assert positions == list(range(1, len(positions) + 1)), "scenes are visited in order"


def test_outcome_events_match_the_plan(engine_catalogue, engine_pool):
    outcome = _tick(
        engine_catalogue,
        engine_pool,
        minutes=60,
        sessions=200,
        seed="outcomes",
        settings=GeneratorSettings(max_per_run=500, abandon_rate=0.3, error_rate=0.2),
    )
    finished = [j for j in outcome.new_journeys if j.status != "active"]
    assert finished
    for journey in finished:
        types = [s.event_type for s in journey.plan.steps]
        assert types.count(JOURNEY_COMPLETED) == (journey.status == "completed")
        assert types.count(SCENE_ERROR) == (journey.status == "errored")
        assert journey.ended_at == from_ms(journey.plan.end_ms)
        assert journey.ended_at >= from_ms(journey.plan.steps[-1].at_ms) >= journey.started_at


def test_naive_times_are_refused(engine_catalogue, engine_pool):
    with pytest.raises(EngineError, match="timezone-aware"):
        _tick(engine_catalogue, engine_pool, now=T0.replace(tzinfo=None))


def test_window_after_now_is_refused(engine_catalogue, engine_pool):
    with pytest.raises(EngineError, match="after now"):
        _tick(engine_catalogue, engine_pool, minutes=-1)


# --- users -----------------------------------------------------------------------------------------


def test_new_sessions_go_to_idle_users_only(engine_catalogue):
    # given a pool of 10 users, 7 of them in a session that lasts well past now
    pool = [PoolMember(i, 100 + i, "regular", 1.0) for i in range(1, 11)]
    first = _tick(
        engine_catalogue, pool, sessions=7, seed="busy", settings=GeneratorSettings(max_per_run=20)
    )
    busy = [_as_active(j) for j in first.new_journeys if j.status == "active"]
    busy_users = {j.sim_user_id for j in busy}
    # when 10 more sessions are asked for a second later
    second = _tick(
        engine_catalogue,
        pool,
        active=busy,
        sessions=10,
        seed="idle",
        now=T0 + timedelta(seconds=1),
        settings=GeneratorSettings(max_per_run=20),
    )
    # then only the idle users get one, each at most once
    users = [j.sim_user_id for j in second.new_journeys]
    assert len(users) == len(set(users)) == 10 - len(busy_users)
    assert not busy_users & set(users)


def test_busy_users_are_never_in_two_active_journeys(engine_catalogue, engine_pool):
    settings = GeneratorSettings(sessions_per_min=40, max_per_run=60)
    active = {}
    for minute in range(1, 61):
        outcome = _tick(
            engine_catalogue,
            engine_pool[:80],
            settings=settings,
            active=active.values(),
            sessions=40,
            seed=minute,
            now=T0 + timedelta(minutes=minute),
        )
        _apply(active, outcome)
        users = [j.sim_user_id for j in active.values()]
        assert len(users) == len(set(users))


def test_selection_follows_activity_weight(engine_catalogue):
    # given two equal-sized groups, one four times as active
    pool = [
        PoolMember(i, i, "devoted" if i % 2 else "drifting", 4.0 if i % 2 else 1.0)
        for i in range(1, 2001)
    ]
    # (the seed's selection: lapsed periods and bouts change it on purpose, tests/test_behaviour.py)
    catalogue = replace(engine_catalogue, behaviour=PLAIN_BEHAVIOUR)
    picks = Counter()
    for seed in range(200):
        outcome = _tick(
            catalogue, pool, sessions=5, seed=seed, settings=GeneratorSettings(max_per_run=5)
        )
        picks.update(pool[j.sim_user_id - 1].persona for j in outcome.new_journeys)
    # then the active group is picked about four times as often: each pick is "devoted" with
    # probability 4 / (4 + 1) = 0.8, so the count of 1,000 picks is Binomial(1000, 0.8). (Picks
    # inside one run are distinct users, which moves that chance by under 5 / 1000 of a group.)
    assert picks.total() == 1000
    assert_binomial_share(picks["devoted"], 1000, 0.8)


def test_fewer_sessions_when_not_enough_idle_users(engine_catalogue):
    pool = [PoolMember(i, i, "casual", 1.0) for i in range(1, 4)]
    outcome = _tick(engine_catalogue, pool, sessions=5, settings=GeneratorSettings(max_per_run=5))
    assert outcome.sessions_started == 3
    assert outcome.sessions_requested == 5


# --- session counts ----------------------------------------------------------------------------------


def test_scheduled_count_is_capped_at_max_per_run():
    settings = GeneratorSettings(sessions_per_min=50, max_per_run=5)
    rng = random.Random(3)
    counts = [scheduled_session_count(settings=settings, minutes=1, rng=rng) for _ in range(500)]
    # P(Poisson(50) < 5) = 5e-17 per draw: the draws reach the cap, and none passes it
    assert max(counts) == 5
    assert min(counts) >= 0


def test_scheduled_count_at_the_shipped_defaults_is_a_capped_poisson():
    # given the shipped rate and cap, which clips the 1.7 % of Poisson(2) draws above 5
    settings = shipped_settings()
    rng = random.Random(10)
    # when 20,000 one-minute runs draw their counts
    counts = [scheduled_session_count(settings=settings, minutes=1, rng=rng) for _ in range(20_000)]
    # then their mean and variance are those of min(Poisson(2), 5): 1.978 and 1.827
    assert_sample_mean_and_variance(counts, settings.sessions_per_min, settings.max_per_run)


def test_scheduled_count_is_poisson_with_the_configured_mean():
    settings = GeneratorSettings(sessions_per_min=3, max_per_run=1000)
    rng = random.Random(11)
    counts = [scheduled_session_count(settings=settings, minutes=1, rng=rng) for _ in range(20_000)]
    # a cap of 1,000 leaves Poisson(3) whole: mean 3, and variance 3 (Poisson: it equals the mean)
    assert_sample_mean_and_variance(counts, 3, 1000)


def test_scheduled_count_scales_with_elapsed_minutes():
    settings = GeneratorSettings(sessions_per_min=2, max_per_run=1000)
    rng = random.Random(12)
    counts = [scheduled_session_count(settings=settings, minutes=5, rng=rng) for _ in range(5000)]
    # five minutes at 2 a minute: Poisson(10), mean 10 and variance 10
    assert_sample_mean_and_variance(counts, 10, 1000)
    assert scheduled_session_count(settings=settings, minutes=0, rng=rng) == 0


def test_poisson_large_mean_and_bad_mean():
    rng = random.Random(1)
    # above POISSON_NORMAL_ABOVE the draw is a rounded normal with the Poisson's mean and variance:
    # the mean of 200 draws has standard error sqrt(5000 / 200) = 5
    draws = [poisson(rng, 5000) for _ in range(200)]
    assert_near(sum(draws) / 200, 5000, math.sqrt(5000 / 200))
    with pytest.raises(ValueError):
        poisson(rng, -1)


@pytest.mark.parametrize("target", [1, 3, 5])
def test_manual_target_inside_bounds_is_exact(target, engine_catalogue, engine_pool):
    count = manual_session_count(settings=GeneratorSettings(max_per_run=5), target=target)
    assert count == target
    assert _tick(engine_catalogue, engine_pool, sessions=count).sessions_started == target


@pytest.mark.parametrize("target", [0, -1, 6, 1000, True, 2.5, "3", None])
def test_manual_target_outside_bounds_is_refused_with_the_bounds(target):
    with pytest.raises(InvalidTarget, match=r"target must be"):
        manual_session_count(settings=GeneratorSettings(max_per_run=5), target=target)


def test_manual_target_has_one_rule_and_one_message():
    # the bound is max_per_run, and never above what one request can start (1,000): one sentence
    # names whichever binds, for a target just outside it and for one far outside it
    small, large = GeneratorSettings(max_per_run=5), GeneratorSettings(max_per_run=50_000)
    for target in (6, 50, 999_999):
        with pytest.raises(InvalidTarget) as refused:
            manual_session_count(settings=small, target=target)
        assert str(refused.value) == f"{manual_target_rule(small)}; got {target}."
    assert (
        manual_target_rule(small) == "target must be a whole number from 1 to 5 (max_per_run is 5)"
    )
    assert manual_target_limit(large) == 1000 and manual_session_count(settings=large, target=1000)
    with pytest.raises(InvalidTarget, match=r"from 1 to 1,000 \(a manual run answers within one"):
        manual_session_count(settings=large, target=1001)
    with pytest.raises(InvalidTarget, match="while max_per_run is 0: raise it first"):
        manual_session_count(settings=GeneratorSettings(max_per_run=0), target=1)


def test_weighted_sample_skips_zero_weights_and_never_repeats():
    rng = random.Random(2)
    picked = weighted_sample(rng, list("abcdef"), [1, 0, 1, 0, 1, 1], 10)
    assert sorted(picked) == ["a", "c", "e", "f"]


# --- staleness ---------------------------------------------------------------------------------------


def test_session_left_without_runs_is_closed_as_abandoned(engine_catalogue, engine_pool):
    # given a session still in progress ...
    first = _tick(engine_catalogue, engine_pool, sessions=5, seed="stale")
    active = [_as_active(j) for j in first.new_journeys if j.status == "active"]
    assert active
    # ... when the next run comes an hour later (the generator was down)
    later = _tick(
        engine_catalogue,
        engine_pool,
        active=active,
        sessions=0,
        now=T0 + STALE_AFTER + timedelta(hours=1),
    )
    # then it is closed as abandoned at its last written step, and no burst of old events follows
    assert not later.events
    assert {u.status for u in later.journey_updates} == {"abandoned"}
    for update, journey in zip(
        sorted(later.journey_updates, key=lambda u: str(u.id)),
        sorted(active, key=lambda j: str(j.id)),
        strict=True,
    ):
        assert update.ended_at <= T0
        assert update.ended_at >= journey.started_at


def test_empty_catalogue_is_refused(engine_pool):
    from synthetics.engine import Catalogue

    with pytest.raises(EngineError, match="no active journey template"):
        _tick(Catalogue(templates=(), mindblocks=()), engine_pool, sessions=1)


# --- statistics over 24 simulated hours at the shipped defaults ----------------------------------------


@pytest.fixture(scope="module")
def day_at_defaults():
    return simulate_minutes(
        settings=shipped_settings(),
        catalogue=shipped_catalogue(),
        pool=make_engine_pool(),
        start=T0,
        minutes=24 * 60,
        seed=20260109,
    )


def test_a_day_at_the_defaults_starts_a_capped_poisson_count_each_minute(day_at_defaults):
    # Each minute starts min(Poisson(2 F), 5) sessions (3,000 users are never all busy),
    # independently, F the behaviour's day and drift factor of the seed at that minute (a function
    # of the seed and the time: engine.behaviour): the day's total has the sum of those means and
    # variances (2,848 at F = 1, not 2 x 1,440: the cap).
    settings = shipped_settings()
    behaviour = shipped_catalogue().behaviour
    minutes = day_at_defaults.minutes
    assert minutes == 24 * 60
    mean = variance = 0.0
    for minute in range(minutes):
        at_ms = to_ms(T0) + minute * 60_000 + 30_000
        factor = rate_factor(
            behaviour, seed=20260109, at_ms=at_ms, strength=settings.rhythm_strength
        )
        moments = capped_poisson_moments(settings.sessions_per_min * factor, settings.max_per_run)
        mean, variance = mean + moments[0], variance + moments[1]
    assert_near(day_at_defaults.sessions, mean, math.sqrt(variance))
    # and the factor is what moved it: at F = 1 the day would be a different count
    flat, _, _ = capped_poisson_moments(settings.sessions_per_min, settings.max_per_run)
    assert abs(mean - minutes * flat) > 0.01 * mean


def test_finished_outcome_shares_follow_the_rates(day_at_defaults):
    # 15 % abandoned, 5 % errored, 80 % completed: binomial counts among the sessions started
    assert_outcome_shares(
        outcomes=day_at_defaults.outcomes,
        started=day_at_defaults.sessions,
        settings=shipped_settings(),
    )


def test_journeys_last_as_long_as_the_scene_dwell_times_add_up_to(day_at_defaults):
    # The mean of F finished durations estimates the model's mean (about 4.6 minutes) with standard
    # error s / sqrt(F), s their standard deviation. The A = started - finished sessions still in
    # progress at the end are missing from it; each lasts at most the longest journey, Dmax, so
    # leaving them out moves the mean by at most A x Dmax / F.
    durations = [seconds / 60 for seconds in day_at_defaults.durations_seconds]
    finished = len(durations)
    in_progress = day_at_defaults.sessions - finished
    longest = longest_journey_minutes(shipped_catalogue())
    assert_near(
        day_at_defaults.mean_duration_minutes,
        expected_journey_minutes(shipped_catalogue(), shipped_settings()),
        statistics.stdev(durations) / math.sqrt(finished),
        slack=in_progress * longest / finished,
    )


def test_mean_active_journeys_follow_littles_law(day_at_defaults):
    # Little's law on the sample path. Over T minutes, sampling the active count at each minute's
    # end counts a finished journey of duration D once per minute end inside it: D + e minutes,
    # where e has mean 0 and variance at most 1/4 (the start is uniform within its minute). So
    #   T x mean_active = sum(D + e over the F finished) + (minute ends inside the A in progress)
    #   T x rate x mean_duration = sessions x mean(D) = sum(D over the F finished) + A x mean(D)
    # and the two differ by sum(e), standard error sqrt(F / 4), plus at most A x (Dmax + 1).
    stats = day_at_defaults
    minutes, finished = stats.minutes, stats.finished
    arrival_rate = stats.sessions / minutes  # per minute
    in_progress = stats.sessions - finished
    longest = longest_journey_minutes(shipped_catalogue())
    assert_near(
        stats.mean_active,
        arrival_rate * stats.mean_duration_minutes,
        math.sqrt(finished / 4) / minutes,
        slack=in_progress * (longest + 1) / minutes,
    )


@hypothesis_settings(max_examples=2000, deadline=None)
@given(st.integers(min_value=946_684_800_000, max_value=8_000_000_000_000))
def test_from_ms_is_exact_for_every_millisecond_the_engine_can_meet(ms):
    # from 2000 (the earliest simulated time) to the year 2223: the float route gives the exact
    # datetime of the timedelta route, and back
    from synthetics.engine.run import _EPOCH, from_ms, to_ms

    assert from_ms(ms) == _EPOCH + timedelta(milliseconds=ms)
    assert to_ms(from_ms(ms)) == ms


@hypothesis_settings(max_examples=2000, deadline=None)
@given(st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999))
def test_utc_ms_text_names_the_instant_from_ms_gives(ms):
    # every millisecond a timestamptz can be given in ISO form (years 1 to 9999): the COPY text
    # the writers send reads back as the engine's datetime (Python's ISO parser, as PostgreSQL's
    # does in the PostgreSQL test of test_history); the per-second cache changes nothing
    from datetime import UTC, datetime

    from synthetics.db import utc_ms_text

    text = utc_ms_text(ms)
    assert text == utc_ms_text(ms)  # a second time, from the cache
    assert datetime.fromisoformat(text) == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(
        milliseconds=ms
    )


def test_records_keep_the_dataclass_contract():
    # engine.types.record: a faster __init__ with the generated one's signature, defaults and
    # default factories, still frozen and comparable
    import dataclasses
    import inspect

    from synthetics.engine.types import Step, record

    step = Step(5, "scene", "scene_entered", 1, "s", 1)
    assert step.mindblock_id is None and step.extra == {}
    assert Step(5, "scene", "scene_entered", 1, "s", 1).extra is not step.extra  # a new dict each
    assert step == Step(at_ms=5, kind="scene", event_type="scene_entered", scene_id=1,
                        scene_slug="s", scene_position=1)  # fmt: skip
    assert dataclasses.replace(step, at_ms=6).at_ms == 6
    assert list(inspect.signature(Step).parameters) == [f.name for f in dataclasses.fields(Step)]
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.at_ms = 7
    with pytest.raises(TypeError):
        Step(5, "scene")  # required fields stay required

    class WithPostInit:
        a: int

        def __post_init__(self):
            pass

    with pytest.raises(TypeError, match="__post_init__"):
        record(WithPostInit)
