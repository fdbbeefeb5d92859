"""Catalogue edits while sessions are in progress (issue 21, defect 2).

A session's plan names its template, its scenes (id, slug, position) and its mindblock types (id,
slug), and runs write it step by step for minutes. An edit that would make a step still to come
point at a row that is gone or say what the catalogue no longer says is refused, with one message,
in the admin's forms, inlines, delete views and bulk action and in a scenario import, under the
generator lock; an edit that strands nothing is saved. Either way the runs after it go on
succeeding. And the catalogue is steered with the settings' change permission.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client
from django.urls import reverse

from synthetics.errors import GeneratorBusy, RunFailed
from synthetics.models import (
    Journey,
    JourneySceneEvent,
    JourneyTemplate,
    MindblockType,
    RhythmProfile,
    Scene,
    SyntheticRun,
    SyntheticSettings,
)
from synthetics.services import run_manual, run_scheduled
from synthetics.services.catalogue import CatalogueInUse, catalogue_change_check
from synthetics.services.scenarios import ScenarioInvalid, scenario_export, scenario_import
from tests.factories import MindblockTypeFactory, SceneFactory, StaffUserFactory, UserFactory
from tests.helpers import T0
from tests.test_admin_refusals import admin_form_data, form_errors, inline_index
from tests.test_faults import generator_lock_held

pytestmark = pytest.mark.django_db
transactional = pytest.mark.django_db(transaction=True, serialized_rollback=True)
MINUTE = timedelta(minutes=1)
IN_PROGRESS = "journeys in progress will still write it"
RUNS_AFTER = 30  # minutes of scheduled runs after T0: the sessions in progress end well within


@pytest.fixture
def staff_client(client) -> Client:
    client.force_login(StaffUserFactory())
    return client


@pytest.fixture
def wrap_up(sim_users) -> Scene:
    """The issue's steps: a last scene added to a template, then sessions that plan it.

    Only focus-session is active, every session completes (so each visits the new last scene),
    visits last about a minute (a session is in progress at T0 and over well within RUNS_AFTER
    minutes), every visit reports a mindblock and only `fatigue` is active (so the sessions plan
    it). Seeded: the same sessions every time."""
    template = JourneyTemplate.objects.get(slug="focus-session")
    JourneyTemplate.objects.exclude(pk=template.pk).update(is_active=False)
    MindblockType.objects.exclude(slug="fatigue").update(is_active=False)
    Scene.objects.filter(template=template).update(dwell_median_seconds=60, mindblock_rate=1)
    SyntheticSettings.objects.update(error_rate=0, abandon_rate=0)
    last = Scene.objects.filter(template=template).order_by("-position").first()
    scene = SceneFactory(
        template=template,
        position=last.position + 1,
        slug="wrap-up",
        name="Wrap up",
        dwell_median_seconds=60,
        mindblock_rate=1,
    )
    run_manual(now=T0, target=5, seed=21)
    planned = Journey.objects.filter(status="active", template=template)
    assert planned.count() == 5
    assert all(any(s["scene_id"] == scene.pk for s in j.plan["steps"]) for j in planned)
    return scene


def runs_after(minutes: int = RUNS_AFTER) -> list[str]:
    """Scheduled runs minute by minute after T0: each one's status, or its failure."""
    outcomes = []
    for minute in range(1, minutes + 1):
        try:
            outcomes.append(run_scheduled(now=T0 + minute * MINUTE, seed=minute).status)
        except RunFailed as error:
            outcomes.append(f"failed: {error}")
    return outcomes


def assert_runs_go_on(template: JourneyTemplate, started: set) -> None:
    """Every run after the edit succeeds and the sessions that were in progress end as planned."""
    assert runs_after() == ["succeeded"] * RUNS_AFTER
    ended = Journey.objects.filter(pk__in=started)
    assert {j.status for j in ended} == {"completed"}, "each one finished its plan"
    assert not SyntheticRun.objects.filter(status="failed").exists()


