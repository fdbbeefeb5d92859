"""Reads at scale: the dashboards' API and the admin's lists over millions of events, against their floors.

In a throwaway PostgreSQL database: seed 3,000 sim users, write one day of history with
`activity_backfill` at a rate that gives --synthetic events over --days days, then copy that day
back --days - 1 times (each copy shifted a day earlier, with its own runs, journeys and event
payloads naming them), add --real real events (untagged, by real accounts, spread over the same
days), then VACUUM ANALYZE, and bring the history up to the current minute (`backfill_activity
--hours 1`: the minutes the build took), so the last five minutes hold what the steady rate writes
(status counts them). Then every page is timed over HTTP on loopback (one gunicorn worker, one
kept-alive connection, as a client sees it): warm-up calls, then --calls timed calls, and the p50.
The references, same run: the API's floor (authentication, then a 400 for a bad hour count) for
the API, and the admin's list of a 7-row table (mindblock types) for the admin's lists. The issue's
targets: p50 < 50 ms and within 3x of the reference. Every SQL statement a page runs (captured
in-process) is EXPLAINed: a sequential scan of an event table, of journeys or of the ledger is
reported. The admin's filter combinations (origin x event type x a day of the date hierarchy, and
the journeys' filters) are each timed once; the slowest is reported (target: a few seconds, never
a 500: SYNTHETICS_ADMIN_LIST_SECONDS stops a list at 3 s).

    .venv/bin/python bench/reads.py --synthetic 10000000 --real 1000000 --days 30
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from common import ROOT, connect, manage, throwaway_database, vacuum_analyze

TABLES = ("synthetic_runs", "journeys", "journey_scene_events", "mindblock_events")

# One day of real history, at the rate that gives `synthetic` events over `days` days.
BUILD = r"""
import sys
from datetime import timedelta
import django
django.setup()
from django.utils import timezone
from synthetics.models import SyntheticSettings
from synthetics.services import activity_backfill, sim_users_seed
rate = int(sys.argv[1])
sim_users_seed(count=3000, seed=1)
SyntheticSettings.objects.filter(pk=1).update(sessions_per_min=rate, max_per_run=rate * 4)
activity_backfill(hours=24, now=timezone.now().replace(second=0, microsecond=0))
"""

# Copy the day `copy` days earlier: new run ids (offset by the ledger's size), new journey ids
# (a hash of the old id and the copy), payloads that name the new runs.
REPLICATE = """
INSERT INTO synthetic_runs (created_at, updated_at, trigger, status, started_at, finished_at,
    window_start, window_end, target, sessions_started, scene_events_created,
    mindblock_events_created, journeys_completed, journeys_abandoned, journeys_errored,
    active_journeys, users_signed_up, users_churned, abandon_rate, error_rate, note, error, id,
    events_from, run_key)
SELECT created_at, updated_at, trigger, status, started_at - %(shift)s::interval, finished_at - %(shift)s::interval,
    window_start - %(shift)s::interval, window_end - %(shift)s::interval, target, sessions_started,
    scene_events_created, mindblock_events_created, journeys_completed, journeys_abandoned,
    journeys_errored, active_journeys, users_signed_up, users_churned, abandon_rate, error_rate,
    note, error, id + %(offset)s, events_from - %(shift)s::interval, run_key
FROM synthetic_runs WHERE id <= %(base)s;
INSERT INTO journeys (id, status, is_synthetic, started_at, ended_at, plan, next_step, updated_at,
    user_id, template_id, sim_user_id, run_id, next_at)
SELECT md5(id::text || %(copy)s)::uuid, CASE WHEN status = 'active' THEN 'completed' ELSE status END,
    is_synthetic, started_at - %(shift)s::interval, coalesce(ended_at, started_at + interval '5 minutes')
    - %(shift)s::interval, plan, next_step, updated_at, user_id, template_id, sim_user_id,
    run_id + %(offset)s, NULL
FROM journeys WHERE run_id <= %(base)s;
INSERT INTO journey_scene_events (event_type, created_at, event_payload, journey_id, user_id, scene_id)
SELECT event_type, created_at - %(shift)s::interval,
    jsonb_set(event_payload, '{run_id}', to_jsonb((event_payload->>'run_id')::bigint + %(offset)s)),
    md5(journey_id::text || %(copy)s)::uuid, user_id, scene_id
FROM journey_scene_events WHERE id <= %(scene_base)s;
INSERT INTO mindblock_events (event_type, created_at, event_payload, journey_id, user_id,
    mindblock_id, scene_id)
