"""Shared pieces of the management commands: their base class, argument types and a progress bar."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from django.core.checks import Tags
from django.core.management.base import BaseCommand, CommandError

from synthetics.apps import CHECK_TAG
from synthetics.errors import ApplicationError, RunFailed
from synthetics.inputs import DATETIME_TEXT, aware_datetime_read
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
    # The checks a data command needs: the models' and Synthetics' own (the target file, the
    # settings). The URL and template checks import the URLconf, the REST framework and the
    # template engines: a seventh of a second of every command's start, for pages it never serves.
    # `serve` runs every check; so do `manage.py check` and the server.
    requires_system_checks = [Tags.models, CHECK_TAG]

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


# A whole number as a person types one: the ASCII digits 0-9, a minus sign at most (so a range's
# message can answer -5), no plus, space, underscore, decimal point or leading zero. int() alone
# takes "５", " 5", "+5" and "5_0" (50).
_WHOLE_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)")
# The same time without its zone: told apart to say what is missing.
NAIVE_DATETIME_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
)


def whole_number(text: str) -> int:
    """A whole number in the digits 0-9 (at most 18 of them); its range is the caller's rule."""
    if not _WHOLE_NUMBER.fullmatch(text) or len(text) > 18:
        raise argparse.ArgumentTypeError(
            f"expected a whole number written in the digits 0-9, got {text!r}"
        )
    return int(text)


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not _WHOLE_NUMBER.fullmatch(text):
            raise argparse.ArgumentTypeError(
                f"expected a whole number written in the digits 0-9, got {text!r}"
            )
        if len(text) > len(str(high)) + 1 or not low <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {text}")
        return int(text)

    return parse


def aware_datetime(text: str) -> datetime:
    """An ISO 8601 time with its zone (the API's rule: inputs.aware_datetime_read), in UTC."""
    if not DATETIME_TEXT.fullmatch(text):
        if NAIVE_DATETIME_TEXT.fullmatch(text):
            raise argparse.ArgumentTypeError(
                f"{text!r} has no time zone: add Z or an offset such as +00:00"
            )
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 date and time such as 2026-01-09T19:15:00Z, got {text!r}"
        )
    try:
        return aware_datetime_read(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 date and time such as 2026-01-09T19:15:00Z, got {text!r}"
        ) from None


# Where no terminal is attached (a container's log, CI, a pipe), a line this often at most while a
# command runs, and one summary line when it ends, instead of a bar's carriage returns.
PROGRESS_LINE_SECONDS = 60.0


def progress_summary(
    *, description: str, done: int, total: int, unit: str, rows: int, seconds: float
) -> str:
    """One line: what was done of what, in how long, and the rows' rate when rows were written."""
    of = f"/{total:,}" if total else ""
    plural = "" if (total or done) == 1 else "s"
    line = f"{description}: {done:,}{of} {unit}{plural} in {seconds:,.1f} s"
    if rows:
        line += f", {rows:,} rows ({rows / max(seconds, 1e-9):,.0f} rows/s)"
    return line


@contextmanager
def progress_bar(
    *, total: int, unit: str, description: str, stream=None
) -> Iterator[Callable[..., None]]:
    """Yield an `advance(n, rows=0)` callable. On a terminal it draws a bar on stderr (with rows,
    also rows written per second); elsewhere it writes a progress line a minute at most and one
    summary line at the end (progress_summary), and nothing else."""
    import time

    from tqdm import tqdm

    stream = stream if stream is not None else sys.stderr
    terminal = bool(getattr(stream, "isatty", lambda: False)())
    started = last_line = time.monotonic()
    written = done = 0

    def line(suffix: str = "") -> None:
        summary = progress_summary(
            description=description, done=done, total=total, unit=unit, rows=written,
            seconds=time.monotonic() - started,
        )  # fmt: skip
        stream.write(summary + suffix + "\n")
        stream.flush()

    with tqdm(
        total=total, unit=unit, desc=description, file=stream, disable=not terminal,
        dynamic_ncols=True,
    ) as bar:  # fmt: skip

        def advance(n: int, rows: int = 0) -> None:
            nonlocal written, done, last_line
            written += rows
            done += n
            if terminal:
                if written:
                    rate = written / max(time.monotonic() - started, 1e-9)
                    bar.set_postfix_str(f"{written:,} rows, {rate:,.0f} rows/s", refresh=False)
                bar.update(n)
            elif time.monotonic() - last_line >= PROGRESS_LINE_SECONDS:
                last_line = time.monotonic()
                line(" so far")

        yield advance
    if not terminal:
        line()


def address_arguments(parser) -> None:
    """--host and --port of the site (bootstrap prints its URLs, serve listens there): the
    defaults of `make run`."""
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument("--port", default="8000", help="default: 8000")
