"""What the benchmarks share: throwaway PostgreSQL databases, `manage.py` in a subprocess, timing."""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("BENCH_POSTGRES", "postgres://postgres@127.0.0.1:5432")


@contextlib.contextmanager
def throwaway_database(label: str) -> Iterator[dict]:
    """A fresh database named synth_bench_<label>_<pid>, migrated; yields the environment that points
    manage.py at it. Dropped on the way out, also on Ctrl-C."""
    name = f"synth_bench_{label}_{os.getpid()}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    env = {
        **os.environ,
        "DATABASE_URL": f"{SERVER}/{name}",
        "SYNTHETICS_LOCAL_DIR": f"/tmp/{name}",
        "DJANGO_SETTINGS_MODULE": "synthetics_site.settings",
    }
    env.pop("REDIS_URL", None)
    try:
        manage("migrate", "--noinput", "-v", "0", env=env)
        yield env
    finally:
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def connect(env: dict) -> psycopg.Connection:
    return psycopg.connect(env["DATABASE_URL"], autocommit=True)


def manage(*args: str, env: dict, quiet: bool = True) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL if quiet else None,
    )


def timed_manage(*args: str, env: dict) -> tuple[float, int]:
    """Run manage.py; return its wall time in seconds and its peak RSS in MB (its own, from wait4)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    elapsed = time.perf_counter() - started
    if process.returncode:
        raise subprocess.CalledProcessError(process.returncode, args)
    return elapsed, usage.ru_maxrss // 1024  # kB on Linux


def vacuum_analyze(conn: psycopg.Connection, *tables: str) -> None:
    """Autovacuum may be off, as on this machine: every measurement starts from fresh statistics."""
    for table in tables:
        conn.execute(f"VACUUM ANALYZE {table}")


def median(values: list[float]) -> float:
    return statistics.median(values)


def peak_rss_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
