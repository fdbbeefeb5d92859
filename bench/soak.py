"""Loopback soak of the whole product: `manage.py serve` under API load, then the books checked.

Creates a throwaway PostgreSQL database, seeds 3,000 sim users, creates a superuser and a view-only
user with API tokens, starts `manage.py serve` (gunicorn and a qcluster running the every-minute
schedule) on a free 127.0.0.1 port, and runs --clients API clients against it for --minutes (at most
--max-requests requests in all). Counts status codes and latency per endpoint; then stops the load,
lets the cluster finish its run, stops the server and checks in the database: ledger totals equal
table totals, no sim user in two active journeys, no minute covered twice, failed runs, scheduled
runs. Prints a table and `soak: OK` or `soak: FAILED (<reasons>)`, exit code 0/1. Stops every
process it started and drops its database, also on Ctrl-C.

    .venv/bin/python bench/soak.py --minutes 5 [--clients 4] [--max-requests 20000] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
SERVER = "postgres://postgres@127.0.0.1:5432"
HOST = "127.0.0.1"  # loopback only: the load never leaves this machine
API = "/api/synthetics"
SIM_USERS = 3000
ADMIN, VIEWER = "soak_admin", "soak_viewer"
STOP_GRACE_SECONDS = 30  # serve itself gives its children 15
REQUEST_TIMEOUT_SECONDS = 30

# Run as `manage.py shell -c`: the schedule (normally made by a migration), the two API users.
SETUP = f"""
from django.contrib.auth.models import Permission
from synthetics.models import User
from synthetics.services import staff_account_ensure
from synthetics.tasks import schedule_ensure

schedule, created = schedule_ensure()
state = "created" if created else "present"
print(f"schedule {{schedule.name!r}} {{state}}, next run {{schedule.next_run}}")
staff_account_ensure(username={ADMIN!r})
viewer, _ = User.objects.get_or_create(username={VIEWER!r})
viewer.user_permissions.add(
    Permission.objects.get(content_type__app_label="synthetics", codename="view_syntheticsettings")
)
"""


def manage(*args: str, env: dict, capture: bool = False) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                            text=True, stdout=subprocess.PIPE if capture else None)  # fmt: skip
    return result.stdout or ""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


# --- the server -----------------------------------------------------------------------------------


def start_server(env: dict, port: int, log_path: Path) -> subprocess.Popen:
    log = log_path.open("w")
    return subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--host", HOST, "--port", str(port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip


def _process_groups_under(pid: int) -> set[int]:
    """Process groups of `pid` and its descendants (gunicorn and qcluster each lead their own)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    groups, pending = set(), [pid]
    while pending:
        current = pending.pop()
        try:
            groups.add(os.getpgid(current))
        except ProcessLookupError:
            continue
        pending.extend(parents.get(current, []))
    return groups


def stop_server(process: subprocess.Popen | None) -> int | None:
    """SIGTERM serve (it stops gunicorn and the cluster); SIGKILL what is left after the grace."""
    if process is None:
        return None
    groups = _process_groups_under(process.pid) | {process.pid}
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_GRACE_SECONDS)
    for group in groups:  # whatever is left of gunicorn and the cluster
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)
    return process.wait()


def wait_until_ready(base: str, token: str, server: subprocess.Popen, log_path: Path) -> float:
    started = time.monotonic()
    while time.monotonic() - started < 90:
        if server.poll() is not None:
            raise RuntimeError(f"serve exited with status {server.returncode}; see {log_path}")
        if http(base, "GET", "/status", token, None)[0] == 200:
            return time.monotonic() - started
        time.sleep(0.5)
    raise RuntimeError(f"serve did not answer within 90 s; see {log_path}")


