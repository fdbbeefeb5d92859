"""Throughput of scheduled runs split into shards, with 1 and 2 django-q2 workers, ORM and Redis broker.

One throwaway database is seeded once (--users sim users; sessions_per_min = max_per_run = --rate,
a flat rate: rhythm_strength 0) and copied (CREATE DATABASE ... TEMPLATE) for each case, so every
case starts from the same rows. A case: start `manage.py qcluster` with Q_WORKERS = 1 or 2 and
SYNTHETICS_SHARDS = --shards, against the ORM broker (the same PostgreSQL) or Redis (127.0.0.1:6379,
a queue of its own, deleted afterwards); queue the shard tasks of --minutes past minutes, as the
schedule's fan-out queues them (`synthetics.tasks.shard_run`, shard by shard, minute by minute); wait
until the ledger holds a run for each; stop the cluster. Throughput: rows written (sessions, scene
and mindblock events) per second, from the first task queued to the last run finished. The reference
is the same broker with one worker, in the same bench run: the ratio is 2 workers / 1 worker.

Each case also checks exactly-once coverage: every minute of every shard covered by one run, no gap.

    .venv/bin/python bench/shards.py [--users 30000] [--rate 3000] [--shards 4] [--minutes 8]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg
from common import ROOT, SERVER, connect, manage, throwaway_database

REDIS_URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/14")
CASES = (("orm", 1), ("orm", 2), ("redis", 1), ("redis", 2))

# Queues the shard tasks of `minutes` past minutes (run in the case's own Django process).
ENQUEUE = r"""
import json, sys, time
import django
django.setup()
from datetime import timedelta
from django.utils import timezone
from django_q.tasks import async_task
from synthetics.engine.minute import floor_minute

minutes, shards = int(sys.argv[1]), int(sys.argv[2])
end = floor_minute(timezone.now()) - timedelta(minutes=1)
first = end - timedelta(minutes=minutes)
queued_at = time.time()
for minute in range(1, minutes + 1):
    now = (first + timedelta(minutes=minute, seconds=1)).isoformat()
    for shard in range(shards):
        async_task("synthetics.tasks.shard_run", shard, shards, now, group="bench")
print(json.dumps({"first": first.isoformat(), "queued_at": queued_at,
                  "queue_seconds": time.time() - queued_at}))
