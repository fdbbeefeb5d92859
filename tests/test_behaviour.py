"""The behaviour model (engine.behaviour) on the simulated clock: each property an analyst checks
holds at the defaults and fails with the part that makes it switched off (PLAIN_BEHAVIOUR, the
seed's model), with the contract intact (the mean rate, the outcome shares)."""

from __future__ import annotations

import json
import math
import random
import statistics
from collections import Counter, defaultdict
from dataclasses import fields, replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from synthetics.engine import GeneratorSettings
from synthetics.engine.behaviour import (
    BEHAVIOUR_RANGES,
    DEFAULT_BEHAVIOUR,
    PLAIN_BEHAVIOUR,
    TEXT_PARAMETERS,
    Behaviour,
    behaviour_problems,
    in_error_spell,
    intensity_weights,
    rate_factor,
    spell_multiplier,
)
from synthetics.engine.bouts import MEMORY_CAP, RecentSession, RecentSessions
from synthetics.engine.picking import is_night
from synthetics.engine.planning import DWELL_BOUNDS, dwell_ms, plan_journey
from synthetics.engine.population import ZONE_SHARES
from synthetics.engine.run import to_ms, window_session_count
from synthetics.engine.simulation import simulate_minutes
from synthetics.engine.types import SCENE_ERROR
from synthetics.services.scenario_files import SCHEMA_PATH
from tests.helpers import T0, K, realistic_pool, shipped_catalogue

CATALOGUE = shipped_catalogue()
POOL = realistic_pool(2000)
PLAIN_POOL = realistic_pool(2000, spread=PLAIN_BEHAVIOUR.engagement_spread)  # drawn at seeding
FLAT = GeneratorSettings(sessions_per_min=4, max_per_run=40, rhythm_strength=0.0)


def _week(behaviour: Behaviour, settings: GeneratorSettings = FLAT, *, days: int = 7, seed=3):
    return simulate_minutes(
        settings=settings,
        catalogue=replace(CATALOGUE, behaviour=behaviour),
        pool=PLAIN_POOL if behaviour is PLAIN_BEHAVIOUR else POOL,
        start=T0,
        minutes=days * 24 * 60,
        seed=seed,
        keep_starts=True,
    )


@pytest.fixture(scope="module")
def week():
    return _week(DEFAULT_BEHAVIOUR)


@pytest.fixture(scope="module")
def plain_week():
    return _week(PLAIN_BEHAVIOUR)


def _per_user(stats) -> Counter:
    return Counter(sim_user_id for sim_user_id, _ in stats.starts)


