"""Issue 21, defect 7 and the leniencies: every input the API and `manage.py incidents` take is read
strictly, and a refused one is a 400 naming the field (a usage error for the command), nothing written.

Refused everywhere: control characters (NUL, tab, newline, DEL, line separators), surrounding spaces
on slugs and texts (refused, not trimmed), a float where a whole number is asked for (5.0, 5e0), and
in query strings, paths and command lines anything but ASCII digits for a whole number (int() would
take "２４", "٢٤", "+24", " 24" and "2_4"), and a time without an offset, in any form but
YYYY-MM-DDTHH:MM[:SS[.ffffff]] followed by Z or ±HH:MM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone as django_timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from synthetics.models import Incident
from tests.factories import StaffUserFactory
from tests.helpers import database_state

pytestmark = pytest.mark.django_db
API = "/api/synthetics"
ROOT = Path(__file__).resolve().parent.parent
PACIFIC = timezone(timedelta(hours=-8))


@pytest.fixture
def api():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=StaffUserFactory())}")
    return client


def _tomorrow() -> datetime:
    """A start the service takes: a whole minute, a day from now, in UTC."""
    return (django_timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0)


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _incident_body(**fields) -> dict:
    return {
        "starts_at": _z(_tomorrow()),
        "minutes": 10,
        "label": "drill",
        "error_rate": 0.5,
        **fields,
    }


def _refused(response, field: str) -> None:
    assert response.status_code == 400, (response.status_code, response.content)
    body = response.json()
    assert body["success"] is False
    assert field in body["fields"], body
    assert field in body["error"]


# --- defect 7: `incidents add` prints the time it stored -----------------------------------------


def test_incidents_add_prints_an_offset_start_in_utc_as_stored_and_as_list_prints_it(capsys):
    # given: a start written in Pacific time, 12:00-08:00 (20:00 UTC)
    starts = _tomorrow().replace(hour=20, minute=0)
    if starts < django_timezone.now() + timedelta(hours=1):
        starts += timedelta(days=1)
    pacific = starts.astimezone(PACIFIC).isoformat()
    assert pacific.endswith("T12:00:00-08:00")
    # when
    call_command(
        "incidents", "add", "--starts-at", pacific, "--minutes", "10", "--label", "pacific",
        "--error-rate", "0.5",
    )  # fmt: skip
    added = capsys.readouterr().out
    call_command("incidents", "list")
    listed = capsys.readouterr().out
    # then: stored at 20:00 UTC, and both commands print 20:00 UTC
    assert Incident.objects.get().starts_at == starts
    shown = f"{starts:%Y-%m-%d} 20:00 UTC"
    assert shown in added, added
    assert "12:00 UTC" not in added
    assert shown in listed, listed


def test_the_api_answers_an_offset_start_in_utc_as_stored(api):
    starts = _tomorrow()
    created = api.post(
        f"{API}/incidents",
        _incident_body(starts_at=starts.astimezone(PACIFIC).isoformat()),
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["incident"]["starts_at"] == _z(starts)
    assert Incident.objects.get().starts_at == starts


@pytest.mark.parametrize(
    "written",
    [
        "{Z}",  # seconds and Z
        "{Z:-3}Z",  # no seconds
        "{Z:-1}.000Z",  # milliseconds, as the Studio's toISOString() writes
        "{Z:-1}.000000Z",
        "{offset}",  # another offset
        "{Z:-1}+00:00",
        "{Z:-1}-00:00",
    ],
)
def test_the_api_takes_every_plain_iso_8601_time_with_an_offset(api, written):
    starts = _tomorrow()
    z = _z(starts)
    text = written.replace("{Z}", z).replace("{Z:-3}", z[:-4]).replace("{Z:-1}", z[:-1])
    text = text.replace(
        "{offset}", starts.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat()
    )
    created = api.post(f"{API}/incidents", _incident_body(starts_at=text), format="json")
    assert created.status_code == 201, (text, created.content)
    assert Incident.objects.get().starts_at == starts


# --- the incident's body: each value refused, naming its field ----------------------------------------


def _starts_at(shape: str) -> str:
    """Tomorrow's start, written in `shape` (a format the strict reader refuses)."""
    starts = _tomorrow()
    z = _z(starts)
    return {
        "nul": z + "\x00",
        "newline": z + "\n",
        "tab": "\t" + z,
        "space-before": " " + z,
        "space-after": z + " ",
        "naive": z[:-1],
        "space-separator": z.replace("T", " "),
        "lowercase-t": z.replace("T", "t"),
        "basic": starts.strftime("%Y%m%dT%H%M%SZ"),
        "basic-offset": z[:-1] + "+0000",
        "offset-seconds": z[:-1] + "+00:00:00",
        "nanoseconds": z[:-1] + ".000000000Z",
        "week-date": starts.strftime("%G-W%V-%uT%H:%MZ"),
        "hours-only": starts.strftime("%Y-%m-%dT%HZ"),
        "fullwidth": z.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
        "arabic-indic": z.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
        "date-only": starts.strftime("%Y-%m-%d"),
        "empty": "",
        "offset-minute-60": z[:-1] + "-00:60",
        "offset-minute-99": z[:-1] + "-00:99",
        "offset-hour-24": z[:-1] + "+24:00",
    }[shape]


