"""History at COPY speed: `backfill_activity` against a bare COPY of the same rows, same run.

In a throwaway PostgreSQL database: seed --users sim users, set sessions_per_min to --rate (the cap
out of the way), VACUUM ANALYZE, then time `manage.py backfill_activity --hours H` (the whole
command: start-up, engine, writes; its own peak RSS from wait4); --minutes M instead of --hours
for a short history at a high rate. The reference: the rows it wrote
(journeys, scene and mindblock events, ledger) copied out, the four tables truncated and VACUUMed,
and the same rows COPYed back into the same tables and indexes in one transaction. Prints rows/s of
each and their ratio (the issue's target: >= 0.6). Repeats --repeat times in fresh databases and
takes medians. Autovacuum plays no part: every table is VACUUM ANALYZEd before it is measured.

    .venv/bin/python bench/history.py --hours 6 --rate 200 --users 50000 [--repeat 3]
    .venv/bin/python bench/history.py --minutes 10 --rate 20000 --users 200000
"""

from __future__ import annotations

import argparse
import json
import sys

from common import (
    connect,
    median,
    tables_copy_back,
    tables_dump,
    throwaway_database,
    timed_manage,
    vacuum_analyze,
)

TABLES = ("synthetic_runs", "journeys", "journey_scene_events", "mindblock_events")


def one(*, minutes: int, rate: int, users: int, label: str = "history") -> dict:
    with throwaway_database(label) as env:
        from common import manage

        manage("seed_sim_users", "--count", str(users), env=env)
        with connect(env) as conn:
            conn.execute(
                "UPDATE synthetic_settings SET sessions_per_min = %s, max_per_run = %s",
                (rate, max(rate * 4, 10)),
            )
            vacuum_analyze(conn, "sim_users", "users", *TABLES)
            conn.execute("CHECKPOINT")  # both measurements start with no dirty pages to flush
        seconds, rss_mb = timed_manage("backfill_activity", "--minutes", str(minutes), env=env)
        with connect(env) as conn:
            counts = {
                table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in TABLES
            }
            rows = sum(counts.values())
            dumps = tables_dump(conn, TABLES)
            conn.execute(f"TRUNCATE {', '.join(TABLES)}")
            vacuum_analyze(conn, *TABLES)
            conn.execute("CHECKPOINT")
            copy_seconds = tables_copy_back(conn, dumps)  # parents first, as TABLES are
    return {
        "rows": rows,
        "counts": counts,
        "backfill_seconds": seconds,
        "backfill_rows_per_s": rows / seconds,
        "backfill_peak_rss_mb": rss_mb,
        "copy_seconds": copy_seconds,
        "copy_rows_per_s": rows / copy_seconds,
        "ratio": (rows / seconds) / (rows / copy_seconds),
    }


def measure(
    *, rate: int, users: int, repeat: int, hours: int = 0, minutes: int | None = None
) -> dict:
    """`hours` of history, or `minutes`."""
    minutes = hours * 60 if minutes is None else minutes
    runs = [one(minutes=minutes, rate=rate, users=users) for _ in range(repeat)]
    return {
        "hours": minutes // 60 if minutes % 60 == 0 else minutes / 60,
        "minutes": minutes,
        "rate": rate,
        "users": users,
        "repeat": repeat,
        "rows": runs[0]["rows"],
        "backfill_rows_per_s": median([r["backfill_rows_per_s"] for r in runs]),
        "copy_rows_per_s": median([r["copy_rows_per_s"] for r in runs]),
        "ratio": median([r["ratio"] for r in runs]),
        "backfill_seconds": median([r["backfill_seconds"] for r in runs]),
        "backfill_peak_rss_mb": max(r["backfill_peak_rss_mb"] for r in runs),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--hours", type=int, default=6)
    length.add_argument("--minutes", type=int, help="instead of --hours: a short history")
    parser.add_argument("--rate", type=int, default=200, help="sessions_per_min")
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    result = measure(
        hours=args.hours,
        minutes=args.minutes,
        rate=args.rate,
        users=args.users,
        repeat=args.repeat,
    )
    length = (
        f"{result['minutes']} min" if result["minutes"] % 60 else f"{result['minutes'] // 60} h"
    )
    print(
        f"history: {length} at {result['rate']}/min, {result['users']:,} users: "
        f"{result['rows']:,} rows; backfill {result['backfill_rows_per_s']:,.0f} rows/s "
        f"({result['backfill_seconds']:.1f} s, peak RSS {result['backfill_peak_rss_mb']} MB); "
        f"bare COPY {result['copy_rows_per_s']:,.0f} rows/s; ratio {result['ratio']:.2f}"
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
