"""History with sign-ups and churn against the same history without them, same run.

In a throwaway PostgreSQL database: seed --users sim users at the default settings, VACUUM ANALYZE,
CHECKPOINT; that database is the template of every measurement (CREATE DATABASE … TEMPLATE). Each
round times `manage.py backfill_activity --hours 24 x --days` (the whole command: start-up, engine,
writes, the tidy after it) twice, each in a fresh copy: once with signups_per_day = --signups and
churn_per_month = --churn, once with both 0 (the order alternates from round to round, so neither
always runs on a warmer machine). Prints the medians and their ratio (the issue's target: the
history with sign-ups within 1.25x the time of the one without), the rows each wrote, the users
who signed up and churned.

    .venv/bin/python bench/signups.py --days 7 --users 3000 --signups 200 --churn 0.08 [--repeat 3]
        [--app supabase_like|identity_keys]

--app: the same in attach mode, Synthetics attached to one of the test applications (as
bench/attached.py sets it up: the sign-ups' accounts go into the application's account table).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator

import psycopg
from common import (
    SERVER,
    connect,
    manage,
    median,
    throwaway_database,
    timed_manage,
    vacuum_analyze,
)

TABLES = ("synthetic_runs", "journeys", "journey_scene_events", "mindblock_events")
OURS = "synthetics."  # the schema of Synthetics' own tables in attach mode


@contextlib.contextmanager
def _copy(env: dict, name: str) -> Iterator[dict]:
    base = env["DATABASE_URL"].rsplit("/", 1)[1]
    copy = f"{base}_{name}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{base}"')
    try:
        yield {**env, "DATABASE_URL": f"{SERVER}/{copy}"}
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')


def _history(
    env: dict, *, hours: int, signups: int, churn: float, name: str, tables: tuple, schema: str
) -> dict:
    with _copy(env, name) as copy:
        with connect(copy) as conn:
            conn.execute(
                f"UPDATE {schema}synthetic_settings SET signups_per_day = %s, churn_per_month = %s",
                (signups, churn),
            )
            conn.execute("CHECKPOINT")
        seconds, rss_mb = timed_manage("backfill_activity", "--hours", str(hours), env=copy)
        with connect(copy) as conn:
            rows = sum(
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in tables
            )
            signed_up, churned = conn.execute(
                "SELECT coalesce(sum(users_signed_up), 0), coalesce(sum(users_churned), 0) "
                f"FROM {schema}synthetic_runs"
            ).fetchone()
    return {
        "seconds": seconds,
        "peak_rss_mb": rss_mb,
        "rows": rows,
        "signed_up": signed_up,
        "churned": churned,
    }


def measure(
    *, days: int, users: int, signups: int, churn: float, repeat: int, app: str | None = None
) -> dict:
    hours = days * 24
    if app is None:
        database, tables, schema = throwaway_database("signups"), TABLES, ""
    else:
        import attached

        database, schema = attached.attached_database(app), OURS
        tables = attached.APPS[app]["written"]
    with database as env:
        manage("seed_sim_users", "--count", str(users), env=env)
        if app is not None:
            manage("target", "index", env=env)
        with connect(env) as conn:
            vacuum_analyze(conn, f"{schema}sim_users", f"{schema}users", *tables)
            conn.execute("CHECKPOINT")
        with_them, without = [], []
        for round_ in range(repeat):
            cases = [(with_them, signups, churn), (without, 0, 0.0)]
            for runs, s, c in cases if round_ % 2 == 0 else reversed(cases):
                runs.append(
                    _history(
                        env,
                        hours=hours,
                        signups=s,
                        churn=c,
                        name=f"r{round_}_{s}",
                        tables=tables,
                        schema=schema,
                    )
                )
    seconds_with = median([r["seconds"] for r in with_them])
    seconds_without = median([r["seconds"] for r in without])
    return {
        "app": app,
        "days": days,
        "users": users,
        "signups_per_day": signups,
        "churn_per_month": churn,
        "repeat": repeat,
        "with": with_them,
        "without": without,
        "seconds_with": seconds_with,
        "seconds_without": seconds_without,
        "rows_with": median([r["rows"] for r in with_them]),
        "rows_without": median([r["rows"] for r in without]),
        "signed_up": median([r["signed_up"] for r in with_them]),
        "churned": median([r["churned"] for r in with_them]),
        "ratio": seconds_with / seconds_without,
        "ratios": [a["seconds"] / b["seconds"] for a, b in zip(with_them, without, strict=True)],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--signups", type=int, default=200)
    parser.add_argument("--churn", type=float, default=0.08)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--app", choices=("supabase_like", "identity_keys"))
    args = parser.parse_args(argv)
    result = measure(
        days=args.days,
        users=args.users,
        signups=args.signups,
        churn=args.churn,
        repeat=args.repeat,
        app=args.app,
    )
    print(
        (f"attach mode ({result['app']}): " if result["app"] else "")
        + f"history of {result['days']} days, {result['users']:,} users: with "
        f"{result['signups_per_day']} sign-ups a day and churn {result['churn_per_month']} a month "
        f"{result['seconds_with']:.1f} s ({result['rows_with']:,.0f} rows, "
        f"{result['signed_up']:,.0f} signed up, {result['churned']:,.0f} churned), without "
        f"{result['seconds_without']:.1f} s ({result['rows_without']:,.0f} rows): "
        f"{result['ratio']:.2f}x (target <= 1.25; rounds "
        f"{', '.join(f'{r:.2f}' for r in result['ratios'])})"
    )
    json.dump(result, sys.stdout, indent=2, default=str)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
