"""Planned profiles kept in the database (services.planned): a new process answers expectations and
insights from them exactly as the process that planned them did, and a change of anything a plan
depends on (the catalogue, the kind of session, the sample, the engine) plans again."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from django.db import DatabaseError

from synthetics.engine.capacity import _mean_journey_minutes, mean_journey_minutes
from synthetics.engine.expectations import SessionProfile, session_profile
from synthetics.engine.types import GeneratorSettings
from synthetics.models import PlannedProfile, Scene
from synthetics.selectors.run_inputs import catalogue_load
from synthetics.services import activity_backfill, planned, settings_update, sim_users_seed
from synthetics.services.expectations import expectations_report

THEN = datetime(2026, 1, 9, 19, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _new_process():
    """Each test starts as a new process would: nothing kept in memory."""
    _forget()
    yield
    _forget()


def _forget() -> None:
    """What a new process does not have: the answers kept in memory, here and in the engine."""
    planned._KEPT.clear()
    planned._PRUNED.clear()
    planned.generation.cache_clear()
    session_profile.cache_clear()
    _mean_journey_minutes.cache_clear()


@pytest.fixture
def plans(monkeypatch) -> list[tuple]:
    """Each session profile the engine is asked to plan, in order (the planning still happens)."""
    asked: list[tuple] = []

    def counted(*args):
        asked.append(args)
        return session_profile(*args)

    monkeypatch.setattr(planned, "session_profile", counted)
    return asked


@pytest.fixture
def history(db):
    sim_users_seed(count=300, seed=5, today=THEN.date())
    settings_update(sessions_per_min=10, max_per_run=40)
    activity_backfill(hours=1, now=THEN, seed=9)


def _kinds(report) -> list[tuple]:
    return [(c.metric, c.expected, c.low, c.high, c.observed, c.verdict) for c in report.checks]


def test_a_new_process_answers_expectations_exactly_as_the_one_that_planned(
    history, plans, monkeypatch
):
    # given a process that planned the last hour's sessions (and kept them)
    warm = expectations_report(hours=1, now=THEN)
    kept = PlannedProfile.objects.count()
    assert kept == len(plans) > 0
    # when a new process answers, the engine's planning made to fail
    _forget()

    def refused(*args):
        raise AssertionError("planned again")

    monkeypatch.setattr(planned, "session_profile", refused)
    fresh = expectations_report(hours=1, now=THEN)
    # then the same answer, to the last bit, from what was kept
    assert _kinds(fresh) == _kinds(warm)
    assert fresh.summary == warm.summary
    assert PlannedProfile.objects.count() == kept


def test_a_kept_profile_is_the_engines_own(db):
    catalogue = catalogue_load()
    template = catalogue.templates[0]
    personas = (("casual", 1.0),)
    planned_now = planned.kept_session_profile(catalogue, template, 0.15, 0.05, personas)
    _forget()
    read_back = planned.kept_session_profile(catalogue, template, 0.15, 0.05, personas)
    assert read_back == planned_now == session_profile(catalogue, template, 0.15, 0.05, personas)
    assert len(read_back.minutes) == 2000


def test_the_floats_of_a_profile_round_trip():
    profile = SessionProfile(1.5, 0.25, 0.1, 0.3, 4.75, (0.1, 2.0 / 3, 7.0))
    assert SessionProfile.from_floats(profile.to_floats()) == profile


def _changed_catalogue(catalogue):
    template = catalogue.templates[0]
    scene = replace(template.scenes[0], mindblock_rate=template.scenes[0].mindblock_rate + 0.01)
    changed = replace(template, scenes=(scene, *template.scenes[1:]))
    return replace(catalogue, templates=(changed, *catalogue.templates[1:]))


@pytest.mark.parametrize(
    "change",
    ["template", "abandon_rate", "error_rate", "persona", "stop_scenes", "sample", "seed"],
)
def test_each_input_of_a_kind_of_session_has_its_own_kept_profile(db, plans, monkeypatch, change):
    # given one kind of session kept
    catalogue = catalogue_load()
    base = dict(
        catalogue=catalogue,
        template=catalogue.templates[0],
        abandon_rate=0.15,
        error_rate=0.05,
        personas=(("casual", 1.0),),
        stop_scenes=(),
    )
    planned.kept_session_profile(**base)
    # when one of its inputs changes
    other = dict(base)
    if change == "template":
        other["template"] = catalogue.templates[1]
    elif change in ("abandon_rate", "error_rate"):
        other[change] = base[change] + 0.01
    elif change == "persona":
        other["personas"] = (("devoted", 1.0),)
    elif change == "stop_scenes":
        other["stop_scenes"] = (("errored", catalogue.templates[0].scenes[0].slug),)
    else:  # the sample's size or seed: another sample
        name = {"sample": "PROFILE_SAMPLES", "seed": "PROFILE_SEED"}[change]
        monkeypatch.setattr(planned, name, getattr(planned, name) + 1)
    _forget()
    planned.kept_session_profile(**other)
    # then it is planned anew, in a process that had it kept in the database
    assert len(plans) == 2
    assert PlannedProfile.objects.count() == 2


@pytest.mark.parametrize("change", ["catalogue", "engine"])
def test_a_new_catalogue_or_engine_plans_again_and_drops_the_old_rows(
    history, plans, monkeypatch, change
):
    # given the last hour planned and kept
    expectations_report(hours=1, now=THEN)
    first = len(plans)
    old = set(PlannedProfile.objects.values_list("generation", flat=True))
    assert len(old) == 1
    # when the catalogue is edited (a scene's mindblock rate), or the engine's source changes
    if change == "catalogue":
        scene = Scene.objects.order_by("id").first()
        Scene.objects.filter(pk=scene.pk).update(mindblock_rate=scene.mindblock_rate + 0.01)
    else:
        monkeypatch.setattr(planned, "engine_digest", lambda: "another engine")
    _forget()
    expectations_report(hours=1, now=THEN)
    # then every kind of session is planned again, kept under the new generation, the old deleted
    assert len(plans) == 2 * first
    new = set(PlannedProfile.objects.values_list("generation", flat=True))
    assert len(new) == 1 and new != old
    assert PlannedProfile.objects.count() == first


def test_the_generation_follows_the_catalogue(db):
    catalogue = catalogue_load()
    assert planned.generation(catalogue) == planned.generation(catalogue_load())
    assert planned.generation(catalogue) != planned.generation(_changed_catalogue(catalogue))


def test_the_mean_journey_length_is_kept(db, monkeypatch):
    catalogue = catalogue_load()
    settings = GeneratorSettings(abandon_rate=0.2, error_rate=0.04)
    first = planned.kept_mean_journey_minutes(catalogue=catalogue, settings=settings)
    assert first == mean_journey_minutes(catalogue=catalogue, settings=settings)
    _forget()
    monkeypatch.setattr(planned, "mean_journey_minutes", None)  # planning would fail
    assert planned.kept_mean_journey_minutes(catalogue=catalogue, settings=settings) == first
    # other rates: another answer, planned
    monkeypatch.undo()
    other = planned.kept_mean_journey_minutes(
        catalogue=catalogue, settings=replace(settings, abandon_rate=0.3)
    )
    assert other != first and PlannedProfile.objects.count() == 2


def test_a_database_that_refuses_the_write_still_answers(db, monkeypatch):
    catalogue = catalogue_load()

    def refused(*args, **kwargs):
        raise DatabaseError("read-only")

    monkeypatch.setattr(PlannedProfile.objects, "bulk_create", refused)
    answer = planned.kept_session_profile(
        catalogue, catalogue.templates[0], 0.15, 0.05, (("casual", 1.0),)
    )
    assert answer == session_profile(
        catalogue, catalogue.templates[0], 0.15, 0.05, (("casual", 1.0),)
    )
    assert not PlannedProfile.objects.exists()


def test_a_web_process_loads_the_views_and_holidays_as_it_starts():
    import sys

    from synthetics.startup import web_process_ready

    web_process_ready()
    assert "holidays.countries" in sys.modules and "synthetics.api.status" in sys.modules
