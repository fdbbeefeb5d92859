"""The CLI on a machine not set up yet: a missing or unreachable database, an unmigrated file, a closed pipe.

Each test runs `manage.py` in a subprocess with a database of its own (never the test database), and
checks the one line a new user reads instead of a traceback.
"""

import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOT_SET_UP = re.compile(
    r"^CommandError: The database at (?P<where>.+) is not set up \(\d+ migrations? not applied\): "
    r'run "manage.py migrate" first \(make run does it\)\.$'
)


def manage_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """The environment of a fresh checkout: SQLite under tmp_path unless DATABASE_URL is given."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "SQLITE_PATH", "REDIS_URL"}
    }
    env["SYNTHETICS_LOCAL_DIR"] = str(tmp_path)
    env.update(overrides)
    return env


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess) -> str:
    """The command failed with exactly one line on stderr and no traceback; return that line."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


# --- database_ensure on PostgreSQL ------------------------------------------------------------------


def server_url(name: str) -> str:
    """DATABASE_URL of the tests' PostgreSQL server, naming database `name` instead."""
    return urlsplit(os.environ["DATABASE_URL"])._replace(path=f"/{name}").geturl()


def maintenance_connection() -> psycopg.Connection:
    parts = dj_database_url.parse(os.environ["DATABASE_URL"])
    params = {
        "host": parts.get("HOST"),
        "port": parts.get("PORT"),
        "user": parts.get("USER"),
        "password": parts.get("PASSWORD"),
    }
    return psycopg.connect(
        dbname="postgres", autocommit=True, **{k: v for k, v in params.items() if v}
    )


def database_exists(name: str) -> bool:
    with maintenance_connection() as connection:
        row = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return row is not None


@pytest.fixture
def throwaway_database(postgres_only) -> Iterator[str]:
    """The name of a database that does not exist yet on the tests' server, dropped afterwards."""
    name = f"synthetics_ensure_test_{os.getpid()}"
    drop = f'DROP DATABASE IF EXISTS "{name}"'
    with maintenance_connection() as connection:
        connection.execute(drop)
    try:
        yield name
    finally:
        with maintenance_connection() as connection:
            connection.execute(drop)


def test_database_ensure_creates_a_missing_postgresql_database(throwaway_database, tmp_path):
    # given a DATABASE_URL naming a database the server does not have
    env = manage_env(tmp_path, DATABASE_URL=server_url(throwaway_database))
    # when
    result = manage("database_ensure", env=env)
    # then it is created, and said so in one line
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        f'database_ensure: created PostgreSQL database "{throwaway_database}".\n'
    )
    assert database_exists(throwaway_database)


def test_database_ensure_reports_an_existing_postgresql_database(throwaway_database, tmp_path):
    # given the database exists already
    with maintenance_connection() as connection:
        connection.execute(f'CREATE DATABASE "{throwaway_database}"')
    env = manage_env(tmp_path, DATABASE_URL=server_url(throwaway_database))
    # when
    result = manage("database_ensure", env=env)
    # then it is left alone and reported ready
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(
        rf'database_ensure: PostgreSQL database "{throwaway_database}" at \S+ is ready\.\n',
        result.stdout,
    )


def test_commands_point_at_database_ensure_when_the_database_is_missing(
    throwaway_database, tmp_path
):
    env = manage_env(tmp_path, DATABASE_URL=server_url(throwaway_database))
    result = manage("api_token", "admin", env=env)
    line = assert_one_line_error(result)
    assert f'PostgreSQL database "{throwaway_database}" does not exist' in line
    assert 'run "manage.py database_ensure"' in line
    assert not database_exists(throwaway_database), "only database_ensure creates it"