"""


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _coverage(conn, shards: int) -> dict:
    """Minutes covered per shard by the runs of the case: twice, and gaps between first and last."""
    twice = gaps = 0
    for shard in range(shards):
        covered: dict = {}
        for start, end in conn.execute(
            "SELECT window_start, window_end FROM synthetic_runs WHERE trigger = 'scheduled' "
            "AND shard = %s AND shards = %s AND status IN ('succeeded', 'skipped') "
            "AND window_end > window_start",
            (shard, shards),
        ):
            minute = start
            while minute < end:
                covered[minute] = covered.get(minute, 0) + 1
                minute += timedelta(minutes=1)
        twice += sum(count > 1 for count in covered.values())
        if covered:
            minute, last = min(covered), max(covered)
            while minute <= last:
                gaps += minute not in covered
                minute += timedelta(minutes=1)
    return {"minutes_covered_twice": twice, "gaps": gaps}


def _case(template: str, *, broker: str, workers: int, shards: int, minutes: int) -> dict:
    name = f"synth_bench_shards_{broker}_{workers}_{os.getpid()}"
    cluster = f"{name}_q"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        DATABASE_URL=f"{SERVER}/{name}",
        SYNTHETICS_LOCAL_DIR=f"/tmp/{name}",
        DJANGO_SETTINGS_MODULE="synthetics_site.settings",
        Q_WORKERS=str(workers),
        Q_CLUSTER_NAME=cluster,
        SYNTHETICS_SHARDS=str(shards),
    )
    if broker == "redis":
        env["REDIS_URL"] = REDIS_URL
    log = Path(f"/tmp/{name}.log")
    process = None
    try:
        with log.open("w") as out:
            process = subprocess.Popen(
                [sys.executable, "manage.py", "qcluster"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        time.sleep(4)  # the cluster's workers up before the clock starts
        queued = json.loads(
            subprocess.run(
                [sys.executable, "-c", ENQUEUE, str(minutes), str(shards)],
                cwd=ROOT, env=env, check=True, capture_output=True, text=True,
            ).stdout.strip().splitlines()[-1]
        )  # fmt: skip
        expected = minutes * shards
        deadline = time.monotonic() + 60 + minutes * shards * 50
        with psycopg.connect(env["DATABASE_URL"], autocommit=True) as conn:
            while True:
                count, last = conn.execute(
                    "SELECT count(*), extract(epoch FROM max(finished_at)) FROM synthetic_runs "
                    "WHERE trigger = 'scheduled' AND shards = %s",
                    (shards,),
                ).fetchone()
                if count >= expected:
                    break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{count} of {expected} runs done; see {log}")
                time.sleep(0.2)
            totals = conn.execute(
                "SELECT sum(sessions_started), sum(scene_events_created), "
                "sum(mindblock_events_created), count(*) FILTER (WHERE status = 'succeeded'), "
                "count(*) FILTER (WHERE status = 'failed') FROM synthetic_runs "
                "WHERE trigger = 'scheduled' AND shards = %s",
                (shards,),
            ).fetchone()
            coverage = _coverage(conn, shards)
    finally:
        if process is not None:
            _stop(process)
        if broker == "redis":
            import redis

            redis.Redis.from_url(REDIS_URL).delete(f"django_q:{cluster}:q")
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    seconds = float(last) - queued["queued_at"]
    sessions, scene_events, mindblock_events, succeeded, failed = (int(x or 0) for x in totals)
    rows = sessions + scene_events + mindblock_events
    return {
        "broker": broker,
        "workers": workers,
        "runs": expected,
        "succeeded": succeeded,
        "failed": failed,
        "sessions": sessions,
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        **coverage,
    }


def measure(*, users: int, rate: int, shards: int, minutes: int) -> dict:
    with throwaway_database("shards_tpl") as env:
        manage("seed_sim_users", "--count", str(users), env=env)
        with connect(env) as conn:
            conn.execute(
                "UPDATE synthetic_settings SET sessions_per_min = %s, max_per_run = %s, "
                "rhythm_strength = 0",
                (rate, rate),
            )
            conn.execute("VACUUM ANALYZE")
        template = env["DATABASE_URL"].rsplit("/", 1)[1]
        cases = []
        for broker, workers in CASES:
            print(f"  shards: {broker} broker, {workers} worker(s) ...", file=sys.stderr)
            cases.append(
                _case(template, broker=broker, workers=workers, shards=shards, minutes=minutes)
            )
    by = {(c["broker"], c["workers"]): c for c in cases}
    return {
        "users": users,
        "rate": rate,
        "shards": shards,
        "minutes": minutes,
        "cases": cases,
        "ratio_orm": by["orm", 2]["rows_per_s"] / by["orm", 1]["rows_per_s"],
        "ratio_redis": by["redis", 2]["rows_per_s"] / by["redis", 1]["rows_per_s"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=30_000)
    parser.add_argument("--rate", type=int, default=3_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--minutes", type=int, default=8)
    args = parser.parse_args()
    result = measure(users=args.users, rate=args.rate, shards=args.shards, minutes=args.minutes)
    for case in result["cases"]:
        print(json.dumps(case, default=str))
    print(
        f"2 workers / 1 worker: ORM broker {result['ratio_orm']:.2f}, "
        f"Redis broker {result['ratio_redis']:.2f}"
    )
    exact = all(c["minutes_covered_twice"] == 0 and c["gaps"] == 0 for c in result["cases"])
    return 0 if exact else 1


if __name__ == "__main__":
    sys.exit(main())
