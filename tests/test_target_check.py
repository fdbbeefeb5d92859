"""Target files (issue 23, attach mode): read with every problem on one line with its path and
nothing changed (synthetics.target.files), then held against the live database with every problem
named by its place in the file, and a plan (synthetics.target.check, `manage.py target check`)."""

import copy
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
import yaml

from synthetics.target.catalog import app_catalog, connected_role
from synthetics.target.check import schemas_named, target_report
from synthetics.target.files import TargetInvalid, TargetUnreadable, target_loads, target_read
from synthetics.target.inspect import proposal, rendered
from tests.test_app_fixtures import app_database

ROOT = Path(__file__).resolve().parent.parent


def _proposed(app, schemas) -> dict:
    return target_loads(rendered(proposal(app_catalog(app, schemas)), source="a test"))


def _report(app, document):
    return target_report(document, app_catalog(app, schemas_named(document)), connected_role(app))


IDENTITY_KEYS = {
    "version": 1,
    "accounts": {
        "table": "app.accounts",
        "key": "account_id",
        "key_type": "bigint",
        "key_source": "database",
        "columns": {
            "handle": {"template": "{username}"},
            "email": {"template": "{username}@synthetics.invalid"},
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
            "columns": {"source": {"constant": "synthetics"}},
        },
        "mindblock": {
            "table": "app.blockers",
            "account": "account_id",
            "time": "occurred_at",
            "type": None,
            "payload": "properties",
            "mindblock": {"column": "blocker", "as": "slug"},
            "columns": {},
        },
    },
}


# --- the file itself ---------------------------------------------------------------------------------


def _refusal(document_or_text) -> list[str]:
    text = (
        document_or_text
        if isinstance(document_or_text, str)
        else yaml.safe_dump(document_or_text, sort_keys=False)
    )
    with pytest.raises(TargetInvalid) as refused:
        target_loads(text)
    return refused.value.errors


def _changed(**edits) -> dict:
    document = copy.deepcopy(IDENTITY_KEYS)
    for path, value in edits.items():
        *parents, last = path.split("__")
        place = document
        for part in parents:
            place = place[part]
        if value is KeyError:
            del place[last]
        else:
            place[last] = value
    return document


def test_a_valid_file_is_read_as_written():
    assert target_loads(yaml.safe_dump(IDENTITY_KEYS)) == IDENTITY_KEYS


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (_changed(extra=1), "$: Additional properties are not allowed ('extra' was unexpected)"),
        (_changed(accounts__key_type="int"), "$.accounts.key_type: 'int' is not one of"),
        (_changed(accounts__table="accounts"), "$.accounts.table: 'accounts' does not match"),
        (_changed(events__scene__time=KeyError), "$.events.scene: 'time' is a required property"),
        (
            _changed(events__scene__columns={"source": {"constant": "x", "template": "y"}}),
            "$.events.scene.columns.source: ",
        ),
        (
            _changed(events__scene__columns={"occurred_at": {"sim_user": "joined_at"}}),
            "$.events.scene.columns.occurred_at: the column 'occurred_at' is mapped twice "
            "(also at $.events.scene.time)",
        ),
        (
            _changed(accounts__profiles=[{"table": "app.accounts", "account": "x", "columns": {}}]),
            "$.accounts.profiles[0].table: a profile table is not the account table",
        ),
        (_changed(version=2), "$.version: 1 was expected"),
        # a % in a name: Synthetics' SQL passes values as %s parameters (it passed check, then
        # the first parameterised statement miscounted its placeholders)
        (_changed(events__scene__table="app.act%s"), "$.events.scene.table: 'app.act%s' does not"),
        (_changed(events__scene__time="at%s"), "$.events.scene.time: 'at%s' does not match"),
        (
            _changed(events__scene__columns={"src%s": {"constant": "x"}}),
            "$.events.scene.columns: 'src%s' does not match",
        ),
    ],
)
def test_a_bad_file_is_refused_with_each_problem_on_one_line_with_its_path(document, error):
    errors = _refusal(document)
    assert any(line.startswith(error) for line in errors), errors
    assert all("\n" not in line for line in errors)


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("version: 1\nversion: 1\n", "$: the key 'version' is given twice"),
        ("a: &x [1]\nb: *x\n", "aliases (*name) are not allowed in a target file (line 2"),
        ("version: !!python/object:os.system 1\n", "$.version: tags (tag:yaml.org,2002:python"),
        ("on: 1\n", "$: a key must be text, not True"),
        ("version: 1\n---\nversion: 1\n", "a target file is one YAML document"),
        ("{]", "$: neither JSON nor YAML"),
        ("x" * (300 * 1024), "$: the file is larger than a target file can be"),
    ],
)
def test_yaml_tricks_are_one_line_naming_where(text, error):
    with pytest.raises(TargetUnreadable) as refused:
        target_loads(text)
    assert error in str(refused.value), str(refused.value)
    assert len(refused.value.errors) == 1


