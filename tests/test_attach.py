"""Attach mode end to end, as a user runs it (issue 23): an application's database made fresh from
tests/apps/, real rows in it (look-alikes of ours among them), then the commands of the README
("Attach to your app") as subprocesses against it: inspect, check, migrate, seed, index, a day of
history, a manual run, an incident, status, cleanup and detach. After it the
application's schema is what it was but for the tag index, every real row is byte-identical and no
row of ours is left. A second test does it with a real django-q2 cluster."""

from __future__ import annotations

import difflib
import json
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from tests.test_app_fixtures import app_database

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.once]

# Real rows, written before Synthetics attaches: an ordinary user, and rows that look like ours (a
# tag with a run id not issued yet, one of a run that will exist, a text tag, an account with the
# name and address our first sim user would take).
REAL_ROWS = {
    "supabase_like": """
        INSERT INTO auth.users (id, email, created_at) VALUES
          ('11111111-1111-1111-1111-111111111111', 'alice@example.com', now() - interval '3 days'),
          ('22222222-2222-2222-2222-222222222222', 'sim000001@synthetics.invalid', now() - interval '3 days');
        INSERT INTO public.profiles (id, display_name, updated_at) VALUES
          ('11111111-1111-1111-1111-111111111111', 'Alice', now() - interval '3 days');
        INSERT INTO public.journey_scene_events (user_id, event_type, event_payload, created_at) VALUES
          ('11111111-1111-1111-1111-111111111111', 'scene_entered', '{}', now() - interval '2 hours'),
          ('11111111-1111-1111-1111-111111111111', 'scene_entered', '{"synthetic": true, "run_id": 1}', now() - interval '20 hours'),
          ('22222222-2222-2222-2222-222222222222', 'scene_error', '{"synthetic": true, "run_id": 999999, "run_key": "kabc"}', now() - interval '30 minutes'),
          ('11111111-1111-1111-1111-111111111111', 'scene_entered', '{"synthetic": "true", "run_id": 3}', now() - interval '3 hours');
        INSERT INTO public.mindblock_events (user_id, mindblock_type, intensity, event_payload, created_at) VALUES
          ('11111111-1111-1111-1111-111111111111', 'confusion', 3, '{"synthetic": true, "run_id": 2}', now() - interval '1 hour');
    """,
    "identity_keys": """
        INSERT INTO app.accounts (handle, email, signed_up_at) VALUES
          ('bob', 'bob@example.com', now() - interval '5 days'),
          ('sim000001', 'sim000001@synthetics.invalid', now() - interval '5 days');
        INSERT INTO app.activity (account_id, occurred_at, kind, screen, source, properties) VALUES
          (1, now() - interval '1 hour', 'scene_entered', 'home', 'web', '{}'),
          (2, now() - interval '20 minutes', 'scene_error', 'home', 'synthetics', '{"synthetic": true, "run_id": 5, "run_key": "k0000000000000000"}'),
          (1, now() - interval '3 hours', 'journey_completed', null, 'ios', '{"synthetic": true, "run_id": 70}');
        INSERT INTO app.blockers (account_id, occurred_at, blocker, properties) VALUES
          (1, now() - interval '2 hours', 'confusion', '{"synthetic": true, "run_id": 12}');
        INSERT INTO app.sessions (account_id, started_at, device, flow, properties) VALUES
          (1, now() - interval '4 hours', 'ios', 'checkout', '{}'),
          (2, now() - interval '3 hours', 'synthetics', 'writers-unblock', '{"synthetic": true, "run_id": 4, "run_key": "k0000000000000000"}');
    """,
}
SCHEMAS = {"supabase_like": ["auth", "public"], "identity_keys": ["app"]}


