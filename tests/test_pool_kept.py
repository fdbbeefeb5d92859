"""A worker keeps the pool it loaded between runs, and loads it again whenever sim_users changed,
however it changed (ORM, bulk update, raw SQL, a delete, a rollback) — never a stale pool."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from synthetics.models import RhythmProfile, SimUser, User
from synthetics.selectors import run_inputs
from synthetics.services import sim_users_seed


@pytest.fixture
def kept(sim_users):
    """The pool loaded once (and kept), as a run would."""
    run_inputs._POOL_KEPT.clear()
    inputs = run_inputs.RunInputs.load()
    assert run_inputs.pool_stamp() is not None
    return inputs


def fresh_pool():
    return run_inputs.sim_user_pool()


def test_an_unchanged_pool_is_the_one_kept(kept, django_assert_max_num_queries):
    # when a second run loads its inputs with nothing changed in between
    again = run_inputs.RunInputs.load()
    # then it gets the very pool and rhythm kept (not a copy read again) and they equal a fresh read
    assert again.pool is kept.pool and again.rhythm is kept.rhythm
    assert again.pool == fresh_pool()


@pytest.mark.parametrize(
    "change",
    [
        "orm_save",
        "queryset_update",
        "bulk_update",
        "raw_sql_update",
        "delete",
        "churn",
        "new_user",
    ],
)
def test_any_change_to_sim_users_is_read_again(kept, change):
    # given the pool kept; when sim_users changes in one of the ways the product (or a person at
    # the database) changes it
    first = SimUser.objects.order_by("id").first()
    if change == "orm_save":
        first.activity_weight = 7.5
        first.save()
    elif change == "queryset_update":
        SimUser.objects.filter(pk=first.pk).update(persona="power")
    elif change == "bulk_update":
        first.timezone = "Asia/Tokyo"
        SimUser.objects.bulk_update([first], ["timezone"])
    elif change == "raw_sql_update":
        with connection.cursor() as cursor:
            cursor.execute("UPDATE sim_users SET locale = 'pt_BR' WHERE id = %s", [first.pk])
    elif change == "delete":
        SimUser.objects.filter(pk=first.pk).delete()
    elif change == "churn":
        SimUser.objects.filter(pk=first.pk).update(churned_at="2026-01-01T00:00:00Z")
    else:
        sim_users_seed(count=User.objects.filter(is_synthetic=True).count() + 3, seed=99)
    # then the next run reads the pool as it now is
    again = run_inputs.RunInputs.load()
    assert again.pool is not kept.pool
    assert again.pool == fresh_pool() != kept.pool


def test_a_rolled_back_change_leaves_no_stale_pool(kept):
    # given a change that a run saw (and kept) inside a transaction that then rolled back
    first = SimUser.objects.order_by("id").first()
    with pytest.raises(RuntimeError), transaction.atomic():
        SimUser.objects.filter(pk=first.pk).update(activity_weight=9.0)
        inside = run_inputs.RunInputs.load()
        assert [m.activity_weight for m in inside.pool if m.sim_user_id == first.pk] == [9.0]
        raise RuntimeError("rolled back")
    # when the next change happens and a run loads again
    SimUser.objects.filter(pk=first.pk).update(persona="casual")
    again = run_inputs.RunInputs.load()
    # then it reads the table as it is, never the rolled-back pool (the stamp is never reused)
    assert again.pool == fresh_pool()
    assert [m.activity_weight for m in again.pool if m.sim_user_id == first.pk] != [9.0]


def test_a_new_rhythm_profile_rebuilds_the_rhythm(kept):
    # when a rhythm profile changes (the catalogue is read every run; the pool is not)
    profile = RhythmProfile.objects.order_by("slug").first()
    profile.holiday_factor = 0.123
    profile.save()
    again = run_inputs.RunInputs.load()
    # then the pool may be the one kept, but its rhythm is built from the profiles now in force
    assert again.rhythm is not kept.rhythm
    assert again.catalogue.rhythms != kept.catalogue.rhythms


def test_every_write_statement_moves_the_stamp(sim_users):
    # the stamp is what the rest relies on: each kind of write moves it, a read does not
    stamps = [run_inputs.pool_stamp()]
    list(SimUser.objects.all())
    assert run_inputs.pool_stamp() == stamps[-1]
    first = SimUser.objects.order_by("id").first()
    for write in (
        lambda: SimUser.objects.filter(pk=first.pk).update(activity_weight=2.0),
        lambda: SimUser.objects.filter(pk=first.pk).delete(),
        lambda: sim_users_seed(count=User.objects.filter(is_synthetic=True).count() + 1, seed=5),
    ):
        write()
        stamps.append(run_inputs.pool_stamp())
    assert len(set(stamps)) == len(stamps)


def test_a_truncate_moves_the_stamp_on_postgres(postgres_only, sim_users):
    before = run_inputs.pool_stamp()
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE refuses pending FK checks
        cursor.execute("TRUNCATE sim_users CASCADE")
    assert run_inputs.pool_stamp() != before


def test_without_its_triggers_sqlite_has_no_stamp_and_the_pool_is_read_every_run(sim_users):
    # given a sim_users table rebuilt by a later migration (SQLite drops a table's triggers then)
    if connection.vendor != "sqlite":
        pytest.skip("SQLite rebuilds tables; PostgreSQL keeps triggers through ALTER TABLE")
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER sim_users_pool_stamp_update")
    # then there is no stamp, nothing is kept, and a change is seen by the next run
    assert run_inputs.pool_stamp() is None
    run_inputs._POOL_KEPT.clear()
    first = run_inputs.RunInputs.load()
    SimUser.objects.filter(pk=first.pool[0].sim_user_id).update(activity_weight=4.25)
    again = run_inputs.RunInputs.load()
    assert again.pool == fresh_pool() != first.pool


# --- the pool's counts (status, the sim-users page) are kept under the same stamp ------------------


def fresh_counts():
    from django.db.models import Count

    return (
        SimUser.objects.filter(churned_at__isnull=True).count(),
        SimUser.objects.filter(churned_at__isnull=False).count(),
        dict(SimUser.objects.values_list("persona").annotate(n=Count("id")).order_by()),
    )


def _as_tuple(counts):
    return (counts.active, counts.churned, counts.by_persona)


@pytest.mark.parametrize(
    "change", ["queryset_update", "raw_sql_update", "delete", "churn", "new_user", "rollback"]
)
def test_the_pools_counts_are_kept_until_sim_users_changes(
    sim_users, change, django_assert_num_queries
):
    from synthetics.selectors.sim_users import _POOL_COUNTS, pool_counts
    from synthetics.selectors.status import status_scalars

    _POOL_COUNTS.clear()
    first = pool_counts()
    assert _as_tuple(first) == fresh_counts()
    # given nothing changed: the counts kept are served without counting again
    stamp = run_inputs.pool_stamp()
    with django_assert_num_queries(0):
        assert pool_counts(stamp=stamp) is first
    # when sim_users changes, however it changes
    member = SimUser.objects.order_by("id").first()
    if change == "queryset_update":
        SimUser.objects.filter(pk=member.pk).update(persona="drifting")
    elif change == "raw_sql_update":
        with connection.cursor() as cursor:
            cursor.execute("UPDATE sim_users SET persona = 'devoted' WHERE id = %s", [member.pk])
    elif change == "delete":
        SimUser.objects.filter(pk=member.pk).delete()
    elif change == "churn":
        SimUser.objects.filter(pk=member.pk).update(churned_at="2026-01-01T00:00:00Z")
    elif change == "new_user":
        sim_users_seed(count=User.objects.filter(is_synthetic=True).count() + 2, seed=98)
    else:  # counted inside a transaction that rolled back: never served afterwards
        with pytest.raises(RuntimeError), transaction.atomic():
            SimUser.objects.filter(pk=member.pk).update(churned_at="2026-01-01T00:00:00Z")
            assert pool_counts().churned == first.churned + 1
            raise RuntimeError("rolled back")
    # then the next read counts the table as it now is
    assert _as_tuple(pool_counts()) == fresh_counts()
    status = status_scalars()
    assert (status.sim_users, status.sim_users_churned) == fresh_counts()[:2]


def test_without_a_stamp_the_pools_counts_are_counted_every_time(sim_users):
    from synthetics.selectors.sim_users import _POOL_COUNTS, pool_counts

    _POOL_COUNTS.clear()
    pool_counts(stamp=None)
    SimUser.objects.filter(pk=SimUser.objects.order_by("id").first().pk).update(
        churned_at="2026-01-01T00:00:00Z"
    )
    assert _as_tuple(pool_counts(stamp=None)) == fresh_counts()
    assert not _POOL_COUNTS