def template_page(client, template) -> tuple[str, object, dict]:
    url = reverse("admin:synthetics_journeytemplate_change", args=[template.pk])
    page = client.get(url)
    assert page.status_code == 200
    return url, page, admin_form_data(page)


# --- the steps, and the runs after -----------------------------------------------------------


@transactional
def test_deleting_a_planned_scene_in_the_inline_is_refused_and_the_runs_go_on(
    staff_client, wrap_up
):
    # given sessions in progress that plan the template's new last scene
    started = set(Journey.objects.filter(status="active").values_list("pk", flat=True))
    url, page, data = template_page(staff_client, wrap_up.template)
    # when it is deleted from the template's inline
    data[f"scenes-{inline_index(page, wrap_up)}-DELETE"] = "on"
    response = staff_client.post(url, data)
    # then the page says why, and the scene is still there
    assert response.status_code == 200
    assert any(IN_PROGRESS in error for error in form_errors(response)), form_errors(response)
    assert Scene.objects.filter(pk=wrap_up.pk).exists()
    # and the runs after it write the sessions to their planned end
    assert_runs_go_on(wrap_up.template, started)
    assert JourneySceneEvent.objects.filter(scene=wrap_up, event_type="journey_completed").count()


@transactional
def test_edits_that_strand_nothing_are_saved_and_the_runs_go_on(staff_client, wrap_up):
    # given sessions in progress on focus-session, and another template to start new ones on
    started = set(Journey.objects.filter(status="active").values_list("pk", flat=True))
    JourneyTemplate.objects.filter(slug="morning-checkin").update(is_active=True)
    url, page, data = template_page(staff_client, wrap_up.template)
    # when its label, a scene's label and dwell change, a scene is added at the end and the
    # template is deactivated, all in one save of its page
    index = inline_index(page, wrap_up)
    data.update(
        {
            "name": "Deep work",
            f"scenes-{index}-name": "Wrapping up",
            f"scenes-{index}-dwell_median_seconds": "9",
            "scenes-TOTAL_FORMS": str(int(data["scenes-TOTAL_FORMS"]) + 1),
            "scenes-5-position": str(wrap_up.position + 1),
            "scenes-5-slug": "debrief",
            "scenes-5-name": "Debrief",
            "scenes-5-dwell_median_seconds": "60",
            "scenes-5-mindblock_rate": "0",
            "scenes-5-dropoff_weight": "1",
            "scenes-5-error_weight": "1",
            "scenes-5-template": str(wrap_up.template_id),
        }
    )
    data.pop("is_active")
    response = staff_client.post(url, data)
    # then it is saved
    assert response.status_code == 302, form_errors(response)
    template = JourneyTemplate.objects.get(pk=wrap_up.template_id)
    assert (template.name, template.is_active) == ("Deep work", False)
    assert Scene.objects.get(pk=wrap_up.pk).name == "Wrapping up"
    assert Scene.objects.filter(template=template, slug="debrief").exists()
    # and the sessions in progress end as they planned; no new one starts on the template
    assert_runs_go_on(template, started)
    assert not Journey.objects.filter(template=template).exclude(pk__in=started).exists()


# --- what is refused in the admin -----------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"position": "9"},  # moved after the others
        {"slug": "closing"},
    ],
)
def test_a_planned_scene_keeps_its_place_and_slug_in_the_inline(staff_client, wrap_up, change):
    url, page, data = template_page(staff_client, wrap_up.template)
    index = inline_index(page, wrap_up)
    data.update({f"scenes-{index}-{name}": value for name, value in change.items()})
    data[f"scenes-{index}-name"] = "Wrapping up"  # a change that alone would be saved
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert any(IN_PROGRESS in error for error in form_errors(response))
    scene = Scene.objects.get(pk=wrap_up.pk)
    assert (scene.position, scene.slug, scene.name) == (wrap_up.position, "wrap-up", "Wrap up")


