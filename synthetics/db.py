"""Database expressions shared by the models' indexes and the selectors' filters.

The synthetic tag lives in each event's JSON payload (`"synthetic": true`). `SyntheticTag` renders the
tag as text with the very expression the seed's verification SQL uses on PostgreSQL
(`event_payload->>'synthetic'`), so one expression index serves the seed's SQL, our selectors and
cleanup alike. SQLite gets an expression that renders the key as PostgreSQL's `->>` does: 'true' for
JSON true (and, like PostgreSQL, for the JSON string "true"), never for false, 1 or a missing key.

The text tag alone is not proof that a row is ours: a real application may write `"synthetic": "true"`
for its own test traffic. `SyntheticOrigin` is the strict reading: the run id of the row when the
tag is the JSON boolean true and `run_id` is a JSON integer, else NULL. A row is ours only when that
id names a succeeded run in our ledger (`EventQuerySet.synthetic()` in models.py).
"""

from datetime import UTC, datetime

from django.db.models import BigIntegerField, Func, TextField

TAG_KEY = "synthetic"
TAG_TRUE = "true"
RUN_ID_KEY = "run_id"
# The random key of the run that wrote the row (SyntheticRun.run_key): proof that the row was
# written by that run, not before it existed.
RUN_KEY_KEY = "run_key"


class SyntheticTag(Func):
    """The payload's `synthetic` key as text: 'true' exactly when the row is tagged synthetic."""

    output_field = TextField()
    arity = 1

    def as_postgresql(self, compiler, connection, **extra_context):
        column_sql, params = compiler.compile(self.source_expressions[0])
        return f"({column_sql} ->> %s)", (*params, TAG_KEY)

    def as_sqlite(self, compiler, connection, **extra_context):
        column_sql, params = compiler.compile(self.source_expressions[0])
        path = f"$.{TAG_KEY}"
        sql = (
            f"(CASE json_type({column_sql}, %s) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
            f"ELSE json_extract({column_sql}, %s) END)"
        )
        return sql, (*params, path, *params, path)

    def as_sql(self, compiler, connection, **extra_context):  # other backends: plain JSON key
        column_sql, params = compiler.compile(self.source_expressions[0])
        return f"JSON_UNQUOTE(JSON_EXTRACT({column_sql}, %s))", (*params, f"$.{TAG_KEY}")


class SyntheticOrigin(Func):
    """The payload's `run_id` as a bigint when the row carries the boolean tag and an integer run id.

    NULL for anything else (the string "true", a missing or non-integer run id), without ever
    raising on a malformed value: the cast only runs after the type checks (a CASE guarantees it).
    """

    output_field = BigIntegerField()
    arity = 1

    def as_postgresql(self, compiler, connection, **extra_context):
        column_sql, params = compiler.compile(self.source_expressions[0])
        sql = (
            f"(CASE WHEN ({column_sql} -> %s) = 'true'::jsonb "
            f"AND jsonb_typeof({column_sql} -> %s) = 'number' "
            f"AND ({column_sql} ->> %s) ~ '^[1-9][0-9]{{0,17}}$' "
            f"THEN ({column_sql} ->> %s)::bigint END)"
        )
        return sql, _each_with(params, TAG_KEY, RUN_ID_KEY, RUN_ID_KEY, RUN_ID_KEY)

    def as_sqlite(self, compiler, connection, **extra_context):
        column_sql, params = compiler.compile(self.source_expressions[0])
        sql = (
            f"(CASE WHEN json_type({column_sql}, %s) = 'true' "
            f"AND json_type({column_sql}, %s) = 'integer' "
            f"THEN json_extract({column_sql}, %s) END)"
        )
        tag, run = f"$.{TAG_KEY}", f"$.{RUN_ID_KEY}"
        return sql, _each_with(params, tag, run, run)


def _each_with(params: tuple | list, *keys: str) -> tuple:
    """The column's own parameters before each key, in order: the SQL above names the column once
    per key."""
    return tuple(value for key in keys for value in (*params, key))


# The largest run id SyntheticOrigin accepts on PostgreSQL: at most 18 digits.
_MAX_RUN_ID = 10**18 - 1


def origin_run_id(payload: object) -> int | None:
    """SyntheticOrigin in Python, for a payload already read: the run id, or None.

    The boolean tag and a JSON integer run id from 1 to 18 digits (JSON decoding keeps true, 5,
    5.0 and "5" apart, as jsonb_typeof and json_type do). Used where a page of rows is already in
    memory (the admin's lists), so the ledger is asked once for the page's run ids.
    """
    if not isinstance(payload, dict) or payload.get(TAG_KEY) is not True:
        return None
    run_id = payload.get(RUN_ID_KEY)
    if type(run_id) is not int or not 1 <= run_id <= _MAX_RUN_ID:
        return None
    return run_id


def origin_claim(payload: object) -> tuple[int, object] | None:
    """The run a payload claims, for the identity rule in Python: (run id, the `run_key` value as
    it is, None when missing), or None when it claims none (origin_run_id)."""
    run_id = origin_run_id(payload)
    if run_id is None:
        return None
    return run_id, payload.get(RUN_KEY_KEY)


_SECOND_TEXT: dict[int, str] = {}


def utc_ms_text(ms: int) -> str:
    """A time in milliseconds since the epoch as timestamptz text in UTC ('2026-12-07
    01:02:03.456+00'), for COPY's text format.

    Formatting a datetime for COPY costs psycopg about a microsecond and a half a value: at history
    rates, a fifth of the engine thread's formatting. Events of one second share its text, kept
    here (bounded); the milliseconds are appended."""
    second, milli = divmod(ms, 1000)
    prefix = _SECOND_TEXT.get(second)
    if prefix is None:
        if len(_SECOND_TEXT) >= 10_000:  # about a megabyte; a span reads its seconds in order
            _SECOND_TEXT.clear()
        moment = datetime.fromtimestamp(second, UTC)
        prefix = _SECOND_TEXT[second] = moment.isoformat(sep=" ", timespec="seconds")[:19]
    return f"{prefix}.{milli:03d}+00"
