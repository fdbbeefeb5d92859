"""Export against a bare COPY of the same rows: the selector's streamed CSV and NDJSON, same run.

In a throwaway PostgreSQL database: seed --users sim users, write --hours of history at --rate
sessions/min (the cap out of the way), add a tenth as many real scene events in the same hours
(untagged, so the rule has rows to leave out), VACUUM ANALYZE and CHECKPOINT. Then, in one Django
process, alternately --repeat times: a bare `COPY (SELECT <the export's columns> FROM
journey_scene_events WHERE <the identity rule, the range> ORDER BY created_at, id) TO STDOUT (FORMAT
csv, HEADER)` read through psycopg into a sink, and `export_chunks` (keyset pages of
EXPORT_PAGE_SIZE in time windows, each page a COPY of its own) into the same sink, as CSV and as
NDJSON. Both read the same rows, warm (a first COPY warms the cache and is not counted); both counts
are checked equal. Prints rows/s of each and the ratios export / COPY (the issue's target: >= 0.5),
medians, the number of pages, and the plan of a page from the middle of the export (it must walk
the tag index or read only its window, not sort the rest of the range, and not be JIT-compiled).
BENCH_PROFILE=FILE writes a cProfile of one export in each format.

    .venv/bin/python bench/export.py --hours 6 --rate 200 --users 20000 [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from common import ROOT, connect, manage, median, throwaway_database, vacuum_analyze

TABLES = ("synthetic_runs", "journeys", "journey_scene_events", "mindblock_events")

BUILD = r"""
import sys
from datetime import timedelta
import django
django.setup()
from django.db import connection
from django.utils import timezone
from synthetics.models import SyntheticSettings
from synthetics.services import activity_backfill
hours, rate = int(sys.argv[1]), int(sys.argv[2])
SyntheticSettings.objects.filter(pk=1).update(sessions_per_min=rate, max_per_run=rate * 4)
now = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
activity_backfill(hours=hours, now=now, seed=1)
with connection.cursor() as cursor:
    # A tenth as many real scene events, untagged, spread over the same hours.
    cursor.execute(
        "INSERT INTO journey_scene_events (user_id, journey_id, scene_id, event_type, created_at, "
        "event_payload) SELECT user_id, NULL, scene_id, event_type, created_at + interval '7 ms', "
        "'{\"source\": \"app\"}'::jsonb FROM journey_scene_events WHERE id % 10 = 0"
    )
print(now.isoformat())
"""

MEASURE = r"""
import json, os, sys, time
from datetime import datetime, timedelta
import django
django.setup()
import psycopg
from django.db import connection
from synthetics.selectors import export
from synthetics.selectors.export import export_chunks, export_columns, export_request

now, repeat = datetime.fromisoformat(sys.argv[1]), int(sys.argv[2])
hours = int(sys.argv[3])
request = export_request(table="scene_events", format="csv", since=now - timedelta(hours=hours + 1),
                         until=now + timedelta(minutes=1), now=now)
source = export._source("scene_events")
ranged = source.queryset.filter(created_at__gte=request.since, created_at__lt=request.until)
sql, params = ranged.order_by("created_at", "id").values_list(*source.selected).query.sql_with_params()
connection.ensure_connection()
raw = connection.connection
copy_sql = psycopg.ClientCursor(raw).mogrify(f"COPY ({sql}) TO STDOUT (FORMAT csv, HEADER)", params)

def bare_copy():
    rows = size = 0
    started = time.perf_counter()
    with raw.cursor() as cursor:
        with cursor.copy(copy_sql) as copy:
            for chunk in copy:
                size += len(chunk)
                rows += bytes(chunk).count(b"\n")
    return time.perf_counter() - started, rows - 1, size  # the header is no row

def exported(format):
    rows = size = 0
    def counted(page):
        nonlocal rows
        rows += page
    started = time.perf_counter()
    for chunk in export_chunks(export_request(table="scene_events", format=format,
                                              since=request.since, until=request.until, now=now),
                               progress=counted):
        size += len(chunk)
    return time.perf_counter() - started, rows, size

