"""Hostile inputs on every API endpoint, admin change list and management command: refused, never a 500.

One table: each case is a request (or a command line) and the refusal it must get. Whatever the case,
a refused input writes nothing: the settings row, the row counts, the accounts and the tokens are as
they were. Every case is run with old synthetic rows in the tables, so a cleanup or a run that slips
through validation changes the counts and fails the case.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_q.models import Schedule
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from synthetics.models import SimUser, SyntheticSettings, ThrottleBucket, User
from tests.factories import (
    JourneyFactory,
    JourneySceneEventFactory,
    MindblockEventFactory,
    StaffUserFactory,
    SyntheticRunFactory,
    UserFactory,
)
from tests.helpers import database_state

pytestmark = pytest.mark.django_db
API = "/api/synthetics"
BOUNDARY = "BoUnDaRy"
MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
MULTIPART_BODY = (
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="enabled"\r\n\r\n'
    "false\r\n"
    f"--{BOUNDARY}--\r\n"
)


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


# --- the cases ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Http:
    """One request and the status it must get; `field` is a key the error's "fields" must name."""

    method: str
    path: str
    body: str | bytes | None = None
    content_type: str = "application/json"
    status: int = 400
    field: str | None = None
    headers: dict = dataclasses.field(default_factory=dict)
    settings: dict = dataclasses.field(default_factory=dict)
    given: str | None = None

    @property
    def is_api(self) -> bool:
        return self.path.startswith("/api/")


@dataclass(frozen=True)
class Command:
    """One command line and the words its CommandError must contain."""

    name: str
    args: tuple[str, ...]
    message: str
    given: str | None = None


def post(endpoint: str, body, *, status: int = 400, field: str | None = None, given=None):
    """A JSON body as json.dumps writes it."""
    return Http(
        "post", f"{API}/{endpoint}", json.dumps(body), status=status, field=field, given=given
    )


def raw(endpoint: str, text: str | bytes, *, content_type="application/json", status=400, **kw):
    """Bytes as they are, for what json.dumps never writes (NaN, duplicate keys, broken JSON)."""
    return Http("post", f"{API}/{endpoint}", text, content_type=content_type, status=status, **kw)


def get(path: str, *, status: int = 400, field: str | None = None):
    return Http("get", f"{API}/{path}", status=status, field=field)


def admin(path: str, *, status: int):
    return Http("get", f"/admin/synthetics/{path}", status=status)


def cmd(name: str, *args: str, message: str, given: str | None = None):
    return Command(name, tuple(args), message, given=given)


def case(name: str, value) -> pytest.param:
    return pytest.param(value, id=name)


NUMBER_ERROR = "whole number"
RANGE_ERROR = "must be from"
# run-now's one rule, as the API, the admin and the Studio say it (engine.run.manual_target_rule)
RUN_NOW_RULE = "target must be a whole number from 1 to 5 (max_per_run is 5)"

