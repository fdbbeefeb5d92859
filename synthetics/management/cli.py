"""Shared pieces of the management commands: their base class, argument types and a progress bar."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from synthetics.errors import ApplicationError, RunFailed
from synthetics.services.database import (
    DatabaseUnavailable,
    database_location,
    database_unapplied_migrations,
)


class SyntheticsCommand(BaseCommand):
    """A command that needs the migrated database: refuses in one line, before any work, without it.

    A refused request (ApplicationError) or a failed run (RunFailed) ends the command with its
    message and a non-zero exit, the same way for every command.
    """

    requires_migrations_checks = True

    def execute(self, *args, **options):
        try:
            return super().execute(*args, **options)
        except (ApplicationError, RunFailed) as error:
            raise CommandError(str(error)) from error

    def check_migrations(self) -> None:
        # Django's own check only prints a notice; ours stops here instead of at "no such table".
        try:
            unapplied = database_unapplied_migrations()
        except DatabaseUnavailable as error:
            raise CommandError(str(error)) from error
        if unapplied:
            migrations = "migration" if unapplied == 1 else "migrations"
            raise CommandError(
                f"The database at {database_location()} is not set up ({unapplied} {migrations} "
                'not applied): run "manage.py migrate" first (make run does it).'
            )


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value

    return parse


def aware_datetime(text: str) -> datetime:
    try:
        value = parse_datetime(text)
    except ValueError:
        value = None
    if value is None:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 date and time such as 2026-01-09T19:15:00Z, got {text!r}"
        )
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone: add Z or an offset such as +00:00"
        )
    return value


@contextmanager
def progress_bar(*, total: int, unit: str, description: str) -> Iterator[Callable[..., None]]:
    """Yield an `advance(n, rows=0)` callable drawing a bar on stderr (hidden when stderr is not a
    terminal); with rows, the bar also shows rows written per second."""
    import time

    from tqdm import tqdm

    with tqdm(
        total=total, unit=unit, desc=description, file=sys.stderr, disable=None, dynamic_ncols=True
    ) as bar:
        started, written = time.monotonic(), 0

        def advance(n: int, rows: int = 0) -> None:
            nonlocal written
            written += rows
            if written:
                rate = written / max(time.monotonic() - started, 1e-9)
                bar.set_postfix_str(f"{written:,} rows, {rate:,.0f} rows/s", refresh=False)
            bar.update(n)

        yield advance