class Attached:
    """The application's database and the environment of Synthetics attached to it."""

    def __init__(self, app, name: str, tmp_path: Path) -> None:
        self.app = app
        self.name = name
        info = app.info
        self.url = f"postgres://{info.user}@{info.host}:{info.port}/{info.dbname}"
        self.target = tmp_path / "target.yaml"
        self.env = {
            key: value
            for key, value in os.environ.items()
            if key not in {"DATABASE_URL", "SQLITE_PATH", "SYNTHETICS_TARGET", "SYNTHETICS_SCHEMA"}
        }
        self.env.update(DATABASE_URL=self.url, SYNTHETICS_LOCAL_DIR=str(tmp_path))

    def manage(self, *args: str, attached: bool = True, ok: bool = True, timeout: int = 180):
        env = dict(self.env)
        if attached:
            env["SYNTHETICS_TARGET"] = str(self.target)
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if ok:
            assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])
        return result

    def app_tables(self) -> list[str]:
        schemas = SCHEMAS[self.name]
        return [
            f"{schema}.{table}"
            for schema, table in self.app.execute(
                "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = ANY(%s) "
                "ORDER BY 1, 2",
                [schemas],
            ).fetchall()
        ]

    def rows(self) -> dict[str, list[str]]:
        """Every row of every application table, as its text, in order."""
        return {
            table: [
                text
                for (text,) in self.app.execute(
                    f"SELECT t::text FROM {table} t ORDER BY 1"
                ).fetchall()
            ]
            for table in self.app_tables()
        }

    def schema(self) -> list[str]:
        """pg_dump --schema-only of the application's schemas, without its comments and session
        lines; our two verification views (not the application's) left out."""
        info = self.app.info
        command = [
            "pg_dump",
            "--schema-only",
            "-h",
            info.host,
            "-p",
            str(info.port),
            "-U",
            info.user,
        ]
        for schema in SCHEMAS[self.name]:
            command += ["-n", schema]
        command += ["-T", "public.synthetic_settings", "-T", "public.sim_users", info.dbname]
        dump = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        return [
            line
            for line in dump.splitlines()
            if line.strip() and not line.startswith(("--", "\\restrict", "\\unrestrict", "SET "))
        ]

    def sql(self, query: str, params=()) -> list[tuple]:
        return self.app.execute(query, params).fetchall()


def _ours_in(attached: Attached, table: str, payload: str) -> int:
    """Rows in an application table that carry a key of a run of our ledger (the strictest way
    to spot ours without the identity rule itself)."""
    return attached.sql(
        f"SELECT count(*) FROM {table} e JOIN synthetics.synthetic_runs r "
        f"ON r.run_key = e.{payload} ->> 'run_key'"
    )[0][0]


def _attach(attached: Attached, edit=None) -> dict:
    inspected = attached.manage("target", "inspect", attached=False)
    document = yaml.safe_load(inspected.stdout)
    if edit is not None:
        edit(document)
        attached.target.write_text(yaml.safe_dump(document))
    else:
        attached.target.write_text(inspected.stdout)  # unedited, comments and all
    checked = attached.manage("target", "check", str(attached.target), attached=False)
    assert "the file fits the database" in checked.stdout
    attached.manage("migrate", "--no-input", "-v", "0")
    again = attached.manage("target", "inspect", attached=False).stdout
    assert again == inspected.stdout  # Synthetics' own schema is never proposed as the app's
    return document


def _no_blockers_payload(document: dict) -> None:
    """The mindblock and sessions tables keep no tag in their rows: Synthetics keeps their origin
    itself."""
    document["events"]["mindblock"]["payload"] = None
    document["events"]["session"]["payload"] = None