def _top_third_share(stats) -> float:
    seen = _per_user(stats)
    counts = sorted((seen.get(m.sim_user_id, 0) for m in POOL), reverse=True)
    return sum(counts[: len(counts) // 3]) / sum(counts)


@pytest.mark.slow
def test_a_few_users_carry_most_sessions_and_many_are_dormant(week, plain_week):
    # ~40,000 sessions over 2,000 users in a week. The top third's share of sessions and the share
    # of users with none are averages over 2,000 users: their sampling sd is about 0.01, so the
    # margins below (measured 0.92 against the plain model's 0.59, its spread coming from the
    # personas alone; 44 % without a session in the week against 0.2 %) are many sd. Real products: the top third
    # carries about 78 % of use (a16z power-user curve).
    assert _top_third_share(week) > 0.75
    assert _top_third_share(plain_week) < 0.7
    seen, plain_seen = _per_user(week), _per_user(plain_week)
    dormant = sum(1 for m in POOL if seen.get(m.sim_user_id, 0) == 0) / len(POOL)
    plain_dormant = sum(1 for m in PLAIN_POOL if plain_seen.get(m.sim_user_id, 0) == 0)
    assert dormant > 0.15 and plain_dormant / len(POOL) < 0.05


def _gaps_minutes(stats) -> dict[int, list[float]]:
    by_user = defaultdict(list)
    for sim_user_id, started in stats.starts:
        by_user[sim_user_id].append(started)
    gaps = {}
    for user, times in by_user.items():
        times.sort()
        gaps[user] = [
            (b - a) / timedelta(minutes=1) for a, b in zip(times, times[1:], strict=False)
        ]
    return gaps


def _median_cv(gaps: dict[int, list[float]]) -> float:
    """The median over users with at least 20 gaps of their gaps' coefficient of variation (each
    user's own: pooling users of different rates would give CV > 1 from the mix alone)."""
    return statistics.median(
        statistics.pstdev(g) / statistics.fmean(g) for g in gaps.values() if len(g) >= 20
    )


@pytest.mark.slow
def test_a_users_sessions_come_in_bouts(week, plain_week):
    # At a flat rate a user's sessions in the plain model are a thinned Poisson process: gaps
    # exponential, coefficient of variation 1 (burstiness 0). Bouts put many gaps near
    # bout_minutes and leave long quiet stretches: CV well above 1 (Goh and Barabasi 2008 measure
    # 1.5-4 for human activity). With ~38,000 gaps the CV's standard error is about 0.01-0.03.
    # (Each user's CV from 20+ gaps has a standard error near 0.2; the median over hundreds of
    # users is within a few hundredths of the users' typical CV, below 1 by the small-sample bias.)
    gaps, plain = _gaps_minutes(week), _gaps_minutes(plain_week)
    cv, plain_cv = _median_cv(gaps), _median_cv(plain)
    assert cv > 1.4, cv
    assert 0.8 < plain_cv < 1.1, plain_cv
    burstiness = (cv - 1) / (cv + 1)
    assert burstiness > 0.15
    gaps = [gap for user in gaps.values() for gap in user]
    plain = [gap for user in plain.values() for gap in user]
    # a session raises its user's chance of another within the hour: the share of gaps under an
    # hour is far above what the plain model's exponential gaps give
    soon = sum(1 for gap in gaps if gap < 60) / len(gaps)
    plain_soon = sum(1 for gap in plain if gap < 60) / len(plain)
    assert soon > 3 * plain_soon


def test_the_rate_is_overdispersed_and_correlated_with_the_long_run_mean_kept():
    # Hourly counts of a week of minutes at 10 a minute. Plain: Poisson, variance / mean 1 (sd of
    # that ratio over 168 hours about sqrt(2 / 168) = 0.11) and no autocorrelation (sd
    # 1 / sqrt(168) = 0.08). With the day and drift factor F: Var/mean = 1 + 600 Var(F) >> 1,
    # lag-1 autocorrelation near 1 (F drifts over hours).
    settings = GeneratorSettings(sessions_per_min=10, max_per_run=1000, rhythm_strength=1.0)

    def hourly(behaviour: Behaviour, seed: int) -> list[int]:
        counts = []
        for hour in range(168):
            total = 0
            for minute in range(60):
                start = T0 + timedelta(minutes=hour * 60 + minute)
                total += window_session_count(
                    settings=settings,
                    window_start=start,
                    window_end=start + timedelta(minutes=1),
                    rng=random.Random(f"{seed}:{hour}:{minute}"),
                    rhythm=None,
                    behaviour=behaviour,
                    seed=seed,
                )
            counts.append(total)
        return counts

    def dispersion_and_lag1(counts):
        mean = statistics.fmean(counts)
        var = statistics.pvariance(counts)
        lag = sum((a - mean) * (b - mean) for a, b in zip(counts, counts[1:], strict=False))
        return var / mean, lag / (len(counts) * var)

    dispersion, lag1 = dispersion_and_lag1(hourly(DEFAULT_BEHAVIOUR, 7))
    plain_dispersion, plain_lag1 = dispersion_and_lag1(hourly(PLAIN_BEHAVIOUR, 7))
    assert dispersion > 3 and lag1 > 0.5
    assert plain_dispersion < 1 + K * 0.11 and abs(plain_lag1) < K * 0.08
    # the factor has mean 1: over 400 seeds' days its mean is within K standard errors of 1
    # (sd of one day's mean factor at most sqrt(Var F) = 0.19)
    days = [
        statistics.fmean(
            rate_factor(DEFAULT_BEHAVIOUR, seed=seed, at_ms=to_ms(T0) + hour * 3_600_000)
            for hour in range(24)
        )
        for seed in range(400)
    ]
    assert abs(statistics.fmean(days) - 1) < K * 0.19 / math.sqrt(400)
    # and at rhythm_strength 0 the rate is the seed's flat one: no factor at all
    assert rate_factor(DEFAULT_BEHAVIOUR, seed=7, at_ms=to_ms(T0), strength=0.0) == 1.0


def _shares_by_segment(stats) -> dict[str, tuple[float, float, int]]:
    """(abandoned share, errored share, sessions) of the week's ended sessions by persona, by
    local night or day (engine.picking.is_night), and for all."""
    counts: dict[str, Counter] = defaultdict(Counter)
    for sim_user_id, started, status in stats.ended:
        member = stats.members[sim_user_id]
        night = is_night(member, to_ms(started))
        for segment in (member.persona, "night" if night else "day", "all"):
            counts[segment][status] += 1
    return {
        segment: (c["abandoned"] / c.total(), c["errored"] / c.total(), c.total())
        for segment, c in counts.items()
    }


def test_outcomes_differ_by_persona_tenure_and_hour_and_hold_overall(week, plain_week):
    # ~40,000 ended sessions of a week at 4 a minute (abandon_rate 0.15, error_rate 0.05). Given
    # the segment, a session abandons with its own rate, independently (a binomial over the
    # segment's n sessions: sd sqrt(p (1 - p) / n), the smallest segment, drifting, ~600
    # sessions: sd 0.017). A difference of two segments' shares has the sd of both combined; K sd
    # (tests.helpers: a false failure in 10^6) is the margin. Errors also carry the spells, the
    # same for every segment in the same minutes: their spread over the week (spell_share 0.02 of
    # 840 twelve-minute slots at ~9x the base) adds about 0.002 to an error share's sd.
    shares, plain = _shares_by_segment(week), _shares_by_segment(plain_week)

    def sd(p: float, n: int) -> float:
        return math.sqrt(p * (1 - p) / n)

    def clearly_above(high: str, low: str, which: int = 0, extra: float = 0.0) -> None:
        a, n_a = shares[high][which], shares[high][2]
        b, n_b = shares[low][which], shares[low][2]
        assert a - b > K * math.hypot(sd(a, n_a), sd(b, n_b), extra), (high, low, a, b)

    # abandon odds by persona (devoted 0.6 < regular 1 < casual 1.25 < drifting 1.6; newcomer 1.8)
    # (drifting has the fewest sessions: it is told from the devoted, whose odds are far apart)
    for high, low in (("regular", "devoted"), ("casual", "regular"), ("drifting", "devoted")):
        clearly_above(high, low)
    clearly_above("newcomer", "regular")
    clearly_above("night", "day")  # night sessions abandon more (night_abandon 1.4)
    # (errors, rarer, are told apart below, in a stretch with more of them)
    # the overall shares hold (binomial sd over all, and 10 % for the normalisers' approximation:
    # they weigh each segment by its share of the pool's activity, not of the week's sessions)
    abandoned, errored, n = shares["all"]
    assert abs(abandoned - 0.15) < K * sd(0.15, n) + 0.015, abandoned
    assert abs(errored - 0.05) < K * math.hypot(sd(0.05, n), 0.002) + 0.005, errored
    # the seed's model: every segment abandons and errs at the overall rate
    p_abandon, p_error, _ = plain["all"]
    for segment, (abandon, error, n) in plain.items():
        assert abs(abandon - p_abandon) < K * sd(p_abandon, n), (segment, abandon)
        assert abs(error - p_error) < K * math.hypot(sd(p_error, n), 0.002), (segment, error)


@pytest.mark.slow
def test_newcomers_sessions_fail_more():
    # Three days at 4 a minute with error_rate 0.2 (abandon 0.15): ~2,000 newcomer sessions
    # (newcomer_error 1.5: about 0.27) against ~15,000 settled ones (about 0.18). Each share is a
    # binomial given its segment; the spells raise both segments in the same minutes, so their
    # difference keeps only the binomial sds (0.010 and 0.003): the expected 0.09 is about 9 sd,
    # the margin K (4.9) sd. With newcomer_error 1 the difference is about 0.
    settings = replace(FLAT, error_rate=0.2)
    stats = _week(DEFAULT_BEHAVIOUR, settings, days=3, seed=4)
    failed: dict[bool, Counter] = defaultdict(Counter)
    for sim_user_id, _started, status in stats.ended:
        failed[stats.members[sim_user_id].persona == "newcomer"][status == "errored"] += 1
    (new, n_new), (settled, n_settled) = (
        (c[True] / c.total(), c.total()) for c in (failed[True], failed[False])
    )
    sd = math.hypot(
        math.sqrt(new * (1 - new) / n_new), math.sqrt(settled * (1 - settled) / n_settled)
    )
    assert new - settled > K * sd, (new, n_new, settled, n_settled)


def test_error_spells_raise_the_rate_for_minutes_and_keep_the_mean():
    behaviour = DEFAULT_BEHAVIOUR
    slots = [in_error_spell(behaviour, seed=5, at_ms=slot * 12 * 60_000) for slot in range(20_000)]
    share = sum(slots) / len(slots)
    # binomial share of 20,000 slots around spell_share: sd sqrt(0.02 x 0.98 / 20,000) = 0.001
    assert abs(share - behaviour.spell_share) < K * 0.001
    mean = share * spell_multiplier(behaviour, True) + (1 - share) * spell_multiplier(
        behaviour, False
    )
    assert abs(mean - 1) < 0.1
    assert spell_multiplier(behaviour, True) / spell_multiplier(behaviour, False) == 10.0
    assert not any(in_error_spell(PLAIN_BEHAVIOUR, seed=5, at_ms=s * 720_000) for s in range(500))


@pytest.mark.slow
def test_errors_cluster_in_time_and_the_overall_shares_hold():
    # A day at 10 a minute, flat, spells in 5 % of the slots: errors per 12-minute slot. Plain:
    # binomial counts, variance / mean about 1 - e (sd of that ratio over 120 slots about
    # sqrt(2 / 120) = 0.13). Spells: a slot in a spell errs at 10 x the base (~30 errors against
    # ~3): with 3 or more such slots, variance / mean is well above 2.
    settings = GeneratorSettings(sessions_per_min=10, max_per_run=60, rhythm_strength=0.0)
    spelled = replace(DEFAULT_BEHAVIOUR, spell_share=0.05)
    day_slots = [to_ms(T0) // 720_000 + slot for slot in range(120)]
    seed = next(  # the first seed whose day has 4 spells or more (Binomial(120, 0.05): mean 6)
        seed
        for seed in range(11, 100)
        if sum(in_error_spell(spelled, seed=seed, at_ms=s * 720_000) for s in day_slots) >= 4
    )

    def errors_per_slot(behaviour):
        stats = simulate_minutes(
            settings=settings,
            catalogue=replace(CATALOGUE, behaviour=behaviour),
            pool=PLAIN_POOL if behaviour is PLAIN_BEHAVIOUR else POOL,
            start=T0,
            minutes=24 * 60,
            seed=seed,
            keep_events=True,
        )
        slots = Counter(
            (event.at_ms - to_ms(T0)) // 720_000
            for event in stats.events
            if event.event_type == SCENE_ERROR
        )
        counts = [slots.get(slot, 0) for slot in range(120)]
        return statistics.pvariance(counts) / statistics.fmean(counts), stats

    clustered, stats = errors_per_slot(spelled)
    plain, _ = errors_per_slot(PLAIN_BEHAVIOUR)
    assert clustered > 2.0 and plain < 1 + K * 0.13, (clustered, plain)
    finished = sum(stats.outcomes.values())
    for outcome, rate in (("errored", 0.05), ("abandoned", 0.15)):
        # binomial sd, plus the spells' own spread of the error share over 120 slots
        # (engine.expectations) and a 10 % allowance for the segments' normalisers
        seen = stats.outcomes[outcome] / finished
        sd = math.sqrt(rate * (1 - rate) / finished)
        if outcome == "errored":
            base = spell_multiplier(spelled, False)
            sd = math.hypot(sd, rate * base * 9 * math.sqrt(0.05 * 0.95 / 120))
        assert abs(seen - rate) < K * sd + 0.1 * rate, (outcome, seen)


def test_each_scene_has_its_own_spread_and_no_visible_floor_or_ceiling():
    rng = random.Random(1)
    template = next(t for t in CATALOGUE.templates if t.slug == "writers-unblock")
    spreads = {}
    for scene in template.scenes:
        visits = [dwell_ms(rng, scene) / 1000 for _ in range(4000)]
        logs = [math.log(v) for v in visits]
        spreads[scene.slug] = statistics.pstdev(logs)
        # no pile-up: the smallest and largest values are each taken once (a clamp would repeat
        # them), and every visit is inside the bounds
        low, high = min(visits), max(visits)
        assert visits.count(low) == 1 and visits.count(high) == 1
        assert scene.dwell_median_seconds * DWELL_BOUNDS[0] <= low
        assert high <= scene.dwell_median_seconds * DWELL_BOUNDS[1]
    # the log-sd of 4,000 draws has a standard error of sigma / sqrt(8,000) < 0.015: scenes whose
    # spreads differ by more than 0.1 are told apart
    assert max(spreads.values()) - min(spreads.values()) > 0.1, spreads


def test_abandoned_sessions_include_bounces_of_a_few_seconds():
    rng = random.Random(2)
    settings = GeneratorSettings(abandon_rate=1.0, error_rate=0.0)
    template = CATALOGUE.templates[0]
    plans = [
        plan_journey(
            rng,
            template=template,
            catalogue=CATALOGUE,
            settings=settings,
            persona="regular",
            start_ms=0,
        )
        for _ in range(4000)
    ]
    short = sum(1 for plan in plans if plan.end_ms < 30_000) / len(plans)
    # bounce_share 0.35 of them last 0.3 s + Exp(6 s): nearly all under 30 s; binomial sd of the
    # share over 4,000 plans is under 0.008
    assert short > DEFAULT_BEHAVIOUR.bounce_share - K * 0.008


def test_time_zones_follow_where_people_live():
    pool = realistic_pool(6000)
    us = [m.timezone for m in pool if m.locale == "en_US"]
    for zone in ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"):
        share = us.count(zone) / len(us)
        expected = ZONE_SHARES[zone]
        assert abs(share - expected) < K * math.sqrt(expected * (1 - expected) / len(us)), zone


def test_sign_ups_live_where_people_are_awake():
    # A sign-up's place (population.signup_place) is drawn by population share x the newcomers'
    # rhythm at its local time. Over moments every 7 minutes of a week (1,440), one draw each:
    # the share of sign-ups at local 00:00-06:00 is a binomial of mean q, q the mean over the
    # moments of the night places' weight over all places' (computed here from rhythm.local_factor
    # alone); sd sqrt(q (1 - q) / n). The shipped rhythm sleeps at night: q well below a quarter.
    # At strength 0 (or with the place drawn regardless of the time) every place spends a quarter
    # of the week's moments at night: q = 1/4.
    from synthetics.engine.population import PLACES, signup_place
    from synthetics.engine.rhythm import country_of, local_factor, persona_profile

    profile = persona_profile(CATALOGUE.rhythms, "newcomer")
    moments = [T0 + timedelta(minutes=7 * i) for i in range(1440)]

    def night(zone: str, moment) -> bool:
        from synthetics.engine.rhythm import zone_of

        return moment.astimezone(zone_of(zone)).hour < 6

    def expected(strength: float) -> float:
        total = 0.0
        for moment in moments:
            weights = {
                (locale, zone): share
                * (1 - strength + strength * local_factor(
                    profile, zone=zone, country=country_of(locale), moment=moment
                ))
                for locale, zone, share in PLACES
            }  # fmt: skip
            total += sum(w for (_, z), w in weights.items() if night(z, moment)) / sum(
                weights.values()
            )
        return total / len(moments)

    for strength in (1.0, 0.0):
        rng = random.Random(5)
        drawn = [
            night(signup_place(rng, moment=m, profile=profile, strength=strength)[1], m)
            for m in moments
        ]
        share, q = sum(drawn) / len(drawn), expected(strength)
        assert abs(share - q) < K * math.sqrt(q * (1 - q) / len(drawn)), (strength, share, q)
        if strength:
            assert q < 0.1, q  # people are awake when they sign up (q about 0.015 here)
        else:
            assert abs(q - 0.25) < 0.01, q


def test_mindblock_intensity_peaks_at_each_types_own_level():
    modes = set()
    for mindblock in CATALOGUE.mindblocks:
        weights = intensity_weights(DEFAULT_BEHAVIOUR, mindblock.slug)
        assert abs(sum(weights) - 1) < 1e-12
        mode = max(range(5), key=lambda i: weights[i]) + 1
        modes.add(mode)
        assert weights[mode - 1] > 0.4  # peaked: a uniform spread gives each level 0.2
    assert len(modes) > 1  # types differ
    assert intensity_weights(PLAIN_BEHAVIOUR, "x") == (0.2,) * 5


def test_behaviour_parameters_are_checked_one_message_each():
    assert behaviour_problems({"bout_share": 0.3}) == []
    problems = behaviour_problems(
        {"bout_share": 2, "spell_minutes": 1.5, "nope": 1, "day_spread": "x", "lapsed_share": True}
    )
    assert len(problems) == 5
    assert any("behaviour.nope" in p for p in problems)
    assert behaviour_problems([1]) != []
    assert Behaviour.from_json({"bout_share": 0.1}).bout_share == 0.1
    with pytest.raises(ValueError):
        Behaviour.from_json({"nope": 1})


def test_a_scenario_sets_the_behaviour_and_a_bad_one_changes_nothing(db):
    from datetime import UTC, datetime
    from pathlib import Path

    from synthetics.models import SyntheticSettings
    from synthetics.selectors.run_inputs import behaviour_load, catalogue_load
    from synthetics.services.scenarios import scenario_export, scenario_import, scenario_loads

    now = datetime(2026, 1, 9, 12, tzinfo=UTC)
    path = Path(__file__).resolve().parent.parent / "scenarios" / "b2b-office-hours.yaml"
    document = scenario_loads(path.read_text())
    scenario_import(document, now=now)
    # the file's parameters reach every run through the catalogue; only non-defaults are stored
    assert catalogue_load().behaviour.bout_minutes == 60.0
    assert behaviour_load().engagement_spread == document["behaviour"]["engagement_spread"]
    assert "spell_factor" not in SyntheticSettings.objects.get().behaviour
    assert scenario_export()["behaviour"] == document["behaviour"]
    # a bad parameter is refused with its path, and nothing changes
    bad = {**document, "behaviour": {**document["behaviour"], "bout_share": 5}}
    with pytest.raises(Exception) as refused:
        scenario_import(bad, now=now)
    assert "bout_share" in str(getattr(refused.value, "detail", refused.value))
    assert behaviour_load().bout_share == document["behaviour"]["bout_share"]
    # a scenario without the section takes the defaults
    scenario_import({k: v for k, v in document.items() if k != "behaviour"}, now=now)
    assert behaviour_load() == DEFAULT_BEHAVIOUR


@pytest.mark.django_db
def test_a_sign_up_is_the_start_of_a_first_session_that_nobody_else_runs():
    from datetime import UTC, datetime

    from synthetics.models import Journey, JourneySceneEvent, SimUser, SyntheticSettings
    from synthetics.services import activity_backfill, sim_users_seed

    now = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)
    sim_users_seed(count=60, seed=3, today=now.date())
    SyntheticSettings.objects.filter(pk=1).update(
        signups_per_day=2880, churn_per_month=1.0, sessions_per_min=4, max_per_run=20
    )
    activity_backfill(hours=1, now=now, seed=4)
    joined = list(SimUser.objects.filter(joined_at__isnull=False).select_related("user"))
    assert len(joined) > 60  # ~2 a minute for an hour (Poisson(120 x the evening's rhythm))
    on_the_minute = 0
    for sim_user in joined:
        # the account's join time is the simulated sign-up, the start of its first session
        assert sim_user.user.date_joined == sim_user.joined_at
        first = Journey.objects.filter(sim_user=sim_user).order_by("started_at").first()
        assert first is not None and first.started_at == sim_user.joined_at
        assert first.template.slug == "first-steps"
        assert not JourneySceneEvent.objects.filter(
            user_id=sim_user.user_id, created_at__lt=sim_user.joined_at
        ).exists()
        on_the_minute += sim_user.joined_at.second == 0 and sim_user.joined_at.microsecond == 0
    # a moment drawn to the millisecond lands on a whole minute with chance 1 / 60,000
    assert on_the_minute <= 1
    # onboarding happens once, and only to a newcomer
    onboarded = Journey.objects.filter(template__slug="first-steps")
    assert onboarded.filter(sim_user__joined_at__isnull=True).count() == 0
    assert onboarded.count() == len({j.sim_user_id for j in onboarded})
    # seeded accounts joined on their sign-up day at a time of day, never the wall clock's now
    for sim_user in SimUser.objects.filter(joined_at__isnull=True).select_related("user")[:20]:
        joined_day = sim_user.user.date_joined.date()
        assert abs((joined_day - sim_user.signup_date).days) <= 1
        assert sim_user.user.date_joined < now
    # each account's last login is the start of its latest session (none: never logged in)
    from django.db.models import Max

    latest = dict(
        Journey.objects.values("user_id")
        .annotate(last=Max("started_at"))
        .values_list("user_id", "last")
    )
    for sim_user in SimUser.objects.select_related("user"):
        assert sim_user.user.last_login == latest.get(sim_user.user_id), sim_user.user_id
        churned = list(
            SimUser.objects.filter(churned_at__isnull=False).values_list("churned_at", flat=True)
        )
    assert sum(1 for t in churned if t.second == 0 and t.microsecond == 0) <= 1


@pytest.mark.slow
def test_newcomers_come_back_less_and_less_like_a_real_retention_curve():
    # Five days with 300 sign-ups a day over 2,000 users at 4 a minute: of the sign-ups of the
    # first day and a half (~450), the share with a session on day 1 and on day 3 after signing
    # up. Binomial over ~450: sd below 0.025. The defaults keep newcomer_stay (12 %) and make the others come
    # back at (1 + age / 0.25 d) ^ -1.1: day 1 far above day 3. With everyone staying (the seed's
    # model) day 3 is more than twice as high (the pool grows by 75 % at a fixed rate, so even then
    # each user's share of the sessions falls a little from day 1 to day 3).
    settings = GeneratorSettings(
        sessions_per_min=4, max_per_run=40, rhythm_strength=0.0, signups_per_day=300
    )

    def retention(behaviour: Behaviour) -> tuple[float, float]:
        stats = simulate_minutes(
            settings=settings,
            catalogue=replace(CATALOGUE, behaviour=behaviour),
            pool=POOL,
            start=T0,
            minutes=5 * 24 * 60,
            seed=8,
            keep_starts=True,
        )
        starts = defaultdict(list)
        for sim_user_id, started in stats.starts:
            starts[sim_user_id].append(to_ms(started))
        cohort = [
            m
            for m in stats.members.values()
            if m.joined_ms is not None and m.joined_ms < to_ms(T0) + 36 * 3_600_000
        ]
        assert len(cohort) > 300

        def back(day: int) -> float:
            low, high = day * 86_400_000, (day + 1) * 86_400_000
            return sum(
                1
                for m in cohort
                if any(low <= t - m.joined_ms < high for t in starts[m.sim_user_id])
            ) / len(cohort)

        return back(1), back(3)

    d1, d3 = retention(DEFAULT_BEHAVIOUR)
    # (measured 0.23 and 0.16: falling, and by day 3 mostly the stayers)
    assert d1 > d3 and d3 < 0.2, (d1, d3)
    kept_d1, kept_d3 = retention(replace(DEFAULT_BEHAVIOUR, newcomer_stay=1.0))
    assert kept_d3 > 2 * d3 and kept_d1 > d1, (kept_d1, kept_d3, d1, d3)


def test_the_scenario_schema_states_every_behaviour_parameter_its_range_and_default():
    section = json.loads(SCHEMA_PATH.read_text())["properties"]["behaviour"]
    names = [f.name for f in fields(Behaviour)]
    assert list(section["properties"]) == names
    assert section["additionalProperties"] is False
    for name in names:
        stated = section["properties"][name]
        assert stated["default"] == getattr(DEFAULT_BEHAVIOUR, name), name
        if name in TEXT_PARAMETERS:
            assert stated["maxLength"] == TEXT_PARAMETERS[name], name
        else:
            assert (stated["minimum"], stated["maximum"]) == BEHAVIOUR_RANGES[name], name


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(
                st.just("add"),
                st.lists(st.sampled_from(["newcomer", "casual", "devoted", ""]), max_size=40),
            ),
            st.tuples(st.just("forget"), st.integers(min_value=0, max_value=400)),
        ),
        max_size=30,
    )
)
def test_the_remembered_sessions_count_their_personas_as_they_are_added_and_forgotten(steps):
    # whatever the adds, forgets and the cap drop, the counts are those of the sessions remembered
    memory = RecentSessions(1.0)  # a minute's bout: forgetting by time is easy to reach
    clock = 0
    for kind, value in steps:
        if kind == "add":
            sessions = []
            for persona in value:
                clock += 7
                sessions.append(RecentSession(clock, clock, clock % 97, False, persona))
            memory.add(sessions)
        else:
            memory.forget_before(clock - value)
        remembered = Counter(session.persona for session in memory._items[memory._first :])
        shares = memory.persona_shares(1)
        if not remembered:
            assert shares is None
        else:
            total = sum(remembered.values())
            assert shares == {p: n / total for p, n in remembered.items()}
    assert memory.persona_shares(len(memory) + 1) is None


