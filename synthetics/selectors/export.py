"""Export: our rows of one table in a time range, as CSV or NDJSON, streamed a keyset page at a time.

"Our rows" are the identity rule's (`EventQuerySet.synthetic()`, `JourneyQuerySet.synthetic()`):
a real row, even one that looks tagged, is never exported. Each page is one query that walks the
table's time index from where the last page ended, on (time, primary key): never OFFSET, and never
more than a page in memory, however long the range. The demo tables are exported with their own
columns; in attach mode an event table is the application's, exported with all of its columns as
PostgreSQL's catalogue lists them.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson
from django.db import connection, models, transaction
from django.db.models import Func, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast

from synthetics.errors import ApplicationError
from synthetics.models import Journey
from synthetics.target.catalog import app_catalog
from synthetics.target.mapping import qualified, quoted, target_in_force
from synthetics.target.tables import event_models

# The tables, by the name `table=` takes: the event kind of tables.event_models, or None for the
# journeys (always Synthetics' own table). `sessions` exists only where a target file maps one.
EXPORT_TABLES: dict[str, str | None] = {
    "scene_events": "scene",
    "mindblock_events": "mindblock",
    "journeys": None,
    "sessions": "session",
}
EXPORT_FORMATS = ("csv", "ndjson")
EXPORT_CONTENT_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}
# Rows per page (one query each): large enough that a page's query costs little next to its rows,
# small enough that a page of wide rows stays a few megabytes.
EXPORT_PAGE_SIZE = 5_000
# Rows per batch within a page (PostgreSQL): what the caller writes while the server goes on.
STREAM_BATCH = 500
# The first page's window (_Pages): the next ones follow the pace of the rows.
EXPORT_FIRST_WINDOW = timedelta(minutes=1)
# A window is made to hold this share of a page: most pages end at their window's end.
PAGE_FILL = 0.9
_SHORTEST_WINDOW = timedelta(milliseconds=1)
# `since` when only `until` (or neither) is given.
EXPORT_DEFAULT_SPAN = timedelta(hours=24)

# How a column's values are written (the same for both formats where it can be).
JSON = "json"  # JSON text: a JSON value in NDJSON, the text in CSV
TIME = "time"  # a datetime, written by _iso (PostgreSQL's times come as that text already)
BOOLEAN = "boolean"  # true / false
NUMBER = "number"  # a decimal number's text: a JSON number in NDJSON
VALUE = "value"  # an int, a str or a UUID, written as it is

_JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


@dataclass(frozen=True, slots=True)
class ExportColumn:
    name: str
    kind: str  # JSON, TIME, BOOLEAN, NUMBER or VALUE


@dataclass(frozen=True, slots=True)
class ExportRequest:
    """A checked request: export_request made it, so every field holds."""

    table: str
    format: str
    since: datetime  # inclusive, UTC
    until: datetime  # exclusive, UTC

    @property
    def content_type(self) -> str:
        return EXPORT_CONTENT_TYPES[self.format]

    @property
    def filename(self) -> str:
        def stamp(moment: datetime) -> str:
            return moment.strftime("%Y%m%dT%H%M%SZ")

        return f"{self.table}_{stamp(self.since)}_{stamp(self.until)}.{self.format}"


@dataclass(frozen=True, slots=True)
class _Source:
    """Where a table's rows of ours come from and how a page of them is read.

    `selected` are the values_list entries: the exported columns first, then the keyset's key
    where no column holds it (a ctid); `time_at` and `key_at` are the places of its time and key.
    """

    queryset: QuerySet
    time: str
    key: str
    columns: tuple[ExportColumn, ...]
    selected: tuple[str, ...]
    time_at: int
    key_at: int
    key_sql: str = ""  # the key's SQL type when it is compared as SQL (a ctid): "tid"


def export_tables() -> list[str]:
    """The `table=` names this database has: sessions only where a sessions table is mapped."""
    kinds = event_models()
    return [name for name, kind in EXPORT_TABLES.items() if kind is None or kind in kinds]


def export_request(
    *,
    table: str,
    format: str,
    since: datetime | None = None,
    until: datetime | None = None,
    now: datetime,
) -> ExportRequest:
    """Check an export's parameters: a known table and format, aware times, since before until.
    `until` defaults to now and `since` to EXPORT_DEFAULT_SPAN before `until`."""
    tables = export_tables()
    if table not in tables:
        raise ApplicationError(
            f"No table {table!r} to export; the tables are: {', '.join(tables)}.",
            extra={"field": "table"},
        )
    if format not in EXPORT_FORMATS:
        raise ApplicationError(
            f"No format {format!r}; the formats are: {', '.join(EXPORT_FORMATS)}.",
            extra={"field": "format"},
        )
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
            raise ApplicationError(
                f"{name} has no time zone: give one (Z or an offset such as +01:00).",
                extra={"field": name},
            )
    try:
        until = (now if until is None else until).astimezone(UTC)
    except OverflowError:  # an offset that takes it past the years a datetime holds
        raise ApplicationError(
            "until is out of range: in UTC it must fall in the years 1 to 9999.",
            extra={"field": "until"},
        ) from None
    if since is None:
        # the default span, or from the first instant a datetime holds where it reaches before it
        earliest = datetime.min.replace(tzinfo=UTC)
        since = earliest if until - earliest < EXPORT_DEFAULT_SPAN else until - EXPORT_DEFAULT_SPAN
    try:
        since = since.astimezone(UTC)
    except OverflowError:
        raise ApplicationError(
            "since is out of range: in UTC it must fall in the years 1 to 9999.",
            extra={"field": "since"},
        ) from None
    if since >= until:
        raise ApplicationError(
            f"since ({_iso(since)}) must be before until ({_iso(until)}).",
            extra={"field": "since"},
        )
    return ExportRequest(table=table, format=format, since=since, until=until)


def export_columns(table: str) -> list[ExportColumn]:
    """The columns a table is exported with, in order (the CSV header, the NDJSON keys)."""
    return list(_source(table).columns)


def export_chunks(
    request: ExportRequest,
    *,
    page_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The export as UTF-8 bytes (CSV's header row first), in chunks of whole rows as they come:
    on PostgreSQL a batch of STREAM_BATCH rows of a page's COPY, on SQLite a page. `progress` is
    told each chunk's number of rows once the chunk is made."""
    # The table is read (its model, in attach mode its catalogue) and the page's SQL made before
    # the first chunk: a failure there is the caller's to answer, before a response has begun.
    source = _source(request.table)
    size = page_size or EXPORT_PAGE_SIZE
    if connection.vendor == "postgresql":
        pages = _copied_pages(source, request, size, wrap=_copy_line_sql(source, request.format))
    else:
        pages = _written_pages(source, request, size)

    def chunks() -> Iterator[bytes]:
        if request.format == "csv":
            yield _csv_line([column.name for column in source.columns])
        for chunk, rows in pages:
            if progress is not None:
                progress(rows)
            yield chunk

    return chunks()


