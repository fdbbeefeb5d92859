"""What the benchmarks share: throwaway PostgreSQL databases, `manage.py` in a subprocess, timing."""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
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


# Runs manage.py in this process and, at exit, writes the process's own peak RSS (VmHWM: the memory
# of this program since its exec) to the file BENCH_RSS_FILE names. Not wait4's ru_maxrss: Linux
# carries into it the peak of the process that forked it, so a benchmark that once held a large
# dump would report its own size for every command it starts afterwards.
_PEAK_REPORTING = """
import atexit, os, runpy, sys
def report():
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["BENCH_RSS_FILE"], "w") as out:
        out.write(peak)
atexit.register(report)
sys.argv = ["manage.py", *sys.argv[1:]]
runpy.run_path("manage.py", run_name="__main__")
"""


def timed_manage(*args: str, env: dict) -> tuple[float, int]:
    """Run manage.py; return its wall time in seconds and its own peak RSS in MB."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        started = time.perf_counter()
        process = subprocess.run(
            [sys.executable, "-c", _PEAK_REPORTING, *args],
            cwd=ROOT,
            env={**env, "BENCH_RSS_FILE": rss.name},
            stdout=subprocess.DEVNULL,
            check=True,
        )
        elapsed = time.perf_counter() - started
        del process
        return elapsed, int(rss.read() or 0) // 1024  # kB


def vacuum_analyze(conn: psycopg.Connection, *tables: str) -> None:
    """Autovacuum may be off, as on this machine: every measurement starts from fresh statistics."""
    for table in tables:
        conn.execute(f"VACUUM ANALYZE {table}")


def tables_dump(conn: psycopg.Connection, tables: tuple[str, ...]) -> dict[str, bytes]:
    """Each table's rows as COPY text, in memory."""
    dumps = {}
    for table in tables:
        buffer = io.BytesIO()
        with conn.cursor().copy(f"COPY {table} TO STDOUT") as copy:
            for chunk in copy:
                buffer.write(chunk)
        dumps[table] = buffer.getvalue()
    return dumps


def tables_copy_back(conn: psycopg.Connection, dumps: dict[str, bytes]) -> float:
    """COPY dumped rows back, table after table in the order given (parents first: the foreign keys
    are checked as in a run), in one transaction; its seconds, commit included."""
    started = time.perf_counter()
    with conn.transaction():
        for table, data in dumps.items():
            with conn.cursor().copy(f"COPY {table} FROM STDIN") as copy:
                for offset in range(0, len(data), 1 << 20):
                    copy.write(data[offset : offset + (1 << 20)])
    return time.perf_counter() - started


def median(values: list[float]) -> float:
    return statistics.median(values)
