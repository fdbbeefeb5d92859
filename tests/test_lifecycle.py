"""Sign-ups and churn: counts follow the settings, newcomers settle into a persona, churned users
write nothing after they churn. Bounds derived from the distributions (Z = 4.89: one in a million)."""

import math
import random
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from synthetics.engine import GeneratorSettings, PoolMember
from synthetics.engine.lifecycle import churn_hazard, churned, signups_due
from synthetics.models import Journey, JourneySceneEvent, SimUser, SyntheticRun, SyntheticSettings
from synthetics.services import activity_backfill, sim_users_seed

Z = 4.89
TODAY = date(2026, 3, 2)


def test_signups_per_window_are_poisson_at_the_setting():
    settings = GeneratorSettings(signups_per_day=720)  # half a sign-up a minute
    rng = random.Random("signups")
    counts = [signups_due(settings=settings, minutes=1, rng=rng) for _ in range(20_000)]
    # Poisson(0.5): mean 0.5, variance 0.5; the mean of n draws has standard error sqrt(0.5 / n)
    assert abs(sum(counts) / len(counts) - 0.5) <= Z * math.sqrt(0.5 / len(counts))
    assert signups_due(settings=GeneratorSettings(), minutes=60, rng=rng) == 0


def _pool(size):
    # a third of the pool signed up in the last two weeks, the rest a year ago
    return [
        PoolMember(
            i, i, "regular", 1.0, signup_date=TODAY - timedelta(days=i % 14 if i % 3 == 0 else 365)
        )
        for i in range(1, size + 1)
    ]


@pytest.mark.slow
def test_churn_counts_follow_the_setting_and_hit_newer_users_harder():
    settings = GeneratorSettings(churn_per_month=1.8)
    pool = _pool(3000)
    rng = random.Random("churn")
    draws = [
        churned(settings=settings, pool=pool, busy=set(), minutes=60, today=TODAY, rng=rng)
        for _ in range(400)
    ]
    mean = 1.8 * len(pool) * 60 / (30 * 24 * 60)  # 7.5 a window: Poisson, variance = mean
    counts = [len(draw) for draw in draws]
    assert abs(sum(counts) / len(counts) - mean) <= Z * math.sqrt(mean / len(counts))
    # who leaves: weight churn_hazard(age); the young third carries most of the hazard
    young = sum(1 for draw in draws for member in draw if (TODAY - member.signup_date).days < 14)
    total = sum(counts)
    weights = [churn_hazard((TODAY - m.signup_date).days) for m in pool]
    expected = sum(
        w for w, m in zip(weights, pool, strict=True) if (TODAY - m.signup_date).days < 14
    )
    share = expected / sum(weights)
    assert share > 0.5 > 1 / 3  # the young third is more than half of the churn ...
    # ... observed as a binomial share of the churned (draws without replacement inside a window
    # only narrow it)
    assert abs(young / total - share) <= Z * math.sqrt(share * (1 - share) / total)


def test_each_departure_is_drawn_by_weight_among_the_idle_users_not_drawn_yet():
    # churned draws by rejection (a uniform member kept with chance weight / bound); a window with
    # one departure picks each idle member with chance churn_hazard(age) / (sum over idle members)
    settings = GeneratorSettings(churn_per_month=40.0)
    pool = [
        PoolMember(i, i, "regular", 1.0, signup_date=TODAY - timedelta(days=age))
        for i, age in enumerate((0, 3, 10, 30, 400, 1, 2), start=1)
    ]
    busy = {6, 7}  # the two youngest but one are busy: never drawn
    idle = [m for m in pool if m.sim_user_id not in busy]
    weights = {m.sim_user_id: churn_hazard((TODAY - m.signup_date).days) for m in idle}
    rng = random.Random("one departure")
    seen = dict.fromkeys(weights, 0)
    windows = 0
    while windows < 10_000:
        draw = churned(settings=settings, pool=pool, busy=busy, minutes=60, today=TODAY, rng=rng)
        assert not {m.sim_user_id for m in draw} & busy
        assert len({m.sim_user_id for m in draw}) == len(draw)  # distinct
        if len(draw) == 1:
            windows += 1
            seen[draw[0].sim_user_id] += 1
    total = sum(weights.values())
    for sim_user_id, weight in weights.items():
        p = weight / total  # the count of each is binomial(windows, p)
        assert abs(seen[sim_user_id] / windows - p) <= Z * math.sqrt(p * (1 - p) / windows)