class _Pages:
    """Where each page of a range is: the first `size` rows after the last page's (time, key),
    in (time, key) order, and also before a time, the page's window.

    The window keeps a page's statement to about a page of rows whatever plan PostgreSQL picks:
    its estimate of our rows in a range can be a tenth of the truth (the identity rule's
    selectivity), and a page asked for more rows than it expects was read by sorting all the
    rest of the range, then JIT-compiled. A window holds about PAGE_FILL of a page, from the
    last page's pace; a page that fills before its window's end goes on after its last row, a
    page that does not has read every row before the end, and the next starts there. Which rows
    a page holds never depends on the guess: only how many statements the export takes."""

    def __init__(self, source: _Source, request: ExportRequest, size: int) -> None:
        self.source, self.request, self.size = source, request, size
        self.ranged = source.queryset.filter(
            **{f"{source.time}__gte": request.since, f"{source.time}__lt": request.until}
        ).order_by(source.time, source.key)
        self.start, self.after = request.since, None
        self.end = _window_end(request.since, EXPORT_FIRST_WINDOW, request.until)

    def query(self) -> QuerySet:
        """The next page's query."""
        time = self.source.time
        page = self.ranged.filter(**{f"{time}__lt": self.end})
        if self.after is not None:
            page = page.filter(_after(self.source, *self.after))
        elif self.start > self.request.since:
            page = page.filter(**{f"{time}__gte": self.start})
        return page.values_list(*self.source.selected)[: self.size]

    def advance(self, rows: int, last: Callable[[], tuple]) -> bool:
        """Move past a page of `rows` rows (`last` reads its last row's (time, key)); whether
        there are more pages."""
        began = self.after[0] if self.after is not None else self.start
        if rows == self.size:
            self.after = last()
            span, self.start = self.after[0] - began, self.after[0]
        elif self.end >= self.request.until:
            return False
        else:
            span, self.start, self.after = self.end - began, self.end, None
        # The next window: what this page's pace says a page takes, up to four times as long.
        window = span * min(PAGE_FILL * self.size / max(rows, 1), 4)
        self.end = _window_end(self.start, max(window, _SHORTEST_WINDOW), self.request.until)
        return True


