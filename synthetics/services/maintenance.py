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
there first and nothing is due. VACUUM (not FULL) takes no lock that stops a run's reads or writes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import connection

from synthetics.models import (
    Journey,
    JourneySceneEvent,
    MindblockEvent,
    SimUser,
    SyntheticRun,
    SyntheticRunHour,
)

logger = logging.getLogger("synthetics")

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


def tables_tidy() -> Tidied:
    """VACUUM (ANALYZE) or ANALYZE the tables runs and cleanups write, those that are due
    (tidy_due). PostgreSQL only, and outside a transaction (VACUUM cannot run in one): elsewhere,
    or inside a caller's transaction, nothing."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return Tidied((), ())
    with connection.cursor() as cursor:
        if connection.pg_version >= 150000:  # this connection's own counts: reported, not pending
            cursor.execute("SELECT pg_stat_force_next_flush()")
            cursor.execute("SELECT 1")
        cursor.execute(
            "SELECT relname, n_live_tup, n_dead_tup, n_mod_since_analyze "
            "FROM pg_stat_user_tables "
            "WHERE schemaname = current_schema() AND relname = ANY(%s)",
            [list(TABLES)],
        )
        stats = cursor.fetchall()
        vacuumed, analyzed = [], []
        for table, rows, dead, changed in sorted(stats):
            vacuum, analyze = tidy_due(rows=rows, dead=dead, changed=changed)
            name = connection.ops.quote_name(table)
            if vacuum:
                cursor.execute(f"VACUUM (ANALYZE) {name}")
                vacuumed.append(table)
            elif analyze:
                cursor.execute(f"ANALYZE {name}")
                analyzed.append(table)
    if vacuumed or analyzed:
        logger.info(
            "synthetics tidy vacuumed=%s analyzed=%s",
            ",".join(vacuumed) or "-",
            ",".join(analyzed) or "-",
        )
    return Tidied(tuple(vacuumed), tuple(analyzed))