def test_more_departures_than_idle_users_take_every_idle_user():
    # Poisson(300) departures a window among 2 idle users: the rejection draws run out and the rest
    # come from one draw over the idle users left, never a busy one, never one twice
    settings = GeneratorSettings(churn_per_month=30_000.0)
    pool = _pool(30)
    busy = {member.sim_user_id for member in pool[2:]}
    draw = churned(
        settings=settings, pool=pool, busy=busy, minutes=60, today=TODAY, rng=random.Random(3)
    )
    assert sorted(m.sim_user_id for m in draw) == [1, 2]


def test_busy_users_never_churn():
    settings = GeneratorSettings(churn_per_month=1.0)
    pool = _pool(300)
    busy = {member.sim_user_id for member in pool[:150]}
    rng = random.Random("busy")
    for _ in range(200):
        for member in churned(
            settings=settings, pool=pool, busy=busy, minutes=60, today=TODAY, rng=rng
        ):
            assert member.sim_user_id not in busy


@pytest.mark.slow
@pytest.mark.django_db
def test_a_backfill_with_signups_and_churn_follows_the_settings_and_churned_users_go_quiet():
    sim_users_seed(count=300, seed=11)
    SyntheticSettings.objects.filter(pk=1).update(signups_per_day=1440, churn_per_month=1.0)
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    summary = activity_backfill(hours=12, now=now, seed=5)
    ledger = SyntheticRun.objects.filter(trigger="backfill")
    signed_up = sum(ledger.values_list("users_signed_up", flat=True))
    churned_count = sum(ledger.values_list("users_churned", flat=True))
    # the ledger agrees with the table
    newcomers = SimUser.objects.filter(joined_at__isnull=False)  # a seeded newcomer has none
    assert newcomers.count() == signed_up == summary.totals["users_signed_up"]
    assert SimUser.objects.filter(churned_at__isnull=False).count() == churned_count
    # 720 minutes at one sign-up a minute: Poisson(720)
    assert abs(signed_up - 720) <= Z * math.sqrt(720)
    # churn: Poisson(1.0 x ~300-1,000 users x 720 / 43,200) >= Poisson(5): P(0) < e^-5 ~ 0.7 %
    assert churned_count > 0
    # newcomers signed up on the day of their run, as persona newcomer, settling later
    assert set(newcomers.values_list("persona", flat=True)) == {"newcomer"}
    assert set(newcomers.values_list("signup_date", flat=True)) == {now.date()}
    assert not newcomers.filter(settles_into="newcomer").exists()
    # churned users start nothing and write nothing after churning
    for sim_user in SimUser.objects.filter(churned_at__isnull=False):
        assert not Journey.objects.filter(
            sim_user=sim_user, started_at__gt=sim_user.churned_at
        ).exists()
        assert not Journey.objects.filter(sim_user=sim_user, status="active").exists()
        assert not JourneySceneEvent.objects.filter(
            user_id=sim_user.user_id, created_at__gt=sim_user.churned_at
        ).exists()


@pytest.mark.django_db
def test_newcomers_settle_into_their_persona_after_their_first_weeks():
    sim_users_seed(count=20, seed=12)
    SimUser.objects.filter(id__in=SimUser.objects.values("id")[:5]).update(
        persona="newcomer",
        settles_into="devoted",
        signup_date=date(2026, 2, 1),
        activity_weight=1.5,
    )
    # a run that covers midnight of 1 March (28 days after sign-up) settles them
    activity_backfill(hours=1, now=datetime(2026, 3, 1, 0, 30, tzinfo=UTC), seed=1)
    settled = SimUser.objects.filter(signup_date=date(2026, 2, 1))
    assert set(settled.values_list("persona", "settles_into")) == {("devoted", "")}
    # the weight follows the persona: devoted 4.0 / newcomer 1.5 of the same spread
    assert set(settled.values_list("activity_weight", flat=True)) == {4.0}