def _window_end(start: datetime, window: timedelta, until: datetime) -> datetime:
    """start + window, at most until (never past the last date a datetime holds)."""
    return until if window >= until - start else start + window


# --- PostgreSQL: each page one COPY -----------------------------------------------------------------

# COPY's options by format. NDJSON lines come through COPY's CSV format with a quote and a delimiter
# that JSON text never holds as they are (PostgreSQL writes a control character in a string as an
# escape), so a line arrives as PostgreSQL made it: COPY's text format would double every
# backslash. Only a line with a line break of its own (an attached `json` column keeps its text as
# written, whitespace and all) comes quoted, and is unquoted (_lines_bytes).
_COPY_OPTIONS = {"csv": "FORMAT csv", "ndjson": r"FORMAT csv, DELIMITER E'\x02', QUOTE E'\x01'"}
_NDJSON_QUOTE = b"\x01"
_NDJSON_DELIMITER = b"\x02"
_JSON_NUMBER_SQL = "^" + _JSON_NUMBER.pattern + "$"


def _copied_pages(
    source: _Source, request: ExportRequest, page_size: int, *, wrap: Callable[[str], str]
) -> Iterator[tuple[bytes, int]]:
    """The pages, each `COPY (its query) TO STDOUT`, as (bytes, rows) in batches of STREAM_BATCH
    rows as the server sends them. The rows are the lines PostgreSQL wrote (_copy_line_sql); none
    is parsed but a page's last, for the (time, key) the next page starts after."""
    pages, format = _Pages(source, request, page_size), request.format
    while True:
        sql, params = pages.query().query.sql_with_params()
        # psycopg merges the parameters into a COPY's text itself (COPY takes no bound ones); the
        # range's bounds are always among them, so the text's %% are read as %.
        assert params
        rows, last = 0, b""
        for lines in _copied(f"COPY ({wrap(sql)}) TO STDOUT ({_COPY_OPTIONS[format]})", params):
            rows, last = rows + len(lines), lines[-1]
            yield _lines_bytes(lines, source, format), len(lines)
        if not pages.advance(rows, lambda: _last_keyset(bytes(last), source, format)):  # noqa: B023
            return


