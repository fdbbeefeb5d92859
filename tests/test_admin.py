"""The admin and the Studio page as views: who may see them, and that every list stays cheap."""

import json
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from synthetics.admin.big_tables import CappedCountPaginator
from synthetics.engine.types import GENERATOR_SETTINGS, SETTING_NAMES
from synthetics.models import (
    SETTING_RANGES,
    JourneySceneEvent,
    MindblockType,
    Scene,
    SyntheticRun,
    SyntheticSettings,
)
from synthetics.services import activity_backfill, run_manual, run_scheduled
from tests.factories import JourneySceneEventFactory, StaffUserFactory, UserFactory

pytestmark = pytest.mark.django_db

ADMIN_PAGES = [
    "admin:index",
    "admin:synthetics_simuser_changelist",
    "admin:synthetics_syntheticrun_changelist",
    "admin:synthetics_journey_changelist",
    "admin:synthetics_journeysceneevent_changelist",
    "admin:synthetics_mindblockevent_changelist",
    "admin:synthetics_journeytemplate_changelist",
    "admin:synthetics_mindblocktype_changelist",
    "admin:synthetics_user_changelist",
]


@pytest.fixture
def staff_client(client):
    client.force_login(StaffUserFactory())
    return client


@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_anonymous_and_non_staff_are_sent_to_log_in(client, name):
    url = reverse(name)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    client.force_login(UserFactory())  # an active account without is_staff
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


@pytest.mark.parametrize("path", ["/studio/", "/api/docs/"])
def test_studio_and_docs_follow_the_apis_read_permission(client, sim_users, path):
    # given anonymous, staff without the view permission, and staff with it
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    staff = UserFactory(is_staff=True)
    client.force_login(staff)
    # when staff without the permission ask: refused, as the API refuses them
    assert client.get(path).status_code == 403
    assert client.get("/api/synthetics/status").status_code == 403
    assert client.get("/api/schema/").status_code == 403
    # then the view permission opens the page, the schema and the API alike
    staff.user_permissions.add(Permission.objects.get(codename="view_syntheticsettings"))
    client.force_login(staff)
    assert client.get(path).status_code == 200
    assert client.get("/api/synthetics/status").status_code == 200
    assert client.get("/api/schema/").status_code == 200


@pytest.mark.parametrize("name", ADMIN_PAGES)
def test_staff_see_every_admin_list(staff_client, sim_users, name):
    activity_backfill(hours=1)
    response = staff_client.get(reverse(name))
    assert response.status_code == 200


def test_admin_index_links_to_the_studio(staff_client):
    response = staff_client.get(reverse("admin:index"))
    assert reverse("studio") in response.content.decode()


