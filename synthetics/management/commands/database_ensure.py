"""Create the database the settings name when it is missing (what `make run` does before migrating)."""

from django.core.management.base import BaseCommand, CommandError

from synthetics.services.database import DatabaseUnavailable, database_ensure


class Command(BaseCommand):
    help = (
        "Make sure the database exists: on PostgreSQL, create the database DATABASE_URL names if the "
        "server has none by that name (as createdb would); on SQLite, create the file's folder. "
        "Says in one line what failed and what to do when the server cannot be used."
    )
    # It runs before `migrate`, and is about the server, not the code: the system checks are migrate's.
    requires_system_checks = []

    def handle(self, *args, **options):
        try:
            ensured = database_ensure()
        except DatabaseUnavailable as error:
            raise CommandError(str(error)) from error
        if ensured.vendor == "postgresql" and ensured.created:
            message = f'created PostgreSQL database "{ensured.name}".'
        elif ensured.vendor == "postgresql":
            message = f'PostgreSQL database "{ensured.name}" at {ensured.location} is ready.'
        elif ensured.vendor == "sqlite" and ensured.created:
            message = (
                f"created the folder {ensured.location} for the SQLite database {ensured.name}."
            )
        elif ensured.vendor == "sqlite":
            message = f"the folder of the SQLite database {ensured.name} is ready."
        else:
            message = f"nothing to do for a {ensured.vendor} database."
        self.stdout.write(f"database_ensure: {message}")