def _copied(statement: str, params: list) -> Iterator[list]:
    """A COPY's rows in lists of STREAM_BATCH as they come (libpq hands over a COPY's data a row
    at a time), so that the server goes on with the page while the first batches are written.

    Without JIT compilation (set for the page's own transaction, or a savepoint of the caller's,
    and set back after it): a page walks an index for about a page of rows, which compiling never pays for,
    and PostgreSQL's estimates of our rows (a fresh attached table without statistics, a range it
    misjudges) put pages above jit_above_cost: an attached table's pages of a few rows took a
    second each to compile."""
    with (
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("SELECT current_setting('jit'), set_config('jit', 'off', true)")
        (previous, _) = cursor.fetchone()
        yield from _copy_rows(cursor, statement, params)
        # as it was for the rest of a caller's transaction (a failure or a caller that stops
        # leaves through the savepoint's rollback, which takes the setting back with it)
        cursor.execute("SELECT set_config('jit', %s, true)", [previous])


def _copy_rows(cursor, statement: str, params: list) -> Iterator[list]:
    with cursor.cursor.copy(statement, params) as copy:
        batch = []
        try:
            for row in copy:
                batch.append(row)
                if len(batch) == STREAM_BATCH:
                    yield batch
                    batch = []
        except GeneratorExit:
            # A caller that stops mid-page (a client gone) closes this generator: read the rest of
            # the page (a page at most) rather than let psycopg cancel the COPY, which would abort
            # the transaction around it, if there is one.
            for _ in copy:
                pass
            raise
        if batch:
            yield batch


def _lines_bytes(lines: list, source: _Source, format: str) -> bytes:
    """A batch of COPY rows as the export's lines: a ctid taken off the front, a quoted NDJSON
    line unquoted (COPY quotes a field with a line break: only an attached `json` column's own)."""
    if source.key_sql:
        separator = b'",' if format == "csv" else _NDJSON_DELIMITER
        lines = [bytes(row).split(separator, 1)[1] for row in lines]
    written = b"".join(lines)
    if format == "ndjson" and _NDJSON_QUOTE in written:
        written = b"".join(_unquoted(bytes(row)) for row in lines)
    return written


def _unquoted(row: bytes) -> bytes:
    if not row.startswith(_NDJSON_QUOTE):
        return row
    return row[1:-2].replace(_NDJSON_QUOTE * 2, _NDJSON_QUOTE) + b"\n"


def _last_keyset(row: bytes, source: _Source, format: str) -> tuple:
    """The (time, key) of a page's last row, read back from its line."""
    key = None
    if source.key_sql:
        key, row = row.split(b'",' if format == "csv" else _NDJSON_DELIMITER, 1)
        key = key.decode().strip('"')
    if format == "csv":
        values = next(csv.reader(io.StringIO(row.decode(), newline="")))
    else:
        values = list(orjson.loads(_unquoted(row)).values())
    return _moment(values[source.time_at]), key if source.key_sql else values[source.key_at]


def _copy_line_sql(source: _Source, format: str) -> Callable[[str], str]:
    """How PostgreSQL writes a page's rows as the export's lines, for a COPY with
    _COPY_OPTIONS[format]. CSV: each field as COPY writes it (its quoting is the csv module's
    minimal quoting, a carriage return quoted too), but that an empty text is an empty field, as
    NULL is (COPY would quote it), and booleans are true/false. NDJSON: the object's text in one
    field, as _ndjson_writer makes it from the same rows. Where the key is no exported column (a
    ctid) it goes first, a field of its own, taken off again (_lines_bytes)."""
    if format == "csv":
        fields = [_csv_field(f"c{at}", column.kind) for at, column in enumerate(source.columns)]
    else:
        members = [
            f"{_sql_text(orjson.dumps(column.name).decode() + ':')} || "
            f"{_json_value(f'c{at}', column.kind)}"
            for at, column in enumerate(source.columns)
        ]
        fields = ["'{' || " + " || ',' || ".join(members) + " || '}'"]
    if source.key_sql:
        fields.insert(0, f"c{source.key_at}::text")
    names = ", ".join(f"c{at}" for at in range(len(source.selected)))

    def wrap(sql: str) -> str:
        # A projection of the ordered, limited page: it keeps the page's order.
        return f"SELECT {', '.join(fields)} FROM ({sql}) AS export_page({names})"

    return wrap


def _sql_text(text: str) -> str:
    """A string literal, its % doubled: the page's SQL goes through psycopg's placeholders."""
    return ("'" + text.replace("'", "''") + "'").replace("%", "%%")


def _csv_field(value: str, kind: str) -> str:
    if kind == BOOLEAN:
        return f"CASE WHEN {value} THEN 'true' WHEN NOT {value} THEN 'false' END"
    return f"NULLIF({value}::text, '')"


def _json_value(value: str, kind: str) -> str:
    """A column's JSON text as _ndjson_writer writes it: JSON as it is, a number's text where it
    is a JSON number, anything else as to_json writes it (the same escapes as orjson's)."""
    if kind == JSON:
        return f"COALESCE({value}, 'null')"
    if kind == BOOLEAN:
        return f"CASE WHEN {value} THEN 'true' WHEN NOT {value} THEN 'false' ELSE 'null' END"
    if kind == NUMBER:
        return (
            f"CASE WHEN {value} IS NULL THEN 'null' WHEN {value} ~ {_sql_text(_JSON_NUMBER_SQL)} "
            f"THEN {value} ELSE to_json({value})::text END"
        )
    return f"COALESCE(to_json({value})::text, 'null')"


# --- SQLite: each page read through the ORM, written in Python --------------------------------------


def _written_pages(
    source: _Source, request: ExportRequest, page_size: int
) -> Iterator[tuple[bytes, int]]:
    """The pages as (bytes, rows), each page one query read through the ORM (its converters) and
    written by _csv_writer or _ndjson_writer."""
    columns = list(source.columns)
    write = _csv_writer(columns) if request.format == "csv" else _ndjson_writer(columns)
    pages = _Pages(source, request, page_size)
    while True:
        page = list(pages.query())
        if page:
            yield write(page), len(page)
        if not pages.advance(
            len(page),
            lambda: (_moment(page[-1][source.time_at]), page[-1][source.key_at]),  # noqa: B023
        ):
            return


# --- the formats ------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    """ISO 8601 with microseconds, in UTC with Z (a time without a zone as it is): what
    PostgreSQL's to_char writes for the same time (_ISO_UTC)."""
    if moment.tzinfo is None:
        return moment.isoformat(timespec="microseconds")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def _moment(value: datetime | str) -> datetime:
    """A keyset's time: the value read, or the text PostgreSQL wrote (a local time taken as UTC,
    as the connection's UTC session compares it)."""
    if isinstance(value, datetime):
        return value
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _csv_line(values: list) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(values)
    return buffer.getvalue().encode()


def _places(columns: list[ExportColumn], *kinds: str) -> list[int]:
    return [at for at, column in enumerate(columns) if column.kind in kinds]


def _csv_writer(columns: list[ExportColumn]) -> Callable[[list[tuple]], bytes]:
    """A page as CSV rows: RFC 4180 quoting, None as an empty field, JSON as its text."""
    count = len(columns)
    times, booleans = _places(columns, TIME), _places(columns, BOOLEAN)

    def write(page: list[tuple]) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        rows = []
        for row in page:
            row = list(row[:count])
            for at in times:
                if row[at] is not None:
                    row[at] = _iso(row[at])
            for at in booleans:
                if row[at] is not None:
                    row[at] = "true" if row[at] else "false"
            rows.append(row)
        writer.writerows(rows)
        return buffer.getvalue().encode()

    return write


def _json_default(value):
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value)) if value.is_finite() else str(value)
    if isinstance(value, bytes | memoryview):
        return "\\x" + bytes(value).hex()
    return str(value)


