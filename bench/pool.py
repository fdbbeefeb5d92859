"""A pool of a million sim users: seeding it, a scheduled run over it, the pages that count it.

In a throwaway PostgreSQL database: time `manage.py seed_sim_users --count N` (its wall time and
peak RSS); the reference, same run: the rows it wrote (users and sim_users) copied out, both tables
truncated and VACUUMed, and COPYed back into the same tables and indexes in one transaction. Then,
with sessions_per_min = max_per_run = 1,000 (well inside what a million users sustain) and every
table VACUUM ANALYZEd, one Django process times: a scheduled run in a worker that has not loaded the
pool yet (it reads the million and builds their rhythm) and the next minute's run (the pool kept
under its stamp); then another, as a web process would, times `status`, `insights` and
`expectations` (their caches cleared before each call) in-process: the first call, then the p50 of
20. Each reports its peak RSS.

    .venv/bin/python bench/pool.py --users 1000000
    .venv/bin/python bench/pool.py --users 1000000 --seed-only   # seeding and its reference alone
    .venv/bin/python bench/pool.py --users 1000000 --app supabase_like   # attach mode

With --app, the same in attach mode: a throwaway database holding one of the test applications
(tests/apps/<app>.sql), Synthetics attached to it as bench/attached.py does (`target inspect`,
`migrate`); seeding makes each sim user's account in the application's account tables through the
target file, and the reference COPYs back the rows it wrote there and in Synthetics' sim_users.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys

from common import (
    ROOT,
    connect,
    tables_copy_back,
    tables_dump,
    throwaway_database,
    timed_manage,
    vacuum_analyze,
)

TABLES = ("users", "sim_users")


def _tables(app: str | None) -> tuple[str, ...]:
    """What seeding writes, parents first (the order of the copy back)."""
    if app is None:
        return TABLES
    from attached import APPS

    # the application's accounts, then Synthetics' own account and sim user of each
    return (*APPS[app]["accounts"], "synthetics.users", "synthetics.sim_users")


def _database(app: str | None) -> contextlib.AbstractContextManager[dict]:
    if app is None:
        return throwaway_database("pool")
    from attached import attached_database

    return attached_database(app)


CHILD = r"""
import json, statistics, sys, time
import django
if sys.argv[1] == "runs":
    django.setup()
else:  # a web process starts as gunicorn starts one: through the WSGI module (synthetics.startup)
    import synthetics_site.wsgi
from datetime import timedelta
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from synthetics.models import User
from synthetics.services import run_scheduled
from synthetics.services.expectations import fidelity_refresh

mode = sys.argv[1]
result = {}
if mode == "runs":  # a worker: the minute's run loads the pool, the next one keeps it
    now = timezone.now().replace(second=0, microsecond=0)
    for label, moment in (("run_cold", now - timedelta(minutes=1)), ("run_warm", now)):
        started = time.perf_counter()
        run = run_scheduled(now=moment)
        result[label] = {"seconds": time.perf_counter() - started, "status": run.status,
                         "sessions_started": run.sessions_started}
    # what the worker's task does after each scheduled minute (tasks.scheduled_run): the last
    # hour's verdict, which plans (and keeps: services.planned) the sessions expectations weigh
    started = time.perf_counter()
    fidelity_refresh(now=timezone.now())
    result["fidelity_refresh"] = {"seconds": time.perf_counter() - started}
else:  # a fresh web process for one page: it never holds the pool (insights and expectations
    # read its groups). The API floor's first call, then the page's first call, then the p50.
    url, clear = sys.argv[2], sys.argv[3] == "clear"
    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", "bench@example.invalid", "x")
    client = Client(HTTP_AUTHORIZATION=f"Bearer {Token.objects.get_or_create(user=user)[0].key}",
                    HTTP_HOST="localhost")
    if clear:
        cache.clear()
    started = time.perf_counter()
    assert client.get("/api/synthetics/activity/0").status_code == 400
    floor_first = time.perf_counter() - started
    started = time.perf_counter()
    response = client.get(url)
    first = time.perf_counter() - started
    assert response.status_code == 200, (url, response.status_code)
    seconds = []
    for _ in range(20):
        if clear:
            cache.clear()
        started = time.perf_counter()
        client.get(url)
        seconds.append(time.perf_counter() - started)
    result[mode] = {"first_ms": first * 1000, "p50_ms": statistics.median(seconds) * 1000,
                    "floor_first_ms": floor_first * 1000}
with open("/proc/self/status") as status:  # VmHWM: this program's own peak (not its parent's)
    result["peak_rss_mb"] = int(next(l.split()[1] for l in status if l.startswith("VmHWM:"))) // 1024
