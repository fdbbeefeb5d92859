"""The foreign applications of tests/apps/ (issue 23: attach to an app's own tables) load on the
server's PostgreSQL, each in a database of its own made for the test and dropped after it, and hold
what the attach tests rely on: uuid keys, row-level security and a working app trigger (Supabase-
like); identity keys, an enum and a NOT NULL column without a default (identity keys); no time
column and a payload that cannot carry the tag (unattachable). synthetics.target.catalog reads each
as PostgreSQL's catalogue describes it."""

import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from synthetics.target.catalog import Column, ForeignKey, app_catalog

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


# --- the catalogue as synthetics.target.catalog reads it ----------------------------------------------


def test_the_catalogue_of_the_supabase_like_app():
    with app_database("supabase_like") as app:
        catalog = app_catalog(app, ["auth", "public"])
    assert set(catalog) == {
        "auth.users",
        "auth.sessions",
        "public.profiles",
        "public.journey_scene_events",
        "public.mindblock_events",
        "public.user_event_counts",
    }
    users = catalog["auth.users"]
    assert users.primary_key == ("id",)
    assert users.column("id") == Column("id", "uuid", not_null=True, default=None)
    assert users.column("email").type == "character varying(255)"
    assert users.column("is_sso_user") == Column("is_sso_user", "boolean", True, "false")
    events = catalog["public.journey_scene_events"]
    assert events.foreign_keys == (
        ForeignKey("journey_scene_events_user_id_fkey", ("user_id",), "auth.users", ("id",)),
    )
    assert events.column("id").fills_itself and not events.column("user_id").fills_itself
    assert (events.row_security, events.row_security_forced) == (True, False)
    assert events.policies == ("own_scene_events",)
    assert [name for name, _ in events.triggers] == ["journey_scene_events_count"]
    assert "AFTER INSERT" in events.triggers[0][1]
    assert events.privileges == {"SELECT", "INSERT", "UPDATE", "DELETE"}  # the owner's
    (check,) = catalog["public.mindblock_events"].checks
    assert check[0] == "mindblock_events_intensity_check" and "intensity" in check[1]
    assert catalog["public.profiles"].foreign_keys[0].references == "auth.users"


def test_the_catalogue_of_the_identity_keys_app():
    with app_database("identity_keys") as app:
        catalog = app_catalog(app, ["app"])
    accounts = catalog["app.accounts"]
    assert accounts.column("account_id").identity == "always"
    assert accounts.column("account_id").fills_itself
    activity = catalog["app.activity"]
    assert activity.column("activity_id").identity == "by default"
    assert activity.column("kind").enum_labels == (
        "scene_entered",
        "scene_error",
        "journey_completed",
        "mindblock_reported",
    )
    assert activity.column("source") == Column("source", "text", not_null=True, default=None)
    blockers = catalog["app.blockers"]
    assert blockers.column("blocker_id").default.startswith("nextval(")  # bigserial
    assert any("length(blocker)" in definition for _, definition in blockers.checks)
    assert not activity.row_security and activity.triggers == ()


def test_the_catalogue_of_the_unattachable_app_and_of_schemas_not_asked_for():
    with app_database("unattachable") as app:
        assert app_catalog(app, ["public"]) == {}
        catalog = app_catalog(app, ["legacy"])
    clicks = catalog["legacy.clicks"]
    assert [column.type for column in clicks.columns] == [
        "integer",
        "integer",
        "character(4)",
        "integer",
    ]
    assert clicks.foreign_keys[0].references == "legacy.members"
