"""Attach mode (issue 23, being built): `target inspect` prints a target file proposed from the
database in DATABASE_URL. Read-only; PostgreSQL only."""

from django.core.management.base import CommandError
from django.db import connection

from synthetics.errors import ApplicationError
from synthetics.management.cli import SyntheticsCommand
from synthetics.target.catalog import app_catalog, connected_role
from synthetics.target.check import schemas_named, target_report
from synthetics.target.files import target_read
from synthetics.target.inspect import proposal, rendered

SYSTEM_SCHEMAS = "('pg_catalog', 'information_schema')"


class Command(SyntheticsCommand):
    help = (
        "Attach to an application's own tables. `inspect [--schema NAME ...]` reads the database "
        "in DATABASE_URL and prints a proposed target file on stdout (every guess commented, "
        "problems first, and then an exit of 1 when there are any). `check FILE` holds a target "
        "file against the database: every problem with its place in the file, notes, then the "
        "plan; exit 0 only when the file fits. Both change nothing. PostgreSQL only."
    )
    # It reads an application's database, which need not hold Synthetics' tables at all.
    requires_migrations_checks = False

    def check_migrations(self) -> None:
        return None

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="inspect|check")
        inspect = actions.add_parser("inspect", help="print a proposed target file")
        inspect.add_argument(
            "--schema",
            action="append",
            dest="schemas",
            metavar="NAME",
            help="a schema to read (again for more); default: every schema but the system's",
        )

        check = actions.add_parser(
            "check", help="hold a target file against the database: its problems, then the plan"
        )
        check.add_argument("file", help="the target file (YAML or JSON)")

    def handle(self, *args, action, **options):
        if connection.vendor != "postgresql":
            raise CommandError(
                "Attach mode is PostgreSQL only: set DATABASE_URL=postgres://… to the "
                "application's database (the SQLite default is demo mode)."
            )
        if action == "check":
            return self._check(options["file"])
        schemas = options["schemas"]
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

    def _check(self, path: str) -> None:
        try:
            document = target_read(path)
        except ApplicationError as error:
            raise CommandError(str(error)) from error
        catalog = app_catalog(connection, schemas_named(document))
        report = target_report(document, catalog, connected_role(connection))
        for problem in report.problems:
            self.stdout.write(f"PROBLEM {problem}")
        for note in report.notes:
            self.stdout.write(f"note    {note}")
        self.stdout.write("plan:")
        for step in report.plan:
            self.stdout.write(f"  - {step}")
        if report.problems:
            count = len(report.problems)
            raise CommandError(
                f"{path}: {count} problem{'' if count == 1 else 's'}: a run could not write "
                "into these tables as the file says"
            )
        self.stdout.write(f"{path}: the file fits the database.", self.style.SUCCESS)
