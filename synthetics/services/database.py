"""The database itself: create the one the settings name when it is missing, and say in one line why it
cannot be used (server down, credentials refused, database missing, migrations not applied).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.db.backends.base.base import NO_DB_ALIAS, BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.migrations.executor import MigrationExecutor

# Where `createdb` connects to run CREATE DATABASE, in its order.
MAINTENANCE_DATABASES = ("postgres", "template1")
# libpq waits for ever by default; a setup step should answer within seconds.
CONNECT_TIMEOUT_SECONDS = 10
DUPLICATE_DATABASE = "42P04"  # SQLSTATE duplicate_database


class DatabaseUnavailable(Exception):
    """The database cannot be used as configured; the message says what failed and what to do."""


@dataclass(frozen=True, slots=True)
class DatabaseEnsured:
    vendor: str  # "postgresql", "sqlite" or another backend's vendor
    name: str  # the database's name, or the SQLite file's path
    location: str  # the server's host:port, or the SQLite file's folder
    created: bool  # the PostgreSQL database or the SQLite folder was created just now


def database_ensure(*, alias: str = DEFAULT_DB_ALIAS) -> DatabaseEnsured:
    """Create the PostgreSQL database (as `createdb` would) or the SQLite file's folder if missing."""
    connection = connections[alias]
    if connection.vendor == "postgresql":
        return _postgresql_ensure(connection)
    if connection.vendor == "sqlite":
        return _sqlite_ensure(connection)
    return DatabaseEnsured(
        vendor=connection.vendor,
        name=str(connection.settings_dict["NAME"]),
        location=_server(connection),
        created=False,
    )


def database_location(*, alias: str = DEFAULT_DB_ALIAS) -> str:
    """Where the database is, without credentials: the SQLite file, or host:port/name."""
    connection = connections[alias]
    if connection.vendor == "sqlite":
        return str(connection.settings_dict["NAME"])
    return f"{_server(connection)}/{connection.settings_dict['NAME']}"


def database_unapplied_migrations(*, alias: str = DEFAULT_DB_ALIAS) -> int:
    """Count the migrations not applied yet; raise DatabaseUnavailable if the database can't be used."""
    connection = connections[alias]
    was_closed = connection.connection is None
    try:
        connection.ensure_connection()
    except DatabaseError as error:
        raise _unavailable(connection, error) from error
    try:
        executor = MigrationExecutor(connection)
        return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    finally:
        if was_closed:
            connection.close()  # so that a long-running caller (serve) holds no idle connection


# --- PostgreSQL -----------------------------------------------------------------------------------


def _postgresql_ensure(connection: BaseDatabaseWrapper) -> DatabaseEnsured:
    name = connection.settings_dict["NAME"]
    ensured = DatabaseEnsured(
        vendor=connection.vendor, name=name, location=_server(connection), created=False
    )
    probe = _sibling(connection, name)
    try:
        probe.ensure_connection()
    except DatabaseError as error:
        return _postgresql_create(connection, error=error, ensured=ensured)
    finally:
        probe.close()
    return ensured


def _postgresql_create(
    connection: BaseDatabaseWrapper, *, error: DatabaseError, ensured: DatabaseEnsured
) -> DatabaseEnsured:
    """Create the database a connection failed to reach, unless it exists (then it was a refusal)."""
    name = ensured.name
    with _maintenance_cursor(connection, error=error) as cursor:
        if _database_exists(cursor, name):
            # The database is there, so the server turned this user away from it.
            raise _refused(connection, error) from error
        try:
            cursor.execute(f"CREATE DATABASE {_quote_identifier(name)}")
        except DatabaseError as create_error:
            if getattr(create_error.__cause__, "sqlstate", None) == DUPLICATE_DATABASE:
                return ensured  # created meanwhile by another process
            raise DatabaseUnavailable(
                f'cannot create PostgreSQL database "{name}" at {ensured.location} '
                f"({_reason(create_error)}): create it as a user allowed to (createdb), "
                "or name an existing database in DATABASE_URL."
            ) from create_error
    return DatabaseEnsured(
        vendor=ensured.vendor, name=name, location=ensured.location, created=True
    )


@contextmanager
def _maintenance_cursor(
    connection: BaseDatabaseWrapper, *, error: DatabaseError
) -> Iterator[CursorWrapper]:
    """Yield a cursor on the server's maintenance database, with the same credentials."""
    for maintenance_name in MAINTENANCE_DATABASES:
        maintenance = _sibling(connection, maintenance_name)
        try:
            maintenance.ensure_connection()
        except DatabaseError:
            continue
        try:
            with maintenance.cursor() as cursor:
                yield cursor
        finally:
            maintenance.close()
        return
    # Not even the maintenance database answers: the first error says why (down, or refused).
    raise _unavailable_server(connection, error) from error


