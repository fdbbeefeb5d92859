"""The daily and weekly rhythm in each user's local time, on the simulated clock (no database).

Every bound is derived from the distribution under test; Z = 4.89 standard errors is a one-in-a-
million false failure per bound for a normal approximation (tests/helpers.py).
"""

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import accumulate

import pytest

from synthetics.engine import PoolMember, PoolRhythm, RhythmProfile
from synthetics.engine.rhythm import local_factor, normalised
from synthetics.engine.run import capped_poisson_mean, expected_sessions
from synthetics.engine.simulation import simulate_minutes
from tests.helpers import realistic_pool, shipped_catalogue, shipped_settings

Z = 4.89
MONDAY = datetime(
    2026, 3, 2, tzinfo=UTC
)  # a week with no public holiday in the shipped locales' big markets
WEEK = 7 * 24 * 60
MINUTE = timedelta(minutes=1)
FLAT = RhythmProfile("flat", "", tuple([1.0] * 24), tuple([1.0] * 7), 1.0)


@cache
def _week():
    """A simulated week at the shipped defaults over a pool drawn like the seeded one."""
    pool = realistic_pool()
    catalogue = shipped_catalogue()
    settings = shipped_settings()
    stats = simulate_minutes(
        settings=settings,
        catalogue=catalogue,
        pool=pool,
        start=MONDAY,
        minutes=WEEK,
        seed=20260109,
        keep_events=True,
    )
    return pool, catalogue, settings, stats


def _session_starts(stats):
    """(start time, sim user id) of every session: its first scene event (step 0)."""
    return [
        (event.created_at, event.user_id)
        for event in stats.events
        if event.kind == "scene" and event.payload["step"] == 0
    ]


# --- the profile itself -------------------------------------------------------------------------


def test_each_shipped_profile_averages_one_over_a_week():
    for profile in shipped_catalogue().rhythms:
        shaped = normalised(profile)
        week = [
            local_factor(
                shaped, zone="UTC", country="XX", moment=MONDAY + hour * timedelta(hours=1)
            )
            for hour in range(7 * 24)
        ]
        assert sum(week) / len(week) == pytest.approx(1.0, abs=1e-12), profile.slug


def test_strength_zero_is_the_flat_rate_and_one_the_full_profile():
    pool = [PoolMember(1, 1, "regular", 1.0, "Europe/Berlin", "de_DE")]
    rhythm = PoolRhythm(pool, shipped_catalogue().rhythms)
    night, evening = (
        datetime(2026, 3, 4, 2, 30, tzinfo=UTC),
        datetime(2026, 3, 4, 19, 30, tzinfo=UTC),
    )
    assert rhythm.rate(night, strength=0) == rhythm.rate(evening, strength=0) == 1.0
    full_night, full_evening = rhythm.rate(night, strength=1), rhythm.rate(evening, strength=1)
    assert full_night < 0.1 < 2 < full_evening
    half = rhythm.rate(night, strength=0.5)
    assert half == pytest.approx(0.5 + 0.5 * full_night)


def test_a_public_holiday_damps_the_users_of_that_country_only():
    everyday = next(r for r in shipped_catalogue().rhythms if r.persona == "")
    pool = [
        PoolMember(1, 1, "regular", 1.0, "America/New_York", "en_US"),
        PoolMember(2, 2, "regular", 1.0, "Europe/London", "en_GB"),
    ]
    rhythm = PoolRhythm(pool, [everyday])
    # Saturday 4 July 2026 (US Independence Day) against Saturday 11 July, same UTC instant
    holiday, ordinary = datetime(2026, 7, 4, 16, tzinfo=UTC), datetime(2026, 7, 11, 16, tzinfo=UTC)
    us_holiday, gb_holiday = rhythm.user_weights(holiday, strength=1)
    us_ordinary, gb_ordinary = rhythm.user_weights(ordinary, strength=1)
    assert us_holiday == pytest.approx(us_ordinary * everyday.holiday_factor)
    assert gb_holiday == pytest.approx(gb_ordinary)