SELECT event_type, created_at - %(shift)s::interval,
    jsonb_set(event_payload, '{run_id}', to_jsonb((event_payload->>'run_id')::bigint + %(offset)s)),
    md5(journey_id::text || %(copy)s)::uuid, user_id, mindblock_id, scene_id
FROM mindblock_events WHERE id <= %(mindblock_base)s;
"""

REAL = """
INSERT INTO users (password, is_superuser, username, first_name, last_name, email, is_staff,
    is_active, date_joined, is_synthetic)
SELECT '!', false, 'customer' || n, '', '', '', false, true, now(), false
FROM generate_series(1, 1000) AS n;
INSERT INTO journey_scene_events (event_type, created_at, event_payload, journey_id, user_id, scene_id)
SELECT (ARRAY['scene_entered', 'journey_completed', 'scene_error'])[1 + n %% 3],
    now() - (n::float / %(real)s) * %(span)s::interval, '{"source": "app"}'::jsonb, NULL,
    (SELECT min(id) FROM users WHERE username LIKE 'customer%%') + n %% 1000,
    (SELECT min(id) FROM scenes) + n %% 5
FROM generate_series(1, %(real)s) AS n;
"""

MEASURE = r"""
import http.client, itertools, json, os, socket, statistics, subprocess, sys, time
import django
django.setup()
from django.conf import settings
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token
from synthetics.models import User

calls = int(sys.argv[1])
user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
    "bench", "bench@example.invalid", "x")
token = Token.objects.get_or_create(user=user)[0].key
api = Client(HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_HOST="localhost")
admin = Client(HTTP_HOST="localhost")
admin.force_login(user)
session = admin.cookies[settings.SESSION_COOKIE_NAME].value
SCANNED = ("journey_scene_events", "mindblock_events", "journeys", "synthetic_runs")

# The pages are timed over HTTP on loopback, as a client sees them: one gunicorn worker (sync),
# one kept-alive connection.
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
server = subprocess.Popen(
    [sys.executable, "-m", "gunicorn", "synthetics_site.wsgi:application", "--bind",
     f"127.0.0.1:{port}", "--workers", "1", "--no-control-socket", "--log-level", "warning"],
    env={**os.environ, "SYNTHETICS_LOG_LEVEL": "WARNING"},
)
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.1)
HEADERS = {
    "api": {"Authorization": f"Bearer {token}", "Host": "localhost"},
    "admin": {"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}", "Host": "localhost"},
}


def http_get(conn, url, kind):
    conn.request("GET", url, headers=HEADERS[kind])
    response = conn.getresponse()
    response.read()
    return response.status


