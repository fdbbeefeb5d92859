"""Scenarios as files: export and import round-trip to nothing changed, an edit changes exactly
what was edited, every error is named by its path and nothing is written, the shipped scenarios
import, and the command and the admin do the same."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from synthetics.models import (
    SETTING_RANGES,
    Incident,
    JourneyTemplate,
    MindblockType,
    RhythmProfile,
    Scene,
    SyntheticSettings,
)
from synthetics.services import run_manual
from synthetics.services.incidents import incident_create
from synthetics.services.scenarios import (
    SCHEMA,
    ScenarioInvalid,
    scenario_dumps,
    scenario_export,
    scenario_import,
    scenario_loads,
)
from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 1, 9, 19, 17, 30, tzinfo=UTC)
SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"


def configuration() -> dict:
    """Every row of the configuration, every column (updated_at included: a row saved again
    without a change would show)."""
    return {
        model.__name__: sorted(model.objects.values_list())
        for model in (
            SyntheticSettings,
            JourneyTemplate,
            Scene,
            MindblockType,
            RhythmProfile,
            Incident,
        )
    }


def test_importing_what_was_exported_changes_nothing():
    incident_create(
        starts_at=NOW.replace(second=0) + timedelta(minutes=3),
        minutes=10,
        label="drill",
        error_rate=0.5,
        template="focus-session",
        now=NOW,
    )
    before = configuration()
    for fmt in ("json", "yaml"):
        document = scenario_loads(scenario_dumps(scenario_export(), fmt=fmt))
        assert scenario_import(document, now=NOW, dry_run=True).changes == []
        assert scenario_import(document, now=NOW).changes == []
        assert configuration() == before


def test_an_edited_scenario_changes_exactly_what_was_edited():
    # given an export, edited in three places
    document = yaml.safe_load(scenario_dumps(scenario_export(), fmt="yaml"))
    document["settings"]["sessions_per_min"] = 7
    focus = next(j for j in document["journeys"] if j["slug"] == "focus-session")
    focus["scenes"][1]["dwell_median_seconds"] = 99.5
    document["mindblocks"][0]["weight"] = 3.25
    before = configuration()
    # when it is imported
    plan = scenario_import(document, now=NOW)
    # then those three values, and nothing else, changed
    assert len(plan.changes) == 3, plan.changes
    after = configuration()
    changed = {
        name: [row for row in after[name] if row not in before[name]]
        for name in after
        if after[name] != before[name]
    }
    assert set(changed) == {"SyntheticSettings", "Scene", "MindblockType"}
    assert SyntheticSettings.objects.get().sessions_per_min == 7
    scene = Scene.objects.get(template__slug="focus-session", position=2)
    assert scene.dwell_median_seconds == 99.5
    assert [len(rows) for rows in changed.values()] == [1, 1, 1]


def test_every_error_is_named_by_its_path_and_nothing_is_written():
    document = scenario_export()
    bad = copy.deepcopy(document)
    bad["settings"]["error_rate"] = 1.5
    bad["journeys"][0]["scenes"][1]["dwell_median_seconds"] = -1
    bad["rhythms"][0]["hourly"] = [1.0] * 23
    bad["mindblocks"][0]["colour"] = "red"
    bad["incidents"] = [{"label": "x", "starts_at": "2026-01-09T19:20:00Z", "minutes": 5}]
    before = configuration()
    with pytest.raises(ScenarioInvalid) as invalid:
        scenario_import(bad, now=NOW)
    paths = [error.split(":")[0] for error in invalid.value.errors]
    assert len(paths) == 5, invalid.value.errors  # one per problem
    assert set(paths) == {
        "$.settings.error_rate",
        "$.journeys[0].scenes[1].dwell_median_seconds",
        "$.rhythms[0].hourly",
        "$.mindblocks[0]",
        "$.incidents[0]",
    }
    assert configuration() == before


def test_the_models_rules_are_checked_too_and_the_import_is_all_or_nothing(sim_users):
    from synthetics.models import JourneySceneEvent

    run_manual(target=5)  # events now name scenes
    named = JourneySceneEvent.objects.select_related("scene__template").first().scene
    document = scenario_export()
    document["settings"]["sessions_per_min"] = 9  # a good change, beside the bad ones
    document["settings"]["abandon_rate"] = 0.97  # with error_rate 0.05: over 1
    document["personas"][0]["share"] = 0.5
    for journey in document["journeys"]:
        if journey["slug"] == named.template.slug:  # drops a scene events name
            journey["scenes"] = [s for s in journey["scenes"] if s["slug"] != named.slug]
        else:
            other = journey
    other["scenes"].append(dict(other["scenes"][0]))  # another template's scene twice
    before = configuration()
    with pytest.raises(ScenarioInvalid) as invalid:
        scenario_import(document, now=NOW)
    errors = "\n".join(invalid.value.errors)
    assert "$.settings.abandon_rate: abandon_rate + error_rate must not exceed 1" in errors
    assert "$.personas: personas are built into the engine" in errors
    assert (
        f"scene {named.slug!r} of {named.template.slug!r} is missing, but events name it" in errors
    )
    assert f"slug: {other['scenes'][0]['slug']!r} is listed twice" in errors
    assert configuration() == before  # sessions_per_min 9 was not written either


def test_scenes_can_be_reordered_added_and_removed_while_no_event_names_them():
    document = scenario_export()
    evening = next(j for j in document["journeys"] if j["slug"] == "evening-reflection")
    first, second, third = evening["scenes"]
    evening["scenes"] = [
        third,
        {**first, "slug": "breathe-in", "name": "Breathe in"},
        first,
    ]  # gratitude removed, breathe-in added, the order changed
    plan = scenario_import(document, now=NOW)
    assert "- scene evening-reflection/gratitude" in plan.changes
    assert "+ scene evening-reflection/breathe-in" in plan.changes
    assert list(
        Scene.objects.filter(template__slug="evening-reflection")
        .order_by("position")
        .values_list("slug", "position")
    ) == [("tomorrow-plan", 1), ("breathe-in", 2), ("day-review", 3)]
    # and that is now the export, which imports to nothing
    assert scenario_import(scenario_export(), now=NOW).changes == []


def test_what_the_file_leaves_out_is_deactivated_or_deleted():
    document = scenario_export()
    document["journeys"] = [j for j in document["journeys"] if j["slug"] != "first-steps"]
    document["mindblocks"] = document["mindblocks"][1:]
    gone = document["rhythms"].pop()["slug"]
    plan = scenario_import(document, now=NOW)
    assert "~ journey first-steps: not in the scenario, deactivated" in plan.changes
    assert not JourneyTemplate.objects.get(slug="first-steps").is_active
    assert MindblockType.objects.filter(is_active=False).count() == 1
    assert not RhythmProfile.objects.filter(slug=gone).exists()


def test_incidents_are_created_from_a_file_and_never_edited_by_one():
    document = scenario_export()
    document["incidents"] = [
        {
            "label": "surge",
            "starts_at": "2026-01-09T18:00:00Z",  # in the past: for a backfill
            "minutes": 30,
            "sessions_multiplier": 3,
        }
    ]
    plan = scenario_import(document, now=NOW)
    assert plan.changes == ["+ incident 'surge' from 2026-01-09T18:00:00Z (30 min)"]
    assert scenario_import(document, now=NOW).changes == []  # the same one: matched
    document["incidents"][0]["sessions_multiplier"] = 4
    with pytest.raises(ScenarioInvalid, match="never edits an incident"):
        scenario_import(document, now=NOW)
    assert Incident.objects.get().sessions_multiplier == 3


def test_the_schema_says_what_the_models_say():
    properties = SCHEMA["properties"]["settings"]["properties"]
    for name, (low, high) in SETTING_RANGES.items():
        assert (properties[name]["minimum"], properties[name]["maximum"]) == (low, high), name
    assert set(SCHEMA["properties"]["settings"]["required"]) == {*SETTING_RANGES, "enabled"}


@pytest.mark.parametrize("name", ["b2c-evening-peaks.yaml", "b2b-office-hours.yaml"])
def test_the_shipped_scenarios_import_and_round_trip(name):
    document = scenario_loads((SCENARIOS / name).read_text())
    plan = scenario_import(document, now=NOW)
    assert plan.changes
    assert scenario_import(scenario_export(), now=NOW).changes == []
    exported = scenario_export()
    assert exported["settings"] == document["settings"]
    assert [r["slug"] for r in exported["rhythms"]] == sorted(
        (r["slug"] for r in document["rhythms"]),
        key=lambda slug: next(
            (r.get("persona", ""), r["slug"]) for r in document["rhythms"] if r["slug"] == slug
        ),
    )


# --- the command and the admin --------------------------------------------------------------------


def test_the_command_exports_and_imports_with_a_dry_run(tmp_path, capsys):
    target = tmp_path / "scenario.yaml"
    call_command("scenario", "export", "-o", str(target), "--format", "yaml")
    document = yaml.safe_load(target.read_text())
    document["settings"]["max_per_run"] = 11
    target.write_text(yaml.safe_dump(document))
    capsys.readouterr()
    call_command("scenario", "import", str(target), "--dry-run")
    out = capsys.readouterr().out
    assert "settings.max_per_run: 5 -> 11" in out and "would change 1 thing" in out
    assert SyntheticSettings.objects.get().max_per_run == 5
    call_command("scenario", "import", str(target))
    assert SyntheticSettings.objects.get().max_per_run == 11
    target.write_text("settings: [")
    with pytest.raises(CommandError, match="neither JSON nor YAML"):
        call_command("scenario", "import", str(target))
    with pytest.raises(CommandError, match="cannot read"):
        call_command("scenario", "import", str(tmp_path / "missing.json"))
    capsys.readouterr()
    call_command("scenario", "schema")
    assert json.loads(capsys.readouterr().out)["title"] == "Synthetics scenario"


def test_the_admin_downloads_and_uploads_a_scenario(client):
    client.force_login(StaffUserFactory())
    download = client.get(reverse("admin:synthetics_scenario_export") + "?format=yaml")
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="synthetics-scenario.yaml"'
    document = yaml.safe_load(download.content)
    document["settings"]["sessions_per_min"] = 4
    upload = SimpleUploadedFile("s.yaml", yaml.safe_dump(document).encode())
    url = reverse("admin:synthetics_scenario_import")
    response = client.post(url, {"file": upload, "dry_run": "1"}, follow=True)
    assert "ettings.sessions_per_min: 2 -&gt; 4" in response.content.decode()  # (capitalised)
    assert SyntheticSettings.objects.get().sessions_per_min == 2
    upload = SimpleUploadedFile("s.yaml", yaml.safe_dump(document).encode())
    client.post(url, {"file": upload}, follow=True)
    assert SyntheticSettings.objects.get().sessions_per_min == 4
    broken = SimpleUploadedFile("s.json", b'{"scenario": 2}')
    response = client.post(url, {"file": broken}, follow=True)
    assert response.status_code == 200 and "Nothing was imported." in response.content.decode()
    # a file with only settings: one banner, one line per object naming all it misses
    only_settings = SimpleUploadedFile("s.yaml", b"settings: {sessions_per_min: 4}")
    response = client.post(url, {"file": only_settings}, follow=True)
    banners = [str(message) for message in response.context["messages"]]
    assert len(banners) == 1, banners
    assert "The file has 2 problems:" in banners[0]
    assert "$: missing scenario, journeys, mindblocks, rhythms, personas, incidents" in banners[0]
    assert "$.settings: missing enabled, max_per_run," in banners[0]
    assert SyntheticSettings.objects.get().sessions_per_min == 4


# --- what the schema alone would let through (review) ------------------------------------------------


def test_numbers_that_would_break_every_run_are_refused_by_their_path():
    text = scenario_dumps(scenario_export(), fmt="yaml")
    document = yaml.safe_load(text)
    document["journeys"][0]["popularity"] = float("nan")
    document["journeys"][1]["scenes"][0]["dwell_median_seconds"] = float("inf")
    document["mindblocks"][0]["weight"] = 10**400
    before = configuration()
    with pytest.raises(ScenarioInvalid) as invalid:
        scenario_import(document, now=NOW)
    errors = "\n".join(invalid.value.errors)
    assert "$.journeys[0].popularity: must be a finite number" in errors
    assert "$.journeys[1].scenes[0].dwell_median_seconds: must be a finite number" in errors
    assert "$.mindblocks[0].weight: must be a finite number" in errors
    for bad in ("x: .nan\n", '{"a": NaN}', '{"a": 1, "a": 2}', "a: 1\na: 2\n"):
        with pytest.raises(ScenarioInvalid, match="twice|not a number|finite"):
            scenario_import(scenario_loads(bad), now=NOW)
    with pytest.raises(ScenarioInvalid, match="aliases"):
        scenario_loads("a: &x [1, 2]\nb: *x\n")
    assert configuration() == before


def test_a_start_the_pattern_takes_but_the_calendar_does_not_is_named():
    document = scenario_export()
    document["incidents"] = [
        {"label": "x", "starts_at": "2026-13-45T25:61Z", "minutes": 5, "error_rate": 0.1}
    ]
    with pytest.raises(ScenarioInvalid, match=r"\$\.incidents\[0\]\.starts_at: .* not a date"):
        scenario_import(document, now=NOW)


def test_a_scenario_with_nothing_runnable_is_refused():
    document = scenario_export()
    for journey in document["journeys"]:
        journey["active"] = False
    with pytest.raises(ScenarioInvalid, match="no journey is active"):
        scenario_import(document, now=NOW)


def test_settings_that_an_upcoming_incident_would_push_past_1_are_refused():
    incident_create(
        starts_at=NOW.replace(second=0) + timedelta(minutes=3),
        minutes=10,
        label="leaving",
        abandon_rate=0.6,
        now=NOW,
    )
    document = scenario_export()
    document["settings"]["error_rate"] = 0.7
    with pytest.raises(ScenarioInvalid, match=r"\$\.settings\.error_rate: incident .* exceed 1"):
        scenario_import(document, now=NOW)


def test_a_scene_journeys_in_progress_will_visit_is_not_removed(sim_users):
    from synthetics.models import Journey

    run_manual(target=5)
    journey = Journey.objects.filter(status="active").select_related("template").first()
    assert journey is not None
    document = scenario_export()
    entry = next(j for j in document["journeys"] if j["slug"] == journey.template.slug)
    entry["scenes"] = entry["scenes"][:-1]
    with pytest.raises(ScenarioInvalid, match="journeys in progress will"):
        scenario_import(document, now=NOW)


def test_two_incidents_with_one_label_and_window_round_trip():
    for template in ("focus-session", "morning-checkin"):
        incident_create(
            starts_at=NOW.replace(second=0) + timedelta(minutes=3),
            minutes=10,
            label=" drill ",
            error_rate=0.5,
            template=template,
            now=NOW,
        )
    document = scenario_loads(scenario_dumps(scenario_export(), fmt="yaml"))
    assert scenario_import(document, now=NOW).changes == []
    assert scenario_import(document, now=NOW).changes == []


def test_an_upload_while_the_database_is_locked_says_so(client, monkeypatch):
    from django.db import OperationalError, connection

    if connection.vendor != "sqlite":
        pytest.skip("the single-writer lock is SQLite's")

    from synthetics.admin import settings as synthetics_admin

    def locked(*args, **kwargs):
        raise OperationalError("database is locked")

    monkeypatch.setattr(synthetics_admin, "scenario_import", locked)
    client.force_login(StaffUserFactory())
    upload = SimpleUploadedFile("s.json", scenario_dumps(scenario_export()).encode())
    response = client.post(
        reverse("admin:synthetics_scenario_import"), {"file": upload}, follow=True
    )
    assert response.status_code == 200
    assert (
        "The database is busy with another write; nothing was imported."
        in response.content.decode()
    )
