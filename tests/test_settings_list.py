"""The generator's settings are listed once (engine.types.GeneratorSettings, GENERATOR_SETTINGS):
the settings row, its ranges, the scenario file's schema, the service and the API all follow it.
The admin's form and the Studio are held to it in test_admin."""

import dataclasses

import pytest

from synthetics.api.settings import SettingsInput, SettingsOutput
from synthetics.engine.types import (
    DEFAULT_SETTINGS,
    GENERATOR_SETTINGS,
    SETTING_NAMES,
    GeneratorSettings,
)
from synthetics.models import SETTING_RANGES, SyntheticSettings
from synthetics.services.scenario_files import SCHEMA
from synthetics.services.settings import settings_update

JSON_TYPES = {bool: "boolean", int: "integer", float: "number"}


def test_the_list_is_the_engines_settings_with_their_kinds():
    assert tuple(field.name for field in dataclasses.fields(GeneratorSettings)) == SETTING_NAMES
    for name, kind in GENERATOR_SETTINGS:
        assert type(getattr(DEFAULT_SETTINGS, name)) is kind, name
    # the engine's defaults are the settings row's (the engine once said rhythm 0, the row 1)
    assert DEFAULT_SETTINGS.rhythm_strength == 1.0


def test_the_settings_row_has_each_setting_with_the_engines_default_and_nothing_else():
    fields = {
        field.name: field
        for field in SyntheticSettings._meta.get_fields()
        # `behaviour`: the behaviour model's parameters (a scenario's), not a generator setting
        if field.name not in {"id", "created_at", "updated_at", "behaviour"}
    }
    assert tuple(fields) == SETTING_NAMES
    for name in SETTING_NAMES:
        assert fields[name].default == getattr(DEFAULT_SETTINGS, name), name
    # every number has a range, and only the numbers
    assert set(SETTING_RANGES) == {name for name, kind in GENERATOR_SETTINGS if kind is not bool}


def test_the_scenario_schema_states_the_same_settings_kinds_and_ranges():
    settings = SCHEMA["properties"]["settings"]
    assert tuple(settings["properties"]) == SETTING_NAMES
    assert tuple(settings["required"]) == SETTING_NAMES
    assert settings["additionalProperties"] is False
    for name, kind in GENERATOR_SETTINGS:
        field = settings["properties"][name]
        assert field["type"] == JSON_TYPES[kind], name
        if kind is not bool:
            assert (field["minimum"], field["maximum"]) == SETTING_RANGES[name], name


def test_the_apis_settings_are_the_list():
    assert tuple(SettingsInput().fields) == SETTING_NAMES
    assert tuple(SettingsOutput().fields) == SETTING_NAMES


@pytest.mark.django_db
def test_the_service_takes_the_settings_by_name_and_refuses_others():
    row = settings_update(sessions_per_min=7, churn_per_month=0.25)
    assert (row.sessions_per_min, row.churn_per_month) == (7, 0.25)
    assert row.setting_values() == {
        **dataclasses.asdict(DEFAULT_SETTINGS),
        "sessions_per_min": 7,
        "churn_per_month": 0.25,
    }
    with pytest.raises(TypeError, match="sessions_per_hour"):
        settings_update(sessions_per_hour=3)
    assert SyntheticSettings.objects.get().sessions_per_min == 7  # nothing changed by the refusal
