"""The pool in groups and its sign-ups by day (selectors.run_inputs.pool_groups, pool_signups): the
rows PostgreSQL keeps with every write to sim_users match a recount after every kind of change, and
the insights and expectations read from them give the answers the whole pool gave."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synthetics.engine.behaviour import Behaviour
from synthetics.engine.capacity import pool_capacity
from synthetics.engine.lifecycle import PoolChanges
from synthetics.engine.population import make_newcomer, settled_weight
from synthetics.engine.rhythm import PoolRhythm
from synthetics.engine.run import expected_sessions, to_ms
from synthetics.engine.types import PoolMember
from synthetics.models import SimUser, SyntheticSettings, User
from synthetics.selectors import insights
from synthetics.selectors.run_inputs import (
    catalogue_load,
    generator_settings,
    pool_groups,
    pool_groups_counted,
    pool_signups,
    pool_signups_counted,
    sim_user_pool,
)
from synthetics.services import activity_backfill, settings_update, sim_users_seed
from synthetics.services import expectations as expectations_service
from synthetics.services.runs import pool_changes_write

pytestmark = pytest.mark.django_db
AT = datetime(2026, 1, 9, 19, 0, tzinfo=UTC)
_ACCOUNTS = itertools.count(500_000)  # sign-ups' account numbers, clear of the seeded ones


def assert_groups_match_a_recount() -> None:
    kept, counted = pool_groups(), pool_groups_counted()
    assert [g[:6] for g in map(_fields, kept)] == [g[:6] for g in map(_fields, counted)]
    for mine, recount in zip(kept, counted, strict=True):
        assert mine.activity == pytest.approx(recount.activity, rel=1e-9, abs=1e-9)
    assert pool_signups(since=date.min) == pool_signups_counted(since=date.min)


def _fields(group) -> tuple:
    return (
        group.persona,
        group.timezone,
        group.locale,
        group.settles_into,
        group.joined,
        group.users,
        group.activity,
    )


def _signups(count: int, seed: int) -> None:
    profiles = tuple(
        make_newcomer(
            index=next(_ACCOUNTS),
            seed=seed,
            signed_up=AT.date(),
            email_domain="example.invalid",
            joined_ms=to_ms(AT) + offset,
        )
        for offset in range(count)
    )
    pool_changes_write(PoolChanges(newcomers=profiles), pool=sim_user_pool(), at=AT)


def _some(rng: random.Random, k: int) -> list[PoolMember]:
    pool = sim_user_pool()
    return rng.sample(pool, min(k, len(pool)))


def _change(kind: str, rng: random.Random) -> None:
    """One write of sim_users, as the product makes it."""
    if kind == "seed":  # seeding more (bulk inserts)
        sim_users_seed(count=SimUser.objects.count() + rng.randint(1, 15), seed=rng.randint(0, 99))
    elif kind == "signups":  # a run's sign-ups
        _signups(rng.randint(1, 6), rng.randint(0, 99))
    elif kind == "churn":  # a run's churn (one bulk UPDATE)
        gone = tuple(_some(rng, rng.randint(1, 4)))
        pool_changes_write(PoolChanges(churned=gone), pool=sim_user_pool(), at=AT)
    elif kind == "settle":  # newcomers settling into their persona
        settling = [m for m in sim_user_pool() if m.settles_into][: rng.randint(1, 4)]
        settled = tuple(
            PoolMember(
                m.sim_user_id,
                m.user_id,
                m.settles_into,
                settled_weight(activity_weight=m.activity_weight, into=m.settles_into),
                m.timezone,
                m.locale,
                m.signup_date,
                "",
                m.joined_ms,
            )
            for m in settling
        )
        pool_changes_write(PoolChanges(settled=settled), pool=sim_user_pool(), at=AT)
    elif kind == "edit":  # the admin's form: one row saved with every field
        for member in _some(rng, 1):
            row = SimUser.objects.get(pk=member.sim_user_id)
            row.timezone = rng.choice(["UTC", "Europe/Berlin", "Asia/Tokyo", row.timezone])
            row.persona = rng.choice(["casual", "power", row.persona])
            row.activity_weight = rng.choice([0.5, 2.25, row.activity_weight])
            row.churned_at = rng.choice([None, AT, row.churned_at])
            row.signup_date = rng.choice([date(2025, 3, 4), row.signup_date])
            row.save()
    elif kind == "rename":  # a write that moves no group (attach mode's keys, a display name)
        SimUser.objects.filter(pk__in=[m.sim_user_id for m in _some(rng, 5)]).update(
            account_key="k", display_name="renamed"
        )
    elif kind == "delete":  # the admin deleting an account (its sim user cascades) or a sim user
        for member in _some(rng, rng.randint(1, 3)):
            if rng.random() < 0.5:
                User.objects.filter(pk=member.user_id).delete()
            else:
                SimUser.objects.filter(pk=member.sim_user_id).delete()
    elif kind == "rolled_back":  # a write undone: the groups stay as they were
        with pytest.raises(RuntimeError), transaction.atomic():
            SimUser.objects.update(persona="rolled", activity_weight=9.0)
            raise RuntimeError
    elif kind == "detach":  # detach removes every sim user
        SimUser.objects.all().delete()
    elif kind == "truncate":
        with connection.cursor() as cursor:
            # the test's transaction holds the writes' deferred key checks: run them first
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("TRUNCATE sim_users CASCADE")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


KINDS = ["seed", "signups", "churn", "settle", "edit", "rename", "delete", "rolled_back"]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(
    changes=st.lists(st.sampled_from([*KINDS, "detach", "truncate"]), min_size=1, max_size=8),
    seed=st.integers(0, 10_000),
)
def test_the_kept_groups_match_a_recount_after_every_kind_of_change(postgres_only, changes, seed):
    # Rule: whatever the writes (the product's own: seeding, a run's sign-ups, churn and
    # settling, the admin's edits and deletions, attach mode's keys, detach, a rollback, a
    # TRUNCATE), the groups PostgreSQL keeps are a recount of the active pool, and its sign-ups
    # by day a recount of every sim user's.
    rng = random.Random(seed)
    sim_users_seed(count=SimUser.objects.count() + 20, seed=seed % 50)
    _signups(3, seed)
    assert_groups_match_a_recount()
    for kind in changes:
        _change(kind, rng)
        assert_groups_match_a_recount()


def test_every_active_sim_user_is_in_one_group_with_its_weight(postgres_only):
    # given seeded users, sign-ups and a churned user
    sim_users_seed(count=60, seed=3)
    _signups(4, 1)
    SimUser.objects.filter(pk=SimUser.objects.order_by("id").first().pk).update(churned_at=AT)
    # then the groups hold the 63 active ones, the sign-ups apart, their weights summed
    groups = pool_groups()
    active = SimUser.objects.active()
    assert sum(g.users for g in groups) == active.count() == 63
    assert sum(g.users for g in groups if g.joined) == 4
    total = sum(active.values_list("activity_weight", flat=True))
    assert sum(g.activity for g in groups) == pytest.approx(total, rel=1e-12)
    assert_groups_match_a_recount()


# --- the answers from the groups are the whole pool's ---------------------------------------------


def _pool_with_signups() -> None:
    sim_users_seed(count=300, seed=5, today=AT.date())
    _signups(12, 2)
    pool_changes_write(PoolChanges(churned=tuple(sim_user_pool()[:5])), pool=sim_user_pool(), at=AT)


def test_rhythm_and_capacity_from_the_groups_are_the_whole_pools():
    # given a pool of seeded users and sign-ups, some churned, the rhythm at full strength
    _pool_with_signups()
    settings_update(rhythm_strength=1.0, sessions_per_min=50, max_per_run=60)
    now = AT + timedelta(minutes=17)
    # when insights reads the groups
    rhythm, capacity = insights.rhythm_and_capacity(now=now)
    # then every figure is what the whole pool, member by member, gave (as insights did before)
    pool, catalogue = sim_user_pool(), catalogue_load()
    whole = PoolRhythm(pool, catalogue.rhythms)
    settings_now = generator_settings()
    week = expected_sessions(
        settings=settings_now, rhythm=whole, start=now, minutes=7 * 24 * 60, step_minutes=60
    )
    rate_now = whole.rate(now, strength=1.0)
    assert rhythm.rate_now == pytest.approx(rate_now, rel=1e-12)
    assert rhythm.peak_rate == pytest.approx(max(*week.rates, rate_now), rel=1e-12)
    assert rhythm.quietest_rate == pytest.approx(min(*week.rates, rate_now), rel=1e-12)
    assert rhythm.cap_trimmed_share == pytest.approx(week.trimmed_share, rel=1e-9, abs=1e-12)
    assert rhythm.expected_sessions_week == pytest.approx(week.capped, rel=1e-12)
    assert capacity == pool_capacity(
        settings=settings_now,
        catalogue=catalogue,
        active_users=len(pool),
        peak_factor=max(week.rates),
    )
    assert capacity.active_users == 307


def _checks(**kwargs) -> list[tuple]:
    report = expectations_service.expectations_report(hours=2, now=AT, **kwargs)
    return [(c.metric, c.expected, c.low, c.high, c.observed, c.verdict) for c in report.checks]


def _same(left: list[tuple], right: list[tuple]) -> None:
    assert [c[0] for c in left] == [c[0] for c in right]
    for mine, theirs in zip(left, right, strict=True):
        assert mine[1:4] == pytest.approx(theirs[1:4], rel=1e-9), mine[0]
        assert mine[4:] == theirs[4:]


def test_expectations_from_the_groups_are_the_whole_pools_without_lapses(monkeypatch):
    # given two hours of history over a pool with sign-ups, and no lapsed periods (a member's
    # factor is then the same as their group's mean, exactly)
    _pool_with_signups()
    SyntheticSettings.objects.update(behaviour=Behaviour(lapsed_share=0.0).to_json())
    settings_update(sessions_per_min=10, max_per_run=40)
    activity_backfill(hours=2, now=AT, seed=9)
    # when the expectation weighs each member, and then the seeded ones by their groups
    each = _checks()
    monkeypatch.setattr(expectations_service, "EXACT_MEMBERS", 0)
    grouped = _checks()
    # then every expected value and band is the same, to float rounding
    _same(grouped, each)


def test_a_large_pools_groups_weigh_each_seeded_user_at_the_lapse_calendars_mean(monkeypatch):
    # given a pool with lapsed periods on, read by its groups (as above EXACT_MEMBERS)
    _pool_with_signups()
    settings_update(sessions_per_min=10, max_per_run=40)
    activity_backfill(hours=2, now=AT, seed=9)
    monkeypatch.setattr(expectations_service, "EXACT_MEMBERS", 0)
    seen = {}
    real = expectations_service.expected_activity

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(expectations_service, "expected_activity", spy)
    expectations_service.expectations_report(hours=2, now=AT)
    # then each persona's activity is its settled seeded users' weight at 1 - s(1 - a), its
    # seeded newcomers' in full, and its sign-ups each at their own factor
    from synthetics.engine.picking import activity_now

    behaviour = catalogue_load().behaviour
    middle = to_ms(AT - timedelta(hours=1))
    mean = 1 - behaviour.lapsed_share * (1 - behaviour.lapsed_activity)
    want: dict[str, float] = {}
    for member in sim_user_pool():
        if member.joined_ms is not None:
            factor = activity_now(behaviour, member, middle)
        else:
            factor = 1.0 if member.settles_into else mean
        want[member.persona] = want.get(member.persona, 0.0) + member.activity_weight * factor
    got = dict(seen["personas"])
    assert got.keys() == want.keys()
    for persona, weight in want.items():
        assert got[persona] == pytest.approx(weight, rel=1e-9), persona
    # and the pool's rhythm is the whole pool's
    whole = PoolRhythm(sim_user_pool(), catalogue_load().rhythms)
    assert seen["rhythm"].rate(AT, strength=1.0) == pytest.approx(
        whole.rate(AT, strength=1.0), rel=1e-12
    )


def test_a_small_pool_is_still_weighed_member_by_member(monkeypatch):
    # given a pool below EXACT_MEMBERS: the expectation reads each member (their own lapse
    # calendar), never the groups' stand-ins
    _pool_with_signups()
    read = []
    monkeypatch.setattr(
        expectations_service.run_inputs,
        "sim_user_pool",
        lambda: read.append(1) or sim_user_pool(),
    )
    expectations_service.expectations_report(hours=1, now=AT)
    assert read == [1]


def test_no_sim_user_gives_no_group():
    assert pool_groups() == [] and pool_groups_counted() == []
