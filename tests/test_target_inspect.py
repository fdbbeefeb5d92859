"""`manage.py target inspect` (issue 23, attach mode): a target file proposed from an application's
catalogue, printed on stdout, valid against the published schema, every guess commented; what
cannot attach said first, with an exit of 1; nothing of the application changed; PostgreSQL only."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from jsonschema import Draft202012Validator

from synthetics.target.catalog import app_catalog
from synthetics.target.inspect import proposal, rendered
from tests.test_app_fixtures import app_database

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "synthetics" / "target.schema.json").read_text())


def _inspected(app, schemas) -> tuple[str, dict]:
    found = proposal(app_catalog(app, schemas))
    text = rendered(found, source="a test")
    return text, found


def _valid(text: str) -> dict:
    document = yaml.safe_load(text)
    errors = [error.message for error in Draft202012Validator(SCHEMA).iter_errors(document)]
    assert errors == [], errors
    return document


def test_the_supabase_like_app_gets_a_file_that_needs_no_edit():
    with app_database("supabase_like") as app:
        text, found = _inspected(app, ["auth", "public"])
    assert found.problems == []
    document = _valid(text)
    accounts = document["accounts"]
    assert (accounts["table"], accounts["key"], accounts["key_type"], accounts["key_source"]) == (
        "auth.users",
        "id",
        "uuid",
        "synthetics",
    )
    # provably ours, and unable to log in where the table allows it
    assert accounts["columns"]["email"] == {"template": "{username}@synthetics.invalid"}
    assert accounts["columns"]["encrypted_password"] == {"constant": None}
    assert accounts["columns"]["banned_until"] == {"constant": "9999-12-31T00:00:00Z"}
    assert accounts["columns"]["raw_app_meta_data"] == {"json": {"synthetics": True}}
    # the profile, not the app's counter keyed by the account
    assert [profile["table"] for profile in accounts["profiles"]] == ["public.profiles"]
    # Supabase's sign-in sessions (auth.sessions) are logins, not the app's sessions
    assert set(document["events"]) == {"scene", "mindblock"}
    scene, mindblock = document["events"]["scene"], document["events"]["mindblock"]
    assert (scene["table"], scene["account"], scene["time"], scene["type"], scene["payload"]) == (
        "public.journey_scene_events",
        "user_id",
        "created_at",
        "event_type",
        "event_payload",
    )
    assert scene["scene"] == {"column": "scene_id", "as": "slug"}
    assert mindblock["mindblock"] == {"column": "mindblock_type", "as": "slug"}
    assert mindblock["type"] is None
    # every guess is commented
    assert "# no mail reaches .invalid" in text and "# guessed by name" in text


def test_the_identity_keys_app_gets_its_own_names_and_the_column_to_map():
    with app_database("identity_keys") as app:
        # a column whose name YAML 1.1 would read as a boolean, NOT NULL without a default
        app.execute('ALTER TABLE app.activity ADD COLUMN "on" boolean NOT NULL')
        text, found = _inspected(app, ["app"])
    assert found.problems == []
    document = _valid(text)
    assert document["accounts"]["key_source"] == "database"  # an identity makes the key
    assert document["accounts"]["columns"]["signed_up_at"] == {"sim_user": "joined_at"}
    scene = document["events"]["scene"]
    assert (scene["table"], scene["time"], scene["type"], scene["payload"]) == (
        "app.activity",
        "occurred_at",
        "kind",
        "properties",
    )
    assert scene["columns"] == {"source": {"constant": "synthetics"}, "on": {"constant": False}}
    assert document["events"]["mindblock"]["table"] == "app.blockers"
    # the app's sessions table: at the journey's start, the journey as its flow, its own key and
    # type left alone, the device it requires given a value its CHECK takes
    session = document["events"]["session"]
    assert session == {
        "table": "app.sessions",
        "account": "account_id",
        "time": "started_at",
        "type": None,
        "payload": "properties",
        "journey": {"column": "flow", "as": "slug"},
        "columns": {"device": {"constant": "synthetics"}},
    }


def test_only_a_table_of_the_apps_sessions_is_proposed_for_sessions():
    # sign-in tokens and visitors are not sessions; a sessions table in another case is one, and
    # a NOT NULL end it cannot fill is a problem, not a guess
    with app_database("identity_keys") as app:
        app.execute("ALTER TABLE app.sessions RENAME TO session_tokens")
        app.execute(
            "CREATE TABLE app.visitors (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "account_id bigint NOT NULL REFERENCES app.accounts, first_seen timestamptz NOT NULL)"
        )
        text, found = _inspected(app, ["app"])
        assert found.problems == []
        assert set(_valid(text)["events"]) == {"scene", "mindblock"}
        app.execute(
            'CREATE TABLE app."User_Sessions" (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), '
            '"Account_Id" bigint NOT NULL REFERENCES app.accounts, "Started_At" timestamptz '
            "NOT NULL, ended_at timestamptz NOT NULL)"
        )
        text, found = _inspected(app, ["app"])
    session = found.document["events"]["session"]
    assert (session["table"], session["account"], session["time"]) == (
        "app.User_Sessions",
        "Account_Id",
        "Started_At",
    )
    assert found.problems == [
        "app.User_Sessions.ended_at: NOT NULL without a default, and a session row is written as "
        "the journey starts (its end is not known then): give the column a default or make it "
        "nullable"
    ]


def test_a_name_with_a_percent_sign_is_a_problem():
    with app_database("identity_keys") as app:
        app.execute('ALTER TABLE app.activity RENAME COLUMN source TO "source%s"')
        _, found = _inspected(app, ["app"])
    assert found.problems == [
        "names with % are not supported (source%s): Synthetics' SQL passes values as %s parameters"
    ]


def test_an_enum_without_the_engines_event_types_is_a_problem():
    with app_database("identity_keys") as app:
        app.execute("ALTER TYPE app.event_kind RENAME VALUE 'scene_error' TO 'error'")
        _, found = _inspected(app, ["app"])
    assert found.problems == ["app.activity.kind: its enum has no scene_error"]


def test_the_command_prints_the_file_and_an_unattachable_app_exits_1_changing_nothing(tmp_path):
    with app_database("unattachable") as app:
        shape = (
            "SELECT table_name, column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns WHERE table_schema = 'legacy' ORDER BY 1, 2"
        )
        before = app.execute(shape).fetchall()
        info = app.info
        env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
        env["DATABASE_URL"] = f"postgres://{info.user}@{info.host}:{info.port}/{info.dbname}"
        env["SYNTHETICS_LOCAL_DIR"] = str(tmp_path)
        result = subprocess.run(
            [sys.executable, "manage.py", "target", "inspect", "--schema", "legacy"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        after = app.execute(shape).fetchall()
    assert after == before
    assert result.returncode == 1, result.stderr
    text = result.stdout
    assert "# PROBLEM: legacy.clicks: no time column (timestamp) for the events" in text
    assert "# PROBLEM: no table for mindblock events" in text
    assert "member_no: the key (integer) has no default or identity" in text
    assert "cannot attach as it is (4 problems)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.django_db
def test_attach_mode_is_postgresql_only():
    from django.db import connection

    if connection.vendor == "postgresql":
        pytest.skip("the refusal is SQLite's")
    with pytest.raises(CommandError, match="PostgreSQL only"):
        call_command("target", "inspect")