CASES = [
    # --- toggle: a JSON boolean and nothing else ---
    case("toggle-enabled-string-false", post("toggle", {"enabled": "false"}, field="enabled")),
    case("toggle-enabled-int-1", post("toggle", {"enabled": 1}, field="enabled")),
    case("toggle-enabled-int-0", post("toggle", {"enabled": 0}, field="enabled")),
    case("toggle-enabled-null", post("toggle", {"enabled": None}, field="enabled")),
    case("toggle-enabled-array", post("toggle", {"enabled": [False]}, field="enabled")),
    case("toggle-enabled-object", post("toggle", {"enabled": {"value": False}}, field="enabled")),
    case("toggle-enabled-nul", post("toggle", {"enabled": "\x00"}, field="enabled")),
    case("toggle-enabled-fullwidth", post("toggle", {"enabled": "ｆａｌｓｅ"}, field="enabled")),
    case(
        "toggle-enabled-sql",
        post("toggle", {"enabled": "false'; DROP TABLE users; --"}, field="enabled"),
    ),
    case(
        "toggle-script-field-name",
        post(
            "toggle",
            {"enabled": False, "<script>alert(1)</script>": 1},
            field="<script>alert(1)</script>",
        ),
    ),
    case(
        "toggle-duplicate-key-last-invalid",
        raw("toggle", '{"enabled": false, "enabled": "no"}', field="enabled"),
    ),
    case("toggle-empty-body", raw("toggle", "", field="enabled")),
    case("toggle-body-empty-object", post("toggle", {}, field="enabled")),
    case("toggle-body-array", post("toggle", [])),
    case("toggle-body-array-of-object", post("toggle", [{"enabled": False}])),
    case("toggle-body-string", post("toggle", "x")),
    case("toggle-body-number", post("toggle", 1)),
    case("toggle-body-null", post("toggle", None)),
    case("toggle-malformed", raw("toggle", '{"enabled": fals')),
    case("toggle-single-quotes", raw("toggle", "{'enabled': false}")),
    case("toggle-trailing-comma", raw("toggle", '{"enabled": false,}')),
    case("toggle-invalid-utf8", raw("toggle", b'{"enabled": "\xff\xfe"}')),
    case(
        "toggle-text-plain",
        raw("toggle", '{"enabled": false}', content_type="text/plain", status=415),
    ),
    case("toggle-multipart", raw("toggle", MULTIPART_BODY, content_type=MULTIPART, status=415)),
    case(
        "toggle-form-encoded-pairs",
        raw("toggle", "enabled=false", content_type="application/x-www-form-urlencoded"),
    ),
    case(
        "toggle-3mb-body",
        raw("toggle", '{"enabled": false, "pad": "' + "x" * 3_000_000 + '"}', status=413),
    ),
    case("toggle-nested-40", post("toggle", {"enabled": json.loads(_deep(40))})),
    case("toggle-nested-30000", raw("toggle", '{"enabled": ' + _deep(30_000) + "}")),
    case("toggle-nested-100000-over-size-limit", raw("toggle", _deep(100_000), status=413)),
    case(
        "toggle-nested-100000-under-raised-limit",
        Http(
            "post",
            f"{API}/toggle",
            _deep(100_000),
            settings={"SYNTHETICS_API_MAX_BODY_BYTES": 10**6},
        ),
    ),
    case(
        "toggle-nested-100000-form-labelled",
        Http(
            "post",
            f"{API}/toggle",
            _deep(100_000),
            content_type="application/x-www-form-urlencoded",
            settings={"SYNTHETICS_API_MAX_BODY_BYTES": 10**6},
        ),
    ),
    case(
        "toggle-content-length-not-a-number",
        Http("post", f"{API}/toggle", '{"enabled": false}', headers={"CONTENT_LENGTH": "12abc"}),
    ),
    case("toggle-get", Http("get", f"{API}/toggle", status=405)),
    case("toggle-put", Http("put", f"{API}/toggle", '{"enabled": false}', status=405)),
    # --- settings: strict JSON numbers in range, at least one known field ---
    case("settings-empty-object", post("settings", {})),
    case("settings-empty-body", raw("settings", "")),
    case("settings-body-array", post("settings", [{"sessions_per_min": 3}])),
    case("settings-body-number", post("settings", 3)),
    case(
        "settings-sessions-1001",
        post("settings", {"sessions_per_min": 100_001}, field="sessions_per_min"),
    ),
    case(
        "settings-sessions-minus-1",
        post("settings", {"sessions_per_min": -1}, field="sessions_per_min"),
    ),
    case(
        "settings-sessions-10e30",
        post("settings", {"sessions_per_min": 10**30}, field="sessions_per_min"),
    ),
    case(
        "settings-sessions-2e53-plus-1",
        post("settings", {"sessions_per_min": 2**53 + 1}, field="sessions_per_min"),
    ),
    case(
        "settings-sessions-1e400",
        raw("settings", '{"sessions_per_min": 1e400}', field="sessions_per_min"),
    ),
    case(
        "settings-sessions-string",
        post("settings", {"sessions_per_min": "5"}, field="sessions_per_min"),
    ),
    case(
        "settings-sessions-bool",
        post("settings", {"sessions_per_min": True}, field="sessions_per_min"),
    ),
    case(
        "settings-sessions-fraction",
        post("settings", {"sessions_per_min": 2.5}, field="sessions_per_min"),
    ),
    case(
        "settings-sessions-object",
        post("settings", {"sessions_per_min": {"$gt": 0}}, field="sessions_per_min"),
    ),
    case(
        "settings-max-per-run-100001",
        post("settings", {"max_per_run": 100_001}, field="max_per_run"),
    ),
    case("settings-max-per-run-null", post("settings", {"max_per_run": None}, field="max_per_run")),
    case(
        "settings-error-rate-above-1",
        post("settings", {"error_rate": 1.0000001}, field="error_rate"),
    ),
    case(
        "settings-abandon-rate-negative",
        post("settings", {"abandon_rate": -1e-9}, field="abandon_rate"),
    ),
    case(
        "settings-rates-sum-above-1",
        post("settings", {"error_rate": 0.5, "abandon_rate": 0.5000001}, field="abandon_rate"),
    ),
    case("settings-error-rate-nan", raw("settings", '{"error_rate": NaN}')),
    case("settings-error-rate-infinity", raw("settings", '{"error_rate": Infinity}')),
    case("settings-error-rate-minus-infinity", raw("settings", '{"abandon_rate": -Infinity}')),
    case("settings-error-rate-string", post("settings", {"error_rate": "0.1"}, field="error_rate")),
    case("settings-error-rate-array", post("settings", {"error_rate": [0.1]}, field="error_rate")),
    case("settings-enabled-yes", post("settings", {"enabled": "yes"}, field="enabled")),
    case("settings-unknown-field", post("settings", {"colour": "blue"}, field="colour")),
    case(
        "settings-valid-plus-sql-field",
        post(
            "settings",
            {"sessions_per_min": 3, "'; DROP TABLE users; --": 1},
            field="'; DROP TABLE users; --",
        ),
    ),
    case(
        "settings-duplicate-key-last-invalid",
        raw("settings", '{"max_per_run": 5, "max_per_run": 100001}', field="max_per_run"),
    ),
    case("settings-delete", Http("delete", f"{API}/settings", status=405)),
    # --- run-now: 1..max_per_run (5), refused while paused or with an empty pool ---
    case("run-now-empty-object", post("run-now", {}, field="target")),
    case("run-now-empty-body", raw("run-now", "", field="target")),
    case("run-now-target-0", post("run-now", {"target": 0}, field="target")),
    case("run-now-target-negative-zero", raw("run-now", '{"target": -0}', field="target")),
    case("run-now-target-negative-zero-float", raw("run-now", '{"target": -0.0}', field="target")),
    case("run-now-target-minus-1", post("run-now", {"target": -1}, field="target")),
    case("run-now-target-max-per-run-plus-1", post("run-now", {"target": 6})),
    case("run-now-target-1001", post("run-now", {"target": 1001}, field="target")),
    case("run-now-target-10e30", post("run-now", {"target": 10**30}, field="target")),
    case("run-now-target-1e30-float", raw("run-now", '{"target": 1e30}', field="target")),
    case("run-now-target-fraction", post("run-now", {"target": 2.5}, field="target")),
    case("run-now-target-string", post("run-now", {"target": "3"}, field="target")),
    case(
        "run-now-target-sql",
        post("run-now", {"target": "1; DELETE FROM synthetic_runs"}, field="target"),
    ),
    case("run-now-target-bool", post("run-now", {"target": True}, field="target")),
    case("run-now-target-null", post("run-now", {"target": None}, field="target")),
    case("run-now-target-array", post("run-now", {"target": [3]}, field="target")),
    case("run-now-target-nan", raw("run-now", '{"target": NaN}')),
    case("run-now-target-infinity", raw("run-now", '{"target": Infinity}')),
    case("run-now-force-string", post("run-now", {"target": 1, "force": "yes"}, field="force")),
    case("run-now-force-int", post("run-now", {"target": 1, "force": 1}, field="force")),
    case("run-now-unknown-field", post("run-now", {"target": 1, "user_id": 1}, field="user_id")),
    case("run-now-body-string", post("run-now", "3")),
    case("run-now-body-null", post("run-now", None)),
    case(
        "run-now-text-plain", raw("run-now", '{"target": 1}', content_type="text/plain", status=415)
    ),
    case("run-now-3mb-body", raw("run-now", " " * 3_000_000 + '{"target": 1}', status=413)),
    case("run-now-while-paused", post("run-now", {"target": 1}, status=409, given="paused")),
    case(
        "run-now-paused-force-false",
        post("run-now", {"target": 1, "force": False}, status=409, given="paused"),
    ),
    case("run-now-without-sim-users", post("run-now", {"target": 1}, status=409, given="no-pool")),
    case("run-now-get", Http("get", f"{API}/run-now", status=405)),
    # --- activity/<hours>: ASCII digits 1..720, no sign, space or leading zero ---
    case("activity-0", get("activity/0", field="hours")),
    case("activity-721", get("activity/721", field="hours")),
    case("activity-minus-1", get("activity/-1", field="hours")),
    case("activity-plus-24", get("activity/+24", field="hours")),
    case("activity-leading-zero", get("activity/0024", field="hours")),
    case("activity-leading-space", get("activity/%2024", field="hours")),
    case("activity-trailing-space", get("activity/24%20", field="hours")),
    case("activity-fullwidth", get("activity/%EF%BC%92%EF%BC%94", field="hours")),
    case("activity-arabic-indic", get("activity/%D9%A2%D9%A4", field="hours")),
    case("activity-decimal", get("activity/24.0", field="hours")),
    case("activity-exponent", get("activity/1e2", field="hours")),
    case("activity-hex", get("activity/0x18", field="hours")),
    case("activity-20-digits", get("activity/99999999999999999999", field="hours")),
    case("activity-script", get("activity/%3Cscript%3E", field="hours")),
    case("activity-nul", get("activity/%00")),
    case("activity-dot-dot", get("activity/..%2F..%2Fstatus", status=404)),
    case("activity-missing", get("activity/", status=404)),
    case("activity-trailing-slash", get("activity/24/", status=404)),
    case("activity-post", Http("post", f"{API}/activity/24", "{}", status=405)),
    # --- cleanup: dry_run is required, older_than_hours 1..87600 ---
    case("cleanup-empty-body", raw("cleanup", "", field="dry_run")),
    case("cleanup-empty-object", post("cleanup", {}, field="dry_run")),
    case(
        "cleanup-hours-without-dry-run", post("cleanup", {"older_than_hours": 1}, field="dry_run")
    ),
    case("cleanup-dry-run-string", post("cleanup", {"dry_run": "false"}, field="dry_run")),
    case("cleanup-dry-run-0", post("cleanup", {"dry_run": 0}, field="dry_run")),
    case("cleanup-dry-run-null", post("cleanup", {"dry_run": None}, field="dry_run")),
    case(
        "cleanup-hours-0",
        post("cleanup", {"dry_run": False, "older_than_hours": 0}, field="older_than_hours"),
    ),
    case(
        "cleanup-hours-negative-zero",
        raw("cleanup", '{"dry_run": false, "older_than_hours": -0}', field="older_than_hours"),
    ),
    case(
        "cleanup-hours-minus-1",
        post("cleanup", {"dry_run": False, "older_than_hours": -1}, field="older_than_hours"),
    ),
    case(
        "cleanup-hours-87601",
        post("cleanup", {"dry_run": False, "older_than_hours": 87601}, field="older_than_hours"),
    ),
    case(
        "cleanup-hours-10e30",
        post("cleanup", {"dry_run": False, "older_than_hours": 10**30}, field="older_than_hours"),
    ),
    case(
        "cleanup-hours-string",
        post("cleanup", {"dry_run": False, "older_than_hours": "1"}, field="older_than_hours"),
    ),
    case(
        "cleanup-hours-fraction",
        post("cleanup", {"dry_run": False, "older_than_hours": 1.5}, field="older_than_hours"),
    ),
    case(
        "cleanup-hours-bool",
        post("cleanup", {"dry_run": False, "older_than_hours": True}, field="older_than_hours"),
    ),
    case("cleanup-hours-nan", raw("cleanup", '{"dry_run": false, "older_than_hours": NaN}')),
    case(
        "cleanup-unknown-tables",
        post("cleanup", {"dry_run": False, "tables": ["users"]}, field="tables"),
    ),
    case(
        "cleanup-unknown-where", post("cleanup", {"dry_run": False, "where": "1=1"}, field="where")
    ),
    case(
        "cleanup-duplicate-key-last-invalid",
        raw("cleanup", '{"dry_run": false, "dry_run": "false"}', field="dry_run"),
    ),
    case("cleanup-body-array", post("cleanup", [{"dry_run": False}])),
    case("cleanup-multipart", raw("cleanup", MULTIPART_BODY, content_type=MULTIPART, status=415)),
    case("cleanup-get", Http("get", f"{API}/cleanup", status=405)),
    # --- sim-users: persona from the list, page_size 1..500, an existing page ---
    case("sim-users-page-0", get("sim-users?page=0", status=404)),
    case("sim-users-page-minus-1", get("sim-users?page=-1", status=404)),
    case("sim-users-page-abc", get("sim-users?page=abc", status=404)),
    case("sim-users-page-exponent", get("sim-users?page=1e3", status=404)),
    case("sim-users-page-fraction", get("sim-users?page=1.5", status=404)),
    case("sim-users-page-beyond-last", get("sim-users?page=99999", status=404)),
    case("sim-users-page-20-digits", get("sim-users?page=99999999999999999999", status=404)),
    case("sim-users-page-size-0", get("sim-users?page_size=0", field="page_size")),
    case("sim-users-page-size-501", get("sim-users?page_size=501", field="page_size")),
    case("sim-users-page-size-minus-1", get("sim-users?page_size=-1", field="page_size")),
    case("sim-users-page-size-abc", get("sim-users?page_size=abc", field="page_size")),
    case("sim-users-page-size-empty", get("sim-users?page_size=", field="page_size")),
    case("sim-users-page-size-10e30", get(f"sim-users?page_size={10**30}", field="page_size")),
    case("sim-users-persona-unknown", get("sim-users?persona=wizard", field="persona")),
    case("sim-users-persona-empty", get("sim-users?persona=", field="persona")),
    case("sim-users-persona-uppercase", get("sim-users?persona=CASUAL", field="persona")),
    case(
        "sim-users-persona-sql",
        get("sim-users?persona=casual%27%20OR%20%271%27%3D%271", field="persona"),
    ),
    case("sim-users-persona-script", get("sim-users?persona=%3Cscript%3E", field="persona")),
    case(
        "sim-users-persona-repeated-last-unknown",
        get("sim-users?persona=casual&persona=wizard", field="persona"),
    ),
    case("sim-users-persona-nul", get("sim-users?persona=casual%00")),
    case("sim-users-nul-in-key", get("sim-users?per%00sona=casual")),
    case("sim-users-post", Http("post", f"{API}/sim-users", "{}", status=405)),
    # --- status and unknown paths ---
    case("status-post", Http("post", f"{API}/status", "{}", status=405)),
    case("status-nul-in-query", get("status?x=%00")),
    case("status-trailing-slash", get("status/", status=404)),
    case("unknown-endpoint", get("users", status=404)),
    # --- admin change lists: 400 (text) or the admin's own ?e=1 redirect, never a 500 ---
    case("admin-sim-user-persona-nul", admin("simuser/?persona=casual%00", status=400)),
    case(
        "admin-scene-events-year-20-digits",
        admin("journeysceneevent/?created_at__year=99999999999999999999", status=400),
    ),
    case("admin-scene-events-year-0", admin("journeysceneevent/?created_at__year=0", status=302)),
    case(
        "admin-scene-events-after-9999-12",
        admin("journeysceneevent/?created_at__year=9999&created_at__month=12", status=400),
    ),
    case(
        "admin-scene-events-month-13",
        admin("journeysceneevent/?created_at__year=2026&created_at__month=13", status=302),
    ),
    case(
        "admin-mindblock-events-day-32",
        admin(
            "mindblockevent/?created_at__year=2026&created_at__month=1&created_at__day=32",
            status=302,
        ),
    ),
    case(
        "admin-runs-year-20-digits",
        admin("syntheticrun/?started_at__year=99999999999999999999", status=400),
    ),
    # --- seed_sim_users ---
    case("seed-count-minus-1", cmd("seed_sim_users", "--count", "-1", message=RANGE_ERROR)),
    case("seed-count-max-plus-1", cmd("seed_sim_users", "--count", "1000001", message=RANGE_ERROR)),
    case("seed-count-10e30", cmd("seed_sim_users", "--count", str(10**30), message=RANGE_ERROR)),
    case("seed-count-abc", cmd("seed_sim_users", "--count", "abc", message=NUMBER_ERROR)),
    case("seed-count-exponent", cmd("seed_sim_users", "--count", "1e3", message=NUMBER_ERROR)),
    case("seed-count-fraction", cmd("seed_sim_users", "--count", "2.5", message=NUMBER_ERROR)),
    case("seed-count-empty", cmd("seed_sim_users", "--count", "", message=NUMBER_ERROR)),
    case(
        "seed-count-missing-value",
        cmd("seed_sim_users", "--count", message="expected one argument"),
    ),
    case("seed-seed-minus-1", cmd("seed_sim_users", "--seed", "-1", message=RANGE_ERROR)),
    case("seed-seed-2-63", cmd("seed_sim_users", "--seed", str(2**63), message=RANGE_ERROR)),
    case(
        "seed-unknown-flag", cmd("seed_sim_users", "--delete-all", message="unrecognized arguments")
    ),
    case("seed-extra-positional", cmd("seed_sim_users", "50", message="unrecognized arguments")),
    # --- backfill_sim_users ---
    case(
        "backfill-users-seed-minus-1",
        cmd("backfill_sim_users", "--seed", "-1", message=RANGE_ERROR),
    ),
    case(
        "backfill-users-seed-abc", cmd("backfill_sim_users", "--seed", "abc", message=NUMBER_ERROR)
    ),
    case(
        "backfill-users-seed-2-63",
        cmd("backfill_sim_users", "--seed", str(2**63), message=RANGE_ERROR),
    ),
    case(
        "backfill-users-unknown-flag",
        cmd("backfill_sim_users", "--count", "5", message="unrecognized arguments"),
    ),
    # --- run_synthetics ---
    case("run-target-0", cmd("run_synthetics", "--target", "0", message=RUN_NOW_RULE)),
    case("run-target-minus-1", cmd("run_synthetics", "--target", "-1", message=RUN_NOW_RULE)),
    case("run-target-1001", cmd("run_synthetics", "--target", "1001", message=RUN_NOW_RULE)),
    case(
        "run-target-max-per-run-plus-1",
        cmd("run_synthetics", "--target", "6", message="max_per_run"),
    ),
    case("run-target-abc", cmd("run_synthetics", "--target", "abc", message=NUMBER_ERROR)),
    case("run-target-fraction", cmd("run_synthetics", "--target", "2.5", message=NUMBER_ERROR)),
    case(
        "run-target-while-paused",
        cmd("run_synthetics", "--target", "1", message="paused", given="paused"),
    ),
    case("run-now-words", cmd("run_synthetics", "--now", "tomorrow", message="ISO-8601")),
    case("run-now-empty", cmd("run_synthetics", "--now", "", message="ISO-8601")),
    case(
        "run-now-naive",
        cmd("run_synthetics", "--now", "2026-01-09T19:15:00", message="no time zone"),
    ),
    case(
        "run-now-month-13",
        cmd("run_synthetics", "--now", "2026-13-09T19:15:00Z", message="ISO-8601"),
    ),
    case(
        "run-now-in-the-future",
        cmd("run_synthetics", "--now", "2999-01-01T00:00:00Z", message="future"),
    ),
    case(
        "run-now-year-1",
        cmd(
            "run_synthetics",
            "--target",
            "1",
            "--now",
            "0001-01-01T00:00:00Z",
            message="before 2000-01-01",
        ),
    ),
    case(
        "run-scheduled-now-year-1",
        cmd("run_synthetics", "--now", "0001-01-01T00:05:00Z", message="before 2000-01-01"),
    ),
    case(
        "run-now-sql",
        cmd("run_synthetics", "--now", "2026-01-09'; DROP TABLE users; --", message="ISO-8601"),
    ),
    case(
        "run-unknown-flag",
        cmd("run_synthetics", "--target=1", "--dry-run", message="unrecognized arguments"),
    ),
    # --- backfill_activity ---
    case("backfill-hours-missing", cmd("backfill_activity", message="--hours")),
    case("backfill-hours-0", cmd("backfill_activity", "--hours", "0", message=RANGE_ERROR)),
    case("backfill-hours-8785", cmd("backfill_activity", "--hours", "8785", message=RANGE_ERROR)),
    case("backfill-hours-minus-1", cmd("backfill_activity", "--hours", "-1", message=RANGE_ERROR)),
    case(
        "backfill-hours-10e30",
        cmd("backfill_activity", "--hours", str(10**30), message=RANGE_ERROR),
    ),
    case("backfill-hours-abc", cmd("backfill_activity", "--hours", "abc", message=NUMBER_ERROR)),
    case(
        "backfill-seed-minus-1",
        cmd("backfill_activity", "--hours", "1", "--seed", "-1", message=RANGE_ERROR),
    ),
    case(
        "backfill-seed-abc",
        cmd("backfill_activity", "--hours", "1", "--seed", "x", message=NUMBER_ERROR),
    ),
    # --- api_token ---
    case("token-username-missing", cmd("api_token", message="username")),
    case("token-unknown-user", cmd("api_token", "nobody", message="No user named")),
    case("token-synthetic-user", cmd("api_token", "sim000001", message="synthetic")),
    case(
        "token-synthetic-user-rotate",
        cmd("api_token", "sim000001", "--rotate", message="synthetic"),
    ),
    case(
        "token-inactive-user", cmd("api_token", "former", message="inactive", given="inactive-user")
    ),
    case("token-sql-username", cmd("api_token", "' OR '1'='1", message="No user named")),
    case("token-nul-username", cmd("api_token", "admin\x00", message="No user named")),
    case("token-fullwidth-username", cmd("api_token", "ｏｐｓ", message="No user named")),
    case("token-unknown-flag", cmd("api_token", "ops", "--all", message="unrecognized arguments")),
    # --- bootstrap ---
    case("bootstrap-sim-users-abc", cmd("bootstrap", "--sim-users", "abc", message=NUMBER_ERROR)),
    case(
        "bootstrap-history-hours-abc",
        cmd("bootstrap", "--history-hours", "1.5", message=NUMBER_ERROR),
    ),
    case(
        "bootstrap-sim-users-minus-1",
        cmd("bootstrap", "--sim-users", "-1", message=RANGE_ERROR, given="no-pool"),
    ),
    case(
        "bootstrap-sim-users-2000000",
        cmd("bootstrap", "--sim-users", "2000000", message=RANGE_ERROR, given="no-pool"),
    ),
    case(
        "bootstrap-history-hours-8785",
        cmd("bootstrap", "--history-hours", "8785", message=RANGE_ERROR, given="no-history"),
    ),
    case(
        "bootstrap-history-hours-8785-empty-install",
        cmd(
            "bootstrap",
            "--sim-users",
            "3",
            "--history-hours",
            "8785",
            message=RANGE_ERROR,
            given="empty-install",
        ),
    ),
    case(
        "bootstrap-history-hours-8785-with-history",
        cmd("bootstrap", "--history-hours", "8785", message=RANGE_ERROR),
    ),
]