def wait_for_cluster_idle(conn: psycopg.Connection, timeout: float = 60) -> float:
    """Wait until no task is queued and no run holds the generator's advisory lock."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        queued = conn.execute("SELECT count(*) FROM django_q_ormq").fetchone()[0]
        running = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()[0]
        if not queued and not running:
            return time.monotonic() - started
        time.sleep(0.5)
    return time.monotonic() - started


# --- the load -------------------------------------------------------------------------------------

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # no proxy for loopback


def http(base: str, method: str, path: str, token: str, body: dict | None):
    """One call: (status or None, body bytes, seconds, connection error or None)."""
    request = urllib.request.Request(
        base + API + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    started = time.perf_counter()
    try:
        with _opener.open(request, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            return response.status, response.read(), time.perf_counter() - started, None
    except urllib.error.HTTPError as error:
        return error.code, error.read(), time.perf_counter() - started, None
    except (OSError, ValueError) as error:  # URLError, timeouts, resets, bad status lines
        return None, b"", time.perf_counter() - started, f"{type(error).__name__}: {error}"


@dataclass(frozen=True, slots=True)
class Call:
    """One request of a client's loop and what a correct answer to it looks like."""

    name: str
    method: str
    path: str
    viewer: bool = False
    body: dict | None = None
    expected: frozenset[int] = frozenset({200})
    keys: tuple[str, ...] = ()  # top-level keys every 200 answer has

    def body_problem(self, status: int, data) -> str | None:
        if not isinstance(data, dict):
            return "not a JSON object"
        if status != 200:
            if "error" not in data:
                return "error answer without 'error'"
            return (
                "429 without retry_after" if status == 429 and "retry_after" not in data else None
            )
        missing = [key for key in self.keys if key not in data]
        if missing:
            return f"missing {', '.join(missing)}"
        if self.name == "POST run-now" and data["result"].get("status") != "succeeded":
            return f"run status {data['result'].get('status')!r}"
        if "settings" in self.keys and data["settings"].get("enabled") is not True:
            return "generation is paused"  # nothing in the soak may pause it
        if (
            self.name == "POST settings"
            and data["settings"]["error_rate"] != self.body["error_rate"]
        ):
            return f"error_rate {data['settings']['error_rate']} after posting {self.body}"
        return None


STATUS_KEYS = ("settings", "activity", "status", "last_run", "sim_users", "timestamp")
ACTIVITY_KEYS = ("hours", "bucket", "since", "until", "totals", "series")
SIM_USER_KEYS = ("count", "by_persona", "next", "previous", "results")


def loop_calls(iteration: int) -> list[Call]:
    """A client's calls for one loop; the posted error_rate alternates, so each POST changes it."""
    error_rate = 0.05 if iteration % 2 else 0.06
    return [
        Call("GET status", "GET", "/status", keys=STATUS_KEYS),
        Call("GET activity/1", "GET", "/activity/1", keys=ACTIVITY_KEYS),
        Call("GET activity/24", "GET", "/activity/24", keys=ACTIVITY_KEYS),
        Call("GET sim-users?page=2", "GET", "/sim-users?page=2", keys=SIM_USER_KEYS),
        Call("POST run-now", "POST", "/run-now", body={"target": 1},
             expected=frozenset({200, 429}), keys=("success", "result")),
        Call("POST settings", "POST", "/settings", body={"error_rate": error_rate},
             keys=("success", "settings")),
        Call("POST toggle", "POST", "/toggle", body={"enabled": True},
             keys=("success", "settings")),
        Call("viewer GET status", "GET", "/status", viewer=True, keys=STATUS_KEYS),
        Call("viewer GET activity/1", "GET", "/activity/1", viewer=True, keys=ACTIVITY_KEYS),
        Call("viewer GET sim-users", "GET", "/sim-users?page=3", viewer=True, keys=SIM_USER_KEYS),
        Call("viewer POST toggle (403)", "POST", "/toggle", viewer=True, body={"enabled": False},
             expected=frozenset({403})),
    ]  # fmt: skip


@dataclass
class EndpointStats:
    requests: int = 0
    codes: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)  # the first few errors, for the report

    def merge(self, other: EndpointStats) -> None:
        self.requests += other.requests
        self.codes.update(other.codes)
        self.errors.update(other.errors)
        self.latencies.extend(other.latencies)
        self.samples.extend(other.samples[: max(0, 3 - len(self.samples))])

    def figures(self) -> dict:
        return {
            "requests": self.requests,
            "codes": {str(code): n for code, n in self.codes.items()},
            "errors": dict(self.errors),
            "error_samples": self.samples,
            "p50_ms": round(self.percentile(0.5), 1),
            "p95_ms": round(self.percentile(0.95), 1),
            "max_ms": round(self.percentile(1.0), 1),
        }

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(share * len(ordered)) - 1)] * 1000 if ordered else 0.0