INCIDENT_REFUSALS = [
    # starts_at: one shape only, with an explicit offset
    *(
        pytest.param("starts_at", shape, id=f"starts_at-{shape}")
        for shape in (
            "offset-minute-60",
            "offset-minute-99",
            "offset-hour-24",
            "nul",
            "newline",
            "tab",
            "space-before",
            "space-after",
            "naive",
            "space-separator",
            "lowercase-t",
            "basic",
            "basic-offset",
            "offset-seconds",
            "nanoseconds",
            "week-date",
            "hours-only",
            "fullwidth",
            "arabic-indic",
            "date-only",
            "empty",
        )  # fmt: skip
    ),
    # minutes: a JSON integer, not a float that happens to be whole
    pytest.param("minutes", "5.0", id="minutes-5.0"),
    pytest.param("minutes", "5e0", id="minutes-5e0"),
    pytest.param("minutes", "1E1", id="minutes-1E1"),
    pytest.param("minutes", "-0.0", id="minutes-negative-zero-float"),
    pytest.param("minutes", '"5"', id="minutes-string"),
    pytest.param("minutes", '"５"', id="minutes-fullwidth-string"),
    pytest.param("minutes", "true", id="minutes-true"),
    pytest.param("minutes", "1e400", id="minutes-1e400"),
    # rates: a JSON number, finite, whatever its size
    pytest.param("error_rate", "1" + "0" * 400, id="error_rate-10e400-integer"),
    pytest.param("error_rate", '"0.5"', id="error_rate-string"),
    pytest.param("error_rate", "false", id="error_rate-false"),
    pytest.param("sessions_multiplier", "-" + "9" * 400, id="sessions_multiplier-huge-negative"),
    # label: text without control characters or surrounding spaces
    pytest.param("label", '"drill\\u0000"', id="label-nul"),
    pytest.param("label", '"dr\\u0001ill"', id="label-control-1"),
    pytest.param("label", '"drill\\u007f"', id="label-del"),
    pytest.param("label", '"dr\\u0085ill"', id="label-c1-next-line"),
    pytest.param("label", '"dr\\nill"', id="label-newline"),
    pytest.param("label", '"dr\\till"', id="label-tab"),
    pytest.param("label", '"dr\\u2028ill"', id="label-line-separator"),
    pytest.param("label", '"\\ud800"', id="label-lone-surrogate"),
    pytest.param("label", '" drill "', id="label-surrounding-spaces"),
    pytest.param("label", '"drill\\u3000"', id="label-ideographic-space"),
    pytest.param("label", '"   "', id="label-blank"),
    pytest.param("label", "7", id="label-number"),
    # slugs: a slug exactly, never trimmed
    pytest.param("template", '" focus-session "', id="template-surrounding-spaces"),
    pytest.param("template", '"focus-session\\u0000"', id="template-nul"),
    pytest.param("template", '"focus-session\\t"', id="template-tab"),
    pytest.param("template", '"focus-session\\n"', id="template-newline"),
    pytest.param("template", '"\\uff46ocus-session"', id="template-fullwidth-letter"),
    pytest.param("template", '"focus session"', id="template-inner-space"),
    pytest.param("template", '""', id="template-empty"),
    pytest.param("template", "null", id="template-null"),
    pytest.param("scene", '" reflection"', id="scene-leading-space"),
    pytest.param("scene", '"reflection\\u0000"', id="scene-nul"),
    pytest.param("scene", '"reflection\\u00a0"', id="scene-no-break-space"),
]