@pytest.mark.django_db
def test_a_manual_run_with_every_sim_user_churned_is_refused_and_writes_nothing():
    from django.utils import timezone

    from synthetics.errors import Conflict
    from synthetics.services import run_manual

    sim_users_seed(count=5, seed=13)
    SimUser.objects.update(churned_at=timezone.now() - timedelta(days=1))
    with pytest.raises(Conflict, match="no active sim users"):
        run_manual(target=1)
    assert not SyntheticRun.objects.exists()


@pytest.mark.slow
def test_weekly_cohorts_show_a_falling_retention_curve():
    """Four simulated weeks with sign-ups and churn, on the engine alone (the same pool changes the
    runs make in the database): after the week they signed up in (a partial week: users sign up on
    any day of it), the share of a weekly cohort who started a session falls week after week, as a
    retention table should."""
    from dataclasses import replace

    from synthetics.engine.simulation import simulate_minutes
    from tests.helpers import realistic_pool, shipped_catalogue, shipped_settings

    start = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday: cohort weeks start with the simulation
    weeks = 4
    settings = replace(
        shipped_settings(), sessions_per_min=1, signups_per_day=100, churn_per_month=1.0
    )
    pool = [
        replace(member, signup_date=start.date() - timedelta(days=400))
        for member in realistic_pool(100)
    ]
    stats = simulate_minutes(
        settings=settings,
        catalogue=shipped_catalogue(),
        pool=pool,
        start=start,
        minutes=weeks * 7 * 24 * 60,
        seed=3,
        keep_starts=True,
    )
    cohort_of = {
        member.sim_user_id: (member.signup_date - start.date()).days // 7
        for member in stats.members.values()
        if member.signup_date >= start.date()
    }
    sizes = [sum(1 for cohort in cohort_of.values() if cohort == c) for c in range(weeks)]
    active: dict[tuple[int, int], set[int]] = {}
    for sim_user_id, started_at in stats.starts:
        cohort = cohort_of.get(sim_user_id)
        if cohort is not None:
            week = (started_at.date() - start.date()).days // 7 - cohort
            active.setdefault((cohort, week), set()).add(sim_user_id)
    # about 700 sign-ups a week: Poisson(700), so every cohort has well over 500 users
    assert min(sizes) > 500
    # Pooled over the cohorts that reached it, week k's retention p_k over n_k users. Against a flat
    # curve (the same share every week), a drop has standard error at most
    # sqrt(p_j q_j / n_j + p_k q_k / n_k) (the samples overlap, which only narrows it). The churn
    # hazard (1 + 4 exp(-age / 10 days)) makes a user's second week the riskiest after the first:
    # with churn_per_month 1.0 about a fifth of a young cohort leaves per week, so the drops from
    # week 1 to 2 and from 1 to 3 are far beyond Z of them (about 10 and 12 here); the later drop
    # from week 2 to 3 is smaller (about 2.5 standard errors: it fails for ~0.6 % of seeds).
    pooled = []
    for week in range(weeks):
        reached = [c for c in range(weeks) if c + week < weeks]
        n = sum(sizes[c] for c in reached)
        pooled.append((sum(len(active.get((c, week), ())) for c in reached) / n, n))

    def drop(j, k):
        (pj, nj), (pk, nk) = pooled[j], pooled[k]
        return pj - pk, math.sqrt(pj * (1 - pj) / nj + pk * (1 - pk) / nk)

    for j, k in ((1, 2), (1, 3)):
        fall, se = drop(j, k)
        assert fall > Z * se, (j, k, pooled)
    assert drop(2, 3)[0] > 0, pooled
    # churned users started nothing after they churned
    for sim_user_id, started_at in stats.starts:
        assert started_at <= stats.churned.get(sim_user_id, started_at)


