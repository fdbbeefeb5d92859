"""History with sign-ups in attach mode, pipelined (PostgreSQL, in process): the sign-ups' application
accounts are settled a span ahead of their write — names stepped around the accounts the application
holds, keys drawn by us (the Supabase-like application's uuid keys) or reserved from the
application's identity sequence (the identity-keys application's) — and the writer makes them with
the span. The same accounts, profile rows, events, sessions, journeys, ledger and churn as spans
written one at a time, as they are simulated; and detach still deletes our rows only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Sum

from synthetics.models import Journey, SimUser, SyntheticRun, SyntheticSettings, User
from synthetics.services import activity_backfill, history, sim_users_seed
from synthetics.services.detach import target_detach
from synthetics.target.mapping import target_in_force
from synthetics.target.tables import target_reset
from synthetics.target.writing import DRAWN, account_keys_ahead, lookups_reset
from tests.test_golden import generated_rows
from tests.test_history import END, _ledger, transactional

# `waits` though they wait on nothing: CI runs them in the pass beside the cluster tests, which leave
# the cores idle while they wait for the minute (as tests/test_attach_rule.py).
pytestmark = [pytest.mark.waits]

APPS = Path(__file__).parent / "apps"

# The Supabase-like application in schemas of its own (its public tables would meet the demo
# tables of the test database's public schema), otherwise as tests/apps/ has it: uuid keys our
# own, a profile table, row-level security and the app trigger that counts scene events.
SUPABASE_LIKE = (
    (APPS / "supabase_like.sql")
    .read_text()
    .replace("CREATE SCHEMA auth;", "CREATE SCHEMA sb_auth; CREATE SCHEMA sb_public;")
    .replace("auth.", "sb_auth.")
    .replace("public.", "sb_public.")
)

# The files `target inspect` proposes for the two applications (tests/test_target_inspect.py), here
# as data: the identity-keys one with its sessions table, and its activity's `source` the sim
# account's name (a column written from the person: the sign-ups' events need their fields ahead).
TARGETS = {
    "identity_keys": {
        "version": 1,
        "accounts": {
            "table": "app.accounts",
            "key": "account_id",
            "key_type": "bigint",
            "key_source": "database",
            "columns": {
                "handle": {"template": "{username}"},
                "email": {"template": "{username}@synthetics.invalid"},
                "password_hash": {"constant": None},
                "signed_up_at": {"sim_user": "joined_at"},
            },
        },
        "events": {
            "scene": {
                "table": "app.activity",
                "account": "account_id",
                "time": "occurred_at",
                "type": "kind",
                "payload": "properties",
                "scene": {"column": "screen", "as": "slug"},
                "columns": {"source": {"template": "{username}"}},
            },
            "mindblock": {
                "table": "app.blockers",
                "account": "account_id",
                "time": "occurred_at",
                "type": None,
                "payload": "properties",
                "scene": {"column": "screen", "as": "slug"},
                "mindblock": {"column": "blocker", "as": "slug"},
                "columns": {},
            },
            "session": {
                "table": "app.sessions",
                "account": "account_id",
                "time": "started_at",
                "type": None,
                "payload": "properties",
                "journey": {"column": "flow", "as": "slug"},
                "columns": {"device": {"constant": "synthetics"}},
            },
        },
    },
    "supabase_like": {
        "version": 1,
        "accounts": {
            "table": "sb_auth.users",
            "key": "id",
            "key_type": "uuid",
            "key_source": "synthetics",
            "columns": {
                "email": {"template": "{username}@synthetics.invalid"},
                "encrypted_password": {"constant": None},
                "raw_app_meta_data": {"json": {"synthetics": True}},
                "raw_user_meta_data": {"json": {"synthetics": True}},
                "created_at": {"sim_user": "joined_at"},
                "banned_until": {"constant": "9999-12-31T00:00:00Z"},
            },
            "profiles": [
                {
                    "table": "sb_public.profiles",
                    "account": "id",
                    "columns": {
                        "display_name": {"sim_user": "display_name"},
                        "timezone": {"sim_user": "timezone"},
                        "locale": {"sim_user": "locale"},
                    },
                }
            ],
        },
        "events": {
            "scene": {
                "table": "sb_public.journey_scene_events",
                "account": "user_id",
                "time": "created_at",
                "type": "event_type",
                "payload": "event_payload",
                "journey": {"column": "journey_id", "as": "id"},
                "scene": {"column": "scene_id", "as": "slug"},
                "columns": {},
            },
            "mindblock": {
                "table": "sb_public.mindblock_events",
                "account": "user_id",
                "time": "created_at",
                "type": None,
                "payload": "event_payload",
                "scene": {"column": "scene_id", "as": "slug"},
                "mindblock": {"column": "mindblock_type", "as": "slug"},
                "columns": {},
            },
        },
    },
}

# Each application's tables, the column naming the account, and the columns its own defaults fill
# differently from one write to the next (a row's own key, the time a row was written).
TABLES = {
    "identity_keys": {
        "app.accounts": ("account_id", ()),
        "app.activity": ("account_id", ("activity_id",)),
        "app.blockers": ("account_id", ("blocker_id",)),
        "app.sessions": ("account_id", ("session_id",)),
    },
    "supabase_like": {
        "sb_auth.users": ("id", ()),
        "sb_public.profiles": ("id", ("updated_at",)),
        "sb_public.journey_scene_events": ("user_id", ("id",)),
        "sb_public.mindblock_events": ("user_id", ("id",)),
        "sb_public.user_event_counts": ("user_id", ()),
    },
}
SCHEMAS = {"identity_keys": ("app",), "supabase_like": ("sb_auth", "sb_public")}
# A real account holding the name (and address) the first sign-up would take: stepped around.
REAL_ACCOUNTS = {
    "identity_keys": "INSERT INTO app.accounts (handle, email, signed_up_at) VALUES "
    "('sim000301', 'sim000301@synthetics.invalid', now()), ('bob', 'bob@example.com', now())",
    "supabase_like": "INSERT INTO sb_auth.users (id, email, created_at) VALUES "
    "('11111111-1111-1111-1111-111111111111', 'sim000301@synthetics.invalid', now())",
}


@pytest.fixture
def spans(monkeypatch):
    """Spans of 15 minutes (as tests/test_history.py has them), and the count of spans the
    pipeline wrote."""
    monkeypatch.setattr(history, "SPAN_ROWS", 15 * 20 * history.ROWS_PER_SESSION)
    counted = {"pipelined": 0}
    commit = history._span_commit

    def counting(span, *args):
        result = commit(span, *args)
        counted["pipelined"] += result is not None
        return result

    monkeypatch.setattr(history, "_span_commit", counting)
    return counted


@pytest.fixture
def attached_app(request, settings, tmp_path):
    """The application of the test's parameter in the test database, Synthetics attached to it
    through its target file; its schemas dropped after the test."""
    app = request.param
    with connection.cursor() as cursor:
        cursor.execute(
            SUPABASE_LIKE if app == "supabase_like" else (APPS / f"{app}.sql").read_text()
        )
        cursor.execute(REAL_ACCOUNTS[app])
    path = tmp_path / "target.json"
    path.write_text(json.dumps(TARGETS[app]))
    settings.SYNTHETICS_TARGET = str(path)
    target_reset()
    lookups_reset()
    try:
        yield app
    finally:
        target_reset()
        lookups_reset()
        with connection.cursor() as cursor:
            for schema in SCHEMAS[app]:
                cursor.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _app_rows(app: str) -> dict[str, list[str]]:
    """Every row of the application's tables by content, in a canonical order: an account key as
    the name of its account (ours: the sim account's; a real one: 'real'), a payload's run id as
    its run's window end (the run key checked: its run's), the columns the application's defaults
    fill left out."""
    names = {
        key: username
        for key, username in SimUser.objects.values_list("account_key", "user__username")
    }
    runs = {
        run_id: (end.isoformat(), key)
        for run_id, end, key in SyntheticRun.objects.values_list("id", "window_end", "run_key")
    }
    found = {}
    with connection.cursor() as cursor:
        for table, (account, ignored) in TABLES[app].items():
            cursor.execute(f"SELECT row_to_json(t)::text FROM {table} t")
            rows = []
            for (text,) in cursor.fetchall():
                row = json.loads(text)
                row["account"] = names.get(str(row.pop(account)), "real")
                for column in ignored:
                    del row[column]
                for payload in ("properties", "event_payload"):
                    tag = row.get(payload)
                    if isinstance(tag, dict) and "run_id" in tag:
                        end, key = runs[tag["run_id"]]
                        assert tag.pop("run_key") == key
                        tag["run_id"] = end
                rows.append(json.dumps(row, sort_keys=True))
            found[table] = sorted(rows)
    return found


def _ours() -> dict:
    """Synthetics' own rows by content: sim users, journeys (with their plans), churn."""
    plans = sorted(
        json.dumps([str(journey_id), plan, next_at and next_at.isoformat()], sort_keys=True)
        for journey_id, plan, next_at in Journey.objects.values_list("id", "plan", "next_at")
    )
    churned = sorted(
        SimUser.objects.filter(churned_at__isnull=False).values_list("user__username", "churned_at")
    )
    return {
        "rows": {
            name: sorted(json.dumps(row, sort_keys=True) for row in rows)
            for name, rows in generated_rows().items()
        },
        "plans": plans,
        "churned": churned,
        "joined": sorted(
            SimUser.objects.filter(joined_at__isnull=False).values_list(
                "user__username", "user__email", "joined_at"
            )
        ),
    }