@pytest.mark.parametrize(("field", "raw"), INCIDENT_REFUSALS)
def test_a_hostile_incident_value_is_a_400_naming_its_field_and_writes_nothing(api, field, raw):
    # given: a body that is valid but for one value, written as raw JSON
    body = _incident_body()
    if field == "starts_at":
        body["starts_at"] = _starts_at(raw)
        text = json.dumps(body)
    else:
        body.pop(field, None)
        text = json.dumps(body)[:-1] + f', "{field}": {raw}}}'
    before = database_state()
    # when
    response = api.post(f"{API}/incidents", text, content_type="application/json")
    # then
    _refused(response, field)
    assert database_state() == before


def test_the_valid_incident_body_of_these_cases_is_taken(api):
    """The control: the base body the refusals above spoil is itself accepted."""
    body = _incident_body(template="focus-session")
    response = api.post(f"{API}/incidents", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    assert Incident.objects.get().label == "drill"


# --- the other bodies: a float is not a whole number -------------------------------------------------


WRITE_REFUSALS = [
    pytest.param("settings", '{"sessions_per_min": 5.0}', "sessions_per_min", id="settings-5.0"),
    pytest.param("settings", '{"max_per_run": 5e0}', "max_per_run", id="settings-5e0"),
    pytest.param("settings", '{"signups_per_day": 0.0}', "signups_per_day", id="settings-0.0"),
    pytest.param(
        "settings", '{"error_rate": 1' + "0" * 400 + "}", "error_rate", id="settings-10e400"
    ),
    pytest.param("settings", '{"rhythm_strength": true}', "rhythm_strength", id="settings-true"),
    pytest.param("run-now", '{"target": 1.0}', "target", id="run-now-1.0"),
    pytest.param("run-now", '{"target": 1e0}', "target", id="run-now-1e0"),
    pytest.param(
        "cleanup",
        '{"dry_run": true, "older_than_hours": 24.0}',
        "older_than_hours",
        id="cleanup-24.0",
    ),
    pytest.param(
        "cleanup",
        '{"dry_run": true, "older_than_hours": 2.4e1}',
        "older_than_hours",
        id="cleanup-2.4e1",
    ),
    pytest.param("toggle", '{"enabled": 0.0}', "enabled", id="toggle-0.0"),
]


@pytest.mark.parametrize(("path", "raw", "field"), WRITE_REFUSALS)
def test_a_float_for_a_whole_number_is_a_400_naming_its_field(api, path, raw, field):
    before = database_state()
    response = api.post(f"{API}/{path}", raw, content_type="application/json")
    _refused(response, field)
    assert database_state() == before


def test_whole_numbers_written_as_json_integers_are_still_taken(api):
    assert api.post(f"{API}/settings", {"sessions_per_min": 5}, format="json").status_code == 200
    response = api.post(f"{API}/cleanup", {"dry_run": True, "older_than_hours": 24}, format="json")
    assert response.status_code == 200, response.content


# --- query strings: one strict reader of whole numbers, everywhere --------------------------------------

HOSTILE_NUMBERS = {
    "fullwidth": "２４",
    "arabic-indic": "٢٤",
    "devanagari": "२४",
    "superscript": "²",
    "plus": "+24",
    "minus": "-24",
    "leading-space": " 24",
    "trailing-space": "24 ",
    "trailing-tab": "24\t",
    "trailing-newline": "24\n",
    "control-1": "24\x01",
    "leading-zero": "024",
    "decimal": "24.0",
    "exponent": "2e1",
    "underscore": "2_4",
    "hex": "0x18",
    "empty": "",
    "20-digits": "9" * 20,
}


def _query(name: str, value: str) -> str:
    return f"{name}={quote(value)}"


@pytest.mark.parametrize("shape", HOSTILE_NUMBERS)
@pytest.mark.parametrize("path", ["incidents", "expectations"])
def test_a_hostile_hours_in_a_query_string_is_a_400_naming_hours(api, path, shape):
    response = api.get(f"{API}/{path}?{_query('hours', HOSTILE_NUMBERS[shape])}")
    _refused(response, "hours")


@pytest.mark.parametrize("shape", [shape for shape in HOSTILE_NUMBERS if shape != "empty"])
def test_a_hostile_hours_in_the_activity_path_is_a_400_naming_hours(api, shape):
    # (an empty one is no route: activity/ is a 404)
    response = api.get(f"{API}/activity/{quote(HOSTILE_NUMBERS[shape], safe='')}")
    _refused(response, "hours")


@pytest.mark.parametrize("shape", HOSTILE_NUMBERS)
def test_a_hostile_page_size_is_a_400_naming_page_size(api, sim_users, shape):
    response = api.get(f"{API}/sim-users?{_query('page_size', HOSTILE_NUMBERS[shape])}")
    _refused(response, "page_size")


@pytest.mark.parametrize("shape", HOSTILE_NUMBERS)
def test_a_hostile_page_is_no_such_page(api, sim_users, shape):
    """A page that is not written 1, 2, ... (or `last`) is no page: 404, as one past the last is
    (40 sim users a page each: int() would read most of these as page 24)."""
    value = HOSTILE_NUMBERS[shape]
    response = api.get(f"{API}/sim-users?page_size=1&{_query('page', value)}")
    assert response.status_code == 404, (value, response.content)
    assert response.json()["success"] is False and "page" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("incidents", "hours=24&hours=24", "hours"),
        ("incidents", "state=over&state=over", "state"),
        ("expectations", "hours=1&hours=2", "hours"),
        ("sim-users", "page_size=50&page_size=50", "page_size"),
        ("sim-users", "persona=casual&persona=casual", "persona"),
    ],
)
def test_a_query_parameter_given_twice_is_a_400_naming_it(api, sim_users, path, query, field):
    _refused(api.get(f"{API}/{path}?{query}"), field)