def test_a_missing_file_is_one_line(tmp_path):
    with pytest.raises(TargetUnreadable, match=r"^\$: cannot read .*missing.yaml"):
        target_read(tmp_path / "missing.yaml")


# --- the file against the database -------------------------------------------------------------------


def test_what_inspect_proposes_fits_its_database():
    with app_database("supabase_like") as app:
        document = _proposed(app, ["auth", "public"])
        report = _report(app, document)
    assert report.problems == []
    assert any("journey_scene_events_count" in note for note in report.notes)  # fires for ours
    assert any("mindblock_events_intensity_check" in note for note in report.notes)
    assert (
        "deletes its own rows only (cleanup: old events; `target detach`: all), in this order: "
        "public.journey_scene_events, public.mindblock_events, public.profiles, auth.users"
    ) in report.plan
    assert any(
        step.startswith("`migrate` creates Synthetics' own tables") and "schema synthetics" in step
        for step in report.plan
    )
    assert (
        "`target index` (optional, the one change to an application table) makes "
        "public.journey_scene_events_synthetics_tag_idx on public.journey_scene_events "
        "((event_payload ->> 'synthetic'), created_at) CONCURRENTLY"
    ) in report.plan
    with app_database("identity_keys") as app:
        assert _report(app, _proposed(app, ["app"])).problems == []
        assert _report(app, IDENTITY_KEYS).problems == []


@pytest.mark.parametrize(
    ("edits", "problem"),
    [
        ({"events__scene__table": "app.nothing"}, "$.events.scene.table: no table app.nothing"),
        ({"events__scene__time": "when"}, "$.events.scene.time: app.activity has no column 'when'"),
        ({"events__scene__time": "screen"}, "app.activity.screen is text, not a timestamp"),
        ({"events__scene__payload": "source"}, "app.activity.source is text: the tag needs jsonb"),
        ({"events__scene__columns": {}}, "app.activity.source is NOT NULL without a default"),
        ({"accounts__key_source": "synthetics"}, "Synthetics makes uuid and text keys"),
        ({"accounts__key_type": "uuid"}, "$.accounts.key_type: uuid, but app.accounts.account_id"),
        (
            {
                "events__scene__columns": {
                    "source": {"constant": "s"},
                    "account_id": {"constant": 1},
                }
            },
            "app.activity.account_id references app.accounts",
        ),
        (
            {"accounts__columns__handle": {"constant": True}},
            "app.accounts.handle (text) does not take true or false",
        ),
        (
            {"events__mindblock__mindblock": {"column": "blocker", "as": "id"}},
            "app.blockers.blocker is text: it cannot hold a mindblock's id",
        ),
        (  # an event table's own key: one constant would repeat in every row
            {
                "events__scene__columns": {
                    "source": {"constant": "s"},
                    "activity_id": {"constant": 5},
                }
            },
            "$.events.scene.columns.activity_id: app.activity.activity_id is the table's primary key",
        ),
        (
            {"accounts__columns__account_id": {"constant": 5}},
            "app.accounts.account_id is GENERATED ALWAYS AS IDENTITY: only the database writes it",
        ),
    ],
)
def test_each_problem_against_the_database_is_named_by_its_place(edits, problem):
    with app_database("identity_keys") as app:
        report = _report(app, _changed(**edits))
    assert any(problem in line for line in report.problems), report.problems