@dataclass
class Load:
    """What the clients share: the request budget, the deadline, the stop flag."""

    base: str
    tokens: dict[bool, str]  # viewer? -> token
    max_requests: int
    deadline: float
    pause: float
    stop: threading.Event = field(default_factory=threading.Event)
    sent: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    run_ids: set[int] = field(default_factory=set)
    states: Counter = field(default_factory=Counter)  # the status endpoint's "status" answers

    def claim(self) -> bool:
        with self.lock:
            if (
                self.stop.is_set()
                or self.sent >= self.max_requests
                or time.monotonic() > self.deadline
            ):
                self.stop.set()
                return False
            self.sent += 1
            return True

    def client(self, stats: dict[str, EndpointStats]) -> None:
        iteration = 0
        while not self.stop.is_set():
            for call in loop_calls(iteration):
                if not self.claim():
                    return
                self.one(call, stats.setdefault(call.name, EndpointStats()))
                self.stop.wait(self.pause)
            iteration += 1

    def one(self, call: Call, stats: EndpointStats) -> None:
        status, raw, seconds, connection_error = http(
            self.base, call.method, call.path, self.tokens[call.viewer], call.body
        )
        stats.requests += 1
        stats.codes[status or "conn"] += 1
        if status is not None:
            stats.latencies.append(seconds)
        try:
            problem = self.problem(call, status, raw, connection_error)
        except (KeyError, TypeError, AttributeError) as error:  # a body of the wrong shape
            problem = ("bad body", f"{status}: {type(error).__name__}: {error}")
        if problem:
            stats.errors[problem[0]] += 1
            if len(stats.samples) < 3:
                stats.samples.append(f"{problem[0]}: {problem[1]}")

    def problem(self, call: Call, status, raw: bytes, connection_error) -> tuple[str, str] | None:
        """What is wrong with an answer (kind, detail), or None; notes run ids and states."""
        text = raw[:200].decode(errors="replace")
        if connection_error:
            return "connection error", connection_error
        if status >= 500:
            return "5xx", f"{status}: {text}"
        try:
            data = json.loads(raw)
        except ValueError:
            return "non-JSON body", f"{status}: {text}"
        if status not in call.expected:
            return "unexpected status", f"{status}: {text}"
        detail = call.body_problem(status, data)
        if detail:
            return "bad body", f"{status}: {detail}"
        with self.lock:
            if call.name == "POST run-now" and status == 200:
                self.run_ids.add(data["result"]["run_id"])
            if call.keys == STATUS_KEYS:
                self.states[data["status"]] += 1
        return None


