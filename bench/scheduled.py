"""What one scheduled run costs with 1k / 10k / 50k journeys in progress and 1k new sessions due.

In a throwaway PostgreSQL database: seed enough sim users, put N synthetic journeys in progress
(history spans written just before now, at a rate that leaves N active), VACUUM ANALYZE, then time
`run_scheduled` for the current minute with sessions_per_min = max_per_run = 1,000. The reference,
same database, same moment: a bare read of just the rows in progress
(`SELECT id, plan, next_step FROM journeys WHERE status = 'active'`). Prints each run's seconds,
its ratio to the bare read, and how the run grows from the smallest N to the largest (the issue's
target: under 1 s, within 2x from 1k to 50k). Medians of --repeat runs, each in a fresh database.

    .venv/bin/python bench/scheduled.py --active 1000,10000,50000 [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from common import ROOT, median, throwaway_database

# Runs inside the throwaway database's own Django process (DATABASE_URL set by the parent).
CHILD = r"""
import json, math, sys, time
import django
django.setup()
from dataclasses import replace
from datetime import timedelta
from django.db import connection, transaction
from django.utils import timezone
from synthetics.models import SyntheticSettings
from synthetics.selectors import run_inputs
from synthetics.services import RunInputs, run_scheduled, sim_users_seed
from synthetics.services import runs
from synthetics.services.locks import run_deadline_start

active_target = int(sys.argv[1])
sim_users_seed(count=int(active_target * 1.3) + 3000, seed=1)
SyntheticSettings.objects.filter(pk=1).update(
    sessions_per_min=1000, max_per_run=1000, rhythm_strength=0
)
now = timezone.now()
if now.second > 30:  # the setup and the timed run inside one minute
    time.sleep(61 - now.second)
end = runs.floor_minute(timezone.now())
# About 4.5 minutes a journey: starting active / 4.2 sessions a minute over the six minutes before
# the last one leaves about `active_target` in progress (Little's law), none of them stale. The
# engine is driven directly: the settings' own bound (1,000 a minute) would stop at ~4,500.
inputs = RunInputs.load()
settings = replace(
    run_inputs.generator_settings(),
    sessions_per_min=math.ceil(active_target / 4.2),
    max_per_run=10**6,
)
state = runs._SpanState(pool=inputs.pool, rhythm=inputs.rhythm, active={})
span = runs._simulate_span(
    settings=settings, catalogue=inputs.catalogue, state=state,
    start=end - timedelta(minutes=7), end=end - timedelta(minutes=1), seed=1,
    started_at=timezone.now(), pool_write=None,
)
with transaction.atomic():
    runs._write_span(span, deadline=run_deadline_start(manual=False))
with connection.cursor() as cursor:
    for table in ("journeys", "journey_scene_events", "mindblock_events", "synthetic_runs",
                  "sim_users", "users"):
        cursor.execute(f"VACUUM ANALYZE {table}")
active = run_inputs.active_journey_count()
with connection.cursor() as cursor:
    started = time.perf_counter()
    cursor.execute(
        "SELECT id, plan, next_step FROM journeys WHERE status = 'active' AND is_synthetic"
    )
    cursor.fetchall()
    bare = time.perf_counter() - started
import os
profile = os.environ.get("BENCH_PROFILE")
if profile:
    import cProfile
    profiler = cProfile.Profile()
    profiler.enable()
started = time.perf_counter()
run = run_scheduled()  # covers the last minute: advances every journey, starts 1,000 sessions
seconds = time.perf_counter() - started
if profile:
    profiler.disable()
    profiler.dump_stats(profile)
print(json.dumps({"active": active, "run_seconds": seconds, "bare_read_seconds": bare,
                  "sessions_started": run.sessions_started, "status": run.status,
                  "note": run.note}))
"""


def one(active: int) -> dict:
    with throwaway_database(f"sched{active}") as env:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(active)],
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(*, actives: list[int], repeat: int) -> dict:
    rows = []
    for active in actives:
        runs = [one(active) for _ in range(repeat)]
        rows.append(
            {
                "active_target": active,
                "active": median([r["active"] for r in runs]),
                "run_seconds": median([r["run_seconds"] for r in runs]),
                "bare_read_seconds": median([r["bare_read_seconds"] for r in runs]),
                "sessions_started": median([r["sessions_started"] for r in runs]),
            }
        )
    growth = rows[-1]["run_seconds"] / rows[0]["run_seconds"] if rows else 0.0
    return {"rows": rows, "growth": growth, "repeat": repeat}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--active", default="1000,10000,50000")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    result = measure(actives=[int(a) for a in args.active.split(",")], repeat=args.repeat)
    for row in result["rows"]:
        print(
            f"scheduled run: {row['active']:,.0f} in progress, {row['sessions_started']:,.0f} "
            f"started: {row['run_seconds']:.2f} s (bare read of the rows in progress "
            f"{row['bare_read_seconds']:.3f} s)"
        )
    print(f"scheduled run: growth from the smallest to the largest: {result['growth']:.1f}x")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