# Marked `waits` though they wait on nothing: CI runs that pass beside the others from the start,
# and its cluster tests leave the cores idle while they wait for the minute, which these fill. The
# identity-keys application runs with its blockers' origin kept by Synthetics (payload: null); its
# file as inspect proposes it runs unedited in the cluster test below.
@pytest.mark.slow
@pytest.mark.waits
@pytest.mark.parametrize(
    ("fixture", "edit"),
    [("supabase_like", None), ("identity_keys", _no_blockers_payload)],
    ids=["supabase-like", "identity-keys-origin-table"],
)
def test_attached_app_end_to_end(tmp_path, fixture, edit):
    with app_database(fixture) as app:
        # given: the application with its real rows
        app.execute(REAL_ROWS[fixture])
        attached = Attached(app, fixture, tmp_path)
        schema_before, rows_before = attached.schema(), attached.rows()

        # when: attached and run as the README says
        document = _attach(attached, edit)
        assert attached.schema() == schema_before  # migrate made nothing of the app's
        schemas = {s for (s,) in attached.sql("SELECT nspname FROM pg_namespace")}
        assert "synthetics" in schemas
        verification = attached.sql("SELECT id, enabled FROM synthetic_settings")
        assert verification == [(1, True)]  # the seed's SQL, unchanged, on the default path
        attached.manage("seed_sim_users", "--count", "40")
        assert attached.sql("SELECT COUNT(*) FROM sim_users") == [(40,)]
        indexed = attached.manage("target", "index").stdout
        assert "CREATE INDEX CONCURRENTLY" in indexed
        starts = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)
        attached.manage(
            "incidents", "add", "--starts-at", starts.isoformat(), "--minutes", "60", "--past",
            "--label", "attach-outage", "--error-rate", "0.8", "--sessions-multiplier", "10",
        )  # fmt: skip
        history = attached.manage("backfill_activity", "--hours", "24").stdout
        sessions = int(re.search(r"UTC: (\d+) sessions", history).group(1))
        assert sessions > 100
        attached.manage("run_synthetics", "--target", "3")  # scheduled runs: the cluster test

        # then: accounts through the mapping, staff outside it, events in the app's tables
        accounts = document["accounts"]
        account_table = accounts["table"]
        keys = attached.sql("SELECT account_key FROM synthetics.sim_users WHERE account_key <> ''")
        assert len(keys) == 40
        email = "email"
        taken = attached.sql(
            f"SELECT {email} FROM {account_table} WHERE {email} LIKE 'sim000001%%' ORDER BY 1"
        )
        assert taken == [("sim000001-2@synthetics.invalid",), ("sim000001@synthetics.invalid",)]
        status = json.loads(
            attached.manage(
                "shell",
                "-c",
                "import json; from synthetics.models import User;"
                "User.objects.create_superuser('staff', 'staff@example.com', 'pw-123456789');"
                "from django.test import Client; c = Client(HTTP_HOST='127.0.0.1'); c.force_login(User.objects.get(username='staff'));"
                "s = c.get('/api/synthetics/status'); st = c.get('/studio/');"
                "print(json.dumps({'status': s.status_code, 'body': s.json(), 'studio': st.status_code}))",
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        assert status["status"] == 200 and status["studio"] == 200
        day = status["body"]["activity"]["last_24_hours"]
        assert day["sessions_started"] >= sessions * 0.9  # the day's first minutes may slip out
        assert day["scene_events"] > 0 and day["mindblock_events"] > 0
        staff = attached.sql(
            f"SELECT count(*) FROM {account_table} WHERE {email} = 'staff@example.com'"
        )
        assert staff == [(0,)]  # Synthetics' own accounts never live in the app's table
        scene = document["events"]["scene"]
        payload = scene["payload"]
        labelled = attached.sql(
            f"SELECT count(*) FROM {scene['table']} WHERE {payload} -> 'incidents' @> "
            '\'[{"label": "attach-outage"}]\''
        )[0][0]
        assert labelled > 0
        assert _ours_in(attached, scene["table"], payload) > sessions
        if fixture == "supabase_like":  # the app's trigger kept counting, for our rows too
            counted = attached.sql(
                "SELECT sum(c.scene_events) FROM public.user_event_counts c JOIN "
                "synthetics.sim_users s ON s.account_key = c.user_id::text"
            )[0][0]
            assert counted == _ours_in(attached, scene["table"], payload)
        mindblock = document["events"]["mindblock"]
        session = document["events"].get("session")
        if mindblock["payload"] is None:
            origins = attached.sql("SELECT count(*) FROM synthetics.synthetic_row_origins")[0][0]
            expected = attached.sql(f"SELECT count(*) FROM {mindblock['table']}")[0][0] - 1
            if session is not None and session["payload"] is None:
                expected += attached.sql(f"SELECT count(*) FROM {session['table']}")[0][0]
                expected -= len(rows_before[session["table"]])
            assert origins == expected
        if session is not None:  # the app's sessions table: a row as each journey started
            journeys = attached.sql("SELECT count(*) FROM synthetics.journeys")[0][0]
            real = len(rows_before[session["table"]])
            assert attached.sql(f"SELECT count(*) FROM {session['table']}") == [(journeys + real,)]
            started = attached.sql(
                f"SELECT count(*) FROM {session['table']} s JOIN synthetics.journeys j "
                f"ON j.started_at = s.{session['time']} AND j.id::text = s.{session['journey']['column']}"
                if session["journey"]["as"] == "id"
                else f"SELECT count(*) FROM {session['table']} s JOIN synthetics.journeys j "
                f"ON j.started_at = s.{session['time']} JOIN synthetics.journey_templates t "
                f"ON t.id = j.template_id AND t.slug = s.{session['journey']['column']} "
                "JOIN synthetics.sim_users u ON u.id = j.sim_user_id "
                f"AND u.account_key = s.{session['account']}::text"
            )
            assert started == [(journeys,)]  # each at its journey's start, its flow, its account

        # when: old activity cleaned up, then everything taken out
        cleaned = attached.manage("cleanup_activity", "--older-than-hours", "2").stdout
        assert re.search(r"deleted [1-9]\d* scene events", cleaned), cleaned
        rows = attached.rows()
        for table, before in rows_before.items():
            if table.endswith(("user_event_counts",)):
                continue
            assert set(before) <= set(rows[table]), table  # every real row still there
        oldest = attached.sql(
            f"SELECT min(e.{scene['time']}) FROM {scene['table']} e JOIN synthetics.synthetic_runs r "
            f"ON r.run_key = e.{payload} ->> 'run_key'"
        )[0][0]
        assert oldest >= datetime.now(UTC) - timedelta(hours=2, minutes=5)
        if session is not None:
            assert re.search(r"deleted .* [1-9]\d* sessions", cleaned), cleaned
            old = attached.sql(  # only the real ones (3 and 4 hours old) are left
                f"SELECT count(*) FROM {session['table']} WHERE {session['time']} < "
                "now() - interval '2 hours 5 minutes'"
            )
            assert old == [(len(rows_before[session["table"]]),)]
        detached = attached.manage("target", "detach").stdout
        assert "the generator is paused" in detached

        # then: the app as it was but for the tag index, byte for byte
        assert attached.rows() == rows_before
        added = [
            line[1:]
            for line in difflib.unified_diff(schema_before, attached.schema(), lineterm="", n=0)
            if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
        ]
        assert added and all(
            line.startswith("CREATE INDEX") and "_synthetics_tag_idx" in line for line in added
        ), added


@pytest.mark.slow
@pytest.mark.waits
@pytest.mark.parametrize("fixture", ["supabase_like", "identity_keys"])
def test_a_real_cluster_keeps_the_attached_app_alive(tmp_path, fixture):
    with app_database(fixture) as app:
        app.execute(REAL_ROWS[fixture])
        attached = Attached(app, fixture, tmp_path)
        rows_before = attached.rows()
        document = _attach(attached)
        attached.manage("seed_sim_users", "--count", "30")
        app.execute("UPDATE synthetics.synthetic_settings SET sessions_per_min = 20")
        env = dict(attached.env, SYNTHETICS_TARGET=str(attached.target))
        cluster = subprocess.Popen(
            [sys.executable, "manage.py", "qcluster"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        scene = document["events"]["scene"]
        try:
            deadline = time.monotonic() + 150
            written = []
            while time.monotonic() < deadline and not written:
                time.sleep(2)
                written = attached.sql(
                    "SELECT id, run_key, scene_events_created FROM synthetics.synthetic_runs "
                    "WHERE trigger = 'scheduled' AND status = 'succeeded' "
                    "AND scene_events_created > 0"
                )
        finally:
            os.killpg(cluster.pid, signal.SIGTERM)
            try:
                cluster.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(cluster.pid, signal.SIGKILL)
        assert written, cluster.stderr.read().decode()[-3000:]
        run_id, run_key, count = written[0]
        in_app = attached.sql(  # the run's key: a look-alike real row may name its id (run 1)
            f"SELECT count(*) FROM {scene['table']} WHERE {scene['payload']} @> %s::jsonb",
            [json.dumps({"synthetic": True, "run_id": run_id, "run_key": run_key})],
        )
        assert in_app == [(count,)]
        attached.manage("target", "detach")
        assert attached.rows() == rows_before


IDENTITY_TARGET = """\
version: 1
accounts:
  table: app.accounts
  key: account_id
  key_type: bigint
  key_source: database
  columns:
    handle: {template: "{username}"}
    email: {template: "{username}@synthetics.invalid"}
    signed_up_at: {sim_user: joined_at}
events:
  scene:
    table: app.activity
    account: account_id
    time: occurred_at
    type: kind
    payload: properties
    columns:
      source: {constant: synthetics}
  mindblock:
    table: app.blockers
    account: account_id
    time: occurred_at
    type: null
    payload: properties
    mindblock: {column: blocker, as: slug}
    columns: {}
"""


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (IDENTITY_TARGET.replace("table: app.activity", "table: app.nothing"),
         "$.events.scene.table: no table app.nothing in the database"),
        (IDENTITY_TARGET.replace("key_type: bigint", "key_type: uuid"),
         "$.accounts.key_type: uuid, but app.accounts.account_id is bigint"),
        (IDENTITY_TARGET.replace("    signed_up_at:", "    plan: {constant: enterprise}\n    signed_up_at:"),
         "$.accounts.columns.plan: plan='enterprise' would break app.accounts's accounts_plan_check"),
        (IDENTITY_TARGET.replace("key_type: bigint", "key_type: 7"),
         "$.accounts.key_type: 7 is not one of"),
        (IDENTITY_TARGET.replace("    signed_up_at:", "    email: {constant: x}\n    signed_up_at:"),
         "$.accounts.columns: the key 'email' is given twice (line 10, column 5)"),
        (IDENTITY_TARGET.replace("    type: kind", "    type: kind\n    columns: {kind: {constant: x}}"),
         "$.events.scene: the key 'columns' is given twice"),
        (IDENTITY_TARGET.replace("      source: {constant: synthetics}",
                                 "      source: {constant: synthetics}\n      kind: {constant: x}"),
         "$.events.scene.columns.kind: the column 'kind' is mapped twice (also at $.events.scene.type)"),
        ("a: &x [*x]\n", "$"),
        ("!!python/object:os.system {}\n", "$"),
        (IDENTITY_TARGET.replace('{template: "{username}"}', '{template: "{username.__class__}"}'),
         "$.accounts.columns.handle.template: names {username.__class__}"),
    ],
    ids=["unknown-table", "wrong-type", "check-broken", "not-a-type", "yaml-duplicate", "yaml-duplicate-events",
         "mapped-twice", "yaml-alias-loop", "yaml-python-tag", "template-attribute"],
)  # fmt: skip
@pytest.mark.waits  # subprocesses: run beside the cluster tests (see above)
def test_a_bad_target_file_stops_migrate_with_its_place_and_changes_nothing(tmp_path, text, error):
    with app_database("identity_keys") as app:
        attached = Attached(app, "identity_keys", tmp_path)
        schema_before, rows_before = attached.schema(), attached.rows()
        attached.target.write_text(text)
        result = attached.manage("migrate", "--no-input", ok=False)
        assert result.returncode != 0
        assert error in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert attached.sql("SELECT count(*) FROM pg_namespace WHERE nspname = 'synthetics'") == [
            (0,)
        ]
        assert attached.schema() == schema_before and attached.rows() == rows_before


def test_attach_mode_refuses_sqlite_and_a_schema_that_is_not_its_own(tmp_path):
    target = tmp_path / "target.yaml"
    target.write_text(IDENTITY_TARGET)
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "SQLITE_PATH"}
    }
    env.update(SYNTHETICS_LOCAL_DIR=str(tmp_path), SYNTHETICS_TARGET=str(target))
    run = {"cwd": ROOT, "capture_output": True, "text": True, "timeout": 120}
    for command in (["migrate"], ["backfill_activity", "--hours", "1"], ["target", "check"]):
        result = subprocess.run([sys.executable, "manage.py", *command], env=env, **run)
        assert result.returncode != 0
        # one line that says what to set, no traceback
        assert result.stderr.startswith("ImproperlyConfigured: SYNTHETICS_TARGET is set, but ")
        assert "attach mode is PostgreSQL only" in result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert not list(tmp_path.glob("*.sqlite3"))  # nothing made
    env.update(
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres", SYNTHETICS_SCHEMA="public"
    )
    result = subprocess.run([sys.executable, "manage.py", "check"], env=env, **run)
    assert result.returncode != 0
    assert "SYNTHETICS_SCHEMA must be a schema of Synthetics' own" in result.stderr
    assert "Traceback" not in result.stderr