@pytest.mark.parametrize(
    "state",
    ["upcoming ", " upcoming", "upcoming\x01", "upcoming\t", "UPCOMING", "ｕｐｃｏｍｉｎｇ", ""],
)
def test_a_hostile_state_is_a_400_naming_state(api, state):
    _refused(api.get(f"{API}/incidents?{_query('state', state)}"), "state")


@pytest.mark.parametrize("persona", ["casual ", " casual", "casual\x1f", "ｃａｓｕａｌ"])
def test_a_hostile_persona_is_a_400_naming_persona(api, persona):
    _refused(api.get(f"{API}/sim-users?{_query('persona', persona)}"), "persona")


def test_plain_query_values_are_still_taken(api, sim_users):
    assert api.get(f"{API}/incidents?hours=24&state=upcoming").status_code == 200
    assert api.get(f"{API}/incidents?hours=720").status_code == 200
    assert api.get(f"{API}/expectations?hours=168").status_code == 200
    assert api.get(f"{API}/activity/720").status_code == 200
    page = api.get(f"{API}/sim-users?persona=casual&page=1&page_size=500")
    assert page.status_code == 200, page.content
    assert api.get(f"{API}/sim-users?page=last&page_size=7").status_code == 200
    # other parameters (a cache-buster, DRF's format) are left alone, as before
    assert api.get(f"{API}/incidents?_=1700000000000").status_code == 200