def test_a_reference_with_a_foreign_key_to_an_app_table_is_a_problem():
    with app_database("identity_keys") as app:
        app.execute("CREATE TABLE app.screens (slug text PRIMARY KEY)")
        app.execute(
            "ALTER TABLE app.activity ADD FOREIGN KEY (screen) REFERENCES app.screens (slug)"
        )
        report = _report(app, IDENTITY_KEYS)
    assert len(report.problems) == 1
    assert report.problems[0].startswith(
        "$.events.scene.scene.column: app.activity.screen references app.screens: a scene of "
        "Synthetics is not a row there"
    )


def test_a_table_without_a_payload_needs_a_single_column_key():
    with app_database("identity_keys") as app:
        app.execute("ALTER TABLE app.blockers DROP CONSTRAINT blockers_pkey")
        report = _report(app, _changed(events__mindblock__payload=None))
        keyed = _report(app, _changed(events__scene__payload=None))
    assert report.problems == [
        "$.events.mindblock.payload: null, but app.blockers has no single-column primary key: "
        "Synthetics keeps each row's origin by its key"
    ]
    assert keyed.problems == []
    assert any(
        "app.activity (no payload column) in synthetics.synthetic_row_origins, by activity_id"
        in step
        for step in keyed.plan
    )


def test_an_enum_without_the_engines_types_is_a_problem():
    with app_database("identity_keys") as app:
        app.execute("ALTER TYPE app.event_kind RENAME VALUE 'journey_completed' TO 'done'")
        report = _report(app, IDENTITY_KEYS)
    assert report.problems == [
        "$.events.scene.type: app.activity.kind is an enum without journey_completed"
    ]


def test_row_security_and_missing_privileges_for_a_role_that_is_not_the_owner():
    role = f"synthetics_test_role_{uuid.uuid4().hex[:8]}"
    with app_database("supabase_like") as app:
        document = _proposed(app, ["auth", "public"])
        app.execute(f'CREATE ROLE "{role}" LOGIN')
        try:
            app.execute(f'GRANT USAGE ON SCHEMA auth TO "{role}"')
            app.execute(f'GRANT SELECT, INSERT, DELETE ON ALL TABLES IN SCHEMA auth TO "{role}"')
            app.execute(f'GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA public TO "{role}"')
            info = app.info
            with psycopg.connect(
                host=info.host, port=info.port, dbname=info.dbname, user=role, autocommit=True
            ) as as_role:
                report = _report(as_role, document)
        finally:
            app.execute(f'DROP OWNED BY "{role}"')
            app.execute(f'DROP ROLE "{role}"')
    lacking = [line for line in report.problems if "lacks DELETE" in line]
    assert len(lacking) == 3  # the profile and both event tables; the accounts have it
    secured = [line for line in report.problems if "row-level security is on" in line]
    assert len(secured) == 4 and any("own_scene_events" in line for line in secured)