def test_settings_are_one_row_edited_in_place(staff_client):
    # the list goes straight to the single row; there is no add and no delete
    response = staff_client.get(reverse("admin:synthetics_syntheticsettings_changelist"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:synthetics_syntheticsettings_change", args=[1])
    assert staff_client.get(reverse("admin:synthetics_syntheticsettings_add")).status_code == 403
    delete = reverse("admin:synthetics_syntheticsettings_delete", args=[1])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    assert SyntheticSettings.objects.count() == 1


def _settings_form(**changes):
    form = {
        "enabled": "on",
        "sessions_per_min": "2",
        "max_per_run": "5",
        "error_rate": "0.05",
        "abandon_rate": "0.15",
        "rhythm_strength": "1.0",
        "signups_per_day": "0",
        "churn_per_month": "0",
    }
    form.update(changes)
    return form


def test_settings_form_saves_and_shows_errors_per_field(staff_client):
    url = reverse("admin:synthetics_syntheticsettings_change", args=[1])
    response = staff_client.post(url, _settings_form(sessions_per_min="7"))
    assert response.status_code == 302
    assert SyntheticSettings.objects.get().sessions_per_min == 7
    response = staff_client.post(url, _settings_form(abandon_rate="0.99", max_per_run="100001"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "abandon_rate + error_rate must not exceed 1" in " ".join(errors["abandon_rate"])
    assert "max_per_run" in errors
    assert SyntheticSettings.objects.get().max_per_run == 5


def test_the_settings_page_and_the_studio_follow_the_one_list_of_settings(staff_client):
    # when the admin's settings page and the Studio are shown
    page = staff_client.get(reverse("admin:synthetics_syntheticsettings_change", args=[1]))
    html = staff_client.get(reverse("studio")).content.decode()
    # then the admin's form edits every setting, in the list's order
    assert list(page.context["adminform"].form.fields) == list(SETTING_NAMES)
    # and the Studio's form, and the list studio.js reads from the page, hold every number
    # setting in that order with its kind, its range and an input labelled by the model's field
    listed = json.loads(
        re.search(r'<script id="setting-fields" type="application/json">(.*?)</script>', html)[1]
    )
    numbers = [(name, kind.__name__) for name, kind in GENERATOR_SETTINGS if kind is not bool]
    assert [(field["name"], field["kind"]) for field in listed] == numbers
    for field in listed:
        assert (field["min"], field["max"]) == SETTING_RANGES[field["name"]]
        verbose_name = SyntheticSettings._meta.get_field(field["name"]).verbose_name
        assert field["label"].lower().startswith(verbose_name)
        assert f'<label for="{field["name"]}">{field["label"]}</label>' in html
        assert f'id="{field["name"]}" name="{field["name"]}" type="number"' in html


def test_pause_resume_and_run_now_from_the_settings_page(staff_client, sim_users):
    page = staff_client.get(reverse("admin:synthetics_syntheticsettings_change", args=[1]))
    html = page.content.decode()
    assert reverse("admin:synthetics_toggle") in html
    assert reverse("admin:synthetics_run_now") in html
    assert 'name="enabled" value="false"' in html  # the page asks for the state it offers
    staff_client.post(reverse("admin:synthetics_toggle"), {"enabled": "false"})
    assert SyntheticSettings.objects.get().enabled is False
    # a double submit of "pause" leaves it paused instead of resuming
    staff_client.post(reverse("admin:synthetics_toggle"), {"enabled": "false"})
    assert SyntheticSettings.objects.get().enabled is False
    staff_client.post(reverse("admin:synthetics_toggle"), {"enabled": "true"})
    assert SyntheticSettings.objects.get().enabled is True
    assert staff_client.get(reverse("admin:synthetics_toggle")).status_code == 405
    response = staff_client.post(reverse("admin:synthetics_run_now"), {"target": "3"}, follow=True)
    assert "3 sessions" in response.content.decode()
    assert SyntheticRun.objects.get(trigger="manual").sessions_started == 3
    response = staff_client.post(reverse("admin:synthetics_run_now"), {"target": "9"}, follow=True)
    assert "from 1 to 5 (max_per_run is 5); got 9." in response.content.decode()
    assert SyntheticRun.objects.filter(trigger="manual").count() == 1


def test_controls_need_the_change_permission(client, sim_users):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_syntheticsettings"))
    client.force_login(viewer)
    assert client.post(reverse("admin:synthetics_toggle"), {"enabled": "false"}).status_code == 403
    assert client.post(reverse("admin:synthetics_run_now"), {"target": "2"}).status_code == 403
    assert SyntheticSettings.objects.get().enabled is True
    assert not SyntheticRun.objects.exists()


def test_ledger_journeys_and_events_are_read_only(staff_client, sim_users):
    run_manual(target=2)
    run = SyntheticRun.objects.get()
    event = JourneySceneEvent.objects.first()
    for name, pk in [
        ("syntheticrun", run.pk),
        ("journeysceneevent", event.pk),
        ("journey", event.journey_id),
    ]:
        assert staff_client.get(reverse(f"admin:synthetics_{name}_add")).status_code == 403
        page = staff_client.get(reverse(f"admin:synthetics_{name}_change", args=[pk]))
        assert page.status_code == 200
        assert 'type="submit" value="Save"' not in page.content.decode()


def test_failed_run_error_text_is_visible(staff_client):
    run = SyntheticRun.objects.create(
        trigger="scheduled",
        status="failed",
        started_at=timezone.now(),
        finished_at=timezone.now(),
        window_start=timezone.now(),
        window_end=timezone.now(),
        error="Traceback ... RuntimeError: disk full",
    )
    page = staff_client.get(reverse("admin:synthetics_syntheticrun_change", args=[run.pk]))
    assert "RuntimeError: disk full" in page.content.decode()


def test_event_list_filters_by_origin(staff_client, sim_users):
    activity_backfill(hours=1)
    JourneySceneEventFactory(created_at=timezone.now() - timedelta(minutes=3))
    url = reverse("admin:synthetics_journeysceneevent_changelist")
    real = staff_client.get(url, {"origin": "real"}).context["cl"]
    synthetic = staff_client.get(url, {"origin": "synthetic"}).context["cl"]
    assert real.result_count == 1
    assert synthetic.result_count == JourneySceneEvent.objects.count() - 1


def test_big_lists_never_count_every_row(staff_client, sim_users):
    # given a drill-down by date hierarchy and a filter
    activity_backfill(hours=1)
    url = reverse("admin:synthetics_journeysceneevent_changelist")
    now = timezone.now()
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(
            url,
            {"origin": "synthetic", "created_at__year": now.year, "created_at__month": now.month},
        )
    assert response.status_code == 200
    sql = [q["sql"].upper() for q in queries.captured_queries]
    counts = [q for q in sql if "COUNT(" in q]
    assert counts and all("LIMIT" in q for q in counts), "every count is bounded"
    assert not any("DISTINCT" in q for q in sql), "the date hierarchy does not scan for dates"


def test_capped_paginator_stops_at_the_cap(monkeypatch):
    from synthetics.admin import big_tables

    JourneySceneEventFactory.create_batch(12)
    monkeypatch.setattr(big_tables, "COUNT_CAP", 5)
    events = JourneySceneEvent.objects.order_by("-created_at")
    assert CappedCountPaginator(events, 2).count == 6  # "5+": the cap plus one
    assert CappedCountPaginator(events[:3], 2).count == 3


def test_template_list_does_not_query_per_row(staff_client):
    from tests.factories import SceneFactory

    url = reverse("admin:synthetics_journeytemplate_changelist")
    with CaptureQueriesContext(connection) as before:
        staff_client.get(url)
    SceneFactory.create_batch(6)  # six more templates, one scene each
    with CaptureQueriesContext(connection) as after:
        response = staff_client.get(url)
    assert response.status_code == 200
    assert len(after.captured_queries) == len(before.captured_queries)


def test_catalogue_is_editable(staff_client):
    template_url = reverse("admin:synthetics_journeytemplate_changelist")
    assert staff_client.get(template_url).status_code == 200
    blocker = MindblockType.objects.get(slug="fatigue")
    url = reverse("admin:synthetics_mindblocktype_change", args=[blocker.pk])
    response = staff_client.post(
        url, {"slug": "fatigue", "name": "Tiredness", "weight": "2.5", "is_active": "on"}
    )
    assert response.status_code == 302
    blocker.refresh_from_db()
    assert (blocker.name, blocker.weight) == ("Tiredness", 2.5)
    assert Scene.objects.filter(template__slug="focus-session").count() == 4


def test_studio_renders_for_staff_with_static_assets(staff_client, sim_users):
    run_scheduled()
    response = staff_client.get(reverse("studio"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/synthetics/studio.js" in html and "/static/synthetics/studio.css" in html
    assert "http://" not in html and "https://" not in html, "no CDN"
    assert 'id="status-badge" class="badge badge-running"' in html
    assert "csrfmiddlewaretoken" in html


def test_studio_controls_are_disabled_without_change_permission(client, sim_users):
    viewer = UserFactory(is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_syntheticsettings"))
    client.force_login(viewer)
    html = client.get(reverse("studio")).content.decode()
    assert "needs the “change synthetic settings” permission" in html
    assert 'id="toggle" disabled' in html


def test_sim_user_filters_offer_the_populations_values_without_reading_the_pool(
    staff_client, sim_users
):
    from synthetics.engine.population import LOCALES, PERSONAS
    from synthetics.models import SimUser

    url = reverse("admin:synthetics_simuser_changelist")
    # when the list is shown: its filters read no column of the pool (no SELECT DISTINCT)
    with CaptureQueriesContext(connection) as queries:
        response = staff_client.get(url)
    assert response.status_code == 200
    assert not [q for q in queries.captured_queries if "DISTINCT" in q["sql"].upper()]
    html = response.content.decode()
    for value in [PERSONAS[0].slug, LOCALES[0][0], LOCALES[0][2][0]]:
        assert value in html
    # and no bulk action: no checkbox column, no action bar
    assert 'name="_selected_action"' not in html and 'name="action"' not in html
    # then each filter filters, by the population's values or any other asked for by hand
    member = SimUser.objects.order_by("id").first()
    for parameter, value in [
        ("persona", member.persona),
        ("locale", member.locale),
        ("timezone", member.timezone),
    ]:
        shown = staff_client.get(url, {parameter: value, "all": ""}).context["cl"].result_list
        expected = SimUser.objects.filter(**{parameter: value}).count()
        assert len(shown) == min(expected, 50) and all(
            getattr(row, parameter) == value for row in shown
        )
    SimUser.objects.filter(pk=member.pk).update(timezone="Pacific/Chatham")
    shown = staff_client.get(url, {"timezone": "Pacific/Chatham"}).context["cl"].result_list
    assert [row.pk for row in shown] == [member.pk]


def test_studio_and_the_runs_page_say_which_shard_a_run_simulated(staff_client, sim_users):
    run = run_scheduled(shard=1, shards=2)
    html = staff_client.get("/studio/").content.decode()
    assert "scheduled (shard 1 of 2)" in html
    page = staff_client.get(reverse("admin:synthetics_syntheticrun_change", args=[run.id]))
    assert page.status_code == 200
    assert "field-shards" in page.content.decode()


def test_studio_run_now_offers_at_most_what_a_manual_run_may_start(staff_client, sim_users):
    from synthetics.services import settings_update

    html = staff_client.get("/studio/").content.decode()
    assert 'max="5" value="5" data-manual-limit="1000"' in html  # max_per_run 5 (the default)
    settings_update(sessions_per_min=20_000, max_per_run=50_000)
    html = staff_client.get("/studio/").content.decode()
    assert 'max="1000" value="1000" data-manual-limit="1000"' in html


# --- incidents: scheduled with the service's checks, never edited, cancelled by an action ----------


def _incident_form(**changes):
    starts = (timezone.now() + timedelta(minutes=5)).replace(second=0, microsecond=0)
    form = {
        "label": "checkout errors",
        "starts_at_0": starts.strftime("%Y-%m-%d"),
        "starts_at_1": starts.strftime("%H:%M:%S"),
        "minutes": "10",
        "error_rate": "0.5",
        "abandon_rate": "",
        "sessions_multiplier": "",
        "template": "focus-session",
        "scene": "",
    }
    return {**form, **changes}, starts


def test_the_admin_schedules_an_incident_with_the_services_checks(staff_client, sim_users):
    from synthetics.models import Incident

    url = reverse("admin:synthetics_incident_add")
    # a refusal of the service shows under its field and saves nothing
    bad, _ = _incident_form(scene="reflection", sessions_multiplier="2", error_rate="")
    response = staff_client.post(url, bad)
    assert response.status_code == 200
    assert "cannot be limited to a scene" in response.content.decode()
    assert not Incident.objects.exists()
    # a good one is saved as the service checked it (its end, who asked)
    good, starts = _incident_form()
    response = staff_client.post(url, good)
    assert response.status_code == 302, response.content.decode()[:2000]
    incident = Incident.objects.get()
    assert incident.starts_at == starts and incident.ends_at == starts + timedelta(minutes=10)
    assert incident.template.slug == "focus-session" and incident.created_by
    # its page is read-only, and the cancel action stops it
    change = staff_client.get(reverse("admin:synthetics_incident_change", args=[incident.id]))
    assert change.status_code == 200 and b'name="label"' not in change.content
    staff_client.post(
        reverse("admin:synthetics_incident_changelist"),
        {"action": "cancel_incidents", "_selected_action": [incident.id]},
    )
    incident.refresh_from_db()
    assert incident.cancelled_at is not None and incident.ends_at == incident.starts_at


def test_incidents_in_the_admin_follow_the_synthetics_permissions(client, sim_users):
    adder = UserFactory(is_staff=True)
    adder.user_permissions.add(Permission.objects.get(codename="add_incident"))
    client.force_login(adder)
    assert client.get(reverse("admin:synthetics_incident_add")).status_code == 403
    steerer = UserFactory(is_staff=True)
    steerer.user_permissions.add(Permission.objects.get(codename="change_syntheticsettings"))
    client.force_login(steerer)
    assert client.get(reverse("admin:synthetics_incident_add")).status_code == 200