@pytest.mark.parametrize(
    ("path", "query", "field", "message"),
    [
        ("incidents", "hours=721", "hours", "from 1 to 720"),
        ("incidents", "hours=0", "hours", "from 1 to 720"),
        ("expectations", "hours=169", "hours", "from 1 to 168"),
        ("sim-users", "page_size=501", "page_size", "from 1 to 500"),
    ],
)
def test_a_whole_number_out_of_range_says_the_range(api, path, query, field, message):
    response = api.get(f"{API}/{path}?{query}")
    _refused(response, field)
    assert message in " ".join(response.json()["fields"][field])


# --- `manage.py incidents`: the same rules, a usage error for each ---------------------------------


def _add_args(**overrides: str) -> list[str]:
    args = {
        "--starts-at": _z(_tomorrow()),
        "--minutes": "10",
        "--label": "drill",
        "--error-rate": "0.5",
    }
    args.update(overrides)
    return ["add", *(item for pair in args.items() for item in pair)]


COMMAND_REFUSALS = [
    *(
        pytest.param("--starts-at", shape, id=f"starts-at-{shape}")
        for shape in (
            "nul",
            "newline",
            "space-after",
            "naive",
            "space-separator",
            "basic",
            "basic-offset",
            "offset-seconds",
            "nanoseconds",
            "week-date",
            "fullwidth",
            "empty",
        )  # fmt: skip
    ),
    pytest.param("--minutes", "１０", id="minutes-fullwidth"),
    pytest.param("--minutes", "١٠", id="minutes-arabic-indic"),
    pytest.param("--minutes", "+10", id="minutes-plus"),
    pytest.param("--minutes", " 10", id="minutes-leading-space"),
    pytest.param("--minutes", "10\n", id="minutes-trailing-newline"),
    pytest.param("--minutes", "1_0", id="minutes-underscore"),
    pytest.param("--minutes", "010", id="minutes-leading-zero"),
    pytest.param("--minutes", "10.0", id="minutes-decimal"),
    pytest.param("--minutes", "10\x00", id="minutes-nul"),
    pytest.param("--error-rate", "０.５", id="error-rate-fullwidth"),
    pytest.param("--error-rate", "0_5", id="error-rate-underscore"),
    pytest.param("--error-rate", " 0.5", id="error-rate-leading-space"),
    pytest.param("--error-rate", "+0.5", id="error-rate-plus"),
    pytest.param("--error-rate", ".5", id="error-rate-no-leading-digit"),
    pytest.param("--error-rate", "nan", id="error-rate-nan"),
    pytest.param("--error-rate", "infinity", id="error-rate-infinity"),
    pytest.param("--error-rate", "0.5\x00", id="error-rate-nul"),
    pytest.param("--sessions-multiplier", "1" + "0" * 400, id="multiplier-10e400"),
    pytest.param("--label", "drill\x00", id="label-nul"),
    pytest.param("--label", "dr\x07ill", id="label-bell"),
    pytest.param("--label", "dr\nill", id="label-newline"),
    pytest.param("--label", " drill ", id="label-surrounding-spaces"),
    pytest.param("--label", "", id="label-empty"),
    pytest.param("--template", " focus-session", id="template-leading-space"),
    pytest.param("--template", "focus-session\x00", id="template-nul"),
    pytest.param("--template", "focus-session\t", id="template-tab"),
    pytest.param("--scene", "reflection ", id="scene-trailing-space"),
    pytest.param("--scene", "ｒeflection", id="scene-fullwidth-letter"),
]


@pytest.mark.parametrize(("option", "value"), COMMAND_REFUSALS)
def test_incidents_add_refuses_a_hostile_argument_with_a_usage_error(option, value):
    if option == "--starts-at":
        value = _starts_at(value)
    with pytest.raises(CommandError, match=f"argument {option}"):
        call_command("incidents", *_add_args(**{option: value}))
    assert not Incident.objects.exists()


@pytest.mark.parametrize("value", ["１", "+1", " 1", "1.0", "01", "1\x00", "0"])
def test_incidents_cancel_refuses_a_hostile_id_with_a_usage_error(value):
    with pytest.raises(CommandError, match="argument incident_id"):
        call_command("incidents", "cancel", value)