bare_copy()  # warm the cache: every measurement below reads warm pages
runs = []
for _ in range(repeat):
    copy_s, copy_rows, copy_bytes = bare_copy()
    csv_s, csv_rows, csv_bytes = exported("csv")
    nd_s, nd_rows, nd_bytes = exported("ndjson")
    assert copy_rows == csv_rows == nd_rows, (copy_rows, csv_rows, nd_rows)
    runs.append({"rows": copy_rows, "copy_seconds": copy_s, "csv_seconds": csv_s,
                 "ndjson_seconds": nd_s, "copy_bytes": copy_bytes, "csv_bytes": csv_bytes,
                 "ndjson_bytes": nd_bytes})
if os.environ.get("BENCH_PROFILE"):  # a cProfile of one CSV and one NDJSON export
    import cProfile
    with cProfile.Profile() as profile:
        exported("csv")
        exported("ndjson")
    profile.dump_stats(os.environ["BENCH_PROFILE"])
# The pages' statements of one more export (not timed), and the plan of one from the middle.
statements, copied = [], export._copied
def recorded(statement, params):
    statements.append((statement, params))
    return copied(statement, params)
export._copied = recorded
exported("csv")
export._copied = copied
statement, params = statements[len(statements) // 2]
page_sql = statement[len("COPY ("):statement.rindex(") TO STDOUT")]
with raw.cursor() as cursor:
    plan = "\n".join(row[0] for row in cursor.execute(
        "EXPLAIN ANALYZE " + psycopg.ClientCursor(raw).mogrify(page_sql, params)))
print(json.dumps({"runs": runs, "plan": plan, "page_size": export.EXPORT_PAGE_SIZE,
                  "pages": len(statements)}))
"""


def _python(script: str, *args: str, env: dict) -> str:
    return subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def measure(*, hours: int, rate: int, users: int, repeat: int) -> dict:
    with throwaway_database("export") as env:
        manage("seed_sim_users", "--count", str(users), env=env)
        now = _python(BUILD, str(hours), str(rate), env=env).strip().splitlines()[-1]
        with connect(env) as conn:
            vacuum_analyze(conn, *TABLES)
            conn.execute("CHECKPOINT")
            real = conn.execute(
                'SELECT count(*) FROM journey_scene_events WHERE event_payload = \'{"source": "app"}\''
            ).fetchone()[0]
        result = json.loads(_python(MEASURE, now, str(repeat), str(hours), env=env))
    runs = result["runs"]
    rows = runs[0]["rows"]
    copy_rate = median([rows / r["copy_seconds"] for r in runs])
    csv_rate = median([rows / r["csv_seconds"] for r in runs])
    ndjson_rate = median([rows / r["ndjson_seconds"] for r in runs])
    plan = result["plan"]
    return {
        "hours": hours,
        "rate": rate,
        "users": users,
        "repeat": repeat,
        "rows": rows,
        "real_rows_left_out": real,
        "page_size": result["page_size"],
        "pages": result["pages"],
        "copy_rows_per_s": copy_rate,
        "csv_rows_per_s": csv_rate,
        "ndjson_rows_per_s": ndjson_rate,
        "csv_ratio": median([r["copy_seconds"] / r["csv_seconds"] for r in runs]),
        "ndjson_ratio": median([r["copy_seconds"] / r["ndjson_seconds"] for r in runs]),
        "page_walks_tag_index": "scene_events_synthetic_idx" in plan,
        "page_jit": "JIT:" in plan,
        "page_plan": plan,
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, default=6)
    parser.add_argument("--rate", type=int, default=200, help="sessions_per_min")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--plan", action="store_true", help="also print a page's plan")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    result = measure(hours=args.hours, rate=args.rate, users=args.users, repeat=args.repeat)
    print(
        f"export: {result['rows']:,} scene events of ours ({result['hours']} h at "
        f"{result['rate']}/min, {result['real_rows_left_out']:,} real rows left out), pages of "
        f"{result['page_size']:,} ({result['pages']} statements): CSV {result['csv_rows_per_s']:,.0f} rows/s, NDJSON "
        f"{result['ndjson_rows_per_s']:,.0f} rows/s; bare COPY {result['copy_rows_per_s']:,.0f} "
        f"rows/s; ratio CSV {result['csv_ratio']:.2f}, NDJSON {result['ndjson_ratio']:.2f}; "
        f"a page reads the tag index: {'yes' if result['page_walks_tag_index'] else 'NO'}, "
        f"JIT-compiled: {'YES' if result['page_jit'] else 'no'}"
    )
    if args.plan:
        print(result["page_plan"])
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
