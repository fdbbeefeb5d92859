"""History into an attached application's tables (attach mode) against a bare COPY of the same rows,
same run; and a scheduled run there.

In a throwaway PostgreSQL database holding one of the test applications (tests/apps/<app>.sql:
supabase_like, with its row-level security and an app trigger that counts every scene event, or
identity_keys, with identity keys, an enum and a sessions table): `target inspect` writes the
target file, `migrate` makes Synthetics' own schema, --users sim users are seeded through the
mapping, `target index` makes the tag index, sessions_per_min is set to --rate, every table is VACUUM ANALYZEd, then
`manage.py backfill_activity --hours H` is timed (the whole command). The reference: the rows it
wrote (the ledger and journeys in Synthetics' schema, the events in the application's tables)
copied out, those tables emptied (and the trigger's counts with them) and VACUUMed, and the same
rows COPYed back into the same tables, with their indexes, foreign keys and triggers, in one
transaction. Then, at the next minute, one scheduled run (`run_synthetics`) over the journeys the
history left in progress is timed. Autovacuum plays no part: every table is VACUUM ANALYZEd
before it is measured. With --repeat N the history is measured N times, each in a fresh copy of
the seeded database (CREATE DATABASE … TEMPLATE), and the medians printed with every ratio: on a
machine whose speed moves within minutes, one run says little.

    .venv/bin/python bench/attached.py --app supabase_like --hours 1 --rate 200 --users 20000 \\
        [--repeat 3]
    .venv/bin/python bench/attached.py --app supabase_like --minutes 10 --rate 20000 --users 200000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from statistics import median

import psycopg
from common import (
    ROOT,
    SERVER,
    connect,
    manage,
    tables_copy_back,
    tables_dump,
    timed_manage,
    vacuum_analyze,
)

# What the history writes, parents first (the order of the copy back), per application; and the
# tables only the application's trigger writes (emptied with them: COPY fires the trigger again).
APPS = {
    "supabase_like": {
        "written": (
            "synthetics.synthetic_runs",
            "synthetics.journeys",
            "public.journey_scene_events",
            "public.mindblock_events",
        ),
        "derived": ("public.user_event_counts",),
        "accounts": ("auth.users", "public.profiles"),
    },
    "identity_keys": {
        "written": (
            "synthetics.synthetic_runs",
            "synthetics.journeys",
            "app.activity",
            "app.blockers",
            "app.sessions",
        ),
        "derived": (),
        "accounts": ("app.accounts",),
    },
}


@contextlib.contextmanager
def attached_database(app: str) -> Iterator[dict]:
    """A fresh database holding the application, Synthetics attached to it (inspect, migrate);
    yields manage.py's environment. Dropped on the way out."""
    name = f"synth_bench_attached_{app}_{os.getpid()}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    local = f"/tmp/{name}"
    os.makedirs(local, exist_ok=True)
    target = f"{local}/target.yaml"
    env = {
        **os.environ,
        "DATABASE_URL": f"{SERVER}/{name}",
        "SYNTHETICS_LOCAL_DIR": local,
        "DJANGO_SETTINGS_MODULE": "synthetics_site.settings",
    }
    env.pop("REDIS_URL", None)
    env.pop("SYNTHETICS_TARGET", None)
    try:
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            conn.execute((ROOT / "tests" / "apps" / f"{app}.sql").read_text())
        import subprocess

        proposed = subprocess.run(
            [sys.executable, "manage.py", "target", "inspect"],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        with open(target, "w") as out:
            out.write(proposed)
        env["SYNTHETICS_TARGET"] = target
        manage("migrate", "--noinput", "-v", "0", env=env)
        yield env
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def one(
    *,
    app: str,
    rate: int,
    users: int,
    hours: int = 1,
    repeat: int = 1,
    minutes: int | None = None,
) -> dict:
    """The history measured `repeat` times, each in a fresh copy (CREATE DATABASE … TEMPLATE) of
    one seeded database, and the scheduled run once, in the last copy: medians, and every run."""
    tables = APPS[app]
    with attached_database(app) as env:
        manage("seed_sim_users", "--count", str(users), env=env)
        manage("target", "index", env=env)
        with connect(env) as conn:
            conn.execute(
                "UPDATE synthetics.synthetic_settings SET sessions_per_min = %s, max_per_run = %s",
                (rate, max(rate * 4, 10)),
            )
        runs = []
        for index in range(repeat):
            with database_copy(env, index) as copy_env:
                runs.append(_history_measured(copy_env, tables, hours=hours, minutes=minutes))
                if index == repeat - 1:
                    with connect(copy_env) as conn:
                        in_progress = conn.execute(
                            "SELECT count(*) FROM synthetics.journeys WHERE status = 'active'"
                        ).fetchone()[0]
                    # The next minute's scheduled run, over the journeys the history left going.
                    time.sleep(61 - datetime.now(UTC).second)
                    run_seconds, _ = timed_manage("run_synthetics", env=copy_env)
    return {
        "app": app,
        "hours": hours,
        "minutes": minutes,
        "rate": rate,
        "users": users,
        "repeat": repeat,
        "rows": runs[-1]["rows"],
        "counts": runs[-1]["counts"],
        "backfill_seconds": median([r["backfill_seconds"] for r in runs]),
        "backfill_rows_per_s": median([r["backfill_rows_per_s"] for r in runs]),
        "backfill_peak_rss_mb": max(r["backfill_peak_rss_mb"] for r in runs),
        "copy_seconds": median([r["copy_seconds"] for r in runs]),
        "copy_rows_per_s": median([r["copy_rows_per_s"] for r in runs]),
        "ratio": median([r["ratio"] for r in runs]),
        "ratios": [r["ratio"] for r in runs],
        "scheduled_run_seconds": run_seconds,
        "scheduled_run_in_progress": in_progress,
        "runs": runs,
    }


@contextlib.contextmanager
def database_copy(env: dict, index: int) -> Iterator[dict]:
    """A copy of the seeded database (its template), for one measurement; dropped after it."""
    base = env["DATABASE_URL"].rsplit("/", 1)[1]
    name = f"{base}_run{index}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{base}"')
    try:
        yield {**env, "DATABASE_URL": f"{SERVER}/{name}"}
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _history_measured(env: dict, tables: dict, *, hours: int, minutes: int | None = None) -> dict:
    """`backfill_activity --hours` (or --minutes) timed as a whole command, then the same rows
    copied back bare."""
    with connect(env) as conn:
        vacuum_analyze(
            conn,
            "synthetics.sim_users",
            "synthetics.users",
            *tables["accounts"],
            *tables["written"],
            *tables["derived"],
        )
        conn.execute("CHECKPOINT")  # both measurements start with no dirty pages to flush
    length = ("--minutes", str(minutes)) if minutes else ("--hours", str(hours))
    seconds, rss_mb = timed_manage("backfill_activity", *length, env=env)
    with connect(env) as conn:
        written = tables["written"]
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in written
        }
        rows = sum(counts.values())
        dumps = tables_dump(conn, written)
        conn.execute(f"TRUNCATE {', '.join(written + tables['derived'])} CASCADE")
        vacuum_analyze(conn, *written, *tables["derived"])
        conn.execute("CHECKPOINT")
        copy_seconds = tables_copy_back(conn, dumps)
        vacuum_analyze(conn, *written, *tables["derived"])
    return {
        "rows": rows,
        "counts": counts,
        "backfill_seconds": seconds,
        "backfill_rows_per_s": rows / seconds,
        "backfill_peak_rss_mb": rss_mb,
        "copy_seconds": copy_seconds,
        "copy_rows_per_s": rows / copy_seconds,
        "ratio": copy_seconds / seconds,
    }