def run_load(load: Load, clients: int) -> dict[str, EndpointStats]:
    per_client = [{} for _ in range(clients)]
    threads = [
        threading.Thread(target=load.client, args=(stats,), daemon=True) for stats in per_client
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(timeout=0.5)  # short joins keep Ctrl-C responsive
    finally:
        load.stop.set()
        for thread in threads:
            thread.join(timeout=REQUEST_TIMEOUT_SECONDS + 5)
    merged: dict[str, EndpointStats] = {call.name: EndpointStats() for call in loop_calls(0)}
    for stats in per_client:
        for name, endpoint in stats.items():
            merged[name].merge(endpoint)
    return merged


# --- the books ------------------------------------------------------------------------------------


def one_value(conn: psycopg.Connection, sql: str, params=()) -> int:
    return conn.execute(sql, params).fetchone()[0]


def check_database(
    conn: psycopg.Connection, served_from, served_until, run_now_ids: set[int]
) -> dict:
    ledger = conn.execute(
        "SELECT coalesce(sum(sessions_started), 0), coalesce(sum(scene_events_created), 0), "
        "coalesce(sum(mindblock_events_created), 0) FROM synthetic_runs WHERE status = 'succeeded'"
    ).fetchone()
    tables = (
        one_value(conn, "SELECT count(*) FROM journeys WHERE is_synthetic"),
        one_value(conn, "SELECT count(*) FROM journey_scene_events "
                        "WHERE event_payload->'synthetic' = 'true'::jsonb"),
        one_value(conn, "SELECT count(*) FROM mindblock_events "
                        "WHERE event_payload->'synthetic' = 'true'::jsonb"),
    )  # fmt: skip
    doubly_active = one_value(
        conn,
        "SELECT count(*) FROM (SELECT sim_user_id FROM journeys WHERE status = 'active' "
        "AND sim_user_id IS NOT NULL GROUP BY sim_user_id HAVING count(*) > 1) AS doubled",
    )
    future_events = one_value(
        conn,
        "SELECT (SELECT count(*) FROM journey_scene_events WHERE created_at > now()) "
        "+ (SELECT count(*) FROM mindblock_events WHERE created_at > now())",
    )
    windows = conn.execute(
        "SELECT window_start, window_end FROM synthetic_runs "
        "WHERE trigger IN ('scheduled', 'backfill') AND status IN ('succeeded', 'skipped') "
        "AND window_end > window_start ORDER BY window_start"
    ).fetchall()
    covered_twice, gaps, covered_until = 0, 0, None
    for start, end in windows:
        if covered_until is not None and start < covered_until:
            covered_twice += (min(end, covered_until) - start) // timedelta(minutes=1)
        elif covered_until is not None and start > covered_until:
            gaps += (start - covered_until) // timedelta(minutes=1)
        covered_until = end if covered_until is None else max(covered_until, end)
    failed = conn.execute(
        "SELECT trigger, left(split_part(error, E'\\n', 1), 120), count(*) FROM synthetic_runs "
        "WHERE status = 'failed' GROUP BY 1, 2 ORDER BY 3 DESC"
    ).fetchall()
    scheduled = dict(
        conn.execute(
            "SELECT status, count(*) FROM synthetic_runs WHERE trigger = 'scheduled' "
            "AND started_at >= %s GROUP BY status",
            (served_from,),
        ).fetchall()
    )
    scheduled_minutes = one_value(
        conn,
        "SELECT coalesce(sum(extract(epoch FROM window_end - window_start) / 60), 0)::int "
        "FROM synthetic_runs WHERE trigger = 'scheduled' AND status = 'succeeded' "
        "AND started_at >= %s",
        (served_from,),
    )
    manual_succeeded = one_value(
        conn,
        "SELECT count(*) FROM synthetic_runs WHERE trigger = 'manual' AND status = 'succeeded'",
    )
    enabled = one_value(conn, "SELECT enabled FROM synthetic_settings WHERE id = 1")
    return {
        "ledger": dict(zip(("sessions", "scene_events", "mindblock_events"), ledger, strict=True)),
        "tables": dict(zip(("sessions", "scene_events", "mindblock_events"), tables, strict=True)),
        "sim_users_in_two_active_journeys": doubly_active,
        "events_dated_in_the_future": future_events,
        "minutes_covered_twice": covered_twice,
        "minutes_not_covered": gaps,
        "failed_runs": sum(count for _, _, count in failed),
        "failed_run_errors": [f"{trigger}: {error} (x{count})" for trigger, error, count in failed],
        "serving_minutes": round((served_until - served_from).total_seconds() / 60, 2),
        "scheduled_runs": {str(key): value for key, value in scheduled.items()},
        "scheduled_minutes_covered": scheduled_minutes,
        "manual_runs_succeeded": manual_succeeded,
        "run_now_200_answers": len(run_now_ids),
        "enabled_at_end": enabled,
    }


def failure_reasons(stats: dict[str, EndpointStats], books: dict, server: dict) -> list[str]:
    reasons = []
    total = sum(endpoint.requests for endpoint in stats.values())
    errors = Counter()
    for endpoint in stats.values():
        errors.update(endpoint.errors)
    if not total:
        reasons.append("no requests were made")
    if errors:
        reasons.append("request errors: " + ", ".join(f"{n} {kind}" for kind, n in errors.items()))
    if books["ledger"] != books["tables"]:
        reasons.append(f"ledger {books['ledger']} != tables {books['tables']}")
    for key in ("sim_users_in_two_active_journeys", "events_dated_in_the_future",
                "minutes_covered_twice", "minutes_not_covered", "failed_runs"):  # fmt: skip
        if books[key]:
            reasons.append(f"{key.replace('_', ' ')}: {books[key]}")
    serving = books["serving_minutes"]
    expected_minutes = max(1, int(serving) - 1) if serving >= 1 else 0
    if books["scheduled_minutes_covered"] < expected_minutes:
        reasons.append(
            f"scheduled runs covered {books['scheduled_minutes_covered']} minutes "
            f"in {serving} minutes of serving (expected at least {expected_minutes})"
        )
    if books["manual_runs_succeeded"] != books["run_now_200_answers"]:
        reasons.append(
            f"{books['manual_runs_succeeded']} manual runs in the ledger for "
            f"{books['run_now_200_answers']} run-now answers"
        )
    if not books["enabled_at_end"]:
        reasons.append("generation paused at the end")
    if server["exited_early"]:
        reasons.append(f"serve exited during the soak (status {server['exit_status']})")
    elif server["exit_status"] not in (0, None):
        reasons.append(f"serve exited with status {server['exit_status']} when stopped")
    if server["tracebacks"]:
        reasons.append(f"{server['tracebacks']} tracebacks in the server log")
    return reasons


# --- the report -----------------------------------------------------------------------------------


def print_report(stats: dict[str, EndpointStats], books: dict, server: dict, load: Load) -> None:
    print(f"\n{'endpoint':<26} {'requests':>8}  {'codes':<18} {'errors':>6} "
          f"{'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}")  # fmt: skip
    everything = EndpointStats()
    for name, endpoint in stats.items():
        everything.merge(endpoint)
        codes = " ".join(f"{code}:{n}" for code, n in sorted(endpoint.codes.items(), key=str))
        print(f"{name:<26} {endpoint.requests:>8}  {codes:<18} {sum(endpoint.errors.values()):>6} "
              f"{endpoint.percentile(0.5):>7.0f} {endpoint.percentile(0.95):>7.0f} "
              f"{endpoint.percentile(1.0):>7.0f}")  # fmt: skip
    print(f"{'all':<26} {everything.requests:>8}  {'':<18} {sum(everything.errors.values()):>6} "
          f"{everything.percentile(0.5):>7.0f} {everything.percentile(0.95):>7.0f} "
          f"{everything.percentile(1.0):>7.0f}")  # fmt: skip
    for name, endpoint in stats.items():
        for sample in endpoint.samples:
            print(f"  error in {name}: {sample}")
    ledger, tables = books["ledger"], books["tables"]
    print("\ndatabase (after the server stopped)")
    for key in ledger:
        mark = "ok" if ledger[key] == tables[key] else "MISMATCH"
        print(f"  {key:<40} ledger {ledger[key]:>7}  tables {tables[key]:>7}  {mark}")
    for key in ("sim_users_in_two_active_journeys", "events_dated_in_the_future",
                "minutes_covered_twice", "minutes_not_covered", "failed_runs"):  # fmt: skip
        print(f"  {key.replace('_', ' '):<40} {books[key]:>7}  {'ok' if not books[key] else 'BAD'}")
    for error in books["failed_run_errors"]:
        print(f"    {error}")
    scheduled = books["scheduled_runs"]
    print(f"  {'scheduled runs while serving':<40} {sum(scheduled.values()):>7}  "
          f"({', '.join(f'{n} {s}' for s, n in sorted(scheduled.items())) or 'none'}; "
          f"{books['scheduled_minutes_covered']} minutes covered in {books['serving_minutes']} "
          f"minutes of serving)")  # fmt: skip
    states = ", ".join(f"{state} {n}" for state, n in load.states.most_common())
    print(f"  {'status answers':<40} {states or 'none'}")
    print(f"  {'manual runs / run-now 200 answers':<40} {books['manual_runs_succeeded']:>7}  "
          f"/ {books['run_now_200_answers']}")  # fmt: skip
    print(f"  {'server':<40} ready in {server['ready_seconds']:.1f} s, cluster idle after "
          f"{server['idle_wait_seconds']:.1f} s, exit status {server['exit_status']}, "
          f"{server['tracebacks']} tracebacks in {server['log']}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--minutes", type=float, default=5.0, help="load duration (fractions allowed)"
    )
    parser.add_argument("--clients", type=int, default=4, help="concurrent API clients")
    parser.add_argument("--max-requests", type=int, default=20000, help="hard cap on requests")
    parser.add_argument("--pause", type=float, default=0.2, help="seconds between a client's calls")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.minutes <= 0 or args.clients < 1 or args.max_requests < 1:
        parser.error("--minutes, --clients and --max-requests must be positive")

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    # A kill, like Ctrl-C, still stops the server and drops the database.
    signal.signal(signal.SIGTERM, interrupted)
    name = f"synthetics_soak_{os.getpid()}"
    log_dir = Path(f"/tmp/{name}")
    log_dir.mkdir(exist_ok=True)
    log_path = log_dir / "serve.log"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(DATABASE_URL=f"{SERVER}/{name}", Q_WORKERS="2", SYNTHETICS_LOCAL_DIR=str(log_dir),
               Q_CLUSTER_NAME=name)  # fmt: skip
    process = None
    server = {"log": str(log_path), "exited_early": False, "exit_status": None,
              "ready_seconds": 0.0, "idle_wait_seconds": 0.0, "tracebacks": 0}  # fmt: skip
    try:
        manage("migrate", "--noinput", "-v0", env=env)
        manage("seed_sim_users", "--count", str(SIM_USERS), env=env)
        print(manage("shell", "-c", SETUP, env=env, capture=True).strip())
        tokens = {
            viewer: manage("api_token", user, env=env, capture=True).splitlines()[0].strip()
            for viewer, user in ((False, ADMIN), (True, VIEWER))
        }
        base = f"http://{HOST}:{free_port()}"
        with psycopg.connect(f"{SERVER}/{name}", autocommit=True) as conn:
            served_from = one_value(conn, "SELECT now()")
            process = start_server(env, int(base.rsplit(":", 1)[1]), log_path)
            server["ready_seconds"] = wait_until_ready(base, tokens[False], process, log_path)
            print(f"soak: {base} ready; {args.clients} clients for {args.minutes} minutes "
                  f"(at most {args.max_requests} requests) ...", flush=True)  # fmt: skip
            load = Load(
                base=base,
                tokens=tokens,
                max_requests=args.max_requests,
                deadline=time.monotonic() + args.minutes * 60,
                pause=args.pause,
            )
            stats = run_load(load, args.clients)
            server["exited_early"] = process.poll() is not None
            server["idle_wait_seconds"] = wait_for_cluster_idle(conn)
            served_until = one_value(conn, "SELECT now()")
            server["exit_status"] = stop_server(process)
            process = None
            books = check_database(conn, served_from, served_until, load.run_ids)
    finally:
        stop_server(process)
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    server["tracebacks"] = log_path.read_text(errors="replace").count("Traceback (most recent call")
    print_report(stats, books, server, load)
    reasons = failure_reasons(stats, books, server)
    if args.json:
        figures = {
            "minutes": args.minutes,
            "clients": args.clients,
            "max_requests": args.max_requests,
            "requests": load.sent,
            "endpoints": {name: endpoint.figures() for name, endpoint in stats.items()},
            "status_answers": dict(load.states),
            "database": books,
            "server": server,
            "ok": not reasons,
            "reasons": reasons,
        }
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print("soak: OK" if not reasons else f"soak: FAILED ({'; '.join(reasons)})")
    return 0 if not reasons else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("soak: interrupted (server stopped, database dropped)", file=sys.stderr)
        sys.exit(130)
