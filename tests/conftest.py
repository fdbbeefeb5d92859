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


# CI's SQLite pass runs these modules (marked `sqlite`: `-m "sqlite and not nodb and not once and
# not waits"`); every other test runs on PostgreSQL only. Derived, not chosen by feel:
# scripts/sqlite_relevant_tests.py runs the suite under coverage on PostgreSQL and on SQLite and
# takes the lines of synthetics/ and synthetics_site/ that ran on SQLite and never on PostgreSQL
# (2026-12-07: 178 lines — `connection.vendor` branches, the `as_sqlite` expressions, SQLite's
# inserts, deletes by id and write-lock waits). 38 of the 40 database modules run at least one (the
# writers and the synthetic tag are on every path), so the list is the modules that together run
# every one of them on SQLite: those the script's greedy cover picks (the first nine), and those
# whose subject is a vendor difference (the last four: the tag index, the pool stamp's triggers,
# the status statement, the same golden digest on both). The script exits 1 when a SQLite-only line
# is left to no listed module; tests/test_sqlite_relevant.py catches a module that imports a
# SQLite-branching function by name without being listed.
SQLITE_RELEVANT: list[str] = [
    "tests/test_activity_range.py",
    "tests/test_catalogue_safety.py",
    "tests/test_data_safety.py",
    "tests/test_export.py",
    "tests/test_faults.py",
    "tests/test_reads.py",
    "tests/test_reliability.py",
    "tests/test_scenarios.py",
    "tests/test_target_inspect.py",
    "tests/test_models.py",
    "tests/test_pool_kept.py",
    "tests/test_prepared.py",
    "tests/test_golden.py",
    "tests/test_pool_groups.py",
]


def pytest_collection_modifyitems(config, items):
    """Mark the tests that need no database `nodb` and those of SQLITE_RELEVANT's modules `sqlite`:
    CI runs every test on PostgreSQL and, of those that reach a database, the `sqlite` ones on
    SQLite too; `make test` runs them all on the database DATABASE_URL names."""
    relevant = {config.rootpath / module for module in SQLITE_RELEVANT}
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("django_db") is None and not fixtures & _DATABASE_FIXTURES:
            item.add_marker(pytest.mark.nodb)
        if item.path in relevant:
            item.add_marker(pytest.mark.sqlite)