def _signed_up_keys() -> list[str]:
    """The sign-ups' account keys, in the order they signed up."""
    return list(
        SimUser.objects.filter(joined_at__isnull=False)
        .order_by("user_id")
        .values_list("account_key", flat=True)
    )


def _history_wiped(app: str) -> None:
    """Take the history back out: its events and sessions, the sign-ups' accounts (and what the
    app's trigger counted), our journeys, ledger and churn; the seeded pool and real rows stay."""
    signed_up = [str(key) for key in _signed_up_keys()]
    target = target_in_force()
    with connection.cursor() as cursor:
        for table, (account, _) in TABLES[app].items():
            if table == target.accounts.table:
                continue
            if table in {profile.table for profile in target.accounts.profiles}:
                cursor.execute(f"DELETE FROM {table} WHERE {account}::text = ANY(%s)", [signed_up])
            else:
                cursor.execute(f"DELETE FROM {table}")
        cursor.execute(
            f"DELETE FROM {target.accounts.table} WHERE {target.accounts.key}::text = ANY(%s)",
            [signed_up],
        )
    Journey.objects.all().delete()
    SyntheticRun.objects.all().delete()
    SimUser.objects.filter(joined_at__isnull=False).delete()
    User.objects.filter(is_synthetic=True, sim_profile__isnull=True).delete()
    SimUser.objects.update(churned_at=None)
    lookups_reset()  # as a new process: nothing looked up


