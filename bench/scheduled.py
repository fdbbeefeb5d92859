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

# "waiting": about 1,000 short sessions in progress and the rest in long scenes, so the due work
# stays about the same while the number in progress grows (what the target is about: a run
# costs what is due). "dense": every journey in progress is a short session, most of them due.
SHAPES = ("waiting", "dense")

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
from synthetics.selectors.run_inputs import RunInputs
from synthetics.services import run_scheduled, sim_users_seed
from synthetics.services import history
from synthetics.services.locks import run_deadline_start
from synthetics.engine.bouts import RecentSessions

active_target, shape = int(sys.argv[1]), sys.argv[2]
sim_users_seed(count=int(active_target * 1.3) + 3000, seed=1)
SyntheticSettings.objects.filter(pk=1).update(
    sessions_per_min=1000, max_per_run=1000, rhythm_strength=0
)
inputs = RunInputs.load()
base = run_inputs.generator_settings()
state = history._History(
    settings=base, catalogue=inputs.catalogue, seed=1, pool=inputs.pool, rhythm=inputs.rhythm,
    active={}, recent=RecentSessions(inputs.catalogue.behaviour.bout_minutes),
    numbers=history._AccountNumbers(),
)


def span(*, catalogue, per_minute, start, end):
    # The engine driven directly: the settings' own bound (1,000 a minute) would stop short.
    settings = replace(base, sessions_per_min=per_minute, max_per_run=10**6)
    state.settings, state.catalogue = settings, catalogue
    simulated = history._simulate_span(
        state=state, start=start, end=end, started_at=timezone.now(), pool_write=None
    )
    with transaction.atomic():
        history._write_span(simulated, deadline=run_deadline_start(manual=False))


# The timed run covers the minute before `end` (`run_scheduled(now=end)`: a past minute however
# long the setup takes).
end = history.floor_minute(timezone.now())
# About 4.5 minutes a journey: 4.2 sessions a minute per journey wanted in progress, over the six
# minutes before the timed one, leaves that many in progress (Little's law).
if shape == "dense":  # every journey in progress is a short session: most have a step due
    short_target = active_target
else:  # "waiting": ~1,000 short sessions, the rest wait in long scenes (few due in the minute)
    short_target = min(active_target, 1000)
    waiting = active_target - short_target
    if waiting:
        # The same templates and scenes with every dwell 120x longer (a scene's median of 1 to 3
        # hours: a trial's onboarding, a tab left open): ~9 hours a journey, started over the 12
        # hours before, so about `waiting` are in progress and a run finds ~1/150 of them due.
        slow = replace(inputs.catalogue, templates=tuple(
            replace(t, scenes=tuple(replace(sc, dwell_median_seconds=sc.dwell_median_seconds * 120)
                                    for sc in t.scenes))
            for t in inputs.catalogue.templates))
        span(catalogue=slow, per_minute=math.ceil(waiting / 540),
             start=end - timedelta(hours=12, minutes=8), end=end - timedelta(minutes=8))
span(catalogue=inputs.catalogue, per_minute=math.ceil(short_target / 4.2),
     start=end - timedelta(minutes=8), end=end - timedelta(minutes=2))
# Everything before the timed minute covered, as the scheduler would have left it.
span(catalogue=inputs.catalogue, per_minute=math.ceil(short_target / 4.2),
     start=end - timedelta(minutes=2), end=end - timedelta(minutes=1))
with connection.cursor() as cursor:
    for table in ("journeys", "journey_scene_events", "mindblock_events", "synthetic_runs",
                  "sim_users", "users"):
        cursor.execute(f"VACUUM ANALYZE {table}")
active = run_inputs.active_journey_count()
from synthetics.models import Journey
due = Journey.objects.filter(status="active", is_synthetic=True, next_at__lte=end).count()
with connection.cursor() as cursor:
    started = time.perf_counter()
    cursor.execute(
        "SELECT id, plan, next_step FROM journeys WHERE status = 'active' AND is_synthetic"
        " AND next_at <= %s", [end]
    )
    cursor.fetchall()
    bare = time.perf_counter() - started
import os
profile = os.environ.get("BENCH_PROFILE")
if profile:
    import cProfile
    profiler = cProfile.Profile()
    profiler.enable()
# The worker ran the minute before: its pool and rhythm are kept (what the setup left may or may
# not have moved the stamp; loading here makes every measurement the same kind). A worker that did
# not keep them pays `pool_load_seconds` on top, measured below.
RunInputs.load()
queries = None
if os.environ.get("BENCH_SQL"):  # the run's slowest statements, to stderr
    from django.test.utils import CaptureQueriesContext
    queries = CaptureQueriesContext(connection)
    queries.__enter__()
started = time.perf_counter()
run = run_scheduled(now=end)  # the minute before `end`: its due steps and 1,000 new sessions
seconds = time.perf_counter() - started
if queries is not None:
    queries.__exit__(None, None, None)
    for query in sorted(queries.captured_queries, key=lambda q: -float(q["time"]))[:8]:
        print(query["time"], query["sql"][:300], file=sys.stderr)
if profile:
    profiler.disable()
    profiler.dump_stats(profile)
# What a run pays on top in a worker that did not run the minute before (its first run, or the
# pool changed): loading the pool and its rhythm.
run_inputs._POOL_KEPT.clear()
started = time.perf_counter()
RunInputs.load()
cold_load = time.perf_counter() - started
print(json.dumps({"active": active, "due": due, "pool_load_seconds": cold_load, "run_seconds": seconds, "bare_read_seconds": bare,
                  "sessions_started": run.sessions_started, "status": run.status,
                  "note": run.note}))
"""


def one(active: int, shape: str) -> dict:
    with throwaway_database(f"sched{active}") as env:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(active), shape],
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
            check=True,
            stdout=subprocess.PIPE,
            text=True,
        ).stdout
    return json.loads(out.strip().splitlines()[-1])


def measure(*, actives: list[int], repeat: int, shapes: tuple[str, ...] = SHAPES) -> dict:
    result = {"repeat": repeat}
    for shape in shapes:
        rows = []
        for active in actives:
            runs = [one(active, shape) for _ in range(repeat)]
            rows.append(
                {
                    "active_target": active,
                    **{
                        key: median([r[key] for r in runs])
                        for key in (
                            "active",
                            "due",
                            "run_seconds",
                            "bare_read_seconds",
                            "pool_load_seconds",
                        )
                    },
                    "sessions_started": median([r["sessions_started"] for r in runs]),
                }
            )
        growth = rows[-1]["run_seconds"] / rows[0]["run_seconds"] if rows else 0.0
        result[shape] = {"rows": rows, "growth": growth}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--active", default="1000,10000,50000")
    parser.add_argument("--shape", choices=[*SHAPES, "both"], default="both")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    shapes = SHAPES if args.shape == "both" else (args.shape,)
    result = measure(
        actives=[int(a) for a in args.active.split(",")], repeat=args.repeat, shapes=shapes
    )
    for shape in shapes:
        for row in result[shape]["rows"]:
            print(
                f"scheduled run ({shape}): {row['active']:,.0f} in progress, {row['due']:,.0f} "
                f"due, {row['sessions_started']:,.0f} started: {row['run_seconds']:.2f} s "
                f"(bare read of the due rows {row['bare_read_seconds']:.3f} s; a worker that did not "
                f"keep the pool adds {row['pool_load_seconds']:.2f} s to load it)"
            )
        print(
            f"scheduled run ({shape}): growth from the smallest to the largest: "
            f"{result[shape]['growth']:.1f}x"
        )
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