def test_incidents_add_takes_the_plain_forms(capsys):
    call_command(
        "incidents",
        *_add_args(**{"--error-rate": "5e-1", "--template": "focus-session", "--label": "ok"}),
    )
    assert "incidents: added" in capsys.readouterr().out
    assert Incident.objects.get().error_rate == 0.5


@pytest.mark.once  # a subprocess on its own SQLite: the same on every database
def test_a_hostile_argument_from_the_shell_is_a_usage_error_not_a_traceback(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["SYNTHETICS_LOCAL_DIR"] = str(tmp_path)  # a throwaway SQLite file, never the user's
    result = subprocess.run(
        [sys.executable, "manage.py", "incidents", *_add_args(**{"--minutes": "１０"})],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result
    assert "usage:" in result.stderr and "argument --minutes" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("delete", "incidents/99999999999999999999"),
        ("get", "cleanup/99999999999999999999"),
        ("delete", "incidents/9223372036854775808"),
        ("get", "cleanup/9223372036854775808"),
    ],
)
def test_an_id_beyond_bigint_in_a_path_is_no_such_row(api, method, path):
    response = getattr(api, method)(f"{API}/{path}")
    assert response.status_code == 404, response.content
    assert response.json()["success"] is False


# --- the other commands' whole numbers and times ---------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["seed_sim_users", "--count", "５"],
        ["seed_sim_users", "--count", " 5"],
        ["seed_sim_users", "--count", "+5"],
        ["seed_sim_users", "--count", "5_0"],
        ["seed_sim_users", "--count", "05"],
        ["seed_sim_users", "--count", "5.0"],
        ["backfill_activity", "--hours", "１"],
        ["cleanup_activity", "--older-than-hours", "٣", "--dry-run"],
        ["run_synthetics", "--now", "2026-01-09T19:15:00Z\x00"],
        ["run_synthetics", "--now", "２026-01-09T19:15:00Z"],
        ["run_synthetics", "--now", "2026-01-09 19:15:00Z"],
    ],
)
def test_every_command_reads_whole_numbers_and_times_strictly(argv, db):
    # given a value int() or parse_datetime would take, written otherwise (other digits, a space,
    # a sign, an underscore, a leading zero, a NUL, a space for the T)
    before = database_state()
    # when the command is called with it, then it is a usage error naming the argument
    with pytest.raises(CommandError, match=r"argument --"):
        call_command(*argv)
    # and nothing ran
    assert database_state() == before


def test_a_field_given_twice_in_a_json_body_is_a_400(api):
    # given an incident body that gives `minutes` twice
    body = json.dumps(_incident_body())[:-1] + ', "minutes": 6}'
    before = database_state()
    # when it is posted
    response = api.post(f"{API}/incidents", body, content_type="application/json")
    # then it is refused as a whole, naming the key, and nothing is written
    _refused(response, "minutes")
    assert "given twice" in response.json()["error"]
    assert database_state() == before


# --- a query parameter given twice ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "name", "good", "bad"),
    [
        ("incidents", "hours", "1", "abc"),
        ("incidents", "state", "upcoming", "x"),
        ("expectations", "hours", "1", "abc"),
        ("sim-users", "page_size", "5", "x"),
        ("sim-users", "page", "1", "x"),
        ("sim-users", "persona", "casual", "nobody"),
    ],
)
def test_a_repeated_query_parameter_is_a_400_whatever_the_order(api, path, name, good, bad):
    # a parameter given twice is read neither as its first nor its last value: refused, naming it
    for query in (f"{name}={bad}&{name}={good}", f"{name}={good}&{name}={bad}", f"{name}={good}&{name}={good}"):  # fmt: skip
        response = api.get(f"/api/synthetics/{path}?{query}")
        assert response.status_code == 400, (query, response.content)
        body = response.json()
        assert body["fields"] == {name: ["Given more than once: give it once."]}, body
