"""Incidents: windows in which the generator writes other rates and volumes on purpose, every row
they caused labelled. The engine's rules on a simulated clock, then the service, the runs, the
backfill, the API and the command on the database."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from synthetics.engine import GeneratorSettings, simulate_run, window_session_count
from synthetics.engine.incidents import Incidents, IncidentSpec
from synthetics.engine.run import to_ms
from synthetics.engine.types import SCENE_ERROR
from synthetics.errors import ApplicationError, Conflict, NotFound
from synthetics.models import Incident, Journey, JourneySceneEvent, MindblockEvent
from synthetics.selectors.incidents import incident_list
from synthetics.services import activity_backfill, run_scheduled, settings_update
from synthetics.services.incidents import incident_cancel, incident_create
from tests.factories import StaffUserFactory, UserFactory
from tests.helpers import (
    T0,
    assert_binomial_share,
    assert_sample_mean_and_variance,
    realistic_pool,
    shipped_catalogue,
)

CATALOGUE = shipped_catalogue()
POOL = realistic_pool(3000)
START = T0 - timedelta(minutes=1)
MIDDLE = T0 - timedelta(seconds=30)
BUSY = GeneratorSettings(sessions_per_min=20, max_per_run=100, error_rate=0.05, abandon_rate=0.15)


def spec(**fields) -> IncidentSpec:
    values = {
        "id": 7,
        "label": "checkout errors",
        "start_ms": to_ms(MIDDLE),
        "end_ms": to_ms(T0),
        **fields,
    }
    return IncidentSpec(**values)


def run(*specs: IncidentSpec, sessions: int = 1500, seed: str = "incident", settings=BUSY):
    return simulate_run(
        settings=settings,
        catalogue=CATALOGUE,
        pool=POOL,
        active=[],
        window_start=START,
        now=T0,
        sessions=sessions,
        rng=random.Random(seed),
        incidents=Incidents(specs, CATALOGUE) if specs else None,
    )


def _payloads_of(outcome, journey_id) -> list[dict]:
    return [event.payload for event in outcome.events if event.journey_id == journey_id]


# --- the engine ------------------------------------------------------------------------------------


def test_an_incident_outside_the_window_changes_no_draw():
    # given an incident that ends before the window and one that starts after it
    before = spec(start_ms=to_ms(START) - 600_000, end_ms=to_ms(START), error_rate=1.0)
    after = spec(id=8, start_ms=to_ms(T0), end_ms=to_ms(T0) + 600_000, sessions_multiplier=5.0)
    # then the run is the run without incidents, draw for draw
    assert run(before, after) == run()
    for seed in range(30):
        count = [
            window_session_count(
                settings=BUSY,
                window_start=START,
                window_end=T0,
                rng=random.Random(seed),
                rhythm=None,
                incidents=incidents,
            )
            for incidents in (None, Incidents([before, after], CATALOGUE))
        ]
        assert count[0] == count[1]


def test_an_error_incident_on_one_template_errors_that_share_of_its_sessions_inside_it():
    # given an error rate of 0.5 on focus-session over the second half of the window
    outcome = run(spec(error_rate=0.5, template="focus-session"))
    inside, outside, others = [], [], []
    for journey in outcome.new_journeys:
        if journey.plan.template_slug != "focus-session":
            others.append(journey)
        elif journey.started_at > MIDDLE:
            inside.append(journey)
        else:
            outside.append(journey)
    # then each planned outcome is a Bernoulli draw at the rate in force when the session started:
    # the errored count is Binomial(n, 0.5) inside, Binomial(n, 0.05) outside and for the others
    assert len(inside) > 100 and len(outside) > 100
    assert_binomial_share(sum(j.plan.outcome == "errored" for j in inside), len(inside), 0.5)
    assert_binomial_share(sum(j.plan.outcome == "errored" for j in outside), len(outside), 0.05)
    assert_binomial_share(sum(j.plan.outcome == "errored" for j in others), len(others), 0.05)
    # the abandon rate it did not set is the settings' (0.15 of all sessions)
    assert_binomial_share(sum(j.plan.outcome == "abandoned" for j in inside), len(inside), 0.15)
    # and every event of a session inside names the incident, no other event does
    for journey in outcome.new_journeys:
        payloads = _payloads_of(outcome, journey.id)
        assert payloads
        for payload in payloads:
            if journey in inside:
                assert payload["incidents"] == [{"id": 7, "label": "checkout errors"}]
            else:
                assert "incidents" not in payload


def test_a_scene_incident_errors_its_sessions_in_that_scene_and_leaves_other_templates_alone():
    outcome = run(spec(error_rate=0.6, scene="reflection"))
    inside = [
        j
        for j in outcome.new_journeys
        if j.started_at > MIDDLE and j.plan.template_slug == "focus-session"
    ]
    errored = [j for j in inside if j.plan.outcome == "errored"]
    assert_binomial_share(len(errored), len(inside), 0.6)
    # the errors it drew happen in its scene
    for journey in errored:
        failure = [step for step in journey.plan.steps if step.event_type == SCENE_ERROR]
        assert [step.scene_slug for step in failure] == ["reflection"]
    # templates without the scene are not in its scope
    labelled = {
        j.plan.template_slug
        for j in outcome.new_journeys
        if any("incidents" in p for p in _payloads_of(outcome, j.id))
    }
    assert labelled == {"focus-session"}


def test_a_surge_multiplies_the_windows_sessions_and_lifts_the_cap_by_as_much():
    # given a surge of 3 over the whole window, at 20 a minute capped at 30
    settings = GeneratorSettings(sessions_per_min=20, max_per_run=30)
    surge = Incidents([spec(start_ms=to_ms(START), sessions_multiplier=3.0)], CATALOGUE)
    counts = [
        window_session_count(
            settings=settings,
            window_start=START,
            window_end=T0,
            rng=random.Random(seed),
            rhythm=None,
            incidents=surge,
        )
        for seed in range(2000)
    ]
    # then the counts are min(Poisson(60), 90): the mean and the cap both times 3 (their sample
    # mean and variance against the exact moments; tests/helpers.py derives the bounds)
    assert_sample_mean_and_variance(counts, 60.0, 90)


def test_a_template_surge_raises_that_templates_sessions_only():
    # focus-session is 2.5 of the catalogue's popularity 10: a surge of 4 on it makes the window's
    # rate 0.75 + 0.25 x 4 = 1.75 times the setting, and its share of new sessions 1 / 1.75
    incidents = Incidents(
        [spec(start_ms=to_ms(START), sessions_multiplier=4.0, template="focus-session")], CATALOGUE
    )
    assert incidents.window_factor(to_ms(START), to_ms(T0)) == pytest.approx(1.75)
    outcome = run(spec(start_ms=to_ms(START), sessions_multiplier=4.0, template="focus-session"))
    focus = sum(j.plan.template_slug == "focus-session" for j in outcome.new_journeys)
    assert_binomial_share(focus, len(outcome.new_journeys), 1 / 1.75)


def test_a_surge_over_half_the_window_starts_its_share_of_sessions_inside_it():
    # a surge of 3 over the second half: the start density is 1 then 3, so a start falls in the
    # second half with probability 3 / 4
    outcome = run(spec(sessions_multiplier=3.0))
    inside = sum(j.started_at > MIDDLE for j in outcome.new_journeys)
    assert_binomial_share(inside, len(outcome.new_journeys), 0.75)


@hypothesis_settings(max_examples=200, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=60_000), min_size=2, max_size=6),
    multipliers=st.lists(st.sampled_from([0.0, 0.5, 1.0, 3.0]), min_size=3, max_size=3),
    draw=st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_a_start_is_always_inside_the_window_and_never_where_sessions_are_stopped(
    cuts, multipliers, draw
):
    # Rule: for any incidents and any uniform draw, a start lies in (start, end], and never in a
    # stretch whose rate of new sessions is 0.
    base = to_ms(START)
    cuts = sorted(set(cuts))
    specs = [
        spec(id=i + 1, start_ms=base + a, end_ms=base + b, sessions_multiplier=m)
        for i, (a, b, m) in enumerate(zip(cuts, cuts[1:], multipliers, strict=False))
    ]
    incidents = Incidents(specs, CATALOGUE)
    at = incidents.start_at(draw, base, base + 60_000)
    assert base < at <= base + 60_000
    if incidents.window_factor(base, base + 60_000) > 0:
        assert incidents._factor(at) > 0


# --- the service: every refusal a message, nothing written -----------------------------------------

API = "/api/synthetics"
NOW = datetime(2026, 1, 9, 19, 17, 30, tzinfo=UTC)
SOON = datetime(2026, 1, 9, 19, 20, tzinfo=UTC)


def create(**fields):
    values = {"starts_at": SOON, "minutes": 10, "label": "drill", "error_rate": 0.5, "now": NOW}
    return incident_create(**{**values, **fields})


REFUSALS = [
    ({"label": "  "}, "label", "non-empty"),
    ({"label": "x" * 101}, "label", "at most 100"),
    ({"starts_at": datetime(2026, 1, 9, 19, 20)}, "starts_at", "time zone"),
    ({"starts_at": SOON.replace(second=5)}, "starts_at", "whole minute"),
    ({"minutes": 0}, "minutes", "from 1 to 10080"),
    ({"minutes": 10081}, "minutes", "from 1 to 10080"),
    ({"minutes": 2.5}, "minutes", "whole number"),
    ({"error_rate": None}, "error_rate", "at least one"),
    ({"error_rate": 1.5}, "error_rate", "from 0 to 1"),
    ({"error_rate": float("nan")}, "error_rate", "a number"),
    ({"error_rate": True}, "error_rate", "a number"),
    ({"abandon_rate": -0.1}, "abandon_rate", "from 0 to 1"),
    ({"error_rate": 0.9}, "error_rate", "at most 1 under the incident"),  # 0.9 + 0.15
    ({"sessions_multiplier": 101}, "sessions_multiplier", "from 0 to 100"),
    ({"template": "nope"}, "template", "no journey template"),
    ({"scene": "nope"}, "scene", "no scene of any template"),
    ({"template": "morning-checkin", "scene": "reflection"}, "scene", "morning-checkin"),
    ({"scene": "reflection", "sessions_multiplier": 2.0}, "sessions_multiplier", "template"),
    ({"starts_at": SOON - timedelta(hours=2)}, "starts_at", "backfill"),
    ({"starts_at": datetime(9999, 12, 31, 23, 0, tzinfo=UTC)}, "starts_at", "within a year"),
    ({"starts_at": datetime(1, 1, 1, 0, 30, tzinfo=UTC)}, "starts_at", "within a year"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("fields", "field", "message"), REFUSALS)
def test_a_bad_incident_is_refused_with_a_message_and_nothing_written(fields, field, message):
    with pytest.raises(ApplicationError, match=message) as refused:
        create(**fields)
    assert refused.value.extra["field"] == field
    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_every_bad_field_of_an_incident_is_named_at_once():
    # given an incident with four independent faults
    fields = {
        "label": " ",
        "minutes": 0,
        "abandon_rate": 1.5,
        "template": "nope",
        "scene": "reflection",
    }

    # when it is asked for
    with pytest.raises(ApplicationError) as refused:
        create(**fields)

    # then each field has its own message, the first is `field`, and nothing is written
    problems = refused.value.extra["fields"]
    assert list(problems) == ["label", "minutes", "abandon_rate", "template"]
    assert "non-empty" in problems["label"][0]
    assert "from 1 to 10080" in problems["minutes"][0]
    assert "from 0 to 1" in problems["abandon_rate"][0]
    assert "no journey template" in problems["template"][0]
    assert refused.value.extra["field"] == "label"
    assert all(text in refused.value.message for texts in problems.values() for text in texts)
    assert not Incident.objects.exists()


@pytest.mark.django_db
def test_a_past_incident_is_taken_for_a_backfill_when_asked():
    incident = create(starts_at=SOON - timedelta(hours=2), allow_past=True)
    assert incident.ends_at == SOON - timedelta(hours=2) + timedelta(minutes=10)


@pytest.mark.django_db
def test_overlapping_incidents_are_refused_only_when_they_contradict():
    first = create(error_rate=0.5, template="focus-session")
    # another template, the same value, or another value only where the scopes do not meet: taken
    create(error_rate=0.3, template="morning-checkin")
    create(error_rate=0.5, template="focus-session", label="same")
    create(abandon_rate=0.3, template="focus-session", error_rate=None)
    create(starts_at=SOON + timedelta(minutes=10), error_rate=0.9 - 0.15)  # after it: no overlap
    # every session, or a scene of that template, with another error rate: refused, naming it
    for fields in (
        {"error_rate": 0.2},
        {"error_rate": 0.2, "scene": "reflection"},
        {"error_rate": 0.5, "scene": "reflection"},  # the same rate, but moved into one scene
    ):
        with pytest.raises(Conflict, match=f"incident {first.id} .* contradicts"):
            create(starts_at=SOON + timedelta(minutes=5), **fields)
    # the very same incident again (a request sent twice): refused, naming the first
    with pytest.raises(Conflict, match=f"incident {first.id} .*sent twice"):
        create(error_rate=0.5, template="focus-session")
    assert Incident.objects.count() == 5


@pytest.mark.django_db
def test_cancelling_stops_an_incident_from_the_current_minute():
    upcoming = create()
    running = create(starts_at=NOW - timedelta(minutes=7, seconds=30), template="focus-session")
    over = create(starts_at=NOW - timedelta(minutes=15, seconds=30), minutes=6, label="over")
    # one not started never applies; one in progress applies to the end of the minute under way
    # (a manual run of this minute may have used it already), never after
    assert incident_cancel(incident_id=upcoming.id, now=NOW).ends_at == upcoming.starts_at
    assert incident_cancel(incident_id=running.id, now=NOW).ends_at == datetime(
        2026, 1, 9, 19, 18, tzinfo=UTC
    )
    with pytest.raises(Conflict, match="is over"):
        incident_cancel(incident_id=over.id, now=NOW)
    with pytest.raises(Conflict, match="already cancelled"):
        incident_cancel(incident_id=upcoming.id, now=NOW)
    with pytest.raises(NotFound):
        incident_cancel(incident_id=999, now=NOW)
    states = {i.label: i.state for i in incident_list(now=NOW)}
    assert states == {"drill": "cancelled", "over": "over"}


# --- runs and backfill write what the incident says, labelled ----------------------------------------


def _sessions(template: str | None = None) -> list[tuple[datetime, str, bool, str]]:
    """(started_at, status, labelled, template) of every journey, from its first event."""

    found = []
    for journey in Journey.objects.select_related("template").order_by("started_at"):
        payloads = list(
            JourneySceneEvent.objects.filter(journey=journey).values_list(
                "event_payload", flat=True
            )
        )
        labelled = {tuple(sorted(p.get("incidents", [{}])[0].items())) for p in payloads}
        assert len(labelled) == 1  # every event of a session alike
        found.append(
            (journey.started_at, journey.status, "incidents" in payloads[0], journey.template.slug)
        )
    return found


def test_a_scheduled_run_through_an_incident_writes_it_labelled(db):
    # given 600 sim users, and an error incident on focus-session over two of the minutes the runs
    # cover next (40 sessions a minute, a quarter of them focus-session's: ~20 inside, Poisson, so
    # none with probability about e^-20)
    from synthetics.services import sim_users_seed

    sim_users_seed(count=600, seed=3)
    settings_update(sessions_per_min=40, max_per_run=100)
    # (10 s back first: the last run below is at now + 5 s, never after the real now)
    now = (timezone.now() - timedelta(seconds=10)).replace(second=0, microsecond=0)
    incident = create(
        starts_at=now - timedelta(minutes=3), minutes=2, template="focus-session", now=now
    )
    # when the schedule covers the three minutes
    for minute in (3, 2, 1, 0):
        run_scheduled(now=now - timedelta(minutes=minute, seconds=-5), seed=3)
    # then every session of focus-session that started inside it, and no other, is labelled
    sessions = _sessions()
    inside = [
        s
        for s in sessions
        if s[3] == "focus-session" and incident.starts_at < s[0] <= incident.ends_at
    ]
    assert inside and all(s[2] for s in inside)
    assert not any(s[2] for s in sessions if s not in inside)
    tag = {"id": incident.id, "label": "drill"}
    # (by journey: two sessions may start in the same millisecond)
    inside_ids = set(
        Journey.objects.filter(
            template__slug="focus-session",
            started_at__gt=incident.starts_at,
            started_at__lte=incident.ends_at,
        ).values_list("id", flat=True)
    )
    assert len(inside_ids) == len(inside)
    for model in (JourneySceneEvent, MindblockEvent):
        for payload, journey_id in model.objects.values_list("event_payload", "journey_id"):
            assert (tag in payload.get("incidents", [])) == (journey_id in inside_ids)


def test_a_backfill_honours_a_past_incident_and_gives_the_same_rows_again(db):
    # given 600 sim users and a past surge and error incident on one template, for a backfill
    from synthetics.services import sim_users_seed
    from tests.test_history import _tagged

    sim_users_seed(count=600, seed=3)
    settings_update(sessions_per_min=10, max_per_run=50)
    now = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=1)
    create(
        starts_at=now - timedelta(minutes=40),
        minutes=20,
        template="focus-session",
        error_rate=0.6,
        sessions_multiplier=3.0,
        allow_past=True,
        now=timezone.now(),
    )
    # when two hours are backfilled, then deleted and backfilled again with the same seed
    activity_backfill(hours=2, now=now, seed=5)
    first = _tagged()
    from synthetics.models import SyntheticRun

    JourneySceneEvent.objects.all().delete()
    MindblockEvent.objects.all().delete()
    Journey.objects.all().delete()
    SyntheticRun.objects.all().delete()
    activity_backfill(hours=2, now=now, seed=5)
    # then the rows are the same, and the incident's sessions are there, labelled
    assert _tagged() == first
    sessions = _sessions()
    inside = [s for s in sessions if s[2]]
    assert inside and {s[3] for s in inside} == {"focus-session"}
    surge = sum(1 for s in sessions if s[3] == "focus-session" and s[2])
    before = sum(
        1
        for s in sessions
        if s[3] == "focus-session"
        and now - timedelta(minutes=80) < s[0] <= now - timedelta(minutes=60)
    )
    # three times the rate of the same template's 20 minutes before it: Poisson means of about 150
    # and 50 (10 a minute, a quarter of them focus-session's), 8 standard deviations apart
    assert surge > before


# --- the API and the command ------------------------------------------------------------------------


@pytest.fixture
def api(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=StaffUserFactory())}")
    return client


def test_the_api_creates_lists_and_cancels_incidents(api, sim_users):
    starts = (timezone.now() + timedelta(minutes=5)).replace(second=0, microsecond=0)
    body = {
        "starts_at": starts.isoformat().replace("+00:00", "Z"),
        "minutes": 10,
        "label": "checkout errors",
        "error_rate": 0.5,
        "template": "focus-session",
    }
    created = api.post(f"{API}/incidents", body, format="json")
    assert created.status_code == 201, created.content
    incident = created.json()["incident"]
    assert incident["state"] == "upcoming" and incident["template"] == "focus-session"
    assert incident["scene"] is None and incident["sessions_multiplier"] is None
    listed = api.get(f"{API}/incidents").json()["incidents"]
    assert [i["id"] for i in listed] == [incident["id"]]
    assert api.get(f"{API}/incidents?state=over").json()["incidents"] == []
    assert api.get(f"{API}/incidents?state=later").status_code == 400
    # a contradicting one is a 409 with the reason; a bad one a 400 naming the field
    clash = api.post(f"{API}/incidents", {**body, "error_rate": 0.1}, format="json")
    assert clash.status_code == 409 and "contradicts" in clash.json()["error"]
    for bad, field in (
        ({**body, "starts_at": "2026-12-06T14:00:00"}, "starts_at"),
        ({**body, "minutes": "10"}, "minutes"),
        ({**body, "label": 5}, "label"),
        ({**body, "colour": "red"}, "colour"),
        ({**body, "sessions_multiplier": 500}, "sessions_multiplier"),
    ):
        refused = api.post(f"{API}/incidents", bad, format="json")
        assert refused.status_code == 400, bad
        assert field in refused.json()["fields"]
    assert Incident.objects.count() == 1
    # and a request with several faults the service finds is answered with all of them
    several = api.post(
        f"{API}/incidents",
        {**body, "label": "two faults", "error_rate": 0.9, "abandon_rate": 0.5, "scene": "nope"},
        format="json",
    )
    assert several.status_code == 400
    assert sorted(several.json()["fields"]) == ["error_rate", "scene"]
    assert "at most 1 under the incident" in several.json()["fields"]["error_rate"][0]
    assert "no scene of template 'focus-session'" in several.json()["fields"]["scene"][0]
    assert Incident.objects.count() == 1
    # cancelled: then a second cancel is a 409, an unknown id a 404
    cancelled = api.delete(f"{API}/incidents/{incident['id']}")
    assert cancelled.status_code == 200 and cancelled.json()["incident"]["state"] == "cancelled"
    assert api.delete(f"{API}/incidents/{incident['id']}").status_code == 409
    missing = api.delete(f"{API}/incidents/98765")
    assert missing.status_code == 404 and missing.json()["success"] is False


def test_a_viewer_lists_incidents_but_cannot_cancel_one(sim_users):
    from django.contrib.auth.models import Permission

    incident = create(
        now=timezone.now(),
        starts_at=timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=5),
    )
    viewer = UserFactory()
    viewer.user_permissions.add(Permission.objects.get(codename="view_syntheticsettings"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=viewer)}")
    assert client.get(f"{API}/incidents").status_code == 200
    assert client.delete(f"{API}/incidents/{incident.id}").status_code == 403
    incident.refresh_from_db()
    assert incident.cancelled_at is None


def test_the_openapi_schema_documents_the_incident_endpoints(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert schema.status_code == 200, schema.status_code
    paths = schema.json()["paths"] if schema["Content-Type"].startswith("application/json") else {}
    if not paths:
        import yaml

        paths = yaml.safe_load(schema.content)["paths"]
    assert {"get", "post"} <= set(paths["/api/synthetics/incidents"])
    assert "delete" in paths["/api/synthetics/incidents/{incident_id}"]


def test_the_command_adds_lists_and_cancels(sim_users, capsys):
    starts = (timezone.now() + timedelta(minutes=5)).replace(second=0, microsecond=0)
    call_command(
        "incidents",
        "add",
        "--starts-at",
        starts.isoformat(),
        "--minutes",
        "10",
        "--label",
        "surge",
        "--sessions-multiplier",
        "3",
    )
    out = capsys.readouterr().out
    assert "added" in out and "'surge': sessions_multiplier 3 on every session" in out
    incident = Incident.objects.get()
    call_command("incidents", "list")
    assert "upcoming" in capsys.readouterr().out
    call_command("incidents", "cancel", str(incident.id))
    assert "cancelled" in capsys.readouterr().out
    with pytest.raises(CommandError, match="already cancelled"):
        call_command("incidents", "cancel", str(incident.id))
    with pytest.raises(CommandError, match="sessions multiplier changes whole sessions"):
        call_command(
            "incidents",
            "add",
            "--starts-at",
            starts.isoformat(),
            "--minutes",
            "5",
            "--label",
            "x",
            "--sessions-multiplier",
            "2",
            "--scene",
            "reflection",
        )


# --- review fixes: combined rates, scenes per outcome, a manual run under a stop, rounding ----------


def test_two_scene_incidents_each_put_their_outcome_in_their_own_scene():
    outcome = run(
        spec(error_rate=0.5, scene="deep-work-prompt"),
        spec(id=8, label="leaving", abandon_rate=0.3, scene="reflection"),
    )
    focus = [
        j
        for j in outcome.new_journeys
        if j.started_at > MIDDLE and j.plan.template_slug == "focus-session"
    ]
    last = {j.plan.outcome: set() for j in focus}
    for journey in focus:
        last[journey.plan.outcome].add(journey.plan.steps[-1].scene_slug)
    assert last["errored"] == {"deep-work-prompt"}
    assert last["abandoned"] == {"reflection"}


def test_a_manual_run_where_incidents_stop_new_sessions_starts_its_target_labelled():
    # a multiplier of 0 over the whole window: a scheduled run starts none, but a manual run's
    # target is exact; its sessions start as without a multiplier and carry the label
    stop = spec(start_ms=to_ms(START) - 60_000, sessions_multiplier=0.0)
    outcome = run(stop, sessions=5)
    assert len(outcome.new_journeys) == 5
    assert all(
        p["incidents"] == [stop.tag]
        for j in outcome.new_journeys
        for p in _payloads_of(outcome, j.id)
    )
    assert (
        window_session_count(
            settings=BUSY,
            window_start=START,
            window_end=T0,
            rng=random.Random(1),
            rhythm=None,
            incidents=Incidents([stop], CATALOGUE),
        )
        == 0
    )


def test_a_surge_lifts_the_cap_by_its_factor_exactly():
    from synthetics.engine.incidents import lifted_cap

    for multiplier in (1.7, 7.4, 2.3, 99.9):
        incidents = Incidents(
            [spec(start_ms=to_ms(START), sessions_multiplier=multiplier)], CATALOGUE
        )
        assert incidents.window_factor(to_ms(START), to_ms(T0)) == multiplier
    assert lifted_cap(100, 1.7) == 170 and lifted_cap(5, 7.4) == 37 and lifted_cap(5, 0.5) == 5


@pytest.mark.django_db
def test_overlapping_rates_over_1_together_are_refused():
    create(error_rate=0.8)
    with pytest.raises(Conflict, match="over 1"):
        create(error_rate=None, abandon_rate=0.8, starts_at=SOON + timedelta(minutes=5))
    create(error_rate=None, abandon_rate=0.2, starts_at=SOON + timedelta(minutes=5))


@pytest.mark.django_db
def test_settings_that_would_push_an_incident_over_1_are_refused():
    from django.core.exceptions import ValidationError

    create(now=timezone.now(), starts_at=_next_minute() + timedelta(minutes=1), error_rate=0.8)
    with pytest.raises(ValidationError, match="incident .* would exceed 1"):
        settings_update(abandon_rate=0.25)
    settings_update(abandon_rate=0.2)


def _next_minute():
    return timezone.now().replace(second=0, microsecond=0) + timedelta(minutes=1)


@pytest.mark.django_db
def test_an_incident_on_an_inactive_template_or_over_covered_minutes_is_refused(sim_users):
    from synthetics.models import JourneyTemplate

    JourneyTemplate.objects.filter(slug="first-steps").update(is_active=False)
    now = timezone.now()
    with pytest.raises(ApplicationError, match="inactive"):
        create(now=now, starts_at=_next_minute(), template="first-steps")
    # minutes the schedule already covered are not written again
    run_scheduled(now=now)
    covered = now.replace(second=0, microsecond=0)
    with pytest.raises(ApplicationError, match="covered"):
        create(now=now, starts_at=covered - timedelta(minutes=3), minutes=3)
    create(now=now, starts_at=covered - timedelta(minutes=3), minutes=5)  # reaches past it


@pytest.mark.django_db
def test_at_most_20_incidents_overlap():
    # (the same multiplier under other labels: overlapping without contradicting)
    for index in range(20):
        create(
            label=f"surge {index}",
            error_rate=None,
            sessions_multiplier=2.0,
            starts_at=SOON + timedelta(minutes=index % 2),
        )
    with pytest.raises(Conflict, match="20 incidents already overlap"):
        create(label="one more", error_rate=0.1, template="focus-session")
