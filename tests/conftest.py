"""Shared fixtures: a small seeded pool, the default catalogue, and engine inputs without a database."""

from datetime import UTC, datetime

import pytest
from django.db import connection

from synthetics.engine import (
    Catalogue,
    GeneratorSettings,
    MindblockSpec,
    PoolMember,
    SceneSpec,
    TemplateSpec,
)
from synthetics.engine.population import PERSONAS

T0 = datetime(2026, 1, 9, 19, 0, tzinfo=UTC)


def make_engine_catalogue() -> Catalogue:
    """A catalogue like the default one, built without the database."""
    return Catalogue(
        templates=(
            TemplateSpec(
                1,
                "morning-checkin",
                3.0,
                (
                    SceneSpec(1, "mood-checkin", 1, 30, 0.25),
                    SceneSpec(2, "intention-setting", 2, 60, 0.35),
                    SceneSpec(3, "breathing", 3, 90, 0.2),
                ),
            ),
            TemplateSpec(
                2,
                "focus-session",
                2.5,
                (
                    SceneSpec(4, "warmup", 1, 40, 0.3),
                    SceneSpec(5, "deep-work-prompt", 2, 120, 0.6),
                    SceneSpec(6, "reflection", 3, 60, 0.4),
                    SceneSpec(7, "next-steps", 4, 45, 0.3),
                ),
            ),
            TemplateSpec(
                3,
                "first-steps",
                1.0,
                (
                    SceneSpec(8, "welcome", 1, 30, 0.1),
                    SceneSpec(9, "profile-setup", 2, 60, 0.3),
                    SceneSpec(10, "pick-goals", 3, 45, 0.3),
                    SceneSpec(11, "scene-tour", 4, 60, 0.4),
                    SceneSpec(12, "notifications", 5, 20, 0.1),
                ),
            ),
        ),
        mindblocks=(
            MindblockSpec(1, "procrastination", 3.0),
            MindblockSpec(2, "self-doubt", 2.5),
            MindblockSpec(3, "overwhelm", 2.0),
        ),
    )


def make_engine_pool() -> list[PoolMember]:
    """3,000 simulated users with the personas' activity weights."""
    return [
        PoolMember(
            sim_user_id=i,
            user_id=10_000 + i,
            persona=PERSONAS[i % len(PERSONAS)].slug,
            activity_weight=PERSONAS[i % len(PERSONAS)].activity_weight,
        )
        for i in range(1, 3001)
    ]


@pytest.fixture
def engine_catalogue() -> Catalogue:
    return make_engine_catalogue()


@pytest.fixture
def engine_pool() -> list[PoolMember]:
    return make_engine_pool()


@pytest.fixture
def default_settings() -> GeneratorSettings:
    return GeneratorSettings()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Tests create many accounts; the production hasher is slow on purpose."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sim_users(db):
    """A small pool of simulated users in the database (the default catalogue comes from migrations)."""
    from synthetics.services import sim_users_seed

    sim_users_seed(count=40, seed=7)


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://...")


def database_state() -> tuple:
    """Everything an API request could change: the settings row and the row counts."""
    from synthetics.models import (
        Journey,
        JourneySceneEvent,
        MindblockEvent,
        SyntheticRun,
        SyntheticSettings,
    )

    return (
        tuple(SyntheticSettings.objects.values_list().get()),
        SyntheticRun.objects.count(),
        Journey.objects.count(),
        JourneySceneEvent.objects.count(),
        MindblockEvent.objects.count(),
    )
