"""The foreign applications of tests/apps/ (issue 23: attach to an app's own tables) load on the
server's PostgreSQL, each in a database of its own made for the test and dropped after it, and hold
what the attach tests rely on: uuid keys, row-level security and a working app trigger (Supabase-
like); identity keys, an enum and a NOT NULL column without a default (identity keys); no time
column and a payload that cannot carry the tag (unattachable)."""

import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

APPS = Path(__file__).parent / "apps"


@contextmanager
def app_database(name: str):
    """A fresh database holding tests/apps/<name>.sql, on the server the tests use."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://...")
    server = {
        "host": db["HOST"] or "127.0.0.1",
        "port": db["PORT"] or 5432,
        "user": db["USER"],
        "password": db["PASSWORD"] or None,
    }
    database = f"synthetics_test_app_{name}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    try:
        with psycopg.connect(dbname=database, autocommit=True, **server) as app:
            app.execute((APPS / f"{name}.sql").read_text())
            yield app
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True, **server) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _columns(app, schema: str, table: str) -> dict[str, tuple[str, bool, str | None]]:
    rows = app.execute(
        "SELECT column_name, data_type, is_nullable = 'NO', column_default "
        "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
        [schema, table],
    ).fetchall()
    return {name: (kind, not_null, default) for name, kind, not_null, default in rows}


def test_the_supabase_like_app_has_uuid_accounts_row_security_and_a_working_trigger():
    with app_database("supabase_like") as app:
        assert _columns(app, "auth", "users")["id"][:2] == ("uuid", True)
        events = _columns(app, "public", "journey_scene_events")
        assert events["event_payload"][0] == "jsonb"
        assert events["id"][2] == "gen_random_uuid()"
        secured = dict(
            app.execute(
                "SELECT relname, relrowsecurity FROM pg_class WHERE relname IN "
                "('users', 'profiles', 'journey_scene_events', 'mindblock_events')"
            ).fetchall()
        )
        assert secured == dict.fromkeys(secured, True) and len(secured) == 4
        # the app's trigger counts every scene event, whoever writes it
        user = app.execute(
            "INSERT INTO auth.users (id, email) VALUES (gen_random_uuid(), 'a@example.com') "
            "RETURNING id"
        ).fetchone()[0]
        for _ in range(3):
            app.execute(
                "INSERT INTO public.journey_scene_events (user_id, event_type) VALUES (%s, 'x')",
                [user],
            )
        counted = app.execute(
            "SELECT scene_events FROM public.user_event_counts WHERE user_id = %s", [user]
        ).fetchone()
        assert counted == (3,)


def test_the_identity_keys_app_has_its_own_names_an_enum_and_a_column_to_map():
    with app_database("identity_keys") as app:
        identity = app.execute(
            "SELECT is_identity, identity_generation FROM information_schema.columns "
            "WHERE table_schema = 'app' AND table_name = 'accounts' AND column_name = 'account_id'"
        ).fetchone()
        assert identity == ("YES", "ALWAYS")
        activity = _columns(app, "app", "activity")
        assert {"occurred_at", "kind", "properties"} <= activity.keys()
        assert activity["source"] == ("text", True, None)  # NOT NULL, no default: to be mapped
        labels = app.execute(
            "SELECT array_agg(enumlabel ORDER BY enumsortorder) FROM pg_enum "
            "JOIN pg_type ON pg_type.oid = enumtypid WHERE typname = 'event_kind'"
        ).fetchone()[0]
        assert labels == ["scene_entered", "scene_error", "journey_completed", "mindblock_reported"]


def test_the_unattachable_app_has_no_time_column_and_an_integer_payload():
    with app_database("unattachable") as app:
        clicks = _columns(app, "legacy", "clicks")
        assert not any("timestamp" in kind or kind == "date" for kind, _, _ in clicks.values())
        assert clicks["payload"][0] == "integer"