# --- the test ------------------------------------------------------------------------------------------


def everything() -> tuple:
    """database_state() plus what a command could write: accounts, sim users, tokens, schedules."""
    return (
        *database_state(),
        tuple(User.objects.order_by("id").values_list("id", "username", "is_active", "password")),
        SimUser.objects.count(),
        tuple(Token.objects.order_by("key").values_list("key", "user_id")),
        tuple(Schedule.objects.order_by("id").values_list("id", "name", "func", "next_run")),
    )


def _old_rows_a_slipped_cleanup_would_delete() -> None:
    """Synthetic rows older than any cleanup cutoff, and a real row beside them."""
    old = timezone.now() - timedelta(days=366 * 11)
    run = SyntheticRunFactory(started_at=old)
    journey = JourneyFactory(
        is_synthetic=True, run=run, started_at=old, ended_at=old + timedelta(minutes=1)
    )
    tag = {"synthetic": True, "run_id": run.id}
    JourneySceneEventFactory(journey=journey, user=journey.user, created_at=old, event_payload=tag)
    MindblockEventFactory(journey=journey, user=journey.user, created_at=old, event_payload=tag)
    JourneySceneEventFactory(created_at=old)  # a real row


GIVEN: dict[str, Callable] = {
    "paused": lambda request, monkeypatch: SyntheticSettings.objects.update(enabled=False),
    "inactive-user": lambda request, monkeypatch: UserFactory(username="former", is_active=False),
}