@pytest.mark.django_db
def test_a_backfill_keeps_the_pool_in_memory_exactly_as_a_fresh_load_would_give_it(monkeypatch):
    """Sign-ups, churn and settling change the pool most minutes: the backfill applies the changes
    to the pool it holds instead of reloading it, and that pool is what the database says."""
    from synthetics.selectors import run_inputs
    from synthetics.selectors.run_inputs import sim_user_pool
    from synthetics.services import history

    sim_users_seed(count=60, seed=14)
    # newcomers whose first weeks end at the coming midnight settle in the run that covers it
    SimUser.objects.filter(id__in=SimUser.objects.values("id")[:6]).update(
        persona="newcomer", settles_into="regular", signup_date=date(2026, 2, 1)
    )
    SyntheticSettings.objects.filter(pk=1).update(signups_per_day=2880, churn_per_month=1.0)
    # a "month" of ten hours: churn in most minutes too (at 30 days, about one user in two hours)
    monkeypatch.setattr("synthetics.engine.lifecycle.MINUTES_PER_MONTH", 600)
    original_write = history.pool_changes_write
    checked = {"changed": 0, "loads": 0}

    def checked_write(changes, **kwargs):
        pool = original_write(changes, **kwargs)
        checked["changed"] += 1
        assert pool == sim_user_pool()  # in the run's transaction: what the next minute would load
        return pool

    def counted_load():
        checked["loads"] += 1
        return original_load()

    original_load = run_inputs.RunInputs.load
    monkeypatch.setattr(history, "pool_changes_write", checked_write)
    monkeypatch.setattr(run_inputs.RunInputs, "load", staticmethod(counted_load))
    summary = activity_backfill(hours=2, now=datetime(2026, 3, 1, 1, 0, tzinfo=UTC), seed=2)
    assert checked["loads"] == 1  # loaded once for the whole backfill
    # two sign-ups a minute over 120 minutes: the pool changed in most of them (P(no sign-up and
    # no churn in a minute) < e^-2)
    assert checked["changed"] > 60
    assert summary.totals["users_signed_up"] > 0 and summary.totals["users_churned"] > 0
    assert set(
        SimUser.objects.filter(signup_date=date(2026, 2, 1), churned_at__isnull=True).values_list(
            "persona", "settles_into"
        )
    ) == {("regular", "")}


