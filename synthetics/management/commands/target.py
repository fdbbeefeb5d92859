"""Attach mode: `target inspect` proposes a target file from the database in DATABASE_URL, `target
check` holds one against it (both read-only), `target index` makes the tag index on the mapped
event tables, and `target detach` takes every row of ours back out. PostgreSQL only."""

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection

from synthetics.errors import ApplicationError
from synthetics.management.cli import SyntheticsCommand, progress_bar
from synthetics.services.detach import target_detach
from synthetics.target.catalog import app_catalog, connected_role
from synthetics.target.check import schemas_named, target_report
from synthetics.target.constraints import check_violations
from synthetics.target.files import target_read
from synthetics.target.indexes import tag_indexes_make
from synthetics.target.inspect import proposal, rendered
from synthetics.target.mapping import target_from

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

        index = actions.add_parser(
            "index",
            help="make the tag index on each mapped event table (CREATE INDEX CONCURRENTLY): "
            "the one change Synthetics makes to an application's table, and only here",
        )
        index.add_argument(
            "file", nargs="?", help="the target file (default: the one SYNTHETICS_TARGET names)"
        )
        index.add_argument(
            "--dry-run", action="store_true", help="print the statements, change nothing"
        )

        actions.add_parser(
            "detach",
            help="pause the generator and delete every row Synthetics wrote into the "
            "application (events, then profiles, accounts last), then its own pool and ledger",
        )

    def handle(self, *args, action, **options):
        if connection.vendor != "postgresql":
            raise CommandError(
                "Attach mode is PostgreSQL only: set DATABASE_URL=postgres://… to the "
                "application's database (the SQLite default is demo mode)."
            )
        if action == "check":
            return self._check(options["file"])
        if action == "index":
            return self._index(options["file"], dry_run=options["dry_run"])
        if action == "detach":
            return self._detach()
        schemas = options["schemas"]
        if not schemas:
            with connection.cursor() as cursor:
                cursor.execute(  # the system's schemas and Synthetics' own are not the app's
                    "SELECT nspname FROM pg_namespace WHERE nspname NOT IN "
                    f"{SYSTEM_SCHEMAS} AND nspname NOT LIKE 'pg\\_%%' AND nspname <> %s "
                    "ORDER BY nspname",
                    [settings.SYNTHETICS_SCHEMA],
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
        # the values against the CHECKs too, whatever else is wrong: every problem at once (a
        # value a column's type refuses is said here in the database's words)
        report.problems += check_violations(connection, document, catalog)
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

    def _document(self, path: str | None) -> dict:
        path = path or settings.SYNTHETICS_TARGET
        if not path:
            raise CommandError("Name a target file, or set SYNTHETICS_TARGET.")
        try:
            return target_read(path)
        except ApplicationError as error:
            raise CommandError(str(error)) from error

    def _index(self, path: str | None, *, dry_run: bool) -> None:
        target = target_from(self._document(path), path=path or "")
        for made in tag_indexes_make(target, dry_run=dry_run):
            self.stdout.write(made)

    def _detach(self) -> None:
        try:
            with progress_bar(total=0, unit="row", description="detach") as bar:
                done = target_detach(progress=lambda table, rows: bar(rows))
        except ApplicationError as error:
            raise CommandError(str(error)) from error
        counts = ", ".join(f"{count} from {table}" for table, count in done.counts.items())
        self.stdout.write(f"target detach: deleted {counts or 'nothing'}; the generator is paused.")
