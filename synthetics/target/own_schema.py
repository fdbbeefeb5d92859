"""Synthetics' own schema in attach mode: created before `migrate` makes its tables there (the
connection's search_path is that schema alone: settings.SYNTHETICS_SCHEMA), and, after it, the two
views that let the seed's verification SQL (`SELECT * FROM synthetic_settings`, `SELECT COUNT(*)
FROM sim_users`) run unchanged on a connection with the database's default search_path, readable
by their owner only. Nothing of the application's is created, altered or dropped here."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connections, transaction

from synthetics.target.mapping import quoted

logger = logging.getLogger(__name__)

# Our tables the seed's verification SQL names without a schema.
VERIFICATION_VIEWS = ("synthetic_settings", "sim_users")
VIEW_SCHEMA = "public"
# What marks a view in the application's schema as ours (its comment), so a later migrate may
# replace it and never a relation of the application's that happens to share the name.
VIEW_COMMENT = "Synthetics: the seed's verification SQL reads {schema}.{name} through this view"


def attached() -> bool:
    return bool(getattr(settings, "SYNTHETICS_TARGET", ""))


def schema_ensure(sender=None, using: str = "default", **kwargs) -> None:
    """pre_migrate: hold the target file against the database (`target check`: a file that does
    not fit stops `migrate` with its problems, before anything is created), then create
    Synthetics' own schema (attach mode; idempotent)."""
    if not attached() or getattr(sender, "label", "synthetics") != "synthetics":
        return
    from django.core.management.base import CommandError

    from synthetics.errors import ApplicationError
    from synthetics.target.catalog import app_catalog, connected_role
    from synthetics.target.check import schemas_named, target_report
    from synthetics.target.constraints import check_violations
    from synthetics.target.files import target_read

    connection = connections[using]
    try:
        document = target_read(settings.SYNTHETICS_TARGET)
    except ApplicationError as error:
        raise CommandError(f"SYNTHETICS_TARGET: {error}") from error
    catalog = app_catalog(connection, schemas_named(document))
    problems = target_report(document, catalog, connected_role(connection)).problems
    if not problems:
        problems = check_violations(connection, document, catalog)
    if problems:
        raise CommandError(
            f"SYNTHETICS_TARGET {settings.SYNTHETICS_TARGET} does not fit the database "
            f"({len(problems)} problem{'' if len(problems) == 1 else 's'}; nothing was created; "
            "`manage.py target check FILE` shows the plan):\n"
            + "\n".join(f"  {problem}" for problem in problems)
        )
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted(settings.SYNTHETICS_SCHEMA)}")


def verification_views_ensure(sender=None, using: str = "default", **kwargs) -> list[str]:
    """post_migrate: a view public.<name> of each of our tables the seed's SQL reads, where the
    name is free or already our view; a name the application holds is left alone (logged: the
    SQL then needs the schema, `synthetics.sim_users`). Returns the views made."""
    if not attached() or getattr(sender, "label", "synthetics") != "synthetics":
        return []
    schema = settings.SYNTHETICS_SCHEMA
    made = []
    connection = connections[using]
    with connection.cursor() as cursor:
        for name in VERIFICATION_VIEWS:
            comment = VIEW_COMMENT.format(schema=schema, name=name)
            cursor.execute(
                "SELECT c.relkind, obj_description(c.oid, 'pg_class') FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                [VIEW_SCHEMA, name],
            )
            found = cursor.fetchone()
            if found is not None and found != ("v", comment):
                logger.warning(
                    "%s.%s belongs to the application: no view made; the seed's SQL reads %s.%s",
                    VIEW_SCHEMA, name, schema, name,
                )  # fmt: skip
                continue
            view = f"{quoted(VIEW_SCHEMA)}.{quoted(name)}"
            try:
                with transaction.atomic(using=using):
                    cursor.execute(
                        f"CREATE OR REPLACE VIEW {view} AS SELECT * FROM {quoted(schema)}.{quoted(name)}"
                    )
                    cursor.execute(f"COMMENT ON VIEW {view} IS %s", [comment])
                    _private(cursor, name, view)
            except Exception as error:  # no CREATE on public: the SQL then names our schema
                logger.warning("no view %s.%s made: %s", VIEW_SCHEMA, name, error)
                continue
            made.append(f"{VIEW_SCHEMA}.{name}")
    return made


def _private(cursor, name: str, view: str) -> None:
    """Only the view's owner (and superusers) may read it: a grant the schema's default privileges
    gave to another role (Supabase gives anon and authenticated everything new in public, and its
    REST API serves what they may read) is taken back."""
    cursor.execute(
        "SELECT DISTINCT grantee FROM information_schema.role_table_grants "
        "WHERE table_schema = %s AND table_name = %s AND grantee <> current_user",
        [VIEW_SCHEMA, name],
    )
    for (grantee,) in cursor.fetchall():
        who = "PUBLIC" if grantee == "PUBLIC" else quoted(grantee)
        cursor.execute(f"REVOKE ALL ON {view} FROM {who}")
    cursor.execute(f"REVOKE ALL ON {view} FROM PUBLIC")


def target_file_check(app_configs=None, **kwargs) -> list:
    """synthetics.E002: SYNTHETICS_TARGET names a target file that reads and holds to its schema
    (every problem by its path), before any command or server starts."""
    from django.core import checks

    from synthetics.target.files import TargetInvalid
    from synthetics.target.mapping import target_in_force

    if not attached():
        return []
    try:
        target_in_force()
    except TargetInvalid as error:
        return [checks.Error(f"SYNTHETICS_TARGET: {error}", id="synthetics.E002")]
    return []