def test_the_command_names_what_cannot_attach_exits_1_and_changes_nothing(tmp_path):
    target = {
        "version": 1,
        "accounts": {
            "table": "legacy.members",
            "key": "member_no",
            "key_type": "integer",
            "key_source": "synthetics",
            "columns": {"name": {"template": "{username}"}},
        },
        "events": {
            kind: {
                "table": "legacy.clicks",
                "account": "member_no",
                "time": "what",
                "type": None,
                "payload": "payload",
                "columns": {},
            }
            for kind in ("scene", "mindblock")
        },
    }
    path = tmp_path / "target.yaml"
    path.write_text(yaml.safe_dump(target))
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
            [sys.executable, "manage.py", "target", "check", str(path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        after = app.execute(shape).fetchall()
    assert after == before
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "PROBLEM $.events.scene.time: legacy.clicks.what is character(4), not a timestamp" in out
    assert "legacy.clicks.payload is integer: the tag needs jsonb" in out
    assert "$.accounts.key_source: Synthetics makes uuid and text keys, not integer ones" in out
    assert "legacy.clicks.click_no is NOT NULL without a default" in out
    assert "a run could not write into these tables" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.django_db
def test_a_check_our_values_would_break_is_a_problem_and_one_they_meet_is_not():
    from synthetics.target.constraints import check_violations

    with app_database("identity_keys") as app:
        catalog = app_catalog(app, ["app"])
        # the fixture's own CHECKs: blockers' length(blocker) <= 64 holds for every mindblock
        # slug; accounts' plan is a column the database fills (its default)
        assert check_violations(app, IDENTITY_KEYS, catalog) == []
        app.execute(
            "ALTER TABLE app.activity ADD CONSTRAINT no_errors "
            "CHECK (kind::text <> 'scene_error' OR source = 'web')"
        )
        app.execute(
            "ALTER TABLE app.activity ADD CONSTRAINT known_sources "
            "CHECK (source IN ('web', 'ios', 'synthetics'))"
        )
        app.execute(
            "ALTER TABLE app.accounts ADD CONSTRAINT company_mail CHECK (email LIKE '%@example.com')"
        )
        app.execute(
            "ALTER TABLE app.blockers ADD CONSTRAINT short_blocker CHECK (length(blocker) < 10)"
        )
        problems = check_violations(app, IDENTITY_KEYS, app_catalog(app, ["app"]))
    assert len(problems) == 3, problems
    assert problems[0].startswith(
        "$.accounts.columns.email: email='sim000001@synthetics.invalid' would break "
        "app.accounts's company_mail: CHECK ((email ~~ '%@example.com'::text))"
    )
    assert problems[1].startswith(
        "$.events.scene.type: kind='scene_error', source='synthetics' would break "
        "app.activity's no_errors"
    )
    assert problems[2].startswith("$.events.mindblock.mindblock.column: blocker='") and (
        "would break app.blockers's short_blocker" in problems[2]
    )


def test_both_kinds_in_one_table_need_a_type_column():
    with app_database("identity_keys") as app:
        shared = _changed(events__mindblock=dict(IDENTITY_KEYS["events"]["scene"], type=None))
        problems = _report(app, shared).problems
        typed = _report(
            app, _changed(events__mindblock=dict(IDENTITY_KEYS["events"]["scene"]))
        ).problems
    assert (
        "$.events.mindblock.type: scene and mindblock events share app.activity: each needs its "
        "type column to tell them apart"
    ) in problems
    assert typed == []


def test_event_rows_look_up_what_is_missing_once_and_refuse_what_does_not_exist():
    # The builders index the lookups; a miss reads what the events from there on need (`fill`)
    # and the rows go on from where they stopped: every row once, in order. A second miss in the
    # same table is something the events name that does not exist: it raises.

    from synthetics.engine import EventRecord
    from synthetics.target.files import target_loads
    from synthetics.target.mapping import target_from
    from synthetics.target.writing import Lookups, event_rows

    target = target_from(
        target_loads(
            "version: 1\n"
            "accounts: {table: app.accounts, key: id, key_type: bigint, key_source: database,"
            " columns: {email: {template: '{username}@synthetics.invalid'}}}\n"
            "events:\n"
            "  scene: {table: app.activity, account: account_id, time: at, type: kind,"
            " payload: props, scene: {column: screen, as: slug},"
            " columns: {who: {template: '{username}'}}}\n"
            "  mindblock: {table: app.blockers, account: account_id, time: at, type: null,"
            " payload: props, columns: {}}\n"
        )
    )
    journey = uuid.uuid4()
    events = [
        (EventRecord("scene", user, journey, scene, None, "scene_entered", 1000 * user, {}), (1, "k"))
        for user, scene in [(1, 10), (2, 10), (3, 11), (1, 11)]
    ]  # fmt: skip
    lookups = Lookups(account_keys={1: "101"}, people={1: {"username": "sim1"}},
                      journey_templates={}, catalogue={"scene": {10: ("ten", "Ten")}})  # fmt: skip
    asked = []

    def fill(records):
        asked.append([event.user_id for event, _ in records])
        for event, _ in records:
            lookups.account_keys.setdefault(event.user_id, str(100 + event.user_id))
            lookups.people.setdefault(event.user_id, {"username": f"sim{event.user_id}"})
        lookups.catalogue["scene"] = {**lookups.catalogue["scene"], 11: ("eleven", "Eleven")}

    (rows,) = event_rows(
        target, events, payload_text=lambda e, r: "{}", time_text=lambda e: e.at_ms,
        lookups=lookups, fill=fill,
    )  # fmt: skip
    assert asked == [[2, 3, 1]]  # the first event built; the rest looked up once
    assert [(row[0], row[1], row[4], row[5]) for row in rows.rows] == [
        ("101", 1000, "ten", "sim1"),
        ("102", 2000, "ten", "sim2"),
        ("103", 3000, "eleven", "sim3"),
        ("101", 1000, "eleven", "sim1"),
    ]
    gone = [(EventRecord("scene", 1, journey, 99, None, "scene_entered", 5, {}), (1, "k"))]
    with pytest.raises(KeyError):
        event_rows(
            target, gone, payload_text=lambda e, r: "{}", time_text=lambda e: e.at_ms,
            lookups=lookups, fill=fill,
        )  # fmt: skip
    assert len(asked) == 2  # looked up once more, then refused


def test_a_sessions_table_gets_a_row_as_each_journey_starts_tagged_with_its_run(monkeypatch):
    # A mapped sessions table (events.session) gets one row per new journey, at its start, with
    # its account, the journey as its template's slug, the constants, and the tag of the run that
    # started it; a target without one gets no session rows.
    from datetime import UTC, datetime

    from synthetics.engine import EventRecord, NewJourney
    from synthetics.engine.run import session_started, to_ms
    from synthetics.engine.types import Plan
    from synthetics.services.writers import _payload_text
    from synthetics.target import writing
    from synthetics.target.files import target_loads
    from synthetics.target.mapping import target_from
    from synthetics.target.writing import Lookups, event_rows, event_rows_built

    text = (
        "version: 1\n"
        "accounts: {table: app.accounts, key: id, key_type: bigint, key_source: database,"
        " columns: {}}\n"
        "events:\n"
        "  scene: {table: app.activity, account: account_id, time: at, type: kind,"
        " payload: props, columns: {}}\n"
        "  mindblock: {table: app.blockers, account: account_id, time: at, type: null,"
        " payload: props, columns: {}}\n"
    )
    sessions = (
        "  session: {table: app.sessions, account: account_id, time: started_at, type: null,"
        " payload: props, journey: {column: flow, as: slug}, columns: {device: {constant: web}}}\n"
    )
    target = target_from(target_loads(text + sessions))
    started = datetime(2026, 3, 4, 12, 0, 30, 250000, tzinfo=UTC)
    journeys = [
        NewJourney(uuid.uuid4(), 7, user, template, started, None, "active",
                   Plan("slug-" + str(template), "casual", "completed", 0, ()), 0)
        for user, template in [(1, 3), (2, 4)]
    ]  # fmt: skip
    records = [(session_started(journey), (40 + i, f"k{i}")) for i, journey in enumerate(journeys)]
    lookups = Lookups(
        account_keys={1: "101", 2: "102"},
        people={},
        journey_templates={journey.id: journey.template_id for journey in journeys},
        catalogue={"journey": {3: ("onboarding", "Onboarding"), 4: ("checkout", "Checkout")}},
    )
    (rows,) = event_rows(
        target, records, payload_text=_payload_text, time_text=lambda e: e.at_ms, lookups=lookups
    )
    assert rows.table == '"app"."sessions"'
    assert rows.columns == ('"account_id"', '"started_at"', '"props"', '"flow"', '"device"')
    assert [(row[0], row[1], row[3], row[4]) for row in rows.rows] == [
        ("101", to_ms(started), "onboarding", "web"),
        ("102", to_ms(started), "checkout", "web"),
    ]
    payload = json.loads(rows.rows[1][2])
    assert payload == {
        "synthetic": True, "run_id": 41, "run_key": "k1", "template": "slug-4",
        "persona": "casual", "journey_id": str(journeys[1].id),
    }  # fmt: skip
    assert isinstance(records[0][0], EventRecord) and records[0][0].kind == "session"
    # what the writers call: the new journeys with their runs' tags become the sessions' rows;
    # without a sessions table the same journeys make none
    monkeypatch.setattr(writing, "_LOOKUPS", lookups)
    tagged = [(journey, run) for (_, run), journey in zip(records, journeys, strict=True)]
    built = event_rows_built(
        target, [], tagged, payload_text=_payload_text, time_text=lambda e: e.at_ms
    )
    assert [table.rows for table in built] == [rows.rows]
    plain = target_from(target_loads(text))
    assert "session" not in plain.events
    assert (
        event_rows_built(plain, [], tagged, payload_text=_payload_text, time_text=lambda e: e.at_ms)
        == []
    )
