"""Vacuum and statistics where autovacuum may be off: the rule, the tidy on PostgreSQL, its callers."""

import logging
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection, transaction

from synthetics import tasks
from synthetics.models import Journey, SyntheticSettings
from synthetics.services import activity_backfill, maintenance, sim_users_seed

transactional = pytest.mark.django_db(transaction=True, serialized_rollback=True)
END = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rows", "dead", "changed", "expected"),
    [
        (0, 0, 0, (False, False)),
        (0, 50, 50, (False, False)),  # at the threshold (50 + 10 % of 0): not yet
        (0, 51, 51, (True, True)),
        (10_000, 1_050, 5_000, (False, True)),  # 1,050 dead: at 50 + 1,000, not yet; changed: due
        (10_000, 1_051, 0, (True, True)),  # a VACUUM (ANALYZE) analyzes too
        (10_000, 0, 1_050, (False, False)),
        (-1, 0, 51, (False, True)),  # never analyzed: pg_stat reports -1 rows at worst
    ],
)
def test_a_table_is_due_by_autovacuums_own_rule(rows, dead, changed, expected):
    assert maintenance.tidy_due(rows=rows, dead=dead, changed=changed) == expected


def _stats(table: str) -> tuple[int, int, object]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute("SELECT 1")
        cursor.execute(
            "SELECT n_dead_tup, n_mod_since_analyze, last_vacuum FROM pg_stat_user_tables "
            "WHERE relname = %s AND schemaname = current_schema()",
            [table],
        )
        return cursor.fetchone()


@transactional
def test_updated_journeys_are_vacuumed_and_then_nothing_is_due(postgres_only):
    # given journeys written, then their rows updated (as every run moves their cursor)
    sim_users_seed(count=200, seed=3)
    SyntheticSettings.objects.filter(pk=1).update(sessions_per_min=20, max_per_run=100)
    activity_backfill(hours=1, now=END, seed=5)  # tidies at its end
    assert Journey.objects.count() > 100
    Journey.objects.update(next_step=0)  # a dead version of every journey
    dead, _, before = _stats("journeys")
    assert dead >= Journey.objects.count()
    # when tidied
    tidied = maintenance.tables_tidy(budget_seconds=60)
    # then journeys were vacuumed (and so analyzed), and nothing is left to do
    assert "journeys" in tidied.vacuumed
    dead, changed, last_vacuum = _stats("journeys")
    assert changed == 0 and last_vacuum is not None and last_vacuum != before
    # A VACUUM leaves the dead rows of a page it cannot lock for cleanup (a buffer pinned at that
    # moment: on a loaded CI machine it left 695); then the next tidy takes them. It comes to
    # nothing due within a few, and never vacuums a table with nothing dead.
    for _ in range(3):
        if dead == 0:
            break
        maintenance.tables_tidy(budget_seconds=60)
        dead, changed, _ = _stats("journeys")
    assert dead == 0 and changed == 0
    assert maintenance.tables_tidy(budget_seconds=60) == maintenance.Tidied((), ())


@transactional
def test_a_backfill_leaves_its_tables_analyzed(postgres_only):
    sim_users_seed(count=200, seed=3)
    SyntheticSettings.objects.filter(pk=1).update(sessions_per_min=20, max_per_run=100)
    activity_backfill(hours=1, now=END, seed=5)
    for table in ("journeys", "journey_scene_events", "mindblock_events", "synthetic_runs"):
        dead, changed, _ = _stats(table)
        assert changed <= maintenance.BASE_ROWS, table  # what it wrote is in the statistics


@pytest.mark.django_db
def test_inside_a_transaction_or_on_sqlite_nothing_is_done():
    # pytest-django's test transaction: VACUUM could not run here, so tidy does not try
    with transaction.atomic():
        assert maintenance.tables_tidy(budget_seconds=60) == maintenance.Tidied((), ())


@pytest.mark.django_db
def test_the_scheduled_task_tidies_after_its_run_and_survives_a_failing_tidy(monkeypatch, caplog):
    calls = []

    def failing(*, budget_seconds):
        assert 1 <= budget_seconds <= 45  # what the 50 s task timeout leaves, less a margin
        calls.append("tidy")
        raise RuntimeError("no VACUUM today")

    monkeypatch.setattr(tasks, "tables_tidy", failing)
    with caplog.at_level(logging.ERROR, logger="synthetics"):
        result = tasks.scheduled_run()
    assert calls == ["tidy"]
    assert result["status"] in {"succeeded", "skipped"}  # the run's own result, whatever the tidy
    assert "synthetics tidy failed" in caplog.text


def _other_connection() -> psycopg.Connection:
    database = connection.settings_dict
    return psycopg.connect(
        host=database["HOST"] or None,
        port=database["PORT"] or None,
        user=database["USER"],
        dbname=database["NAME"],
        autocommit=True,
    )


def _journeys_with_dead_versions():
    sim_users_seed(count=200, seed=3)
    SyntheticSettings.objects.filter(pk=1).update(sessions_per_min=20, max_per_run=100)
    activity_backfill(hours=1, now=END, seed=5)
    Journey.objects.update(next_step=0)


@transactional
def test_a_tidy_in_progress_elsewhere_is_left_to_finish(postgres_only):
    _journeys_with_dead_versions()
    with _other_connection() as other:  # another worker's tidy holds the tidy lock
        other.execute("SELECT pg_advisory_lock(%s, 0)", [maintenance.TIDY_LOCK_CLASS])
        assert maintenance.tables_tidy(budget_seconds=60) == maintenance.Tidied((), ())
        # and lets it go as its tidy ends (a closed connection's backend lets its locks go when
        # it exits, a moment later on a busy server)
        other.execute("SELECT pg_advisory_unlock(%s, 0)", [maintenance.TIDY_LOCK_CLASS])
    # once it is gone, this one does the work
    assert "journeys" in maintenance.tables_tidy(budget_seconds=60).vacuumed


@transactional
def test_a_vacuum_that_cannot_have_its_lock_gives_up_backs_off_and_resets_the_session(
    postgres_only, monkeypatch, caplog
):
    _journeys_with_dead_versions()
    monkeypatch.setattr(maintenance, "_BACKED_OFF", {})
    with _other_connection() as other, other.transaction():
        other.execute("LOCK TABLE journeys IN SHARE UPDATE EXCLUSIVE MODE")  # as a VACUUM holds
        with caplog.at_level(logging.WARNING, logger="synthetics"):
            tidied = maintenance.tables_tidy(budget_seconds=60)
    # the tidy waited its lock wait, not the other's whole transaction, and left journeys alone
    assert "journeys" not in tidied.vacuumed
    assert "VACUUM of journeys stopped" in caplog.text
    assert "lock timeout" in caplog.text  # PostgreSQL's own words: its lock wait, not the budget
    with connection.cursor() as cursor:  # the session's limits are back to the server's
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "0"
    # and it is not started again every minute: backed off, though still due
    assert "journeys" not in maintenance.tables_tidy(budget_seconds=60).vacuumed
    monkeypatch.setattr(maintenance, "_BACKED_OFF", {})
    assert "journeys" in maintenance.tables_tidy(budget_seconds=60).vacuumed