def _client(item: Http, settings) -> APIClient:
    """A superuser's client: a Bearer token for the API, a logged-in session for the admin."""
    for name, value in item.settings.items():
        setattr(settings, name, value)
    client = APIClient()
    if item.is_api:
        token = Token.objects.create(user=StaffUserFactory())
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    else:
        client.force_login(StaffUserFactory())
    return client


@pytest.mark.parametrize("item", CASES)
def test_hostile_input_is_refused_and_changes_nothing(request, monkeypatch, settings, item):
    # given a superuser (or a command line), sim users unless the case needs an empty pool, and old
    # synthetic rows that any run or cleanup slipping through validation would change
    if item.given not in ("no-pool", "empty-install"):
        request.getfixturevalue("sim_users")
    if item.given not in ("no-history", "empty-install"):
        _old_rows_a_slipped_cleanup_would_delete()
    if item.given in GIVEN:
        GIVEN[item.given](request, monkeypatch)
    client = _client(item, settings) if isinstance(item, Http) else None
    ThrottleBucket.objects.all().delete()  # refusals here are validation's, never the throttle's
    before = everything()
    # when
    if isinstance(item, Command):
        with pytest.raises(CommandError) as refusal:
            call_command(item.name, *item.args)
    else:
        response = client.generic(
            item.method.upper(),
            item.path,
            item.body or "",
            content_type=item.content_type,
            **item.headers,
        )
    # then
    if isinstance(item, Command):
        assert item.message in str(refusal.value), refusal.value
    else:
        assert response.status_code == item.status, response.content[:500]
        if item.is_api:
            assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
            body = response.json()
            assert body["success"] is False
            assert isinstance(body["error"], str) and body["error"].strip()
            if item.field is not None:
                assert item.field in body["fields"], body
        else:
            assert response["Content-Type"].startswith("text/"), response["Content-Type"]
    assert everything() == before, "a refused input changes nothing"


def test_the_table_covers_every_endpoint_and_command_with_at_least_100_cases():
    items = [param.values[0] for param in CASES]
    paths = {
        item.path.split("?")[0].removeprefix(f"{API}/").split("/")[0]
        for item in items
        if isinstance(item, Http)
    }
    commands = {item.name for item in items if isinstance(item, Command)}
    assert len(items) >= 100
    assert {"toggle", "settings", "run-now", "activity", "cleanup", "sim-users", "status"} <= paths
    assert commands == {
        "seed_sim_users",
        "backfill_sim_users",
        "run_synthetics",
        "backfill_activity",
        "api_token",
        "bootstrap",
    }
