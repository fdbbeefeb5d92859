"""Cleanup against plain DELETEs of the same rows, and a scheduled run while it goes on.

In a throwaway PostgreSQL database: seed 3,000 sim users, set sessions_per_min to --rate, write
--hours of history ending five minutes ago, add real rows (a tenth as many real scene events, in the
same hours, untagged), VACUUM ANALYZE and CHECKPOINT. That database is the template of three copies:

- reference: plain DELETEs of the same rows, one statement per table (scene events and mindblock
  events by the tag and created_at, our finished journeys that ended before the cutoff, then the
  ledger rows of runs that ended before it and that no journey names);
- cleanup: `cleanup_synthetic` as the command and the tasks run it (batches of CLEANUP_BATCH, cursor
  and counts saved per batch), with the same cutoff; a second process starts one `run_scheduled`
  a second after the cleanup started and times it;
- alone: the same scheduled run with no cleanup going on.

The two copies must delete the same number of rows (checked). Prints seconds of each and the ratio
reference / cleanup (the issue's target: >= 0.5), and the scheduled run's seconds with and without
the cleanup (target: under 2 s). Autovacuum plays no part: the template is VACUUM ANALYZEd.

    .venv/bin/python bench/cleanup.py --hours 16 --rate 200
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import psycopg
from common import ROOT, SERVER, connect, throwaway_database, vacuum_analyze

TABLES = ("synthetic_runs", "journeys", "journey_scene_events", "mindblock_events")

BUILD = r"""
import sys
from datetime import timedelta
import django
django.setup()
from django.utils import timezone
from synthetics.models import SyntheticSettings
from synthetics.services import activity_backfill, sim_users_seed
hours, rate = int(sys.argv[1]), int(sys.argv[2])
sim_users_seed(count=3000, seed=1)
SyntheticSettings.objects.filter(pk=1).update(sessions_per_min=rate, max_per_run=rate * 4)
activity_backfill(hours=hours, now=timezone.now() - timedelta(minutes=5))
"""

CLEANUP = r"""
import json, sys, time
from datetime import datetime
import django
django.setup()
from synthetics.services.cleanup import cleanup_synthetic
now = datetime.fromisoformat(sys.argv[1])
started = time.perf_counter()
result = cleanup_synthetic(older_than_hours=int(sys.argv[2]), dry_run=False, now=now)
print(json.dumps({"seconds": time.perf_counter() - started, "counts": result.counts}))
"""

SCHEDULED = r"""
import json, time
import django
django.setup()
from synthetics.services import run_scheduled
started = time.perf_counter()
run = run_scheduled()
print(json.dumps({"seconds": time.perf_counter() - started, "status": run.status,
                  "sessions_started": run.sessions_started,
                  "minutes": (run.window_end - run.window_start).total_seconds() / 60}))
"""


def _child(code: str, *args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )


def _result(process: subprocess.Popen) -> dict:
    out, _ = process.communicate()
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, process.args)
    return json.loads(out.strip().splitlines()[-1])


def _copy(template: str, name: str, env: dict) -> dict:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return {**env, "DATABASE_URL": f"{SERVER}/{name}", "SYNTHETICS_LOCAL_DIR": f"/tmp/{name}"}


def _drop(name: str) -> None:
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


PLAIN = (
    "DELETE FROM journey_scene_events WHERE (event_payload ->> 'synthetic') = 'true' "
    "AND created_at < %(cutoff)s",
    "DELETE FROM mindblock_events WHERE (event_payload ->> 'synthetic') = 'true' "
    "AND created_at < %(cutoff)s",
    "DELETE FROM journeys WHERE is_synthetic AND run_id IS NOT NULL AND status <> 'active' "
    "AND ended_at < %(cutoff)s",
    "DELETE FROM synthetic_runs AS r WHERE window_end < %(cutoff)s "
    "AND NOT EXISTS (SELECT 1 FROM journeys AS j WHERE j.run_id = r.id)",
)


def measure(*, hours: int, rate: int, older_than_hours: int = 1) -> dict:
    with throwaway_database("cleanup") as env:
        build = _child(BUILD, str(hours), str(rate), env=env)
        build.communicate()
        if build.returncode:
            raise subprocess.CalledProcessError(build.returncode, "build")
        with connect(env) as conn:
            # Real rows: a tenth as many untagged scene events as ours, spread over the same hours.
            conn.execute(
                "INSERT INTO journey_scene_events (user_id, journey_id, event_type, created_at, "
                "event_payload, scene_id) SELECT user_id, NULL, 'scene_entered', created_at, "
                '\'{"source": "app"}\'::jsonb, scene_id FROM journey_scene_events '
                "WHERE id % 10 = 0"
            )
            now = conn.execute("SELECT now()").fetchone()[0]
            cutoff = conn.execute(
                "SELECT %s::timestamptz - make_interval(hours => %s)", (now, older_than_hours)
            ).fetchone()[0]
            counts = {
                table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in TABLES
            }
            vacuum_analyze(conn, *TABLES, "sim_users", "users")
            conn.execute("CHECKPOINT")
        template = env["DATABASE_URL"].rsplit("/", 1)[1]
        names = {kind: f"{template}_{kind}" for kind in ("plain", "ours", "alone")}
        try:
            # reference: plain DELETEs
            plain_env = _copy(template, names["plain"], env)
            with connect(plain_env) as conn:
                conn.execute("CHECKPOINT")
                started = time.perf_counter()
                plain_counts = [conn.execute(sql, {"cutoff": cutoff}).rowcount for sql in PLAIN]
                plain_seconds = time.perf_counter() - started
            _drop(names["plain"])
            # ours, with a scheduled run one second in
            ours_env = _copy(template, names["ours"], env)
            with connect(ours_env) as conn:
                conn.execute("CHECKPOINT")
            cleanup = _child(CLEANUP, now.isoformat(), str(older_than_hours), env=ours_env)
            time.sleep(1.0)
            during = _result(_child(SCHEDULED, env=ours_env))
            ours = _result(cleanup)
            _drop(names["ours"])
            # the same scheduled run alone
            alone_env = _copy(template, names["alone"], env)
            alone = _result(_child(SCHEDULED, env=alone_env))
            _drop(names["alone"])
        finally:
            for name in names.values():
                _drop(name)
    ours_counts = ours["counts"]
    same = plain_counts == [
        ours_counts["journey_scene_events"],
        ours_counts["mindblock_events"],
        ours_counts["journeys"],
        ours_counts["synthetic_runs"],
    ]
    if not same:
        raise RuntimeError(f"not the same rows: plain {plain_counts}, ours {ours_counts}")
    return {
        "hours": hours,
        "rate": rate,
        "rows_before": counts,
        "deleted": sum(plain_counts),
        "plain_seconds": plain_seconds,
        "cleanup_seconds": ours["seconds"],
        "ratio": plain_seconds / ours["seconds"],
        "scheduled_during": during,
        "scheduled_alone": alone,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=3)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    result = measure(hours=args.hours, rate=args.rate)
    print(
        f"cleanup of {result['deleted']:,} rows: {result['cleanup_seconds']:.1f} s; plain DELETEs "
        f"{result['plain_seconds']:.1f} s; ratio {result['ratio']:.2f} (target >= 0.5)"
    )
    print(
        f"scheduled run during the cleanup: {result['scheduled_during']['seconds']:.2f} s; "
        f"alone: {result['scheduled_alone']['seconds']:.2f} s (target < 2 s)"
    )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2, default=str)
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