@pytest.mark.slow
@transactional
@pytest.mark.parametrize(
    "attached_app", ["identity_keys", "supabase_like"], indirect=True, ids=["identity", "uuid"]
)
def test_attached_pipelined_sign_ups_write_what_one_span_at_a_time_writes(
    postgres_only, attached_app, spans, monkeypatch
):
    # given: 300 sim users made through the target; ~1,500 sign-ups a day (about 190 in 3 hours)
    app = attached_app
    real = _app_rows(app)
    sim_users_seed(count=300, seed=24)
    SyntheticSettings.objects.filter(pk=1).update(
        sessions_per_min=20, max_per_run=100, signups_per_day=1500, churn_per_month=1.0
    )
    ahead = account_keys_ahead(target_in_force())
    assert ahead.source == ("sequence" if app == "identity_keys" else DRAWN)
    seeded = _app_rows(app)

    # when: pipelined
    activity_backfill(hours=3, now=END, seed=7)

    # then: every span went through the pipeline, sign-ups and all
    assert spans["pipelined"] == 14
    signed_up = SyntheticRun.objects.aggregate(total=Sum("users_signed_up"))["total"]
    assert 100 < signed_up == len(_signed_up_keys())
    # the real account's name was stepped around: the first sign-up is sim000301-2
    assert SimUser.objects.filter(joined_at__isnull=False, user__username="sim000301-2").exists()
    keys = _signed_up_keys()
    if app == "identity_keys":  # from the application's sequence, in the order they signed up
        assert [int(key) for key in keys] == sorted(int(key) for key in keys)
    pipelined = (_app_rows(app), _ours(), _ledger())

    # when: the same history again, one span at a time, each sign-up minute's accounts made as
    # it is simulated (the application's INSERT … RETURNING gives the identity keys)
    _history_wiped(app)
    assert _app_rows(app) == seeded
    monkeypatch.setattr(history, "_can_pipeline", lambda: False)
    activity_backfill(hours=3, now=END, seed=7)

    # then: the same rows, whatever the keys' values
    assert spans["pipelined"] == 14  # none more
    one_at_a_time = (_app_rows(app), _ours(), _ledger())
    assert one_at_a_time[0] == pipelined[0]
    assert one_at_a_time[1] == pipelined[1]
    assert one_at_a_time[2] == pipelined[2]

    # and detach takes ours back out, every real row left as it was
    target_detach()
    assert _app_rows(app) == real


@transactional
@pytest.mark.parametrize("attached_app", ["identity_keys"], indirect=True)
def test_keys_a_trigger_may_set_are_not_had_ahead(postgres_only, attached_app):
    """A BEFORE INSERT trigger on the accounts table may set the key itself: sign-ups then go one
    span at a time, each account made as its minute is simulated."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION app.stamp() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN NEW.plan := 'free'; RETURN NEW; END $$; "
            "CREATE TRIGGER stamp BEFORE INSERT ON app.accounts "
            "FOR EACH ROW EXECUTE FUNCTION app.stamp()"
        )
    assert account_keys_ahead(target_in_force()) is None
    SyntheticSettings.objects.filter(pk=1).update(signups_per_day=100)
    assert not history._signups_ahead(history.run_inputs.generator_settings())
    SyntheticSettings.objects.filter(pk=1).update(signups_per_day=0)
    assert history._signups_ahead(history.run_inputs.generator_settings())
