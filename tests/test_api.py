"""The REST API: the seed's shapes key by key and type by type, validation, cleanup, throttling, docs."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from synthetics.models import (
    Journey,
    JourneySceneEvent,
    MindblockEvent,
    SyntheticRun,
    SyntheticSettings,
)
from synthetics.selectors import run_inputs
from synthetics.selectors.ledger import run_totals, synthetic_event_counts
from synthetics.services import activity_backfill, run_scheduled
from tests.factories import (
    JourneyFactory,
    JourneySceneEventFactory,
    MindblockEventFactory,
    StaffUserFactory,
    UserFactory,
)
from tests.helpers import database_state

pytestmark = pytest.mark.django_db
API = "/api/synthetics"
RULE = "target must be a whole number from 1 to 5 (max_per_run is 5)"  # engine.run

# The seed's documented responses (deployment guide, steps 3, 4 and 6).
SEED_STATUS = {
    "settings": {
        "enabled": True,
        "sessions_per_min": 2,
        "max_per_run": 5,
        "error_rate": 0.05,
        "abandon_rate": 0.15,
    },
    "activity": {"last_5_min": {"scene_events": 0, "mindblock_events": 0}, "active_journeys": 0},
    "status": "running",
}
SEED_RUN_NOW = {
    "success": True,
    "result": {
        "success": True,
        "sessions_created": 5,
        "scene_events_created": 23,
        "mindblock_events_created": 12,
        "settings": {"target": 5, "abandon_rate": 0.15, "error_rate": 0.05},
        "timestamp": "2026-01-09T19:15:00.000Z",
    },
}


def assert_contract(expected, actual, path="$"):
    """Every key of the seed's JSON is present with a value of the same JSON type (keys may be added)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), f"{path} should be an object, got {actual!r}"
        for key, value in expected.items():
            assert key in actual, f"{path}.{key} is missing"
            assert_contract(value, actual[key], f"{path}.{key}")
    elif isinstance(expected, bool):
        assert isinstance(actual, bool), f"{path} should be a boolean, got {actual!r}"
    elif isinstance(expected, int):
        assert isinstance(actual, int) and not isinstance(actual, bool), f"{path}: {actual!r}"
    elif isinstance(expected, float):
        assert isinstance(actual, float), f"{path} should be a float, got {actual!r}"
    else:
        assert type(actual) is type(expected), f"{path} should be {type(expected)}, got {actual!r}"


@pytest.fixture
def admin_token():
    user = StaffUserFactory()
    return Token.objects.create(user=user).key


@pytest.fixture
def api(admin_token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {admin_token}")
    return client


# --- contracts ------------------------------------------------------------------------------------


def test_status_has_the_seed_shape(api, sim_users):
    run_scheduled()
    response = api.get(f"{API}/status")
    assert response.status_code == 200
    body = response.json()
    assert_contract(SEED_STATUS, body)
    assert body["settings"] == {
        **SEED_STATUS["settings"],
        "rhythm_strength": 1.0,
        "signups_per_day": 0,
        "churn_per_month": 0.0,
    }
    assert body["status"] == "running"
    assert body["sim_users"] == 40
    assert body["last_run"]["trigger"] == "scheduled"
    assert body["last_run"]["status"] in {"succeeded", "skipped"}


def test_status_counts_recent_synthetic_events_only(api, sim_users, monkeypatch):
    activity_backfill(hours=1)
    JourneySceneEventFactory(created_at=timezone.now() - timedelta(minutes=1))  # a real row
    # one moment for the answer and for what it is compared with (between two clocks read apart,
    # an event could fall in the last five minutes of one and not of the other)
    moment = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: moment)
    body = api.get(f"{API}/status").json()
    expected = synthetic_event_counts(since=moment - timedelta(minutes=5))
    assert body["activity"]["last_5_min"] == expected
    # at least four generated minutes lie in the last five: no session starts in them with
    # probability e^-8 (Poisson(2 x 4)), and the journeys in progress write steps too
    assert body["activity"]["last_5_min"]["scene_events"] > 0
    assert body["activity"]["active_journeys"] == run_inputs.active_journey_count()
    assert (
        body["activity"]["last_24_hours"]["sessions_started"]
        == Journey.objects.filter(is_synthetic=True).count()
    )
    # the seed's contract and sessions_started, no other name for them
    assert list(body["activity"]["last_24_hours"]) == [
        "runs",
        "sessions_started",
        "scene_events",
        "mindblock_events",
        "completed",
        "abandoned",
        "errored",
    ]