def test_reordering_two_planned_scenes_is_refused(staff_client, wrap_up):
    # moving the first scene to the end and the others up one each
    url, page, data = template_page(staff_client, wrap_up.template)
    scenes = list(Scene.objects.filter(template=wrap_up.template).order_by("position"))
    for scene in scenes:
        new = scenes[-1].position + 1 if scene == scenes[0] else scene.position - 1
        data[f"scenes-{inline_index(page, scene)}-position"] = str(new)
    response = staff_client.post(url, data)
    assert response.status_code == 200
    assert any(IN_PROGRESS in error for error in form_errors(response))
    after = list(Scene.objects.filter(template=wrap_up.template).order_by("position"))
    assert [(s.pk, s.position) for s in after] == [(s.pk, s.position) for s in scenes]


@pytest.mark.parametrize("field", ["position", "slug", "template"])
def test_the_scenes_own_page_refuses_the_same_changes(staff_client, wrap_up, field):
    other = JourneyTemplate.objects.get(slug="morning-checkin")
    value = {"position": "42", "slug": "closing", "template": str(other.pk)}[field]
    url = reverse("admin:synthetics_scene_change", args=[wrap_up.pk])
    page = staff_client.get(url)
    response = staff_client.post(url, {**admin_form_data(page), field: value})
    assert response.status_code == 200
    assert any(IN_PROGRESS in e for e in response.context["adminform"].form.errors[field])
    scene = Scene.objects.get(pk=wrap_up.pk)
    assert (scene.template_id, scene.position, scene.slug) == (
        wrap_up.template_id,
        wrap_up.position,
        "wrap-up",
    )


def test_the_scenes_own_page_saves_what_only_new_sessions_read(staff_client, wrap_up):
    url = reverse("admin:synthetics_scene_change", args=[wrap_up.pk])
    page = staff_client.get(url)
    changes = {"name": "Closing words", "dwell_median_seconds": "30", "mindblock_rate": "0.2"}
    response = staff_client.post(url, {**admin_form_data(page), **changes})
    assert response.status_code == 302
    scene = Scene.objects.get(pk=wrap_up.pk)
    assert (scene.name, scene.dwell_median_seconds, scene.mindblock_rate) == (
        "Closing words",
        30,
        0.2,
    )