def test_seeded_tenure_agrees_with_the_persona():
    # Each persona's age beyond its minimum is exponential of mean m capped at c (TENURE_DAYS,
    # SIGNUP_MAX_DAYS), floored to whole days: its mean is m (1 - e^(-c/m)) - 1/2 (the floor takes
    # 1/2 on average, to within the truncation's sliver), with a standard error at most m / sqrt(n);
    # Z of them is the bound. A newcomer is younger than NEWCOMER_DAYS and settles like a sign-up.
    from synthetics.engine.population import (
        NEWCOMER_DAYS,
        SIGNUP_MAX_DAYS,
        TENURE_DAYS,
        make_profile,
        minimum_tenure_days,
    )

    ages: dict[str, list[int]] = {}
    for index in range(1, 6001):
        profile = make_profile(index=index, seed=3, today=TODAY, email_domain="example.test")
        age = (TODAY - profile.signup_date).days
        ages.setdefault(profile.persona, []).append(age)
        assert age >= minimum_tenure_days(profile.persona)
        if profile.persona == "newcomer":
            assert age < NEWCOMER_DAYS
            assert profile.settles_into in TENURE_DAYS
        else:
            assert profile.settles_into == ""
    for persona, (least, mean) in TENURE_DAYS.items():
        beyond = [age - NEWCOMER_DAYS - least for age in ages[persona]]
        cap = SIGNUP_MAX_DAYS - NEWCOMER_DAYS - least
        expected = mean * (1 - math.exp(-cap / mean)) - 0.5
        observed = sum(beyond) / len(beyond)
        assert abs(observed - expected) < Z * mean / math.sqrt(len(beyond)) + 0.5, persona
    # the old accounts are the devoted and the drifting ones, the young ones the casual
    median = {p: sorted(a)[len(a) // 2] for p, a in ages.items()}
    assert median["casual"] < median["regular"] < median["devoted"]
    assert median["casual"] < median["drifting"]


@pytest.mark.django_db
def test_an_existing_account_keeps_its_sign_up_date_and_gets_a_persona_that_fits_it():
    from synthetics.models import User
    from synthetics.services import sim_users_backfill

    now = datetime(2026, 3, 2, 12, tzinfo=UTC)
    young = [
        User.objects.create(
            username=f"young{i}",
            is_synthetic=True,
            is_active=False,
            date_joined=now - timedelta(days=i),
        )
        for i in range(6)
    ]
    old = [
        User.objects.create(
            username=f"old{i}",
            is_synthetic=True,
            is_active=False,
            date_joined=now - timedelta(days=400 + i),
        )
        for i in range(6)
    ]
    sim_users_backfill(seed=4, today=now.date())
    for user in young + old:
        profile = SimUser.objects.get(user=user)
        assert profile.signup_date == user.date_joined.date()
    assert {SimUser.objects.get(user=u).persona for u in young} == {"newcomer"}
    assert all(SimUser.objects.get(user=u).settles_into for u in young)
    assert "newcomer" not in {SimUser.objects.get(user=u).persona for u in old}


@pytest.mark.django_db
def test_history_before_seeding_puts_no_session_before_an_account_existed():
    # Seeded today, history over the day before and today: the newcomers seeded with an age of 0-1
    # days (12 % x 2/21 of 300, about 3.4; this seed gives four) joined inside that history, and
    # none of their sessions (nor anyone's) starts before the account's date_joined: a seeded user
    # starts sessions from the UTC day after their sign-up day.
    from django.db.models import Min

    from synthetics.models import User

    now = datetime(2026, 3, 2, 23, 0, tzinfo=UTC)
    sim_users_seed(count=300, seed=24, today=now.date())
    SyntheticSettings.objects.filter(pk=1).update(sessions_per_min=3, max_per_run=100)
    young = SimUser.objects.filter(signup_date__gte=now.date() - timedelta(days=1))
    assert young.count() == 4
    activity_backfill(hours=47, now=now, seed=6)
    firsts = User.objects.filter(is_synthetic=True).annotate(first=Min("journeys__started_at"))
    late = [u.username for u in firsts if u.first is not None and u.first < u.date_joined]
    assert late == []
    # the young ones did come in once their sign-up day was over
    assert Journey.objects.filter(sim_user__in=young, started_at__date=now.date()).exists()


def test_activity_fades_before_churn():
    # Settled users with the default calendars of active and lapsed periods (about half lapsed at
    # any moment) and a third of them young. A churning user is picked with weight
    # churn_hazard(age) x fade_churn when their activity has faded (picking.activity_now < FADED,
    # i.e. lapsed) at the window's end: the faded share of the churned is then a binomial of mean
    # p = f F / (f F + A), F and A the hazard weights of the faded and the active idle users
    # (computed here from activity_now), over the ~1,500 churned: within Z of sqrt(p (1 - p) / n).
    # With fade_churn 1 (churn ignores it) p is F / (F + A), about a half: far below.
    from synthetics.engine.behaviour import DEFAULT_BEHAVIOUR
    from synthetics.engine.lifecycle import FADED
    from synthetics.engine.picking import activity_now

    pool = [
        PoolMember(
            i,
            i,
            "regular",
            1.0 + (i % 7) / 10,
            "Europe/Berlin",
            "de_DE",
            signup_date=TODAY - timedelta(days=i % 14 if i % 3 == 0 else 365),
        )
        for i in range(1, 1501)
    ]
    at = datetime.combine(TODAY, datetime.min.time(), tzinfo=UTC)
    at_ms = int(at.timestamp() * 1000)
    faded = {m.sim_user_id for m in pool if activity_now(DEFAULT_BEHAVIOUR, m, at_ms) < FADED}
    assert 0.3 < len(faded) / len(pool) < 0.7
    settings = GeneratorSettings(churn_per_month=7.2)  # 7.5 a window of the 1,500
    for fade in (DEFAULT_BEHAVIOUR.fade_churn, 1.0):
        behaviour = replace(DEFAULT_BEHAVIOUR, fade_churn=fade)
        rng = random.Random("fade")
        leaving = [
            member
            for _ in range(200)
            for member in churned(
                settings=settings,
                pool=pool,
                busy=set(),
                minutes=60,
                today=TODAY,
                rng=rng,
                behaviour=behaviour,
                at_ms=at_ms,
            )
        ]
        hazard = {m.sim_user_id: churn_hazard((TODAY - m.signup_date).days) for m in pool}
        weight_faded = fade * sum(hazard[u] for u in faded)
        weight_active = sum(w for u, w in hazard.items() if u not in faded)
        p = weight_faded / (weight_faded + weight_active)
        share = sum(1 for m in leaving if m.sim_user_id in faded) / len(leaving)
        assert abs(share - p) <= Z * math.sqrt(p * (1 - p) / len(leaving)), (fade, share, p)
        if fade > 1:
            assert share > 0.9  # the churned are nearly all users whose activity had faded
        else:
            assert share < 0.7
