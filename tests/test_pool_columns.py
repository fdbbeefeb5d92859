"""The pool in columns (engine.pool): the members read back are the members put in, in their order,
whichever way it was built (from members, from database rows, from a page of columns); the copies a
run makes (churn, settling, sign-ups) are the pool a fresh read would give; a million members stay
small."""

import random
import sys
from array import array
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from synthetics.engine import PoolMember, PoolRhythm
from synthetics.engine.lifecycle import PoolChanges, pool_changed
from synthetics.engine.pool import NO_DAY, NO_JOIN, Pool
from synthetics.engine.run import to_ms
from synthetics.models import SimUser
from synthetics.selectors import run_inputs
from tests.helpers import realistic_pool, shipped_catalogue


def _members(count: int = 60) -> list[PoolMember]:
    """Members with every field set or unset somewhere."""
    return [
        PoolMember(
            i,
            1_000 + i,
            ("casual", "newcomer", "devoted")[i % 3],
            i / 7,
            ("Europe/Paris", "UTC", "Asia/Kathmandu")[i % 3 - 1],
            ("fr_FR", "en_US")[i % 2],
            date(2026, 1, i % 28 + 1) if i % 5 else None,
            "regular" if i % 3 == 1 else "",
            1_780_000_000_000 + i if i % 7 == 0 else None,
        )
        for i in range(1, count + 1)
    ]


def test_a_pool_reads_back_the_members_put_in_it():
    # given
    members = _members()
    # when
    pool = Pool.of(members)
    # then
    assert list(pool) == members and pool == members and members == pool
    assert pool[0] == members[0] and pool[-1] == members[-1] and pool[3:40:6] == members[3:40:6]
    assert len(pool) == len(members) and Pool.of(pool) is pool
    assert pool != members[:-1] and pool != [*members[:-1], replace(members[-1], locale="de_DE")]


def test_positions_by_id_whether_or_not_the_ids_are_in_order():
    members = _members()
    in_order, shuffled = Pool.of(members), Pool.of(random.Random(3).sample(members, len(members)))
    assert in_order.in_id_order() and not shuffled.in_id_order()
    for pool in (in_order, shuffled):
        positions = pool.index_of()
        assert all(pool[positions[m.sim_user_id]] == m for m in members)
        assert positions.get(10_000) is None and 10_000 not in positions
        assert positions == {m.sim_user_id: i for i, m in enumerate(pool)}


def test_columns_from_a_page_are_the_members_of_its_rows():
    # given: a page as PostgreSQL's int8send / float8send / int4send give it (big-endian)
    members = _members()

    def packed(typecode, values):
        column = array(typecode, values)
        if sys.byteorder == "little":
            column.byteswap()
        return column.tobytes()

    # when
    pool = Pool()
    pool.extend_columns(
        ids=packed("q", [m.sim_user_id for m in members]),
        user_ids=packed("q", [m.user_id for m in members]),
        personas=[m.persona for m in members],
        weights=packed("d", [m.activity_weight for m in members]),
        zones=[m.timezone for m in members],
        locales=[m.locale for m in members],
        signup_days=packed(
            "i", [m.signup_date.toordinal() if m.signup_date else NO_DAY for m in members]
        ),
        settles=[m.settles_into for m in members],
        joined=packed("q", [NO_JOIN if m.joined_ms is None else m.joined_ms for m in members]),
    )
    # then
    assert pool == members and pool.in_id_order()
    with pytest.raises(ValueError, match="differ in length"):
        pool.extend_columns(
            ids=b"", user_ids=b"", personas=["x"], weights=b"", zones=[], locales=[],
            signup_days=b"", settles=[], joined=b"",
        )  # fmt: skip
    assert pool == members  # nothing appended


def test_changes_make_the_pool_a_fresh_read_would_give():
    # given
    members = _members()
    pool = Pool.of(members)
    settled = replace(members[3], persona="regular", activity_weight=2.5, settles_into="")
    joined = [PoolMember(200, 9_200, "newcomer", 1.0), PoolMember(201, 9_201, "newcomer", 1.0)]
    changes = PoolChanges(churned=(members[10], members[0]), settled=(settled,))
    # when
    after = pool_changed(pool, changes, joined[::-1])
    # then
    expected = [
        settled if m.sim_user_id == 4 else m for m in members if m.sim_user_id not in {1, 11}
    ]
    assert after == [*expected, *joined] and after.in_id_order()
    assert pool == members  # a pool in use never changes


def test_the_rhythm_of_a_pool_is_the_rhythm_of_its_members():
    rhythms = shipped_catalogue().rhythms
    members = realistic_pool(500)
    moment = datetime(2026, 3, 2, 19, 7, tzinfo=UTC)
    columns, listed = PoolRhythm(Pool.of(members), rhythms), PoolRhythm(members, rhythms)
    assert columns.persona_shares == listed.persona_shares
    assert list(columns.cumulative_weights(moment, strength=0.7)) == list(
        listed.cumulative_weights(moment, strength=0.7)
    )


def test_a_million_members_take_about_fifty_bytes_each():
    members = Pool.of(_members(1_000))
    pool = Pool()
    for _ in range(1_000):  # a million rows, names shared as a database's are
        pool.extend_rows(
            (
                (m.sim_user_id, m.user_id, m.persona, m.activity_weight, m.timezone, m.locale)
                + (m.signup_date, m.settles_into, m.joined_ms)
                for m in members
            ),
        )
    columns = [getattr(pool, name) for name in ("ids", "user_ids", "weights", "personas")]
    columns += [pool.zones, pool.locales, pool.signup_days, pool.settles, pool.joined]
    assert len(pool) == 1_000_000
    assert sum(c.itemsize * len(c) for c in columns) / len(pool) <= 56


@pytest.mark.django_db
def test_the_pool_read_from_the_database_is_its_rows(sim_users):
    # given: a sign-up among the seeded users
    joined_at = datetime(2026, 3, 2, 10, 11, 12, 345_678, tzinfo=UTC)
    newcomer = SimUser.objects.order_by("id").last()
    SimUser.objects.filter(pk=newcomer.pk).update(joined_at=joined_at, settles_into="casual")
    # when
    pool = run_inputs.sim_user_pool()
    # then
    rows = SimUser.objects.active().order_by("id").values_list(*run_inputs.POOL_FIELDS)
    assert list(pool) == [
        PoolMember(*row[:-1], None if row[-1] is None else to_ms(row[-1])) for row in rows
    ]
    assert pool[-1].joined_ms == to_ms(joined_at) and pool[-1].settles_into == "casual"
    assert pool.in_id_order()
