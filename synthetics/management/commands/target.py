"""Attach mode (issue 23, being built): `target inspect` prints a target file proposed from the
database in DATABASE_URL. Read-only; PostgreSQL only."""

from django.core.management.base import CommandError
from django.db import connection

from synthetics.management.cli import SyntheticsCommand
from synthetics.target.catalog import app_catalog
from synthetics.target.inspect import proposal, rendered

SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema')"


class Command(SyntheticsCommand):
    help = (
        "Attach to an application's own tables. `inspect [--schema NAME ...]` reads the database "
        "in DATABASE_URL and prints a proposed target file on stdout (every guess commented, "
        "problems first, and then an exit of 1 when there are any); it changes nothing. "
        "PostgreSQL only."
    )
    # It reads an application's database, which need not hold Synthetics' tables at all.
    requires_migrations_checks = False

    def check_migrations(self) -> None:
        return None

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="inspect")
        inspect = actions.add_parser("inspect", help="print a proposed target file")
        inspect.add_argument(
            "--schema",
            action="append",
            dest="schemas",
            metavar="NAME",
            help="a schema to read (again for more); default: every schema but the system's",
        )

    def handle(self, *args, action, schemas, **options):
        if connection.vendor != "postgresql":
            raise CommandError(
                "Attach mode is PostgreSQL only: set DATABASE_URL=postgres://… to the "
                "application's database (the SQLite default is demo mode)."
            )
        if not schemas:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT nspname FROM pg_namespace WHERE nspname NOT IN "
                    f"{SYSTEM_SCHEMAS} AND nspname NOT LIKE 'pg\\_%%' ORDER BY nspname"
                )
                schemas = [name for (name,) in cursor.fetchall()]
        catalog = app_catalog(connection, schemas)
        if not catalog:
            raise CommandError(f"No table in the schemas {', '.join(schemas)}.")
        found = proposal(catalog)
        source = f"the schemas {', '.join(sorted(schemas))} of {connection.settings_dict['NAME']}"
        self.stdout.write(rendered(found, source=source), ending="")
        if found.problems:  # the file is printed, with its problems on top; the exit says so
            raise CommandError(
                f"the proposal cannot attach as it is ({len(found.problems)} problem"
                f"{'' if len(found.problems) == 1 else 's'}): " + "; ".join(found.problems)
            )