@pytest.mark.parametrize("command", [["database_ensure"], ["api_token", "admin"]])
def test_an_unreachable_server_is_one_line_saying_what_to_do(command, tmp_path):
    # given nothing listens on port 1
    env = manage_env(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:1/synth_helper_cmd_none")
    # when
    result = manage(*command, env=env)
    # then
    line = assert_one_line_error(result)
    assert line.startswith("CommandError: cannot reach PostgreSQL at 127.0.0.1:1 ")
    assert "start PostgreSQL" in line
    assert "DATABASE_URL" in line
    assert result.stdout == ""


# --- database_ensure on SQLite ----------------------------------------------------------------------


def test_database_ensure_creates_the_sqlite_folder(tmp_path):
    # given SQLITE_PATH in a folder that does not exist yet
    path = tmp_path / "data" / "nested" / "synthetics.sqlite3"
    env = manage_env(tmp_path, SQLITE_PATH=str(path))
    # when it runs twice
    first = manage("database_ensure", env=env)
    second = manage("database_ensure", env=env)
    # then the folder is made once, and each run says so in one line
    assert first.returncode == 0, first.stderr
    assert first.stdout == (
        f"database_ensure: created the folder {path.parent} for the SQLite database {path}.\n"
    )
    assert path.parent.is_dir()
    assert second.returncode == 0, second.stderr
    assert second.stdout == f"database_ensure: the folder of the SQLite database {path} is ready.\n"


# --- a never-migrated SQLite file -------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        ["seed_sim_users"],
        ["run_synthetics"],
        ["backfill_activity", "--hours", "1"],
        ["api_token", "admin"],
        ["bootstrap"],
    ],
)
def test_commands_refuse_a_database_never_migrated(command, tmp_path):
    # given an empty SQLite file
    path = tmp_path / "empty.sqlite3"
    path.touch()
    env = manage_env(tmp_path, SQLITE_PATH=str(path))
    # when
    result = manage(*command, env=env)
    # then one line says what to run, and nothing was written
    line = assert_one_line_error(result)
    assert "no such table" not in result.stderr + result.stdout
    match = NOT_SET_UP.match(line)
    assert match, line
    assert match["where"] == str(path)
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone() == (0,)


# --- `TOKEN=$(manage.py api_token admin)` ----------------------------------------------------------


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory) -> dict[str, str]:
    """The environment of a migrated SQLite database with a staff user `admin`."""
    folder = tmp_path_factory.mktemp("migrated")
    env = manage_env(folder, SQLITE_PATH=str(folder / "synthetics.sqlite3"))
    for args in (
        ["migrate", "--noinput", "--verbosity", "0"],
        ["createsuperuser", "--noinput", "--username", "admin", "--email", "admin@example.com"],
    ):
        result = manage(*args, env={**env, "DJANGO_SUPERUSER_PASSWORD": "not-used-here"})
        assert result.returncode == 0, result.stderr
    return env


def test_api_token_puts_only_the_token_on_stdout(migrated_sqlite):
    # when the shell captures stdout, as in TOKEN=$(manage.py api_token admin)
    result = manage("api_token", "admin", env=migrated_sqlite)
    # then it captured the token alone (a second line once broke the next curl's header), and the
    # status line went to stderr, where a terminal still shows it
    assert result.returncode == 0, result.stderr
    assert re.fullmatch(r"[0-9a-f]{40}\n", result.stdout), result.stdout
    assert result.stderr == "api_token: created token for 'admin'.\n"
    again = manage("api_token", "admin", env=migrated_sqlite)
    assert again.stdout == result.stdout
    assert again.stderr == "api_token: existing token for 'admin'.\n"


def test_a_command_starts_without_the_rest_framework_or_the_test_tools(tmp_path):
    """Every process loads the apps, the admin included: what the admin imports is every command's
    start-up. The REST framework's views and Django's test tools (a tenth of a second each here)
    load with the URLconf, which a command such as backfill_activity never needs."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, django; django.setup(); "
            "print(' '.join(sorted(m for m in sys.modules if m in {"
            "'rest_framework.views', 'rest_framework.test', 'django.test', 'drf_spectacular.plumbing'"
            "})))",
        ],
        cwd=ROOT,
        env={**manage_env(tmp_path), "DJANGO_SETTINGS_MODULE": "synthetics_site.settings"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == ""


@pytest.mark.parametrize("command", [("backfill_activity", "--hours", "1"), ("seed_sim_users",)])
def test_data_commands_still_run_synthetics_own_checks(command, tmp_path):
    """The data commands run the models' and Synthetics' own system checks only (not the URL and
    template ones): a bad setting of ours still stops them before any work."""
    result = manage(*command, env=manage_env(tmp_path, SYNTHETICS_API_BURST_RATE="abc"))
    assert result.returncode != 0
    assert "(synthetics.E001) SYNTHETICS_API_BURST_RATE" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.sqlite3"))  # stopped before the database was touched