@pytest.mark.parametrize(
    ("day", "local_hours"),
    [
        # 29 March 2026 in Berlin: 02:00 CET becomes 03:00 CEST — local hour 2 does not happen
        (datetime(2026, 3, 29, tzinfo=UTC), [1, 3, *range(4, 24), 0, 1]),
        # 25 October 2026: 03:00 CEST becomes 02:00 CET — local hour 2 happens twice
        (datetime(2026, 10, 25, tzinfo=UTC), [2, 2, *range(3, 24), 0]),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_a_daylight_saving_change_neither_drops_nor_doubles_an_hour(day, local_hours):
    """Every UTC hour of the day gets one factor: the local hour the user's clock shows then."""
    hourly = tuple(float(hour + 1) for hour in range(24))  # the weight says which hour was used
    profile = RhythmProfile("clock", "", hourly, tuple([1.0] * 7), 1.0)
    shaped = normalised(profile)
    scale = sum(hourly) / 24
    seen = [
        round(
            local_factor(
                shaped,
                zone="Europe/Berlin",
                country="DE",
                moment=day + timedelta(hours=h, minutes=30),
            )
            * scale
        )
        - 1
        for h in range(24)
    ]
    assert seen == local_hours
    # and the generator's rate is defined at every UTC minute of the day, one value each
    rhythm = PoolRhythm([PoolMember(1, 1, "regular", 1.0, "Europe/Berlin", "de_DE")], [profile])
    rates = [rhythm.rate(day + m * MINUTE, strength=1) for m in range(24 * 60)]
    assert len(rates) == 24 * 60 and all(rate > 0 for rate in rates)


# --- a simulated week at the defaults -----------------------------------------------------------


def test_sessions_at_night_in_the_users_own_time_are_far_below_a_flat_share():
    pool, catalogue, settings, stats = _week()
    zones = {member.user_id: member.timezone for member in pool}
    starts = _session_starts(stats)
    night = sum(
        1 for moment, user_id in starts if 1 <= moment.astimezone(_zone(zones[user_id])).hour < 5
    )
    share = night / len(starts)
    # Flat would be 4/24 = 1/6. The shipped profiles give local 01:00-05:00 about 1 % of a day's
    # weight; the behaviour model's bouts add returns soon after late-evening sessions (a return
    # comes bout_minutes, 40, after a session on average, whatever the hour), so the share is
    # about 4 % (measured 0.040, 0.045 and 0.046 at three seeds). With n ~ 19,000 sessions the
    # binomial sd at p = 0.046 is 0.0015; bouts pair sessions (a design effect of about 2): sd
    # 0.0021, and a third of the flat share (0.056) is K (4.9) sd above the highest measured. A
    # flat rhythm gives about 1/6 and fails it by 50 sd.
    assert share < (1 / 6) / 3, share
    assert night > 0  # not a hard zero: people do open the app at night


def test_the_busiest_utc_hour_has_at_least_twice_the_sessions_of_the_quietest():
    _pool, _catalogue, _settings, stats = _week()
    by_hour = Counter(moment.hour for moment, _ in _session_starts(stats))
    quietest, busiest = min(by_hour.values()), max(by_hour.values())
    # Expected from R at the defaults: the quietest UTC hour ~0.68 x and the busiest ~1.65 x the
    # mean of 2/min (capped at 5), i.e. ~560 and ~1,200 sessions over a week (Poisson sd ~24 and
    # ~35): a ratio under 2 needs a 5-sd deviation.
    assert busiest >= 2 * quietest, by_hour


def test_the_weeks_total_is_the_computed_expectation_less_what_the_cap_trims():
    pool, catalogue, settings, stats = _week()
    rhythm = PoolRhythm(pool, catalogue.rhythms)
    expected = expected_sessions(settings=settings, rhythm=rhythm, start=MONDAY, minutes=WEEK)
    # sessions_per_min stays the long-run mean: the uncapped expectation is the flat week's
    assert expected.uncapped == pytest.approx(settings.sessions_per_min * WEEK, rel=0.01)
    # each minute is min(Poisson(2R), 5): a variance of at most 2R, so at most 2 x minutes in all
    standard_error = math.sqrt(settings.sessions_per_min * WEEK * 1.7)
    # sessions a minute asks for but cannot start (no idle user) are negligible with 3,000 users
    assert abs(stats.sessions - expected.capped) <= Z * standard_error, (
        stats.sessions,
        expected,
    )
    assert 0 < expected.trimmed_share < 0.1


def test_weekend_and_weekday_differ_as_the_profile_says():
    pool, catalogue, settings, stats = _week()
    rhythm = PoolRhythm(pool, catalogue.rhythms)
    weekend_expected = weekday_expected = 0.0
    for minute in range(WEEK):
        moment = MONDAY + minute * MINUTE
        mean = capped_poisson_mean(
            settings.sessions_per_min * rhythm.rate(moment + MINUTE / 2, strength=1),
            settings.max_per_run,
        )
        if moment.weekday() >= 5:
            weekend_expected += mean
        else:
            weekday_expected += mean
    weekend = sum(1 for moment, _ in _session_starts(stats) if moment.weekday() >= 5)
    total = len(_session_starts(stats))
    share_expected = weekend_expected / (weekend_expected + weekday_expected)
    # binomial share of n sessions
    assert abs(weekend / total - share_expected) <= Z * math.sqrt(
        share_expected * (1 - share_expected) / total
    )


def test_each_persona_keeps_its_own_weekend_in_its_own_time_zone():
    pool, catalogue, _settings, stats = _week()
    members = {member.user_id: member for member in pool}
    profiles = {profile.persona: profile for profile in catalogue.rhythms}
    counts: dict[str, list[int]] = {}
    for moment, user_id in _session_starts(stats):
        member = members[user_id]
        profile = profiles.get(member.persona, profiles[""])
        local = moment.astimezone(_zone(member.timezone))
        weekend, total = counts.setdefault(profile.slug, [0, 0])
        counts[profile.slug] = [weekend + (local.weekday() >= 5), total + 1]
    for profile in catalogue.rhythms:
        weekend, total = counts[profile.slug]
        # The profile's own weekend share: its weekend weights over the week's (the hourly shape
        # multiplies every day alike); flat would be 2/7. Binomial standard error at n sessions.
        expected = sum(profile.weekly[5:]) / sum(profile.weekly)
        error = Z * math.sqrt(expected * (1 - expected) / total)
        # + 0.01: max_per_run trims the busiest minutes (a few % of sessions: the test above), which
        # can move a share by at most that much
        assert abs(weekend / total - expected) <= error + 0.01, (profile.slug, weekend, total)
        if expected > 2 / 7 + error:  # evenings-and-weekends: busier at the weekend
            assert weekend / total > 2 / 7
        if expected < 2 / 7 - error:  # everyday: quieter at the weekend
            assert weekend / total < 2 / 7


def test_the_seeds_five_minute_check_answers_more_than_zero_at_every_hour_of_the_week():
    _pool, _catalogue, _settings, stats = _week()
    scene_times = sorted(e.created_at for e in stats.events if e.kind == "scene")
    import bisect

    for hour in range(1, 7 * 24 + 1):
        now = MONDAY + timedelta(hours=hour)
        recent = bisect.bisect_right(scene_times, now) - bisect.bisect_right(
            scene_times, now - timedelta(minutes=5)
        )
        # The quietest R is ~0.67: 1.3 sessions a minute; no scene event in the 5 minutes needs no
        # session started in the ~9 minutes before (a journey writes for ~4.5): P <= e^-12 each,
        # <= 1e-3 over the 168 checks.
        assert recent > 0, now


@cache
def _zone(name):
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)


def test_factors_reused_within_a_quarter_hour_are_exactly_the_ones_computed_each_minute():
    """PoolRhythm computes its groups' factors once per UTC quarter hour: exact, because every zone's
    offset is a whole number of quarter hours (Kathmandu +5:45, Lord Howe's half-hour daylight
    saving, Chatham +12:45 included), so no local hour, weekday or date changes inside one."""
    catalogue = shipped_catalogue()
    zones = ("Asia/Kathmandu", "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kolkata")
    pool = [
        PoolMember(i, i, persona, 1.0, zone, "en_IN")
        for i, (zone, persona) in enumerate(
            ((z, p) for z in zones for p in ("devoted", "regular", "casual")), start=1
        )
    ]
    rates, weights = PoolRhythm(pool, catalogue.rhythms), PoolRhythm(pool, catalogue.rhythms)
    start = datetime(2026, 4, 4, 12, tzinfo=UTC)  # Lord Howe and Chatham leave daylight saving
    for step in range(2 * 24 * 60):
        moment = start + step * MINUTE + timedelta(seconds=step % 60)
        fresh = PoolRhythm(pool, catalogue.rhythms)  # nothing cached
        assert rates.rate(moment, strength=0.8) == fresh.rate(moment, strength=0.8)
        assert weights.user_weights(moment, strength=1.0) == fresh.user_weights(
            moment, strength=1.0
        )
        assert list(weights.cumulative_weights(moment, strength=1.0)) == list(
            accumulate(fresh.user_weights(moment, strength=1.0))
        )


def test_a_rhythm_grown_by_sign_ups_is_the_rhythm_built_afresh():
    # PoolRhythm.grown (a pool with members appended: the simulator's and history's sign-ups) gives
    # the very floats a fresh build gives, for every minute's rate and every user's weight
    from dataclasses import replace as changed

    from synthetics.engine.pool import Pool
    from synthetics.engine.rhythm import PoolRhythm
    from tests.helpers import realistic_pool, shipped_catalogue

    rhythms = shipped_catalogue().rhythms
    members = realistic_pool(600)
    pool = Pool.of(members[:400])
    rhythm = PoolRhythm(pool, rhythms)
    rhythm.index_of()  # asked before it grows
    joined = [changed(m, persona="newcomer") for m in members[400:]]
    after = pool.changed(appended=joined)  # as engine.lifecycle.pool_changed makes it
    grown, fresh = rhythm.grown(after), PoolRhythm(list(after), rhythms)
    assert after.shares_names(pool)  # so grown adds the 200 to the groups it has
    moment = datetime(2026, 3, 2, 19, 7, tzinfo=UTC)
    for strength in (0.0, 0.6, 1.0):
        assert grown.rate(moment, strength=strength) == fresh.rate(moment, strength=strength)
        assert list(grown.user_weights(moment, strength=strength)) == list(
            fresh.user_weights(moment, strength=strength)
        )
        assert list(grown.cumulative_weights(moment, strength=strength)) == list(
            fresh.cumulative_weights(moment, strength=strength)
        )
    assert grown.newcomer_share == fresh.newcomer_share > 0
    assert grown.index_of() == fresh.index_of()
    # grown from a rhythm that made its factors, user weights and running sums for this quarter
    # hour (at an earlier minute of it): it keeps and extends them, the same floats as a fresh build
    later = moment.replace(minute=14, second=59)
    for strength in (0.0, 0.6, 1.0):
        warm = PoolRhythm(pool, rhythms)
        warm.cumulative_weights(moment, strength=strength)
        warm.cumulative_weights(moment, strength=0.0)
        grown_warm = warm.grown(after)
        assert strength == 0 or grown_warm._cumulative is not None  # carried over, extended
        assert list(grown_warm.cumulative_weights(later, strength=strength)) == list(
            fresh.cumulative_weights(later, strength=strength)
        )
        assert list(grown_warm.user_weights(later, strength=strength)) == list(
            fresh.user_weights(later, strength=strength)
        )
        assert grown_warm.rate(later, strength=strength) == fresh.rate(later, strength=strength)
        assert list(grown_warm.cumulative_weights(later, strength=0.0)) == list(
            fresh.cumulative_weights(later, strength=0.0)
        )
        assert grown_warm.persona_shares == fresh.persona_shares
    # the rhythm it grew from is unchanged
    assert rhythm.rate(moment, strength=1.0) == PoolRhythm(pool, rhythms).rate(moment, strength=1.0)
    # a pool that is not this one grown is built afresh
    other = members[200:]
    assert rhythm.grown(other).index_of() == PoolRhythm(other, rhythms).index_of()
