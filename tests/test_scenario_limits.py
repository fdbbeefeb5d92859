"""Hostile scenario files (issue 21, defects 4 and 5): whatever the nesting, the encoding, the size or
the number of items, the command answers with one line naming the file and the place, the admin with
a message, and nothing is written; a file at the limits is accepted, and importing it asks the
database a number of questions that does not grow with its rows."""

from __future__ import annotations

import copy
import json
import random
import re
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from synthetics.models import (
    Incident,
    JourneyTemplate,
    MindblockType,
    RhythmProfile,
    Scene,
    SyntheticSettings,
)
from synthetics.services.scenarios import (
    SCENARIO_MAX_BYTES,
    SCENARIO_MAX_DEPTH,
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


def configuration() -> dict:
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


def command_refusal(tmp_path, data: bytes, name: str = "hostile.json") -> str:
    """The command's refusal of a file holding `data`, checked to be one line naming the file."""
    target = tmp_path / name
    target.write_bytes(data)
    with pytest.raises(CommandError) as refused:
        call_command("scenario", "import", str(target), "--dry-run")
    message = str(refused.value)
    assert "\n" not in message, message
    assert message.startswith(f"scenario: {target}: "), message
    return message


def admin_refusal(client, data: bytes, name: str = "hostile.json") -> str:
    """The admin's answer to an upload of `data`: a redirect with messages, nothing imported."""
    client.force_login(StaffUserFactory())
    upload = SimpleUploadedFile(name, data)
    url = reverse("admin:synthetics_scenario_import")
    response = client.post(url, {"file": upload, "dry_run": "1"}, follow=True)
    assert response.status_code == 200
    text = response.content.decode()
    assert "Nothing was imported." in text
    return text


def yaml_bytes(document: dict, **options) -> bytes:
    """yaml.safe_dump, with libyaml's writer when there is one (big files are written quickly)."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(document, Dumper=dumper, allow_unicode=True, **options).encode()


def limit(*path: str) -> int:
    """A `maxItems` of the published schema, by the property names leading to the array."""
    node = SCHEMA
    for name in path:
        node = node["properties"][name]
        if name != path[-1]:
            node = node["items"]
    return node["maxItems"]


def with_mindblocks(document: dict, count: int) -> dict:
    document = copy.deepcopy(document)
    document["mindblocks"] += [
        {"slug": f"m{index:05d}", "name": f"m{index:05d}", "weight": 1.0, "active": True}
        for index in range(count - len(document["mindblocks"]))
    ]
    return document


def at_the_limits(document: dict) -> dict:
    """`document` with every list of the schema filled to its maxItems with new, valid rows."""
    document = copy.deepcopy(document)
    scenes = limit("journeys", "scenes")
    document["journeys"] = [
        {
            "slug": f"journey-{j:03d}",
            "name": f"Journey {j}",
            "popularity": 1.0,
            "active": True,
            "scenes": [
                {
                    "slug": f"scene-{s:02d}",
                    "name": f"Scene {s}",
                    "dwell_median_seconds": 30.0,
                    "mindblock_rate": 0.2,
                    "dropoff_weight": 1.0,
                    "error_weight": 1.0,
                }
                for s in range(scenes)
            ],
        }
        for j in range(limit("journeys"))
    ]
    document = with_mindblocks(document, limit("mindblocks"))
    profile = document["rhythms"][0]
    document["rhythms"] = [
        {
            **copy.deepcopy(profile),
            "slug": f"rhythm-{r:03d}",
            "name": f"Rhythm {r}",
            "persona": f"persona-{r}",
        }
        for r in range(limit("rhythms"))
    ]
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=60)
    document["incidents"] = [
        {
            "label": f"drill {i}",
            "starts_at": (start + timedelta(hours=i)).isoformat().replace("+00:00", "Z"),
            "minutes": 10,
            "error_rate": 0.1,
        }
        for i in range(limit("incidents"))
    ]
    return document


# --- the schema ----------------------------------------------------------------------------------


def test_the_schema_bounds_every_list_and_every_text():
    unbounded = []

    def visit(node: dict, where: str) -> None:
        if node.get("type") == "array" and "maxItems" not in node:
            unbounded.append(f"{where}: no maxItems")
        if node.get("type") == "string" and "maxLength" not in node:
            unbounded.append(f"{where}: no maxLength")
        closed = node.get("additionalProperties") is False or "maxProperties" in node
        if node.get("type") == "object" and not closed:
            unbounded.append(f"{where}: an open map without maxProperties")
        for name, child in node.get("properties", {}).items():
            visit(child, f"{where}.{name}")
        if isinstance(node.get("items"), dict):
            visit(node["items"], f"{where}[]")

    visit(SCHEMA, "$")
    assert unbounded == []
    # and what it cannot say, it says in words, as the code has it
    assert f"at most {SCENARIO_MAX_BYTES // 2**20} MiB" in SCHEMA["description"]
    assert f"nested at most {SCENARIO_MAX_DEPTH} deep" in SCHEMA["description"]


# --- defect 4: nesting and encodings ---------------------------------------------------------------

NESTED = {
    "JSON: [ x 100,000": b"[" * 100_000,
    'JSON: {"a": x 5,000': b'{"a":' * 5_000,
    "JSON: complete, 50 deep": b'{"a":' * 50 + b"1" + b"}" * 50,
    "YAML flow: {a: x 5,000": b"{a: " * 5_000,
    "YAML block: - x 50,000": b"- " * 50_000 + b"x\n",
    "YAML block: indented maps": b"".join(b" " * d + b"a:\n" for d in range(300))
    + b" " * 300
    + b"1\n",
}


@pytest.mark.parametrize("case", NESTED)
def test_deep_nesting_is_one_line_from_the_command(tmp_path, case):
    before = configuration()
    message = command_refusal(tmp_path, NESTED[case])
    assert f"nested deeper than {SCENARIO_MAX_DEPTH} levels" in message
    assert "$[" in message or "$.a" in message  # where it goes too deep
    assert configuration() == before


@pytest.mark.parametrize("case", NESTED)
def test_deep_nesting_is_a_message_in_the_admin(client, case):
    before = configuration()
    text = admin_refusal(client, NESTED[case])
    assert f"nested deeper than {SCENARIO_MAX_DEPTH} levels" in text
    assert configuration() == before


def export_with_accents() -> str:
    document = scenario_export()
    document["journeys"][0]["name"] = "Réflexion du soir — “calme”"
    return scenario_dumps(document)


ENCODINGS = {
    "UTF-16 with its BOM": lambda text: text.encode("utf-16"),
    "UTF-16 LE, no BOM": lambda text: text.encode("utf-16-le"),
    "UTF-16 BE, no BOM": lambda text: text.encode("utf-16-be"),
    "UTF-32 with its BOM": lambda text: text.encode("utf-32"),
    "latin-1": lambda text: (
        text.replace("—", "-").replace("“", '"').replace("”", '"').encode("latin-1")
    ),
    "cp1252": lambda text: text.encode("cp1252"),
    "binary garbage": lambda text: random.Random(21).randbytes(4096),
    "NUL bytes in ASCII": lambda text: text.encode()[:100] + b"\x00" * 50 + text.encode()[100:],
    "UTF-8 cut inside a character": lambda text: text.encode()[: text.encode().index(b"\xc3") + 1],
}


@pytest.mark.parametrize("case", ENCODINGS)
def test_a_file_that_is_not_utf8_is_one_line_from_the_command(tmp_path, case):
    data = ENCODINGS[case](export_with_accents())
    before = configuration()
    message = command_refusal(tmp_path, data)
    assert "UTF-8" in message
    assert configuration() == before


@pytest.mark.parametrize("case", ENCODINGS)
def test_a_file_that_is_not_utf8_is_a_message_in_the_admin(client, case):
    data = ENCODINGS[case](export_with_accents())
    before = configuration()
    assert "UTF-8" in admin_refusal(client, data)
    assert configuration() == before


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_utf8_with_a_byte_order_mark_is_read(tmp_path, capsys, fmt):
    target = tmp_path / f"s.{fmt}"
    target.write_bytes(b"\xef\xbb\xbf" + scenario_dumps(scenario_export(), fmt=fmt).encode())
    call_command("scenario", "import", str(target), "--dry-run")
    assert "nothing to change" in capsys.readouterr().out


# --- defect 5: sizes, item counts and the work they cause -----------------------------------------


def test_the_issues_14000_mindblock_types_are_refused_by_their_path(tmp_path, client):
    # given the export plus 14,000 mindblock types, flow-style YAML (the issue's 722 KB file)
    document = with_mindblocks(scenario_export(), 14_000 + len(scenario_export()["mindblocks"]))
    data = yaml_bytes(document, sort_keys=False, default_flow_style=True, width=100)
    assert len(data) < SCENARIO_MAX_BYTES
    before = configuration()
    # when it is imported, then both say where and what the limit is, and nothing changed
    message = command_refusal(tmp_path, data, "big.yaml")
    assert f"$.mindblocks: {len(document['mindblocks']):,} items" in message
    assert f"at most {limit('mindblocks'):,}" in message
    assert f"at most {limit('mindblocks'):,}" in admin_refusal(client, data, "big.yaml")
    assert configuration() == before


@pytest.mark.parametrize(
    "path", [("journeys",), ("journeys", "scenes"), ("mindblocks",), ("rhythms",), ("incidents",)]
)
def test_one_item_over_a_lists_limit_is_refused_by_its_path(path):
    document = at_the_limits(scenario_export())
    owner = document
    for name in path[:-1]:
        owner = owner[name][0]
    owner[path[-1]].append(copy.deepcopy(owner[path[-1]][0]))
    with pytest.raises(ScenarioInvalid) as invalid:
        scenario_import(document, now=NOW, dry_run=True)
    where = "$." + ".".join(f"{name}[0]" for name in path[:-1]) + ("." if path[:-1] else "")
    assert invalid.value.errors == [
        f"{where}{path[-1]}: {limit(*path) + 1:,} items; at most {limit(*path):,}"
    ]


def test_a_file_over_the_size_limit_is_one_line_from_the_command_and_a_message_in_the_admin(
    tmp_path, client
):
    data = b'{"scenario": 1, "name": "' + b"x" * SCENARIO_MAX_BYTES + b'"}'
    message = command_refusal(tmp_path, data)
    assert f"at most {SCENARIO_MAX_BYTES:,} bytes" in message
    assert "larger than" in admin_refusal(client, data)


HOSTILE = {
    "a 900,000-character name": (
        lambda doc: doc["journeys"][0].update(name="x" * 900_000),
        "$.journeys[0].name: 900,000 characters",
    ),
    "200,000 numbers in hourly": (
        lambda doc: doc["rhythms"][0].update(hourly=[1] * 200_000),
        "$.rhythms[0].hourly: 200,000 items",
    ),
    "50,000 keys in a map": (
        lambda doc: doc["settings"].update({f"k{i}": 0 for i in range(50_000)}),
        "$.settings: 50,00",
    ),
    "a long list in an unknown key": (
        lambda doc: doc.update(extra=[[0] * 150_000]),
        "$.extra[0]: 150,000 items",
    ),
}


@pytest.mark.parametrize("case", HOSTILE)
@pytest.mark.parametrize("fmt", ["json", "yaml-flow", "yaml-block"])
def test_huge_texts_lists_and_maps_are_one_line_with_their_path(tmp_path, case, fmt):
    edit, expected = HOSTILE[case]
    document = scenario_export()
    edit(document)
    if fmt == "json":
        data = json.dumps(document).encode()
    else:
        flow = fmt == "yaml-flow"
        data = yaml_bytes(document, default_flow_style=flow, width=10**9)
    if len(data) > SCENARIO_MAX_BYTES:  # (block YAML spends 8 bytes a number)
        expected = "$: the file is larger than a scenario can be"
    assert expected in command_refusal(tmp_path, data)


UNREADABLE_VALUES = {
    "an integer of 5,000 digits (JSON)": (b'{"scenario": ' + b"1" * 5_000 + b"}", "digits"),
    "an integer of 5,000 digits (YAML)": (b"scenario: " + b"1" * 5_000 + b"\n", "digits"),
    "a date YAML cannot read": (b"starts_at: 2026-13-45\n", "2026-13-45"),
    "a list as a key": (b"? [1]\n: 2\n", "key"),
    "a map as a key": (b"? {a: 1}\n: 2\n", "key"),
    "a number as a key": (b"scenario: 1\n1: 2\n", "key"),
    "an alias (a YAML bomb)": (
        b'a: &a ["x","x","x"]\nb: &b [*a,*a,*a]\nc: &c [*b,*b,*b]\nd: [*c,*c,*c]\n',
        "aliases",
    ),
    "a tag": (b"scenario: !!python/name:os.system x\n", "tag"),
    "two documents": (b"scenario: 1\n---\nscenario: 1\n", "document"),
    "a NUL character in a JSON text": (b'{"scenario": 1, "name": "a\\u0000b"}', "NUL"),
    "half a surrogate pair in a JSON text": (b'{"scenario": 1, "name": "a\\ud800b"}', "surrogate"),
    "half a surrogate pair in a YAML text": (
        b'scenario: 1\nname: "a\\ud800b"\n',
        "Unicode|surrogate",
    ),
    "a JSON syntax error": (b'{"scenario": 1,', "line 2, column 1"),
    "a YAML syntax error": (b"scenario: [1, 2\nname: x\n", "line"),
    "a duplicate key among 30,000": (
        b"{" + b", ".join(b'"k%d": 0' % i for i in range(30_000)) + b', "k7": 1}',
        "given twice",
    ),
}


@pytest.mark.parametrize("case", UNREADABLE_VALUES)
def test_values_no_scenario_can_hold_are_one_line_from_the_command(tmp_path, client, case):
    data, expected = UNREADABLE_VALUES[case]
    before = configuration()
    assert re.search(expected, command_refusal(tmp_path, data))
    admin_refusal(client, data)
    assert configuration() == before


def test_a_file_at_the_limits_is_accepted_by_the_command_and_the_admin(tmp_path, client, capsys):
    # given a file with every list at its limit, all rows new
    document = at_the_limits(scenario_export())
    data = scenario_dumps(document, fmt="yaml").encode()
    assert len(data) <= SCENARIO_MAX_BYTES
    target = tmp_path / "limits.yaml"
    target.write_bytes(data)
    # when the command's dry run reads it, then it lists every new row and writes none
    call_command("scenario", "import", str(target), "--dry-run")
    out = capsys.readouterr().out
    last_scene = f"journey-{limit('journeys') - 1:03d}/scene-{limit('journeys', 'scenes') - 1:02d}"
    assert f"+ scene {last_scene}" in out
    shipped = len(scenario_export()["mindblocks"])
    last_mindblock = f"m{limit('mindblocks') - shipped - 1:05d}"
    assert f"+ mindblock {last_mindblock}" in out
    assert not MindblockType.objects.filter(slug=last_mindblock).exists()
    # and when the admin imports it, then every row is there
    client.force_login(StaffUserFactory())
    upload = SimpleUploadedFile("limits.yaml", data)
    response = client.post(reverse("admin:synthetics_scenario_import"), {"file": upload})
    assert response.status_code == 302
    assert MindblockType.objects.filter(is_active=True).count() == limit("mindblocks")
    assert Scene.objects.filter(template__slug__startswith="journey-").count() == (
        limit("journeys") * limit("journeys", "scenes")
    )
    assert RhythmProfile.objects.count() == limit("rhythms")
    assert Incident.objects.count() == limit("incidents")
    # and importing it again changes nothing
    assert scenario_import(scenario_loads(data), now=timezone.now()).changes == []


def test_the_questions_to_the_database_do_not_grow_with_the_rows(django_assert_max_num_queries):
    # given every journey, scene, mindblock type and rhythm profile at its limit, all new
    document = at_the_limits(scenario_export())
    document["incidents"] = []  # (each incident is checked against its neighbours: one by one)
    # when it is imported, then a journey costs a few questions and a row none of its own
    with django_assert_max_num_queries(4 * limit("journeys") + 40):
        plan = scenario_import(document, now=NOW)
    assert len(plan.changes) > limit("journeys") * limit("journeys", "scenes")
    # and when every row changes, the same
    for journey in document["journeys"]:
        for scene in journey["scenes"]:
            scene["dwell_median_seconds"] = 31.0
    for mindblock in document["mindblocks"]:
        mindblock["weight"] = 2.0
    with django_assert_max_num_queries(4 * limit("journeys") + 40):
        scenario_import(document, now=NOW)
    scenes = Scene.objects.filter(template__slug__startswith="journey-")
    assert set(scenes.values_list("dwell_median_seconds", flat=True)) == {31.0}
    assert set(MindblockType.objects.values_list("weight", flat=True)) == {2.0}


def test_a_check_constraint_the_schema_is_looser_than_is_named_by_its_path():
    # given a holiday factor the schema takes (up to 100) but the model does not (up to 10)
    document = scenario_export()
    document["rhythms"][0]["holiday_factor"] = 50
    before = configuration()
    # when it is imported, then the model's rule names it (checked in Python, not by the database)
    with pytest.raises(ScenarioInvalid) as invalid:
        scenario_import(document, now=NOW)
    assert invalid.value.errors == ["$.rhythms[0]: holiday_factor must be between 0 and 10."]
    assert configuration() == before


def test_loads_reads_bytes_and_text_alike():
    text = scenario_dumps(scenario_export(), fmt="yaml")
    assert scenario_loads(text.encode()) == scenario_loads(text) == scenario_export()