def _ndjson_writer(columns: list[ExportColumn]) -> Callable[[list[tuple]], bytes]:
    """A page as NDJSON: an object per row, keys the column names; JSON columns as JSON values."""
    names = [column.name for column in columns]
    raw = _places(columns, JSON)
    numbers = _places(columns, NUMBER)
    times = _places(columns, TIME)
    option = orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE
    dumps, Fragment = orjson.dumps, orjson.Fragment  # noqa: N806 (a class, bound for the loop)

    def write(page: list[tuple]) -> bytes:
        lines = []
        for row in page:
            if raw or numbers or times:
                row = list(row)
                for at in times:
                    if row[at] is not None:
                        row[at] = _iso(row[at])
                for at in raw:
                    if row[at] is not None:
                        row[at] = Fragment(row[at])
                for at in numbers:
                    value = row[at]
                    if value is not None and _JSON_NUMBER.fullmatch(value):
                        row[at] = Fragment(value)
            lines.append(
                dumps(dict(zip(names, row, strict=False)), default=_json_default, option=option)
            )
        return b"".join(lines)

    return write


# --- the tables -------------------------------------------------------------------------------------


def _after(source: _Source, time: datetime, key) -> Q:
    """Rows after (time, key) in (time, key) order. `time >= t` on its own too: the index scan
    starts at t, not at the range's start, so the n-th page costs what the first does."""
    if source.key_sql:
        later_key = Q(**{f"{source.key}__gt": RawSQL(f"%s::{source.key_sql}", [key])})
    else:
        later_key = Q(**{f"{source.key}__gt": key})
    return Q(**{f"{source.time}__gte": time}) & (
        Q(**{f"{source.time}__gt": time}) | (Q(**{source.time: time}) & later_key)
    )


def _source(table: str) -> _Source:
    kind = EXPORT_TABLES[table]
    if kind is None:
        return _model_source(Journey, Journey.objects.synthetic(), time="started_at")
    model = event_models()[kind]
    if target_in_force() is None:
        return _model_source(model, model.objects.synthetic(), time="created_at")
    return _attached_source(model)


def _field_kind(field: models.Field) -> str:
    if isinstance(field, models.JSONField):
        return JSON
    if isinstance(field, models.DateTimeField):
        return TIME
    if isinstance(field, models.BooleanField):
        return BOOLEAN
    return VALUE


# ISO 8601 in UTC with microseconds, written by PostgreSQL: reading a timestamptz into a datetime
# and writing it out again was a third of an export's time in Python.
_ISO_UTC = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
_ISO_LOCAL = "to_char({}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"


