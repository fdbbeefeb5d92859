"""Export our rows of one table in a time range as CSV or NDJSON, to stdout or a file."""

from __future__ import annotations

import os
import time
from pathlib import Path

from django.core.management.base import CommandError
from django.utils import timezone

from synthetics.management.cli import SyntheticsCommand, aware_datetime, progress_bar
from synthetics.selectors.export import (
    EXPORT_DEFAULT_SPAN,
    EXPORT_FORMATS,
    EXPORT_TABLES,
    export_chunks,
    export_request,
)


class Command(SyntheticsCommand):
    help = (
        "Write the rows the generator wrote (never a real row) of one table, --since (inclusive) "
        "to --until (exclusive), as CSV or NDJSON, to stdout or --output; progress on stderr. "
        f"--until defaults to now, --since to {EXPORT_DEFAULT_SPAN.total_seconds() / 3600:.0f} h "
        "before it."
    )

    def add_arguments(self, parser):
        parser.add_argument("--table", required=True, choices=list(EXPORT_TABLES))
        parser.add_argument("--format", required=True, choices=EXPORT_FORMATS)
        parser.add_argument("--since", type=aware_datetime, help="ISO 8601 with a zone, inclusive")
        parser.add_argument("--until", type=aware_datetime, help="ISO 8601 with a zone, exclusive")
        parser.add_argument(
            "--output", help="write to this file (replaced only once the export is whole)"
        )

    def handle(self, *args, table, format, since, until, output, **options):
        export = export_request(
            table=table, format=format, since=since, until=until, now=timezone.now()
        )
        target = Path(output) if output else None
        if target is not None and not target.parent.is_dir():
            raise CommandError(f"--output: no directory {str(target.parent)!r}.")
        started = time.monotonic()
        rows = 0
        with progress_bar(total=None, unit="row", description=f"export {table}") as advance:

            def counted(page_rows: int) -> None:
                nonlocal rows
                rows += page_rows
                advance(page_rows)

            chunks = export_chunks(export, progress=counted)
            if target is None:
                out = getattr(self.stdout, "buffer", None)  # bytes as made; else text (a StringIO)
                for chunk in chunks:
                    if out is not None:
                        out.write(chunk)
                    else:
                        self.stdout.write(chunk.decode(), ending="")
                if out is not None:
                    out.flush()
            else:
                _write_whole(target, chunks)
        seconds = time.monotonic() - started
        where = str(target) if target is not None else "stdout"
        self.stderr.write(
            f"export_activity: {rows:,} rows of {table} ({export.since:%Y-%m-%d %H:%M:%S} to "
            f"{export.until:%Y-%m-%d %H:%M:%S} UTC) as {format} to {where} in {seconds:.1f} s",
            style_func=str,  # a summary, not an error: not in the error style on a terminal
        )


def _write_whole(target: Path, chunks) -> None:
    """Write to a file beside `target`, then put it in place: a failed export leaves no file behind
    (and an existing file as it was)."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                out.write(chunk)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