def _sibling(connection: BaseDatabaseWrapper, name: str) -> BaseDatabaseWrapper:
    """A separate connection to database `name` on the same server, with the same credentials."""
    settings_dict = {
        **connection.settings_dict,
        "NAME": name,
        "OPTIONS": {
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            **connection.settings_dict["OPTIONS"],
        },
    }
    return connection.__class__(settings_dict, alias=NO_DB_ALIAS)


def _database_exists(cursor: CursorWrapper, name: str) -> bool:
    cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
    return cursor.fetchone() is not None


def _quote_identifier(name: str) -> str:
    """Quote `name` as an SQL identifier, doubling embedded quotes (what createdb's fmtId does)."""
    return '"' + name.replace('"', '""') + '"'


# --- SQLite ---------------------------------------------------------------------------------------


def _sqlite_ensure(connection: BaseDatabaseWrapper) -> DatabaseEnsured:
    name = str(connection.settings_dict["NAME"])
    if connection.is_in_memory_db():
        return DatabaseEnsured(vendor="sqlite", name=name, location="memory", created=False)
    folder = Path(name).expanduser().absolute().parent
    created = not folder.is_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatabaseUnavailable(
            f"cannot create the folder {folder} for the SQLite database ({error.strerror}): "
            "point SQLITE_PATH (or SYNTHETICS_LOCAL_DIR) at a writable place."
        ) from error
    return DatabaseEnsured(vendor="sqlite", name=name, location=str(folder), created=created)


# --- Messages -------------------------------------------------------------------------------------


def _unavailable(connection: BaseDatabaseWrapper, error: DatabaseError) -> DatabaseUnavailable:
    """Explain a failed connection in one line, with what to do (raises it when the server is down)."""
    if connection.vendor == "sqlite":
        return DatabaseUnavailable(
            f"cannot open the SQLite database {connection.settings_dict['NAME']} "
            f'({_reason(error)}): check SQLITE_PATH ("manage.py database_ensure" makes its folder).'
        )
    if connection.vendor != "postgresql":
        return DatabaseUnavailable(
            f"cannot connect to the database at {_server(connection)} ({_reason(error)}): "
            "check DATABASE_URL."
        )
    with _maintenance_cursor(connection, error=error) as cursor:
        exists = _database_exists(cursor, connection.settings_dict["NAME"])
    if exists:
        return _refused(connection, error)
    return DatabaseUnavailable(
        f'PostgreSQL database "{connection.settings_dict["NAME"]}" does not exist at '
        f'{_server(connection)}: run "manage.py database_ensure" to create it (make run does it).'
    )


def _unavailable_server(
    connection: BaseDatabaseWrapper, error: DatabaseError
) -> DatabaseUnavailable:
    if _server_answered(error):
        return _refused(connection, error)
    return DatabaseUnavailable(
        f"cannot reach PostgreSQL at {_server(connection)} ({_reason(error)}): start PostgreSQL, "
        "or fix the host and port in DATABASE_URL."
    )


def _refused(connection: BaseDatabaseWrapper, error: DatabaseError) -> DatabaseUnavailable:
    return DatabaseUnavailable(
        f"PostgreSQL at {_server(connection)} refused the connection ({_reason(error)}): "
        "check the user, password and database name in DATABASE_URL."
    )


def _server(connection: BaseDatabaseWrapper) -> str:
    settings_dict = connection.settings_dict
    default_port = "5432" if connection.vendor == "postgresql" else ""
    host = settings_dict.get("HOST") or "localhost"
    port = settings_dict.get("PORT") or default_port
    return f"{host}:{port}" if port else host


def _server_answered(error: Exception) -> bool:
    """Whether the message came from the server (it was reached) rather than from libpq or the OS."""
    return "FATAL:" in str(error)


def _reason(error: Exception) -> str:
    """The server's or the OS's own words from a libpq error, on one line ("Connection refused")."""
    lines = str(error).strip().splitlines()
    if not lines:
        return type(error).__name__
    # 'connection failed: connection to server at "h", port 1 failed: FATAL:  <the reason>'
    reason = lines[0].rpartition(" failed: ")[2] or lines[0]
    return reason.removeprefix("FATAL:").strip()