class _IsoUtcText(Func):
    """A timestamptz as the export writes it (_iso), as text made by PostgreSQL."""

    template = _ISO_UTC.format("%(expressions)s")
    output_field = models.TextField()


def _model_source(model: type[models.Model], queryset: QuerySet, *, time: str) -> _Source:
    """One of Synthetics' own tables: its columns as the model has them (foreign keys as `*_id`).
    On PostgreSQL, JSON, times and UUIDs come as the text they are written as (not parsed only to
    be written again); SQLite's come as values and are written in Python, the same text."""
    postgresql = connection.vendor == "postgresql"
    columns, selected, texts = [], [], {}
    for field in model._meta.concrete_fields:
        kind = _field_kind(field)
        alias = f"export_{field.attname}"
        if kind == JSON:
            texts[alias] = Cast(field.attname, models.TextField())
        elif postgresql and kind == TIME:
            texts[alias], kind = _IsoUtcText(field.attname), VALUE
        elif postgresql and isinstance(getattr(field, "target_field", field), models.UUIDField):
            texts[alias] = Cast(field.attname, models.TextField())
        else:
            alias = field.attname
        columns.append(ExportColumn(field.column, kind))
        selected.append(alias)
    key = model._meta.pk.attname
    return _Source(
        queryset=queryset.annotate(**texts),
        time=time,
        key=key,
        columns=tuple(columns),
        selected=tuple(selected),
        time_at=[field.attname for field in model._meta.concrete_fields].index(time),
        key_at=[field.attname for field in model._meta.concrete_fields].index(key),
    )


# An attached column by its PostgreSQL type: how it is selected and written. Any other type is
# read as PostgreSQL's text of it (uuid, text, enums, dates, arrays, ...).
_INTEGERS = {"smallint", "integer", "bigint"}
_NUMBERS = ("numeric", "real", "double precision")


def _attached_kind(pg_type: str) -> tuple[str, str, models.Field]:
    """(kind, the column's SQL around {}, the output field) for a PostgreSQL type."""
    if pg_type in {"json", "jsonb"}:
        return JSON, "{}::text", models.TextField()
    if pg_type == "timestamp with time zone":
        return VALUE, _ISO_UTC, models.TextField()
    if pg_type == "timestamp without time zone":  # the application's local time, as it is
        return VALUE, _ISO_LOCAL, models.TextField()
    if pg_type == "boolean":
        return BOOLEAN, "{}", models.BooleanField()
    if pg_type in _INTEGERS:
        return VALUE, "{}", models.BigIntegerField()
    if pg_type.startswith(_NUMBERS):
        return NUMBER, "{}::text", models.TextField()
    return VALUE, "{}::text", models.TextField()


def _attached_source(model: type[models.Model]) -> _Source:
    """An application's event table (attach mode): every column of the table, read by name from
    the catalogue, the rows those of the rule (the model's queryset). The keyset's key is the
    primary key, or the row's address (ctid) where the table has no single-column one."""
    table_name = model._meta.db_table.replace('"."', ".", 1)
    table = app_catalog(connection, [table_name.split(".", 1)[0]])[table_name]
    prefix = qualified(table_name)
    columns, selected, expressions = [], [], {}
    for number, column in enumerate(table.columns):
        kind, sql, output = _attached_kind(column.type)
        alias = f"export_{number}"
        # RawSQL's text goes through psycopg's placeholders: a % in a name is written %%.
        name = f"{prefix}.{quoted(column.name)}".replace("%", "%%")
        expressions[alias] = RawSQL(sql.format(name), [], output)
        columns.append(ExportColumn(column.name, kind))
        selected.append(alias)
    queryset = model.objects.synthetic().annotate(**expressions)
    names = [column.name for column in table.columns]
    time_at = names.index(model._meta.get_field("created_at").column)
    if len(table.primary_key) == 1:
        key, key_sql, key_at = "pk", "", names.index(table.primary_key[0])
    else:
        queryset = queryset.annotate(
            export_row=RawSQL(f"{prefix.replace('%', '%%')}.ctid", [], models.TextField())
        )
        key, key_sql, key_at = "export_row", "tid", len(selected)
        selected.append(key)
    return _Source(
        queryset=queryset,
        time="created_at",
        key=key,
        columns=tuple(columns),
        selected=tuple(selected),
        time_at=time_at,
        key_at=key_at,
        key_sql=key_sql,
    )