def seq_scans(queries):
    found = set()
    with connection.cursor() as cursor:
        for query in queries:
            sql = query["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            cursor.execute("EXPLAIN " + sql, query["params"])
            for (line,) in cursor.fetchall():
                for table in SCANNED:
                    if f"Seq Scan on {table}" in line:
                        found.add(table)
    return sorted(found)


def timed(kind, url, expect=200, n=calls):
    client = api if kind == "api" else admin
    captured = []
    def record(execute, sql, params, many, context):
        captured.append({"sql": sql, "params": params})
        return execute(sql, params, many, context)
    with connection.execute_wrapper(record):
        client.get(url)
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(3):
        status = http_get(conn, url, kind)
        assert status == expect, (url, status)
    seconds = []
    for _ in range(n):
        started = time.perf_counter()
        http_get(conn, url, kind)
        seconds.append(time.perf_counter() - started)
    conn.close()
    return {"url": url, "p50_ms": statistics.median(seconds) * 1000,
            "max_ms": max(seconds) * 1000, "queries": len(captured),
            "seq_scans": seq_scans(captured)}


try:
    floor = timed("api", "/api/synthetics/activity/0", expect=400)
    admin_floor = timed("admin", "/admin/synthetics/mindblocktype/")
    pages = [timed("api", url) for url in (
        "/api/synthetics/status", "/api/synthetics/activity/24", "/api/synthetics/activity/720",
        "/api/synthetics/sim-users")]
    pages += [timed("admin", url) for url in (
        "/admin/synthetics/journeysceneevent/", "/admin/synthetics/mindblockevent/",
        "/admin/synthetics/journey/", "/admin/synthetics/simuser/",
        "/admin/synthetics/syntheticrun/")]
    # Every filter combination of the event lists, once each, with a day of the date hierarchy.
    from django.utils import timezone
    day = timezone.now() - timezone.timedelta(days=3)
    drill = [{}, {"created_at__year": day.year, "created_at__month": day.month,
                  "created_at__day": day.day}]
    urls = []
    for model, types in (
        ("journeysceneevent", ["", "scene_entered", "journey_completed", "scene_error"]),
        ("mindblockevent", ["", "mindblock_reported"]),
    ):
        for origin, event_type, dates in itertools.product(["", "synthetic", "real"], types, drill):
            params = {"origin": origin, "event_type": event_type, **dates}
            query = "&".join(f"{k}={v}" for k, v in params.items() if v)
            urls.append(f"/admin/synthetics/{model}/?{query}")
    urls += [f"/admin/synthetics/journey/?{query}" for query in (
        "status=completed", "origin=real", "origin=synthetic", "template__id__exact=1",
        "status=active&origin=real", "status=abandoned&origin=synthetic")]
    combos = []
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for url in urls:
        started = time.perf_counter()
        status = http_get(conn, url, "admin")
        combos.append({"url": url, "ms": (time.perf_counter() - started) * 1000,
                       "status": status})
finally:
    server.terminate()
    server.wait(timeout=20)
print(json.dumps({"floor": floor, "admin_floor": admin_floor, "pages": pages, "combos": combos}))
"""


def build(env: dict, *, synthetic: int, real: int, days: int) -> dict:
    """Fill the database `env` points at; returns the row counts."""
    # About 1,130 events a minute at 200 sessions a minute (the history benchmark's mix).
    rate = max(1, round(synthetic / days / 1440 / 1130 * 200))
    child_env = {**env, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", BUILD, str(rate)], cwd=ROOT, env=child_env, check=True)
    with connect(env) as conn:
        base = conn.execute("SELECT max(id) FROM synthetic_runs").fetchone()[0]
        scene_base = conn.execute("SELECT max(id) FROM journey_scene_events").fetchone()[0]
        mindblock_base = conn.execute("SELECT max(id) FROM mindblock_events").fetchone()[0]
        for copy in range(1, days):
            values = {
                "shift": f"{copy} days",
                "offset": base * copy,
                "base": base,
                "copy": str(copy),
                "scene_base": scene_base,
                "mindblock_base": mindblock_base,
            }
            with conn.transaction():
                for statement in filter(str.strip, REPLICATE.split(";")):
                    conn.execute(statement, values)
            print(f"reads: day {copy + 1} of {days} written", file=sys.stderr)
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('synthetic_runs', 'id'), "
            "(SELECT max(id) FROM synthetic_runs))"
        )
        for statement in filter(str.strip, REAL.split(";")):
            conn.execute(statement, {"real": real, "span": f"{days} days"})
        counts = {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in TABLES
        }
        vacuum_analyze(conn, *TABLES, "users", "sim_users")
        conn.execute("CHECKPOINT")
    return counts


def pages(env: dict, *, calls: int) -> dict:
    """Time the pages in a Django process on the database `env` points at."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(calls)],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    for page in result["pages"]:
        reference = result["floor" if page["url"].startswith("/api/") else "admin_floor"]
        page["reference_ms"] = reference["p50_ms"]
        page["ratio"] = page["p50_ms"] / reference["p50_ms"]
    result["slowest_filter"] = max(result["combos"], key=lambda combo: combo["ms"])
    return result


def measure(*, synthetic: int, real: int, days: int, calls: int = 20) -> dict:
    with throwaway_database("reads") as env:
        started = time.perf_counter()
        counts = build(env, synthetic=synthetic, real=real, days=days)
        build_seconds = time.perf_counter() - started
        # Bring the history up to the current minute (only the minutes the build took are left):
        # the last five minutes then hold what a steady rate writes, which status counts.
        manage("backfill_activity", "--hours", "1", env=env)
        result = pages(env, calls=calls)
    return {
        "counts": counts,
        "events": counts["journey_scene_events"] + counts["mindblock_events"],
        "days": days,
        "build_seconds": build_seconds,
        **result,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=1_000_000)
    parser.add_argument("--real", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    result = measure(synthetic=args.synthetic, real=args.real, days=args.days, calls=args.calls)
    print(f"{result['counts']} (built in {result['build_seconds']:.0f} s)")
    print(f"API floor {result['floor']['url']}: p50 {result['floor']['p50_ms']:.1f} ms")
    print(
        f"admin reference {result['admin_floor']['url']}: "
        f"p50 {result['admin_floor']['p50_ms']:.1f} ms"
    )
    for page in result["pages"]:
        print(
            f"{page['url']}: p50 {page['p50_ms']:.1f} ms ({page['ratio']:.1f}x its reference), "
            f"{page['queries']} queries, seq scans: {page['seq_scans'] or 'none'}"
        )
    slowest = result["slowest_filter"]
    print(f"slowest admin filter: {slowest['url']} {slowest['ms']:.0f} ms ({slowest['status']})")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2, default=str)
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