@pytest.mark.parametrize(
    ("enabled", "runs_minutes_ago", "expected"),
    [(False, 1, "paused"), (True, 1, "running"), (True, 10, "stalled"), (True, None, "stalled")],
)
def test_status_says_running_paused_or_stalled(api, sim_users, enabled, runs_minutes_ago, expected):
    if runs_minutes_ago is not None:
        run_scheduled()
        SyntheticRun.objects.update(
            finished_at=timezone.now() - timedelta(minutes=runs_minutes_ago)
        )
    SyntheticSettings.objects.update(
        enabled=enabled, created_at=timezone.now() - timedelta(hours=1)
    )
    assert api.get(f"{API}/status").json()["status"] == expected


def test_run_now_has_the_seed_shape_and_starts_target_sessions(api, sim_users):
    response = api.post(f"{API}/run-now", {"target": 5}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert_contract(SEED_RUN_NOW, body)
    assert body["result"]["sessions_created"] == 5
    assert body["result"]["settings"] == {"target": 5, "abandon_rate": 0.15, "error_rate": 0.05}
    assert body["result"]["timestamp"].endswith("Z") and len(body["result"]["timestamp"]) == 24
    run = SyntheticRun.objects.get(id=body["result"]["run_id"])
    assert run.trigger == "manual" and run.sessions_started == 5
    assert body["result"]["scene_events_created"] == run.scene_events_created


def test_the_seed_cron_command_works_with_only_host_path_and_token_changed(api, sim_users):
    # curl -X POST .../run-now -H "Authorization: Bearer ..." -H "Content-Type: application/json"
    #      -d '{"target": 3}' --fail
    response = api.generic(
        "POST", f"{API}/run-now", '{"target": 3}', content_type="application/json"
    )
    assert response.status_code == 200
    assert response.json()["result"]["sessions_created"] == 3


def test_seed_curl_commands_without_content_type_still_work(api):
    # The seed's toggle and settings commands send JSON without a Content-Type header, which curl
    # labels application/x-www-form-urlencoded.
    form = "application/x-www-form-urlencoded"
    paused = api.generic("POST", f"{API}/toggle", '{"enabled": false}', content_type=form)
    assert paused.status_code == 200
    assert paused.json()["settings"]["enabled"] is False
    faster = api.generic("POST", f"{API}/settings", '{"sessions_per_min": 5}', content_type=form)
    assert faster.status_code == 200
    assert faster.json()["settings"]["sessions_per_min"] == 5
    resumed = api.generic("POST", f"{API}/toggle", '{"enabled": true}', content_type=form)
    assert resumed.json()["settings"]["enabled"] is True


def test_toggle_and_settings_return_the_new_settings(api):
    body = api.post(f"{API}/toggle", {"enabled": False}, format="json").json()
    assert_contract({"settings": SEED_STATUS["settings"]}, body)
    assert body["settings"]["enabled"] is False
    body = api.post(
        f"{API}/settings", {"max_per_run": 8, "abandon_rate": 0.2}, format="json"
    ).json()
    assert body["settings"] == {
        "enabled": False,
        "sessions_per_min": 2,
        "max_per_run": 8,
        "error_rate": 0.05,
        "abandon_rate": 0.2,
        "rhythm_strength": 1.0,
        "signups_per_day": 0,
        "churn_per_month": 0.0,
    }
    assert SyntheticSettings.objects.get().max_per_run == 8
    body = api.post(f"{API}/settings", {"rhythm_strength": 0.25}, format="json").json()
    assert body["settings"]["rhythm_strength"] == 0.25
    refused = api.post(f"{API}/settings", {"rhythm_strength": 1.5}, format="json")
    assert refused.status_code == 400
    assert refused.json()["fields"]["rhythm_strength"] == [
        "rhythm_strength must be between 0 and 1 (got 1.5)."
    ]
    assert SyntheticSettings.objects.get().rhythm_strength == 0.25


def test_sim_users_has_the_count_and_a_filterable_page(api, sim_users):
    body = api.get(f"{API}/sim-users").json()
    assert body["count"] == 40
    assert sum(body["by_persona"].values()) == 40
    assert len(body["results"]) == 40
    first = body["results"][0]
    assert set(first) >= {"persona", "timezone", "locale", "in_active_journey", "display_name"}
    persona = first["persona"]
    filtered = api.get(f"{API}/sim-users", {"persona": persona}).json()
    assert filtered["count"] == body["by_persona"][persona]
    assert {user["persona"] for user in filtered["results"]} == {persona}
    page = api.get(f"{API}/sim-users", {"page_size": 10, "page": 2}).json()
    assert len(page["results"]) == 10 and page["next"] and page["previous"]


def test_sim_users_marks_users_in_active_journeys(api, sim_users):
    api.post(f"{API}/run-now", {"target": 5}, format="json")
    active = set(Journey.objects.filter(status="active").values_list("sim_user_id", flat=True))
    body = api.get(f"{API}/sim-users", {"page_size": 100}).json()
    flagged = {user["id"] for user in body["results"] if user["in_active_journey"]}
    assert flagged == active


def test_activity_totals_and_series_come_from_the_ledger(api, sim_users):
    activity_backfill(hours=2)
    body = api.get(f"{API}/activity/2").json()
    assert body["bucket"] == "minute"
    assert len(body["series"]) in (120, 121)
    totals = run_totals(since=timezone.now() - timedelta(hours=3))
    assert body["totals"]["sessions_started"] == totals["sessions_started"]
    counts = [
        "scene_events",
        "mindblock_events",
        "sessions_started",
        "journeys_completed",
        "journeys_abandoned",
        "journeys_errored",
    ]
    assert list(body["totals"]) == [*counts, "runs"]
    assert list(body["series"][0]) == [*counts, "bucket"]
    assert body["totals"]["scene_events"] == totals["scene_events"]
    assert sum(p["scene_events"] for p in body["series"]) == body["totals"]["scene_events"]
    assert body["totals"]["runs"] == totals["runs"] == 120
    hourly = api.get(f"{API}/activity/24").json()
    assert hourly["bucket"] == "hour"
    assert len(hourly["series"]) in (24, 25)
    assert hourly["totals"]["scene_events"] == totals["scene_events"]


# --- validation -------------------------------------------------------------------------------------

BAD_INPUTS = [
    ("toggle", {}),
    ("toggle", {"enabled": "false"}),
    ("toggle", {"enabled": 0}),
    ("toggle", {"enabled": None}),
    ("toggle", {"enabled": True, "extra": 1}),
    ("toggle", []),
    ("toggle", "true"),
    ("settings", {}),
    ("settings", {"sessions_per_min": -1}),
    ("settings", {"sessions_per_min": "5"}),
    ("settings", {"sessions_per_min": 2.5}),
    ("settings", {"sessions_per_min": 10**12}),
    ("settings", {"max_per_run": 100_001}),
    ("settings", {"error_rate": 1.01}),
    ("settings", {"error_rate": -0.1}),
    ("settings", {"error_rate": "0.1"}),
    ("settings", {"error_rate": True}),
    ("settings", {"abandon_rate": 0.9, "error_rate": 0.2}),
    ("settings", {"abandon_rate": 0.96}),  # with the current error_rate 0.05
    ("settings", {"enabled": "yes"}),
    ("settings", {"colour": "blue"}),
    ("settings", {"sessions_per_min": 3, "colour": "blue"}),
    ("run-now", {}),
    ("run-now", {"target": 0}),
    ("run-now", {"target": -3}),
    ("run-now", {"target": 6}),
    ("run-now", {"target": 10**9}),
    ("run-now", {"target": "3"}),
    ("run-now", {"target": 2.5}),
    ("run-now", {"target": None}),
    ("run-now", {"target": True}),
    ("run-now", {"target": 3, "force": "yes"}),
    ("run-now", {"target": 3, "extra": 1}),
    ("cleanup", {"older_than_hours": 0}),
    ("cleanup", {"older_than_hours": -5}),
    ("cleanup", {"older_than_hours": "24"}),
    ("cleanup", {"older_than_hours": 10**9}),
    ("cleanup", {"dry_run": "true"}),
    ("cleanup", {"older_than_hours": 24, "tables": ["users"]}),
]


@pytest.mark.parametrize(("endpoint", "body"), BAD_INPUTS)
def test_bad_input_is_refused_with_a_message_and_changes_nothing(api, sim_users, endpoint, body):
    JourneySceneEventFactory(created_at=timezone.now() - timedelta(days=30))
    before = database_state()
    response = api.post(f"{API}/{endpoint}", body, format="json")
    assert response.status_code == 400, response.content
    error = response.json()
    assert error["success"] is False
    assert isinstance(error["error"], str) and len(error["error"]) > 10
    assert database_state() == before


@pytest.mark.parametrize(
    "raw",
    ['{"target": 3', "not json", '{"target": NaN}', '{"target": Infinity}', "", "{'target': 3}"],
)
def test_malformed_or_empty_bodies_are_400(api, sim_users, raw):
    before = database_state()
    response = api.generic("POST", f"{API}/run-now", raw, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert database_state() == before


@pytest.mark.parametrize(
    "hours",
    ["0", "721", "-1", "abc", "1.5", "99999999999999999999", "00024", "024", "%2024", "24%20",
     "%EF%BC%92%EF%BC%94", "+24", "24.0", "%D9%A2%D9%A4", "0x18", "2_4"],
)  # fmt: skip
def test_activity_hours_take_ascii_digits_from_1_to_720_only(api, hours):
    response = api.get(f"{API}/activity/{hours}")
    assert response.status_code == 400
    assert "hours" in response.json()["fields"]


def test_activity_hours_24_is_fine(api):
    assert api.get(f"{API}/activity/24").json()["hours"] == 24


@pytest.mark.parametrize("depth", [33, 1000, 30_000])  # 30,000 levels: 60 KB, under the 413 bound
def test_deeply_nested_json_is_a_json_400(api, depth):
    before = database_state()
    raw = '{"enabled": ' + "[" * depth + "]" * depth + "}"
    response = api.generic("POST", f"{API}/toggle", raw, content_type="application/json")
    assert response.status_code == 400
    assert "nested" in response.json()["error"]
    assert database_state() == before


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_body_over_64_kib_is_a_json_413_before_it_is_read(api, content_type):
    before = database_state()
    raw = '{"enabled": false, "pad": "' + "x" * 3_000_000 + '"}'
    response = api.generic("POST", f"{API}/toggle", raw, content_type=content_type)
    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
    assert "at most 65,536 bytes" in response.json()["error"]
    assert database_state() == before


def test_a_nul_byte_in_the_query_string_is_a_json_400(api, sim_users):
    response = api.get(f"{API}/sim-users?persona=casual%00")
    assert response.status_code == 400
    assert response.json() == {"success": False, "error": "The request contains a NUL byte."}


@pytest.mark.parametrize("raw", ["", "{}", '{"older_than_hours": 1}'])
def test_cleanup_without_dry_run_deletes_nothing_and_says_what_to_send(api, sim_users, raw):
    # given old synthetic activity
    activity_backfill(hours=3, now=timezone.now() - timedelta(hours=2))
    before = database_state()
    # when cleanup is called without saying whether to delete
    response = api.generic("POST", f"{API}/cleanup", raw, content_type="application/json")
    # then it is refused with the field to send, and nothing is deleted
    assert response.status_code == 400
    assert "dry_run" in response.json()["fields"]
    assert "send true to count" in response.json()["error"]
    assert database_state() == before


def test_run_now_target_message_names_the_bound(api, sim_users):
    response = api.post(f"{API}/run-now", {"target": 6}, format="json")
    assert f"{RULE}; got 6." in response.json()["error"]
    far = api.post(f"{API}/run-now", {"target": 999_999}, format="json")
    assert f"{RULE}; got 999999." in far.json()["error"]  # the same rule far outside it


def test_rate_sum_message_is_per_field(api):
    response = api.post(f"{API}/settings", {"abandon_rate": 0.9, "error_rate": 0.2}, format="json")
    assert response.json()["fields"] == {
        "abandon_rate": ["abandon_rate + error_rate must not exceed 1 (got 0.9 + 0.2)."]
    }


def test_unknown_persona_is_400(api):
    response = api.get(f"{API}/sim-users", {"persona": "wizard"})
    assert response.status_code == 400
    assert "persona" in response.json()["fields"]


def test_run_now_while_paused_is_409_unless_forced(api, sim_users):
    SyntheticSettings.objects.update(enabled=False)
    before = database_state()
    response = api.post(f"{API}/run-now", {"target": 2}, format="json")
    assert response.status_code == 409
    assert "paused" in response.json()["error"]
    assert database_state() == before
    forced = api.post(f"{API}/run-now", {"target": 2, "force": True}, format="json")
    assert forced.status_code == 200
    assert forced.json()["result"]["sessions_created"] == 2


def test_run_now_without_sim_users_is_409(api):
    response = api.post(f"{API}/run-now", {"target": 2}, format="json")
    assert response.status_code == 409
    assert "seed_sim_users" in response.json()["error"]


@pytest.mark.parametrize(
    ("method", "endpoint"),
    [("post", "status"), ("get", "run-now"), ("delete", "settings"), ("put", "toggle"),
     ("patch", "cleanup"), ("post", "sim-users"), ("post", "activity/24")],
)  # fmt: skip
def test_wrong_method_is_405_json(api, method, endpoint):
    response = getattr(api, method)(f"{API}/{endpoint}")
    assert response.status_code == 405
    assert response.json()["success"] is False


def test_unknown_api_path_is_404_json(api):
    response = api.get(f"{API}/nope")
    assert response.status_code == 404
    assert response.json()["success"] is False


# --- cleanup ----------------------------------------------------------------------------------------


def test_cleanup_deletes_exactly_the_old_synthetic_rows(api, sim_users, monkeypatch):
    # given synthetic history from 4 hours ago up to now ...
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)  # the requests below see the same instant
    activity_backfill(hours=4, now=now)
    # ... and real rows, old and new, some in synthetic journeys' minutes
    real_old = [
        JourneySceneEventFactory(created_at=now - timedelta(hours=3)),
        MindblockEventFactory(created_at=now - timedelta(hours=3)),
        JourneySceneEventFactory(created_at=now - timedelta(hours=3), event_payload={"synthetic": False}),
    ]  # fmt: skip
    real_journey = JourneyFactory(
        started_at=now - timedelta(hours=3), ended_at=now - timedelta(hours=3)
    )
    cutoff = now - timedelta(hours=2)
    old_scene = JourneySceneEvent.objects.synthetic().filter(created_at__lt=cutoff)
    old_mindblock = MindblockEvent.objects.synthetic().filter(created_at__lt=cutoff)
    expected = {
        "journey_scene_events": old_scene.count(),
        "mindblock_events": old_mindblock.count(),
    }
    assert expected["journey_scene_events"] > 100
    young_scene = JourneySceneEvent.objects.synthetic().filter(created_at__gte=cutoff).count()
    active_before = run_inputs.active_journey_count()
    # when a dry run, then a real cleanup, asks for rows older than 2 hours
    dry = api.post(f"{API}/cleanup", {"older_than_hours": 2, "dry_run": True}, format="json")
    assert JourneySceneEvent.objects.synthetic().filter(created_at__lt=cutoff).exists()
    real = api.post(f"{API}/cleanup", {"older_than_hours": 2, "dry_run": False}, format="json")
    # then both answer the same counts, and exactly the old synthetic rows are gone
    assert dry.status_code == real.status_code == 200
    dry_counts, real_counts = dry.json()["counts"], real.json()["counts"]
    assert dry.json()["dry_run"] is True and real.json()["dry_run"] is False
    for table in ("journey_scene_events", "mindblock_events"):
        assert dry_counts[table] == real_counts[table] == expected[table]
    assert real_counts["journeys"] == dry_counts["journeys"] > 0
    assert not JourneySceneEvent.objects.synthetic().filter(created_at__lt=cutoff).exists()
    assert not MindblockEvent.objects.synthetic().filter(created_at__lt=cutoff).exists()
    assert JourneySceneEvent.objects.synthetic().count() == young_scene
    assert run_inputs.active_journey_count() == active_before
    for row in real_old:
        row.refresh_from_db()  # raises if it was deleted
    real_journey.refresh_from_db()
    assert not Journey.objects.filter(is_synthetic=True, ended_at__lt=cutoff).exists()


def test_cleanup_default_is_a_week(api):
    body = api.post(f"{API}/cleanup", {"dry_run": True}, format="json").json()
    assert body["older_than_hours"] == 168


# --- throttling ---------------------------------------------------------------------------------------


def test_run_now_bursts_pass_and_a_runaway_loop_is_stopped(api, sim_users):
    statuses = [
        api.post(f"{API}/run-now", {"target": 1}, format="json").status_code for _ in range(20)
    ]
    assert statuses == [200] * 20
    runs = SyntheticRun.objects.count()
    stopped = api.post(f"{API}/run-now", {"target": 1}, format="json")
    assert stopped.status_code == 429
    assert int(stopped["Retry-After"]) > 0
    assert stopped.json()["retry_after"] > 0
    assert "available in" in stopped.json()["error"]
    assert SyntheticRun.objects.count() == runs, "a throttled call generates nothing"
    # reads are not throttled
    assert api.get(f"{API}/status").status_code == 200


def test_throttle_history_lives_in_the_database_shared_by_every_process(api, sim_users):
    from synthetics.models import ThrottleBucket

    api.post(f"{API}/run-now", {"target": 1}, format="json")
    (bucket,) = ThrottleBucket.objects.all()
    assert bucket.key.endswith(":run-now")
    assert len(bucket.history) == 1


# --- schema and docs ----------------------------------------------------------------------------------


def test_schema_describes_every_endpoint(api):
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path, method in [
        ("/api/synthetics/status", "get"),
        ("/api/synthetics/toggle", "post"),
        ("/api/synthetics/settings", "post"),
        ("/api/synthetics/run-now", "post"),
        ("/api/synthetics/activity/{hours}", "get"),
        ("/api/synthetics/cleanup", "post"),
        ("/api/synthetics/sim-users", "get"),
    ]:
        operation = paths[path][method]
        assert "200" in operation["responses"]
        assert "401" in operation["responses"]
        if method == "post":
            assert "requestBody" in operation
    assert schema["components"]["securitySchemes"]


def test_docs_render_offline_from_static_files(client):
    user = StaffUserFactory()
    client.force_login(user)
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert "http://" not in html.replace("http://testserver", "") and "https://" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html


def test_docs_and_schema_need_a_login(client):
    assert client.get("/api/docs/").status_code == 302
    assert APIClient().get("/api/schema/").status_code == 401


def test_the_schema_needs_the_same_read_permission_as_the_api():
    user = UserFactory()
    client = APIClient()
    assert client.get("/api/schema/").status_code == 401
    client.force_authenticate(user)
    assert client.get("/api/schema/").status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_syntheticsettings"))
    user = type(user).objects.get(pk=user.pk)  # a fresh permission cache
    client.force_authenticate(user)
    assert client.get("/api/schema/").status_code == 200


def test_api_token_command_creates_and_rotates():
    from io import StringIO

    from django.core.management import CommandError, call_command

    user = UserFactory(username="ops")
    out = StringIO()
    call_command("api_token", "ops", stdout=out)
    first = out.getvalue().splitlines()[0]
    assert Token.objects.get(user=user).key == first
    out = StringIO()
    call_command("api_token", "ops", "--rotate", stdout=out)
    second = out.getvalue().splitlines()[0]
    assert second != first and Token.objects.get(user=user).key == second
    with pytest.raises(CommandError, match="No user named"):
        call_command("api_token", "nobody")


def test_a_run_that_fails_during_run_now_is_a_json_500_naming_its_ledger_row(
    api, sim_users, monkeypatch
):
    from synthetics.services import runs as runs_module

    def broken(**kwargs):
        raise RuntimeError("disk full (injected)")

    monkeypatch.setattr(runs_module, "run_output_write", broken)
    response = api.post(f"{API}/run-now", {"target": 1}, format="json")
    assert response.status_code == 500
    body = response.json()
    assert body["success"] is False and "disk full" in body["error"]
    assert SyntheticRun.objects.get(id=body["run_id"]).status == "failed"


def test_every_documented_request_example_is_accepted_and_bodies_are_required(api, sim_users):
    # given the schema as a reader gets it now
    schema = api.get("/api/schema/?format=json").json()
    examples = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody")
            if method in {"post", "put", "patch"} and body is not None:
                # then every body the views refuse when empty is marked required
                assert body.get("required") is True, (method, path)
            for media in (body or {}).get("content", {}).values():
                for name, example in media.get("examples", {}).items():
                    examples.append((method, path, name, example["value"]))
    assert any(path.endswith("/incidents") for _, path, _, _ in examples)
    # when each documented example is sent as it stands, then it is accepted (a fixed date once
    # made the incident example a refusal: "starts in the past")
    for method, path, name, value in examples:
        response = getattr(api, method)(path, value, format="json")
        assert response.status_code < 300, (name, path, response.content)
