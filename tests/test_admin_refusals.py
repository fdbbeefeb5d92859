"""Every admin form and upload turns a refusal into a message on the page, never a 500, and a refused
form changes nothing (issue 21: "every form a message, never a 500").

Each case posts what a person sends who changed one value to something the models or the services
refuse, on top of the page's own values (admin_form_data); the configuration is compared before and
after. The settings page's check against upcoming incidents (issue 21, defect 3) is its own test.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django import forms
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from synthetics.models import (
    Incident,
    Journey,
    JourneyTemplate,
    MindblockType,
    RhythmProfile,
    Scene,
    SimUser,
    SyntheticRun,
    SyntheticSettings,
    User,
)
from synthetics.services import run_manual
from synthetics.services.incidents import incident_create
from synthetics.services.runs import floor_minute
from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

SETTINGS_PAGE = reverse("admin:synthetics_syntheticsettings_change", args=[1])


# --- what a person sends ----------------------------------------------------------------------------


def admin_form_data(page) -> dict:
    """The POST of an admin add or change page `page` (a test client's response) saved as shown:
    every field of its form and of its inlines' forms with the value on the page, and the inlines'
    management forms."""
    data: dict = {"_save": "Save"}
    forms_on_page = [page.context["adminform"].form]
    for inline in page.context.get("inline_admin_formsets", []):
        forms_on_page += [inline.formset.management_form, *inline.formset.forms]
    for form in forms_on_page:
        for bound in form:
            if bound.field.disabled:
                continue
            value, widget = bound.value(), bound.field.widget
            if isinstance(widget, forms.MultiWidget):  # the admin's date + time
                parts = widget.decompress(value) if value is not None else [None] * 2
                for index, part in enumerate(parts):
                    data[f"{bound.html_name}_{index}"] = "" if part is None else str(part)
            elif isinstance(bound.field, forms.BooleanField):
                if value:
                    data[bound.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[bound.html_name] = [str(item) for item in value]
            elif value is not None:
                data[bound.html_name] = str(value)
    return data


def inline_index(page, row) -> int:
    """The index of `row` among the forms of the page's first inline."""
    formset = page.context["inline_admin_formsets"][0].formset
    return next(i for i, form in enumerate(formset.forms) if form.instance.pk == row.pk)


def form_errors(page) -> list[str]:
    """Every error the page's form and inlines show, as text."""
    found = []
    form = page.context["adminform"].form
    found += [message for messages in form.errors.values() for message in messages]
    for inline in page.context.get("inline_admin_formsets", []):
        found += list(inline.formset.non_form_errors())
        for errors in inline.formset.errors:
            found += [message for messages in errors.values() for message in messages]
    return found


def page_messages(page) -> list[str]:
    return [str(message) for message in get_messages(page.wsgi_request)]


def configuration() -> dict:
    """Every row an admin form could change, every column."""
    return {
        model.__name__: sorted(model.objects.values_list(), key=repr)
        for model in (
            SyntheticSettings,
            JourneyTemplate,
            Scene,
            MindblockType,
            RhythmProfile,
            Incident,
            User,
            SimUser,
        )
    }


@pytest.fixture
def staff_client(client) -> Client:
    client.force_login(StaffUserFactory())
    return client


@pytest.fixture
def in_progress(sim_users) -> Journey:
    """A journey in progress (its template's scenes are planned)."""
    run_manual(target=5)
    journey = Journey.objects.filter(status="active").select_related("template").first()
    assert journey is not None
    return journey


def upcoming_incident(**rates) -> Incident:
    now = timezone.now()
    return incident_create(
        starts_at=floor_minute(now) + timedelta(minutes=5),
        minutes=10,
        label="checkout errors",
        now=now,
        **rates,
    )


# --- defect 3: the settings page and upcoming incidents ----------------------------------------------


def test_settings_an_upcoming_incident_refuses_are_a_form_error_with_the_apis_text(staff_client):
    # given an incident in five minutes that sets error_rate 0.3
    upcoming_incident(error_rate=0.3)
    api = APIClient()
    api.force_authenticate(StaffUserFactory())
    page = staff_client.get(SETTINGS_PAGE)
    before = configuration()
    # when abandon_rate 0.8 is saved on the settings page (0.8 + 0.3 > 1 while it applies)
    response = staff_client.post(SETTINGS_PAGE, {**admin_form_data(page), "abandon_rate": "0.8"})
    # then the page comes back with the refusal under abandon_rate, and nothing was saved
    assert response.status_code == 200
    admin_errors = response.context["adminform"].form.errors["abandon_rate"]
    assert "would exceed 1" in admin_errors[0]
    assert configuration() == before
    # and it is word for word what the API answers
    answer = api.post("/api/synthetics/settings", {"abandon_rate": 0.8}, format="json")
    assert answer.status_code == 400
    assert answer.json()["fields"]["abandon_rate"] == list(admin_errors)
    assert configuration() == before


def test_settings_that_fit_the_upcoming_incident_are_saved(staff_client):
    upcoming_incident(error_rate=0.3)
    page = staff_client.get(SETTINGS_PAGE)
    response = staff_client.post(SETTINGS_PAGE, {**admin_form_data(page), "abandon_rate": "0.7"})
    assert response.status_code == 302
    assert SyntheticSettings.objects.get().abandon_rate == 0.7


# --- every form with a refused value -----------------------------------------------------------------


def _change(model, row) -> str:
    return reverse(f"admin:synthetics_{model._meta.model_name}_change", args=[row.pk])


def _add(model) -> str:
    return reverse(f"admin:synthetics_{model._meta.model_name}_add")


def _post_form(client, url: str, **changes) -> object:
    page = client.get(url)
    assert page.status_code == 200
    return client.post(url, {**admin_form_data(page), **changes})


def settings_rates_over_1(client, journey):
    return _post_form(client, SETTINGS_PAGE, abandon_rate="0.99")


def settings_under_an_incident(client, journey):
    assert Incident.objects.exists()  # an upcoming incident at error_rate 0.3 (the test's given)
    return _post_form(client, SETTINGS_PAGE, abandon_rate="0.8")


def settings_not_a_number(client, journey):
    return _post_form(client, SETTINGS_PAGE, error_rate="NaN")


def incident_rates_over_1(client, journey):
    start = timezone.localtime(floor_minute(timezone.now()) + timedelta(minutes=5))
    return client.post(
        _add(Incident),
        {
            "label": "too much",
            "starts_at_0": start.date().isoformat(),
            "starts_at_1": start.time().isoformat(),
            "minutes": "10",
            "abandon_rate": "0.99",  # with the settings' error_rate 0.05: over 1
            "_save": "Save",
        },
    )


def incident_in_the_past(client, journey):
    start = timezone.localtime(floor_minute(timezone.now()) - timedelta(days=2))
    return client.post(
        _add(Incident),
        {
            "label": "long ago",
            "starts_at_0": start.date().isoformat(),
            "starts_at_1": start.time().isoformat(),
            "minutes": "10",
            "error_rate": "0.5",
            "_save": "Save",
        },
    )


def template_negative_popularity(client, journey):
    return _post_form(client, _change(JourneyTemplate, journey.template), popularity="-1")


def template_inline_negative_dwell(client, journey):
    url = _change(JourneyTemplate, journey.template)
    page = client.get(url)
    scene = Scene.objects.filter(template=journey.template).first()
    data = admin_form_data(page)
    data[f"scenes-{inline_index(page, scene)}-dwell_median_seconds"] = "-1"
    return client.post(url, data)


def template_inline_deletes_a_planned_scene(client, journey):
    url = _change(JourneyTemplate, journey.template)
    page = client.get(url)
    scene = Scene.objects.filter(template=journey.template).last()
    data = admin_form_data(page)
    data[f"scenes-{inline_index(page, scene)}-DELETE"] = "on"
    return client.post(url, data)


def template_add_with_a_taken_slug(client, journey):
    page = client.get(_add(JourneyTemplate))
    data = {**admin_form_data(page), "slug": "focus-session", "name": "Again", "popularity": "1"}
    return client.post(_add(JourneyTemplate), data)


def template_delete_with_journeys_in_progress(client, journey):
    url = reverse("admin:synthetics_journeytemplate_delete", args=[journey.template_id])
    return client.post(url, {"post": "yes"})


def scene_rate_over_1(client, journey):
    scene = Scene.objects.filter(template=journey.template).first()
    return _post_form(client, _change(Scene, scene), mindblock_rate="1.5")


def scene_position_taken(client, journey):
    first, second = Scene.objects.filter(template=journey.template).order_by("position")[:2]
    return _post_form(client, _change(Scene, first), position=str(second.position))


def mindblock_negative_weight(client, journey):
    return _post_form(client, _change(MindblockType, MindblockType.objects.first()), weight="-1")


def mindblock_list_negative_weight(client, journey):
    rows = list(MindblockType.objects.order_by("slug"))
    data = {
        "form-TOTAL_FORMS": str(len(rows)),
        "form-INITIAL_FORMS": str(len(rows)),
        "_save": "Save",
    }
    for index, row in enumerate(rows):
        data[f"form-{index}-id"] = str(row.pk)
        data[f"form-{index}-weight"] = "-1" if index == 0 else str(row.weight)
        if row.is_active:
            data[f"form-{index}-is_active"] = "on"
    return client.post(reverse("admin:synthetics_mindblocktype_changelist"), data)


def rhythm_short_hourly(client, journey):
    return _post_form(
        client, _change(RhythmProfile, RhythmProfile.objects.first()), hourly="[1, 2]"
    )


def rhythm_add_not_json(client, journey):
    page = client.get(_add(RhythmProfile))
    data = {
        **admin_form_data(page),
        "slug": "broken",
        "name": "Broken",
        "persona": "nobody",
        "hourly": "not json",
        "weekly": "[1, 1, 1, 1, 1, 1, 1]",
        "holiday_factor": "1",
    }
    return client.post(_add(RhythmProfile), data)


def user_synthetic_and_active(client, journey):
    user = User.objects.get(username="someone")
    return _post_form(client, _change(User, user), is_synthetic="on", is_active="on")


def user_add_passwords_differ(client, journey):
    page = client.get(_add(User))
    data = {
        **admin_form_data(page),
        "username": "newcomer",
        "usable_password": "true",
        "password1": "a long passphrase here",
        "password2": "another long passphrase",
    }
    return client.post(_add(User), data)


def sim_user_unknown_zone(client, journey):
    return _post_form(client, _change(SimUser, journey.sim_user), timezone="Mars/Olympus_Mons")


def sim_user_zero_weight(client, journey):
    return _post_form(client, _change(SimUser, journey.sim_user), activity_weight="0")


def upload_invalid_scenario(client, journey):
    upload = SimpleUploadedFile("s.json", b'{"scenario": 1, "settings": {"sessions_per_min": -1}}')
    return client.post(reverse("admin:synthetics_scenario_import"), {"file": upload, "dry_run": ""})


def upload_not_utf8(client, journey):
    upload = SimpleUploadedFile("s.yaml", b"\xff\xfe\x00 not text")
    return client.post(reverse("admin:synthetics_scenario_import"), {"file": upload})


def run_now_not_a_number(client, journey):
    return client.post(reverse("admin:synthetics_run_now"), {"target": "many"})


# name: (send, where the refusal shows: "form" on the page again, or "message" after a redirect)
CASES: dict[str, tuple[Callable, str]] = {
    "settings: rates over 1": (settings_rates_over_1, "form"),
    "settings: an upcoming incident's rate": (settings_under_an_incident, "form"),
    "settings: not a number": (settings_not_a_number, "form"),
    "incident: rates over 1": (incident_rates_over_1, "form"),
    "incident: in the past": (incident_in_the_past, "form"),
    "template: negative popularity": (template_negative_popularity, "form"),
    "template: inline scene with a negative dwell": (template_inline_negative_dwell, "form"),
    "template: inline deletes a planned scene": (template_inline_deletes_a_planned_scene, "form"),
    "template: add with a taken slug": (template_add_with_a_taken_slug, "form"),
    "template: delete with journeys in progress": (
        template_delete_with_journeys_in_progress,
        "refused",
    ),
    "scene: mindblock rate over 1": (scene_rate_over_1, "form"),
    "scene: a taken position": (scene_position_taken, "form"),
    "mindblock type: negative weight": (mindblock_negative_weight, "form"),
    "mindblock types list: negative weight": (mindblock_list_negative_weight, "list"),
    "rhythm profile: 2 hourly weights": (rhythm_short_hourly, "form"),
    "rhythm profile: add, not JSON": (rhythm_add_not_json, "form"),
    "user: synthetic and active": (user_synthetic_and_active, "form"),
    "user: add, passwords differ": (user_add_passwords_differ, "form"),
    "sim user: unknown time zone": (sim_user_unknown_zone, "form"),
    "sim user: activity weight 0": (sim_user_zero_weight, "form"),
    "scenario upload: invalid": (upload_invalid_scenario, "message"),
    "scenario upload: not UTF-8": (upload_not_utf8, "message"),
    "run now: not a number": (run_now_not_a_number, "message"),
}


@pytest.mark.parametrize("case", CASES)
def test_every_admin_form_shows_a_refused_value_and_changes_nothing(
    staff_client, in_progress, case
):
    # given the page as it is, and the configuration
    send, shown = CASES[case]
    User.objects.create_user("someone", "someone@example.com", "a long passphrase here")
    upcoming_incident(error_rate=0.3)
    before = configuration()
    runs_before = SyntheticRun.objects.count()
    # when the refused value is sent (a 500 would raise here: the test client re-raises it)
    response = send(staff_client, in_progress)
    # then the refusal is on the page, and nothing changed
    if shown == "form":
        assert response.status_code == 200, (response.status_code, response.get("Location"))
        assert form_errors(response), "the page names what was refused"
    elif shown == "list":
        assert response.status_code == 200
        assert any(errors for errors in response.context["cl"].formset.errors)
    elif shown == "refused":
        assert response.status_code in (200, 403)
        assert "journeys in progress" in response.content.decode()
    else:
        assert response.status_code == 302
        assert page_messages(response), "a message says what was refused"
    assert configuration() == before
    assert SyntheticRun.objects.count() == runs_before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sessions_per_min", "٥"),
        ("sessions_per_min", "5.0"),
        ("sessions_per_min", " 5"),
        ("max_per_run", "+5"),
        ("error_rate", "０.1"),
        ("error_rate", "0_1"),
    ],
)
def test_the_settings_form_refuses_what_the_api_refuses(admin_client, field, value):
    # given the settings page as it is
    url = reverse("admin:synthetics_syntheticsettings_change", args=[1])
    data = admin_form_data(admin_client.get(url))
    before = configuration()
    # when one value is written as the API refuses it
    data[field] = value
    response = admin_client.post(url, data)
    # then the form says so under that field and nothing changed
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert configuration() == before


def test_the_incident_page_shows_every_refused_field_at_once(staff_client):
    # given an incident whose rates add up to more than 1 and whose scene does not exist
    start = timezone.localtime(floor_minute(timezone.now()) + timedelta(minutes=5))

    # when it is saved in the admin
    response = staff_client.post(
        _add(Incident),
        {
            "label": "two faults",
            "starts_at_0": start.date().isoformat(),
            "starts_at_1": start.time().isoformat(),
            "minutes": "10",
            "abandon_rate": "0.99",
            "scene": "nope",
            "_save": "Save",
        },
    )

    # then the form comes back with each refusal under its own field, and nothing is saved
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "at most 1 under the incident" in " ".join(errors["error_rate"])
    assert "no scene of any template has the slug 'nope'" in " ".join(errors["scene"])
    assert not Incident.objects.exists()
