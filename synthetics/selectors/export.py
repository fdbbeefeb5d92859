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
from django.db import connection, models
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
    until = (now if until is None else until).astimezone(UTC)
    since = (until - EXPORT_DEFAULT_SPAN if since is None else since).astimezone(UTC)
    if since >= until:
        raise ApplicationError(
            f"since ({_iso(since)}) must be before until ({_iso(until)}).",
            extra={"field": "since"},
        )
    return ExportRequest(table=table, format=format, since=since, until=until)


def export_columns(table: str) -> list[ExportColumn]:
    """The columns a table is exported with, in order (the CSV header, the NDJSON keys)."""
    return list(_source(table).columns)


def export_pages(request: ExportRequest, *, page_size: int | None = None) -> Iterator[list[tuple]]:
    """Our rows in the range, oldest first (ties by primary key), in batches of a page or less:
    each page is one query from the previous page's last (time, key). Each row holds the exported
    columns first."""
    return _pages(_source(request.table), request, page_size or EXPORT_PAGE_SIZE)


def _pages(
    source: _Source, request: ExportRequest, page_size: int, *, csv_lines: bool = False
) -> Iterator[list[tuple]]:
    """The pages' rows in batches. With `csv_lines` (PostgreSQL only) each row is instead
    (its CSV line, its time, its key), the line made by PostgreSQL (_csv_line_sql)."""
    ranged = source.queryset.filter(
        **{f"{source.time}__gte": request.since, f"{source.time}__lt": request.until}
    ).order_by(source.time, source.key)
    time_at, key_at = (1, 2) if csv_lines else (source.time_at, source.key_at)
    wrap = _csv_line_sql(source) if csv_lines else None
    after: tuple | None = None
    while True:
        page_query = ranged
        if after is not None:
            page_query = ranged.filter(_after(source, *after))
        rows, last = 0, None
        for batch in _batches(page_query.values_list(*source.selected)[:page_size], wrap=wrap):
            rows, last = rows + len(batch), batch[-1]
            yield batch
        if rows < page_size:
            return
        after = (_moment(last[time_at]), last[key_at])


def _csv_line_sql(source: _Source) -> Callable[[str], str]:
    """Wrap a page's query so that PostgreSQL writes each row as its CSV line, beside the row's
    time and key for the keyset: the csv module's minimal quoting (a field with a comma, a quote
    or a line break quoted, its quotes doubled; NULL an empty field), byte for byte, but that a
    carriage return is quoted too (the module leaves it bare under a "\n" line end, which a
    reader takes for the end of the row). Quoting in Python was most of a CSV export's own time."""
    count = len(source.selected)
    names = [f"c{at}" for at in range(count)]
    fields = []
    for at, column in enumerate(source.columns):
        text = f"c{at}::text"
        if column.kind == BOOLEAN:
            fields.append(
                f"CASE WHEN c{at} IS NULL THEN '' WHEN c{at} THEN 'true' ELSE 'false' END"
            )
        else:
            fields.append(
                f"CASE WHEN c{at} IS NULL THEN '' WHEN {text} ~ '[\",\r\n]' "
                f"THEN '\"' || replace({text}, '\"', '\"\"') || '\"' ELSE {text} END"
            )
    line = " || ',' || ".join(fields)

    def wrap(sql: str) -> str:
        # A projection of the ordered, limited page: it keeps the page's order.
        return (
            f"SELECT {line}, c{source.time_at}, c{source.key_at} "
            f"FROM ({sql}) AS export_page({', '.join(names)})"
        )

    return wrap


def _batches(query: QuerySet, *, wrap: Callable[[str], str] | None = None) -> Iterator[list[tuple]]:
    """A page's rows in batches. On PostgreSQL a page comes in chunks of STREAM_BATCH rows as the
    server makes them (libpq's chunked mode): the server reads the rest of the page while the
    caller writes the first batches, where a whole page fetched, then written, left it idle for a
    third of an export. SQLite's page is one batch, read through the ORM (its converters)."""
    if connection.vendor != "postgresql":
        page = list(query)
        if page:
            yield page
        return
    sql, params = query.query.sql_with_params()
    if wrap is not None:
        sql = wrap(sql)
    with connection.cursor() as cursor:
        rows = cursor.cursor.stream(sql, params, size=STREAM_BATCH)
        try:
            batch = []
            for row in rows:
                batch.append(row)
                if len(batch) == STREAM_BATCH:
                    yield batch
                    batch = []
            if batch:
                yield batch
        finally:
            # A caller that stops mid-page (a client gone) closes this generator: read the rest of
            # the page (a page at most) rather than let psycopg cancel the statement, which would
            # abort the transaction around it, if there is one.
            for _ in rows:
                pass


def export_chunks(
    request: ExportRequest,
    *,
    page_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The export as UTF-8 bytes, one chunk per page (CSV's header row first); `progress` is told
    each page's number of rows after its chunk is made."""
    # The table is read (its model, in attach mode its catalogue) before the first chunk: a
    # failure there is the caller's to answer, before a response has begun.
    source = _source(request.table)
    columns = list(source.columns)
    csv_lines = request.format == "csv" and connection.vendor == "postgresql"
    if csv_lines:
        write = _joined_lines
    else:
        write = _csv_writer(columns) if request.format == "csv" else _ndjson_writer(columns)

    def chunks() -> Iterator[bytes]:
        if request.format == "csv":
            yield _csv_line([column.name for column in columns])
        for page in _pages(source, request, page_size or EXPORT_PAGE_SIZE, csv_lines=csv_lines):
            chunk = write(page)
            if progress is not None:
                progress(len(page))
            yield chunk

    return chunks()


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


def _joined_lines(page: list[tuple]) -> bytes:
    """A page of (CSV line, time, key) rows as the lines' bytes."""
    return ("\n".join([row[0] for row in page]) + "\n").encode()


def _places(columns: list[ExportColumn], *kinds: str) -> list[int]:
    return [at for at, column in enumerate(columns) if column.kind in kinds]


def _csv_writer(columns: list[ExportColumn]) -> Callable[[list[tuple]], bytes]:
    """A page as CSV rows: RFC 4180 quoting, None as an empty field, JSON as its text."""
    count = len(columns)
    times, booleans = _places(columns, TIME), _places(columns, BOOLEAN)

    def write(page: list[tuple]) -> bytes:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        if not times and not booleans and len(page[0]) == count:
            # Every value already as written (PostgreSQL's event tables): no copy of each row.
            writer.writerows(page)
            return buffer.getvalue().encode()
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