def test_the_cap_forgets_the_oldest_sessions_personas():
    memory = RecentSessions(60.0)
    memory.add(RecentSession(i, i, i, False, "devoted") for i in range(50))
    memory.add(RecentSession(50 + i, 50 + i, i, False, "casual") for i in range(MEMORY_CAP))
    assert len(memory) == MEMORY_CAP and memory.persona_shares(1) == {"casual": 1.0}


@hypothesis_settings(max_examples=60, deadline=None)
@given(
    weights=st.lists(st.floats(0.1, 5.0), min_size=1, max_size=6),
    offsets_ms=st.lists(st.integers(0, 40 * 7 * 24 * 3_600_000), min_size=1, max_size=8),
    lapse_weeks=st.sampled_from([0.5, 1.0, 3.0]),
    lapsed_activity=st.sampled_from([0.0, 0.005, 0.5]),
)
def test_activity_now_remembered_is_the_calendar_computed(
    weights, offsets_ms, lapse_weeks, lapsed_activity
):
    """picking.activity_now remembers each member's calendar of periods by sim user id: the same
    factors as lapse_period and lapse_factor computed afresh, for any time, for a member replaced
    under the same id (another weight: another key), and for another behaviour."""
    from synthetics.engine.behaviour import lapse_factor, lapse_period
    from synthetics.engine.picking import activity_now, member_key
    from synthetics.engine.types import PoolMember

    start_ms = 1_767_225_600_000  # 2026-01-01
    behaviours = [
        DEFAULT_BEHAVIOUR,
        replace(DEFAULT_BEHAVIOUR, lapse_weeks=lapse_weeks, lapsed_activity=lapsed_activity),
    ]
    for behaviour in behaviours + behaviours[::-1]:
        for weight in weights:  # each weight a new member under sim user id 7
            member = PoolMember(7, 7, "regular", weight, "Asia/Tokyo", "ja_JP")
            key = member_key(member)
            for offset in offsets_ms:
                at_ms = start_ms + offset
                period, _ = lapse_period(behaviour, key=key, at_ms=at_ms)
                expected = lapse_factor(behaviour, key=key, period=period)
                assert activity_now(behaviour, member, at_ms) == expected
