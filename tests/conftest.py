"""Shared fixtures: the shipped catalogue and settings as engine inputs, a small seeded pool in the
database, and the database vendor. Plain helpers live in tests/helpers.py."""

import pytest
from django.db import connection

from synthetics.engine import Catalogue, GeneratorSettings, PoolMember
from tests.helpers import make_engine_pool, shipped_catalogue, shipped_settings


@pytest.fixture
def engine_catalogue() -> Catalogue:
    return shipped_catalogue()


@pytest.fixture
def engine_pool() -> list[PoolMember]:
    return make_engine_pool()


@pytest.fixture
def default_settings() -> GeneratorSettings:
    return shipped_settings()


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
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run with DATABASE_URL=postgres://...")


@pytest.fixture(autouse=True)
def _no_tidy_backed_off():
    """Each test starts with no table backed off by an earlier test's tidy in this process
    (services.maintenance keeps that for ten minutes: under xdist a worker's earlier test, slowed
    by the others, could leave a table backed off for a later one)."""
    from synthetics.services import maintenance

    maintenance._BACKED_OFF.clear()


@pytest.fixture(autouse=True)
def _fresh_cache(settings, request):
    """A cache of its own for each test: the insights endpoint caches its answer for a minute, and
    the database cache's table is not emptied between transactional tests (live server)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"test-{request.node.nodeid}",
        }
    }


# Fixtures that reach the database: a test that has none of them and no django_db mark cannot
# (pytest-django blocks it), so it gives the same result on every database.
_DATABASE_FIXTURES = frozenset(
    {
        "db",
        "transactional_db",
        "django_db_reset_sequences",
        "django_db_serialized_rollback",
        "live_server",
        "admin_user",
        "admin_client",
        "django_user_model",
    }
)


def pytest_collection_modifyitems(config, items):
    """Mark the tests that need no database `nodb`: CI runs them once, in its PostgreSQL pass, and
    leaves them out of its SQLite pass (`-m "not nodb and not once"`); `make test` runs them all."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("django_db") is None and not fixtures & _DATABASE_FIXTURES:
            item.add_marker(pytest.mark.nodb)