def _delete_refused(client, model, row) -> None:
    """The delete page says why and offers no confirmation; confirming anyway and the list's bulk
    delete leave the row where it is."""
    name = model._meta.model_name
    delete = reverse(f"admin:synthetics_{name}_delete", args=[row.pk])
    page = client.get(delete)
    assert page.status_code == 200
    assert IN_PROGRESS in page.content.decode()
    assert 'name="post"' not in page.content.decode(), "no button to confirm"
    confirmed = client.post(delete, {"post": "yes"})
    assert confirmed.status_code in (200, 403)
    assert model.objects.filter(pk=row.pk).exists()
    bulk = client.post(
        reverse(f"admin:synthetics_{name}_changelist"),
        {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"},
    )
    assert bulk.status_code in (200, 403)
    assert IN_PROGRESS in bulk.content.decode()
    assert model.objects.filter(pk=row.pk).exists()


def test_a_planned_scene_is_not_deleted_from_its_page_or_the_list(staff_client, wrap_up):
    _delete_refused(staff_client, Scene, wrap_up)


def test_a_template_with_journeys_in_progress_is_neither_deleted_nor_renamed(staff_client, wrap_up):
    _delete_refused(staff_client, JourneyTemplate, wrap_up.template)
    url, _, data = template_page(staff_client, wrap_up.template)
    response = staff_client.post(url, {**data, "slug": "deep-work"})
    assert response.status_code == 200
    assert any(IN_PROGRESS in e for e in response.context["adminform"].form.errors["slug"])
    assert JourneyTemplate.objects.get(pk=wrap_up.template_id).slug == "focus-session"


def test_a_planned_mindblock_type_is_not_deleted_or_renamed_but_may_be_deactivated(
    staff_client, wrap_up
):
    # given the sessions in progress report `fatigue` (the only active type)
    fatigue = MindblockType.objects.get(slug="fatigue")
    assert all(
        any(step["mindblock_id"] == fatigue.pk for step in journey.plan["steps"])
        for journey in Journey.objects.filter(status="active")
    )
    # then it is neither deleted nor given another slug
    _delete_refused(staff_client, MindblockType, fatigue)
    url = reverse("admin:synthetics_mindblocktype_change", args=[fatigue.pk])
    data = admin_form_data(staff_client.get(url))
    response = staff_client.post(url, {**data, "slug": "tiredness"})
    assert response.status_code == 200
    assert MindblockType.objects.get(pk=fatigue.pk).slug == "fatigue"
    # but deactivated (no new session reports it) and renamed in words
    response = staff_client.post(url, {**data, "name": "Tiredness", "is_active": ""})
    assert response.status_code == 302
    fatigue.refresh_from_db()
    assert (fatigue.name, fatigue.is_active) == ("Tiredness", False)
    # and a type no plan names is deleted
    unused = MindblockTypeFactory(slug="boredom")
    delete = reverse("admin:synthetics_mindblocktype_delete", args=[unused.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 302
    assert not MindblockType.objects.filter(pk=unused.pk).exists()


def test_a_rhythm_profile_strands_nothing_and_is_deleted(staff_client, wrap_up):
    profile = RhythmProfile.objects.order_by("slug").last()
    delete = reverse("admin:synthetics_rhythmprofile_delete", args=[profile.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 302
    assert not RhythmProfile.objects.filter(pk=profile.pk).exists()


def test_a_scene_of_a_template_without_journeys_in_progress_is_moved_and_deleted(
    staff_client, wrap_up
):
    # given a template nobody is in (morning-checkin) with a scene no event names
    template = JourneyTemplate.objects.get(slug="morning-checkin")
    assert not Journey.objects.filter(template=template).exists()
    spare = SceneFactory(template=template, position=50, slug="spare")
    url, page, data = template_page(staff_client, template)
    data[f"scenes-{inline_index(page, spare)}-position"] = "60"
    assert staff_client.post(url, data).status_code == 302
    assert Scene.objects.get(pk=spare.pk).position == 60
    url, page, data = template_page(staff_client, template)
    data[f"scenes-{inline_index(page, spare)}-DELETE"] = "on"
    assert staff_client.post(url, data).status_code == 302
    assert not Scene.objects.filter(pk=spare.pk).exists()


def test_once_the_journeys_have_ended_their_scenes_may_move(staff_client, wrap_up):
    # given no new session (0 a minute) and runs until those in progress have ended
    SyntheticSettings.objects.update(sessions_per_min=0)
    assert runs_after() == ["succeeded"] * RUNS_AFTER
    assert not Journey.objects.filter(status="active").exists()
    # when the planned scene is moved after the others
    url, page, data = template_page(staff_client, wrap_up.template)
    data[f"scenes-{inline_index(page, wrap_up)}-position"] = "9"
    response = staff_client.post(url, data)
    # then it is saved
    assert response.status_code == 302
    assert Scene.objects.get(pk=wrap_up.pk).position == 9


def test_a_scenario_import_refuses_it_with_the_same_message(staff_client, wrap_up):
    # the admin's words
    url, page, data = template_page(staff_client, wrap_up.template)
    data[f"scenes-{inline_index(page, wrap_up)}-DELETE"] = "on"
    admin_said = [e for e in form_errors(staff_client.post(url, data)) if IN_PROGRESS in e]
    # the import's
    document = scenario_export()
    entry = next(j for j in document["journeys"] if j["slug"] == "focus-session")
    entry["scenes"] = [s for s in entry["scenes"] if s["slug"] != "wrap-up"]
    with pytest.raises(ScenarioInvalid) as refused:
        scenario_import(document, now=T0)
    import_said = [e for e in refused.value.errors if IN_PROGRESS in e]
    assert len(admin_said) == len(import_said) == 1
    assert import_said[0].endswith(": " + admin_said[0])
    assert Scene.objects.filter(pk=wrap_up.pk).exists()


def test_a_scenario_import_refuses_reordering_planned_scenes(wrap_up):
    # given sessions in progress that planned focus-session's scenes in their order
    before = dict(Scene.objects.filter(template=wrap_up.template).values_list("pk", "position"))
    document = scenario_export()
    entry = next(j for j in document["journeys"] if j["slug"] == "focus-session")
    # when a file swaps its last two scenes
    entry["scenes"][-2], entry["scenes"][-1] = entry["scenes"][-1], entry["scenes"][-2]
    with pytest.raises(ScenarioInvalid) as refused:
        scenario_import(document, now=T0)
    # then it is refused with the catalogue's words, and no scene moved
    assert any(IN_PROGRESS in error for error in refused.value.errors), refused.value.errors
    after = dict(Scene.objects.filter(template=wrap_up.template).values_list("pk", "position"))
    assert after == before
    # and once the sessions have ended, the same file is taken
    assert runs_after() == ["succeeded"] * RUNS_AFTER
    Journey.objects.filter(status="active").delete()
    scenario_import(document, now=T0 + RUNS_AFTER * MINUTE)
    moved = Scene.objects.get(pk=wrap_up.pk)
    assert moved.position == max(before.values()) - 1


def test_the_rule_as_a_service(wrap_up):
    with pytest.raises(CatalogueInUse, match=IN_PROGRESS):
        catalogue_change_check(row=wrap_up, delete=True)
    with pytest.raises(CatalogueInUse, match=IN_PROGRESS):
        catalogue_change_check(row=wrap_up, changed=["position"])
    with pytest.raises(CatalogueInUse, match=IN_PROGRESS):
        catalogue_change_check(row=wrap_up.template, changed=["slug"])
    catalogue_change_check(row=wrap_up, changed=["name", "dwell_median_seconds"])
    catalogue_change_check(row=wrap_up.template, changed=["is_active", "popularity", "name"])


# --- the generator lock ------------------------------------------------------------------------------


@transactional
def test_the_check_waits_for_the_generator_lock_and_says_busy(
    staff_client, settings, postgres_only
):
    # given a run elsewhere holds the generator lock, and the admin waits half a second for it
    settings.SYNTHETICS_MANUAL_LOCK_WAIT_SECONDS = 0.5
    template = JourneyTemplate.objects.get(slug="morning-checkin")
    spare = SceneFactory(template=template, position=50, slug="spare")
    url, page, data = template_page(staff_client, template)
    data[f"scenes-{inline_index(page, spare)}-DELETE"] = "on"
    with generator_lock_held():
        # when a scene is deleted, then the check said busy instead of looking without the lock
        with pytest.raises(GeneratorBusy), transaction.atomic():
            catalogue_change_check(row=spare, delete=True)
        response = staff_client.post(url, data)
    assert response.status_code == 200
    assert any("busy" in error for error in form_errors(response))
    assert Scene.objects.filter(pk=spare.pk).exists()


# --- the permission ---------------------------------------------------------------------------------

CATALOGUE = ("journeytemplate", "scene", "mindblocktype", "rhythmprofile")


def _catalogue_editor(*, settings_too: bool):
    """Staff with every permission on the catalogue's models (and the settings' change one)."""
    user = UserFactory(is_staff=True)
    codenames = [
        f"{action}_{model}" for model in CATALOGUE for action in ("view", "add", "change", "delete")
    ]
    if settings_too:
        codenames.append("change_syntheticsettings")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return user


@pytest.mark.parametrize("model", [JourneyTemplate, Scene, MindblockType, RhythmProfile])
def test_catalogue_edits_need_the_settings_change_permission(client, model):
    name = model._meta.model_name
    row = model.objects.order_by("pk").first()
    change = reverse(f"admin:synthetics_{name}_change", args=[row.pk])
    before = list(model.objects.values_list())
    # given staff with every catalogue permission but not the settings' one
    client.force_login(_catalogue_editor(settings_too=False))
    page = client.get(change)
    data = admin_form_data(page)
    # then they see the catalogue read-only: no save, no add, no delete, no bulk delete or edit
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert client.post(change, data).status_code == 403
    assert client.get(reverse(f"admin:synthetics_{name}_add")).status_code == 403
    delete = reverse(f"admin:synthetics_{name}_delete", args=[row.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    listing = client.get(reverse(f"admin:synthetics_{name}_changelist"))
    assert listing.status_code == 200
    assert "delete_selected" not in listing.content.decode()
    assert listing.context["cl"].formset is None
    assert list(model.objects.values_list()) == before
    # and with the settings' change permission they edit it
    client.force_login(_catalogue_editor(settings_too=True))
    page = client.get(change)
    assert 'name="_save"' in page.content.decode()
    assert client.post(change, {**admin_form_data(page), "name": "Renamed"}).status_code == 302
    assert model.objects.get(pk=row.pk).name == "Renamed"


# --- the catalogue stays runnable ---------------------------------------------------------------------

NOT_RUNNABLE = "no run could start a session"


@pytest.fixture
def only_template(db) -> JourneyTemplate:
    """One template a run can start a session from; the others inactive, no session in progress."""
    template = JourneyTemplate.objects.get(slug="focus-session")
    JourneyTemplate.objects.exclude(pk=template.pk).update(is_active=False)
    return template


@pytest.mark.parametrize(
    "change", [{"is_active": None}, {"popularity": "0"}], ids=["deactivated", "popularity 0"]
)
def test_the_last_template_a_run_can_start_from_is_kept_so(staff_client, only_template, change):
    # given the change page of the only active template
    url, _, data = template_page(staff_client, only_template)
    for field, value in change.items():
        data.pop(field, None) if value is None else data.update({field: value})
    # when it is saved deactivated, or with a popularity of 0
    response = staff_client.post(url, data)
    # then the page says why and nothing changed; the runs go on starting sessions
    assert response.status_code == 200
    assert any(NOT_RUNNABLE in error for error in form_errors(response)), form_errors(response)
    only_template.refresh_from_db()
    assert only_template.is_active and only_template.popularity > 0
    assert run_scheduled(now=T0, seed=1).status == "succeeded"


def test_the_list_edit_keeps_the_last_template_too(staff_client, only_template):
    # given the template list with its editable columns
    changelist = reverse("admin:synthetics_journeytemplate_changelist")
    page = staff_client.get(changelist)
    formset = page.context["cl"].formset
    data = {
        f"form-{key}": value
        for key, value in (
            ("TOTAL_FORMS", len(formset.forms)),
            ("INITIAL_FORMS", len(formset.forms)),
        )
    }
    for index, form in enumerate(formset.forms):
        data[f"form-{index}-id"] = form.instance.pk
        data[f"form-{index}-popularity"] = form.instance.popularity
        if form.instance.is_active and form.instance.pk != only_template.pk:
            data[f"form-{index}-is_active"] = "on"
    data["_save"] = "Save"
    # when the only active template is unticked
    response = staff_client.post(changelist, data)
    # then it stays active
    assert response.status_code == 200
    assert NOT_RUNNABLE in response.content.decode()
    only_template.refresh_from_db()
    assert only_template.is_active


def test_the_last_scenes_of_the_last_template_are_kept(staff_client, only_template):
    # given the only active template's page
    url, page, data = template_page(staff_client, only_template)
    scenes = list(Scene.objects.filter(template=only_template))
    # when every scene is deleted in the inline
    for scene in scenes:
        data[f"scenes-{inline_index(page, scene)}-DELETE"] = "on"
    response = staff_client.post(url, data)
    # then they stay
    assert response.status_code == 200
    assert any(NOT_RUNNABLE in error for error in form_errors(response)), form_errors(response)
    assert Scene.objects.filter(template=only_template).count() == len(scenes)
    # and deleting the template (delete page) is refused with the same words
    delete = reverse("admin:synthetics_journeytemplate_delete", args=[only_template.pk])
    assert NOT_RUNNABLE in staff_client.get(delete).content.decode()
    staff_client.post(delete, {"post": "yes"})
    assert JourneyTemplate.objects.filter(pk=only_template.pk).exists()


def test_a_catalogue_that_cannot_run_already_may_be_mended_one_edit_at_a_time(
    staff_client, only_template
):
    # given no template a run can start from
    JourneyTemplate.objects.update(is_active=False)
    other = JourneyTemplate.objects.get(slug="morning-checkin")
    url, _, data = template_page(staff_client, other)
    # when one is edited (popularity) without making it runnable yet
    data["popularity"] = "2.5"
    response = staff_client.post(url, data)
    # then it is saved: only a change that takes the last runnable template away is refused
    assert response.status_code == 302, form_errors(response)
    other.refresh_from_db()
    assert other.popularity == 2.5


def test_an_export_imported_again_moves_no_scene_even_with_gaps_in_their_positions(wrap_up):
    # given sessions in progress that planned a template whose last scene sits after a gap
    Scene.objects.filter(pk=wrap_up.pk).update(position=wrap_up.position + 7)
    before = dict(Scene.objects.values_list("pk", "position"))
    # when the export is imported again while they are in progress
    plan = scenario_import(scenario_export(), now=T0)
    # then nothing moved and nothing was refused
    assert dict(Scene.objects.values_list("pk", "position")) == before
    assert not [change for change in plan.changes if "scenes in the order" in change]


def test_the_list_edit_judges_its_rows_together(staff_client, only_template):
    # given two templates a run can start from
    other = JourneyTemplate.objects.get(slug="morning-checkin")
    JourneyTemplate.objects.filter(pk=other.pk).update(is_active=True)
    changelist = reverse("admin:synthetics_journeytemplate_changelist")
    formset = staff_client.get(changelist).context["cl"].formset
    data = {"form-TOTAL_FORMS": len(formset.forms), "form-INITIAL_FORMS": len(formset.forms)}
    for index, form in enumerate(formset.forms):
        data[f"form-{index}-id"] = form.instance.pk
        # when both are switched off in one save (one to popularity 0, one inactive)
        data[f"form-{index}-popularity"] = 0 if form.instance.pk == only_template.pk else 1
        if form.instance.pk == only_template.pk:
            data[f"form-{index}-is_active"] = "on"
    data["_save"] = "Save"
    response = staff_client.post(changelist, data)
    # then the save is refused as a whole
    assert response.status_code == 200
    assert NOT_RUNNABLE in response.content.decode()
    assert JourneyTemplate.objects.get(pk=only_template.pk).popularity > 0
    assert JourneyTemplate.objects.get(pk=other.pk).is_active


@pytest.mark.parametrize(
    ("model", "field", "value"),
    [
        (Scene, "dwell_median_seconds", "1e20"),
        (Scene, "dropoff_weight", "1e308"),
        (JourneyTemplate, "popularity", "1e308"),
        (MindblockType, "weight", "1e308"),
    ],
)
def test_the_admin_keeps_the_catalogue_within_the_schemas_bounds(staff_client, model, field, value):
    # given a catalogue row's change page
    row = model.objects.order_by("pk").first()
    url = reverse(f"admin:synthetics_{model._meta.model_name}_change", args=[row.pk])
    data = admin_form_data(staff_client.get(url))
    # when a value no run can use is saved (it overflowed the engine's draws: every run failed)
    data[field] = value
    response = staff_client.post(url, data)
    # then the form says so and nothing changed
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert getattr(model.objects.get(pk=row.pk), field) == getattr(row, field)