def line(result: dict) -> str:
    return (
        f"attached history ({result['app']}): "
        + (f"{result['minutes']} min" if result.get("minutes") else f"{result['hours']} h")
        + f" at {result['rate']}/min, "
        f"{result['users']:,} users: {result['rows']:,} rows; backfill "
        f"{result['backfill_rows_per_s']:,.0f} rows/s ({result['backfill_seconds']:.1f} s, peak "
        f"RSS {result['backfill_peak_rss_mb']} MB); bare COPY {result['copy_rows_per_s']:,.0f} "
        f"rows/s; ratio {result['ratio']:.2f}"
        + (
            f" (median of {result['repeat']}: {', '.join(f'{r:.2f}' for r in result['ratios'])})"
            if result["repeat"] > 1
            else ""
        )
        + "; a scheduled run with "
        f"{result['scheduled_run_in_progress']:,} in progress: "
        f"{result['scheduled_run_seconds']:.2f} s (the command, start-up included)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", choices=sorted(APPS), action="append")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--hours", type=int, default=1)
    length.add_argument("--minutes", type=int, help="instead of --hours: a short history")
    parser.add_argument("--rate", type=int, default=200, help="sessions_per_min")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument(
        "--repeat", type=int, default=1, help="history runs, each in a fresh copy: medians"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    results = [
        one(
            app=app,
            hours=args.hours,
            rate=args.rate,
            users=args.users,
            repeat=args.repeat,
            minutes=args.minutes,
        )
        for app in args.app or sorted(APPS)
    ]
    for result in results:
        print(line(result))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