print(json.dumps(result))
"""


def measure(*, users: int, seed_only: bool = False, app: str | None = None) -> dict:
    tables = _tables(app)
    with _database(app) as env:
        with connect(env) as conn:
            vacuum_analyze(conn, *tables)
            conn.execute("CHECKPOINT")  # both measurements start with no dirty pages to flush
        seed_seconds, seed_rss = timed_manage("seed_sim_users", "--count", str(users), env=env)
        with connect(env) as conn:
            rows = sum(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables)
            dumps = tables_dump(conn, tables)
            conn.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
            vacuum_analyze(conn, *tables)
            conn.execute("CHECKPOINT")
            # accounts before the sim users naming them
            copy_seconds = tables_copy_back(conn, dumps)
            if app is not None:  # the tag index attach mode's reads use (`target index`)
                subprocess.run(
                    [sys.executable, "manage.py", "target", "index"],
                    cwd=ROOT,
                    env=env,
                    check=True,
                    stdout=subprocess.DEVNULL,
                )
            own = "" if app is None else "synthetics."  # attached: Synthetics' own schema
            conn.execute(
                f"UPDATE {own}synthetic_settings SET sessions_per_min = 1000, max_per_run = 1000"
            )
            vacuum_analyze(conn, *tables, f"{own}journeys", f"{own}synthetic_runs")
        runs = {}
        pages = {
            "status": ("/api/synthetics/status", "keep"),
            "insights_uncached": ("/api/synthetics/insights", "clear"),
            "expectations_uncached": ("/api/synthetics/expectations", "clear"),
        }
        for mode in () if seed_only else ("runs", *pages):
            child = subprocess.run(
                [sys.executable, "-c", CHILD, mode, *pages.get(mode, ())],
                cwd=ROOT,
                env={**env, "PYTHONPATH": str(ROOT), "SYNTHETICS_LOG_LEVEL": "WARNING"},
                check=True,
                capture_output=True,
                text=True,
            )
            figures = json.loads(child.stdout.strip().splitlines()[-1])
            rss = figures.pop("peak_rss_mb")
            if mode == "runs":
                figures["runs_peak_rss_mb"] = rss
            else:
                figures[mode]["peak_rss_mb"] = rss
                runs["pages_peak_rss_mb"] = max(runs.get("pages_peak_rss_mb", 0), rss)
            runs.update(figures)
    return {
        "app": app,
        "users": users,
        "rows": rows,
        "seed_seconds": seed_seconds,
        "seed_peak_rss_mb": seed_rss,
        "seed_rows_per_s": rows / seed_seconds,
        "copy_seconds": copy_seconds,
        "copy_rows_per_s": rows / copy_seconds,
        "ratio": copy_seconds / seed_seconds,
        **runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument(
        "--seed-only", action="store_true", help="time the seeding and its reference, nothing else"
    )
    parser.add_argument(
        "--app",
        choices=("supabase_like", "identity_keys"),
        help="attach mode: seed into this test application's tables (tests/apps/<app>.sql)",
    )
    args = parser.parse_args(argv)
    r = measure(users=args.users, seed_only=args.seed_only, app=args.app)
    seeding = (
        f"pool of {r['users']:,}{f' (attached: {args.app})' if args.app else ''}: seeding {r['seed_seconds']:.1f} s ({r['seed_rows_per_s']:,.0f} "
        f"rows/s, peak RSS {r['seed_peak_rss_mb']} MB), bare COPY {r['copy_seconds']:.1f} s, "
        f"ratio {r['ratio']:.2f}"
    )
    if args.seed_only:
        print(seeding)
    else:
        print(
            f"{seeding}; scheduled run {r['run_cold']['seconds']:.2f} s cold, "
            f"{r['run_warm']['seconds']:.2f} s warm, fidelity refresh "
            f"{r['fidelity_refresh']['seconds']:.2f} s; first calls in a fresh web process "
            f"(its API floor's first call {r['status']['floor_first_ms']:.0f} / "
            f"{r['insights_uncached']['floor_first_ms']:.0f} / "
            f"{r['expectations_uncached']['floor_first_ms']:.0f} ms): "
            f"status {r['status']['first_ms']:.0f} ms first, "
            f"p50 {r['status']['p50_ms']:.1f} ms; insights uncached "
            f"{r['insights_uncached']['first_ms']:.0f} ms first, p50 "
            f"{r['insights_uncached']['p50_ms']:.0f} ms; expectations uncached "
            f"{r['expectations_uncached']['first_ms']:.0f} ms first, p50 "
            f"{r['expectations_uncached']['p50_ms']:.0f} ms; peak RSS {r['runs_peak_rss_mb']} MB "
            f"(worker), {r['pages_peak_rss_mb']} MB (web)"
        )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(r, out, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
