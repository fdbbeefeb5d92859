"""Exactly once with more workers: one qcluster, then two, against one PostgreSQL; compare from the ledger.

Creates a throwaway database, seeds the default 3,000 sim users, runs `manage.py qcluster` once for
--minutes, then two at once for --minutes, and reads the run ledger of each phase: minutes covered,
gaps, minutes covered twice, skipped duplicates, sessions per covered minute. Prints the ratio of
two clusters' sessions per minute to one's (the reference measured in the same run). Stops every
process it started and drops its database, also on Ctrl-C.

    .venv/bin/python bench/clusters.py --minutes 10 [--redis]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SERVER = "postgres://postgres@127.0.0.1:5432"


def manage(*args: str, env: dict) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True)


def start_clusters(count: int, env: dict, log_dir: Path) -> list[subprocess.Popen]:
    processes = []
    for index in range(count):
        log = (log_dir / f"qcluster-{count}-{index}.log").open("w")
        processes.append(
            subprocess.Popen([sys.executable, "manage.py", "qcluster"], cwd=ROOT, env=env,
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        )  # fmt: skip
    return processes


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def phase_stats(conn, start, end) -> dict:
    """Ledger of scheduled runs whose covered window ends in (start, end]."""
    rows = conn.execute(
        "SELECT status, window_start, window_end, sessions_started, note FROM synthetic_runs "
        "WHERE trigger = 'scheduled' AND window_end > %s AND window_end <= %s ORDER BY window_end",
        (start, end),
    ).fetchall()
    covered: dict = {}
    for status, window_start, window_end, _, _ in rows:
        if status != "succeeded":
            continue
        minute = window_start
        while minute < window_end:
            covered[minute] = covered.get(minute, 0) + 1
            minute += timedelta(minutes=1)
    first = min(covered) if covered else None
    last = max(covered) if covered else None
    gaps = 0
    if first:
        minute = first
        while minute <= last:
            gaps += minute not in covered
            minute += timedelta(minutes=1)
    sessions = sum(r[3] for r in rows if r[0] == "succeeded")
    return {
        "succeeded": sum(r[0] == "succeeded" for r in rows),
        "skipped_duplicates": sum(
            r[0] == "skipped" and r[4] == "no new minute to cover" for r in rows
        ),
        "failed": sum(r[0] == "failed" for r in rows),
        "minutes_covered": len(covered),
        "minutes_covered_twice": sum(n > 1 for n in covered.values()),
        "gaps": gaps,
        "sessions": sessions,
        "sessions_per_minute": sessions / len(covered) if covered else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=10)
    parser.add_argument(
        "--redis", action="store_true", help="use the Redis broker at 127.0.0.1:6379"
    )
    args = parser.parse_args()
    name = f"synthetics_bench_{os.getpid()}"
    log_dir = Path(f"/tmp/{name}")
    log_dir.mkdir(exist_ok=True)
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(DATABASE_URL=f"{SERVER}/{name}", Q_WORKERS="2", SYNTHETICS_LOCAL_DIR=str(log_dir),
               Q_CLUSTER_NAME=name)  # fmt: skip
    if args.redis:
        env["REDIS_URL"] = "redis://127.0.0.1:6379/14"
    processes: list[subprocess.Popen] = []
    results = {}
    try:
        manage("migrate", "--noinput", "-v0", env=env)
        manage("seed_sim_users", env=env)
        with psycopg.connect(f"{SERVER}/{name}", autocommit=True) as conn:
            for clusters in (1, 2):
                start = conn.execute("SELECT date_trunc('minute', now())").fetchone()[0]
                processes = start_clusters(clusters, env, log_dir)
                print(f"{clusters} cluster(s) running for {args.minutes} minutes ...", flush=True)
                time.sleep(args.minutes * 60 + 45)
                stop(processes)
                end = conn.execute("SELECT date_trunc('minute', now())").fetchone()[0]
                results[clusters] = phase_stats(conn, start, end)
                print(f"  {results[clusters]}", flush=True)
    finally:
        stop(processes)
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    one, two = results[1], results[2]
    ratio = (
        two["sessions_per_minute"] / one["sessions_per_minute"] if one["sessions_per_minute"] else 0
    )
    print(
        f"sessions per covered minute: one cluster {one['sessions_per_minute']:.2f}, "
        f"two clusters {two['sessions_per_minute']:.2f}; ratio two/one = {ratio:.2f} "
        f"(expected mean 1.97/min at the defaults: Poisson(2) capped at 5)"
    )
    print(
        f"minutes covered twice: {one['minutes_covered_twice']} / {two['minutes_covered_twice']}; "
        f"gaps: {one['gaps']} / {two['gaps']}; duplicate runs skipped: "
        f"{one['skipped_duplicates']} / {two['skipped_duplicates']}"
    )
    return 0 if two["minutes_covered_twice"] == 0 and two["gaps"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
