"""Database expressions shared by the models' indexes and the selectors' filters.

The synthetic tag lives in each event's JSON payload (`"synthetic": true`). `SyntheticTag` renders the
tag as text with the very expression the seed's verification SQL uses on PostgreSQL
(`event_payload->>'synthetic'`), so one expression index serves the seed's SQL, our selectors and
cleanup alike. SQLite gets an expression that renders the key as PostgreSQL's `->>` does: 'true' for
JSON true (and, like PostgreSQL, for the JSON string "true"), never for false, 1 or a missing key.
"""

from django.db.models import Func, TextField

TAG_KEY = "synthetic"
TAG_TRUE = "true"


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
