"""Vacuum and planner statistics for the tables runs write, on servers where autovacuum is off.

Runs update journeys (their cursor, their end), the ledger's hourly sums and the pool; cleanup
deletes from every table. Each of those leaves a dead row version behind, and an entry in each
index that pointed at it: the partial index of journeys in progress collects one per step a journey
takes. A scan of it visits them all until VACUUM removes them — with autovacuum off (some servers,
and this project's test machine), never — so the status count and a scheduled run's read of due
journeys would slow down day after day. A backfill of months grows the tables a hundredfold, and
the planner, with no ANALYZE, keeps planning for the empty tables.

So the product does what autovacuum would, with autovacuum's own rule (a table is due when the
rows changed since its last VACUUM or ANALYZE exceed 50 + 10 % of its rows; PostgreSQL's defaults
are 50 + 20 % for VACUUM and 50 + 10 % for ANALYZE), read from the statistics PostgreSQL keeps
whether autovacuum runs or not (pg_stat_user_tables): after each scheduled minute (a look-up when
nothing is due), at the end of a backfill and of a cleanup. Where autovacuum runs, it usually got
there first and nothing is due. VACUUM (not FULL) blocks no run's reads or writes (its last step, giving empty
pages at the table's end back to the system, takes a lock briefly, and gives up after a few seconds
if it cannot have it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.db import OperationalError, connection

from synthetics.models import (
    Journey,
    JourneySceneEvent,
    MindblockEvent,
    SimUser,
    SyntheticRun,
    SyntheticRunHour,
)

logger = logging.getLogger("synthetics")

TIDY_LOCK_CLASS = 0x54494459  # "TIDY" in ASCII: the session advisory lock one tidy holds
TIDY_LOCK_WAIT = 1.0  # seconds a VACUUM or ANALYZE waits for its table's lock
TIDY_BACKOFF = 3600  # seconds a table whose VACUUM ran out of time is left alone, per process
_BACKED_OFF: dict[str, float] = {}

# What autovacuum's analyze rule is by default: due when the rows changed exceed BASE + SCALE x rows.
BASE_ROWS = 50
SCALE = 0.1
TABLES = tuple(
    model._meta.db_table
    for model in (
        Journey,
        SyntheticRun,
        SyntheticRunHour,
        SimUser,
        JourneySceneEvent,
        MindblockEvent,
    )
)


@dataclass(frozen=True, slots=True)
class Tidied:
    vacuumed: tuple[str, ...]  # VACUUM (ANALYZE): dead row versions were due
    analyzed: tuple[str, ...]  # ANALYZE alone: rows inserted or changed were due, none dead enough


def tidy_due(*, rows: float, dead: int, changed: int) -> tuple[bool, bool]:
    """(vacuum, analyze) for a table of about `rows` rows with `dead` dead row versions and
    `changed` rows inserted, updated or deleted since its last ANALYZE."""
    threshold = BASE_ROWS + SCALE * max(rows, 0)
    vacuum = dead > threshold
    return vacuum, vacuum or changed > threshold


def tables_tidy(*, budget_seconds: float) -> Tidied:
    """VACUUM (ANALYZE) or ANALYZE the tables runs and cleanups write, those that are due
    (tidy_due), within `budget_seconds` in all. PostgreSQL only, and outside a transaction (VACUUM
    cannot run in one): elsewhere, or inside a caller's transaction, nothing.

    One tidy at a time in the whole database (a session advisory lock, tried, not waited for: a
    tidy in progress on another worker is left to finish). Each statement is bounded by what is
    left of the budget, and waits at most TIDY_LOCK_WAIT for a table's lock (a manual VACUUM does
    not step aside for DDL as autovacuum does, so it never queues long in front of one). A table
    whose VACUUM did not finish in time is left alone for TIDY_BACKOFF in this process, logged with
    what to do, instead of being started again every minute.
    """
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return Tidied((), ())
    deadline = time.monotonic() + budget_seconds
    vacuumed, analyzed = [], []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [TIDY_LOCK_CLASS, 0])
        if not cursor.fetchone()[0]:
            return Tidied((), ())
        try:
            if connection.pg_version >= 150000:  # this connection's own counts: reported
                cursor.execute("SELECT pg_stat_force_next_flush()")
                cursor.execute("SELECT 1")
            cursor.execute(
                "SELECT relname, n_live_tup, n_dead_tup, n_mod_since_analyze "
                "FROM pg_stat_user_tables "
                "WHERE schemaname = current_schema() AND relname = ANY(%s)",
                [list(TABLES)],
            )
            for table, rows, dead, changed in sorted(cursor.fetchall()):
                vacuum, analyze = tidy_due(rows=rows, dead=dead, changed=changed)
                left = deadline - time.monotonic()
                if (
                    not (vacuum or analyze)
                    or left < 1
                    or _BACKED_OFF.get(table, 0) > time.monotonic()
                ):
                    continue
                name = connection.ops.quote_name(table)
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, false), "
                    "set_config('lock_timeout', %s, false)",
                    [f"{int(left * 1000)}ms", f"{int(TIDY_LOCK_WAIT * 1000)}ms"],
                )
                try:
                    cursor.execute(f"VACUUM (ANALYZE) {name}" if vacuum else f"ANALYZE {name}")
                except OperationalError as error:  # the budget or the lock wait ran out
                    _BACKED_OFF[table] = time.monotonic() + TIDY_BACKOFF
                    logger.warning(
                        "synthetics tidy: %s of %s stopped (%s); tried again in %d minutes — "
                        "with autovacuum off, run VACUUM (ANALYZE) %s at a quiet time",
                        "VACUUM" if vacuum else "ANALYZE",
                        table,
                        str(error).strip().splitlines()[0],
                        TIDY_BACKOFF // 60,
                        table,
                    )
                    continue
                (vacuumed if vacuum else analyzed).append(table)
        finally:
            cursor.execute("RESET statement_timeout")
            cursor.execute("RESET lock_timeout")
            cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [TIDY_LOCK_CLASS, 0])
    if vacuumed or analyzed:
        logger.info(
            "synthetics tidy vacuumed=%s analyzed=%s",
            ",".join(vacuumed) or "-",
            ",".join(analyzed) or "-",
        )
    return Tidied(tuple(vacuumed), tuple(analyzed))


def backend_exit_wait(pid: int, *, seconds: float = 5.0) -> bool:
    """Wait (at most `seconds`) until the backend `pid` of a connection just closed has exited:
    a backend reports what it wrote to the statistics as it exits, after its client has gone, so
    a tidy that reads them right away may miss it. True when it is gone."""
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone() is None:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
