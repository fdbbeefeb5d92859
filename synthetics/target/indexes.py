"""The tag index on an attached application's event tables: the one change Synthetics ever makes
to an application's table, made only by `manage.py target index`, CONCURRENTLY (writers to the
table are never blocked). It is the demo tables' `*_synthetic_idx`: the tag's text (the seed's
own expression, `event_payload->>'synthetic'`) and the time, so the seed's five-minute query, the
status counts and cleanup's batches walk our rows through it instead of reading the table."""

from __future__ import annotations

from django.db import connection

from synthetics.db import TAG_KEY
from synthetics.target.mapping import Target, qualified, quoted

INDEX_SUFFIX = "_synthetics_tag_idx"


def tag_index_name(table: str) -> str:
    """The index's name: the table's, then the suffix, within PostgreSQL's 63 bytes."""
    name = table.split(".", 1)[1]
    return name.encode()[: 63 - len(INDEX_SUFFIX)].decode(errors="ignore") + INDEX_SUFFIX


def tag_index_sql(target: Target) -> list[tuple[str, str, str]]:
    """(schema, index name, CREATE INDEX statement) for each mapped event table with a payload."""
    statements = []
    for mapping in target.events.values():
        if mapping.payload is None:
            continue  # the rows' origin is in our own table, indexed by its key
        schema = mapping.table.split(".", 1)[0]
        name = tag_index_name(mapping.table)
        statements.append(
            (
                schema,
                name,
                f"CREATE INDEX CONCURRENTLY {quoted(name)} ON {qualified(mapping.table)} "
                f"(({quoted(mapping.payload)} ->> '{TAG_KEY}'), {quoted(mapping.time)})",
            )
        )
    return statements


def tag_indexes_make(target: Target, *, dry_run: bool = False) -> list[str]:
    """Make each missing tag index (CONCURRENTLY: outside a transaction); one line per table. An
    index a failed concurrent build left invalid is dropped (CONCURRENTLY) and made again."""
    lines = []
    with connection.cursor() as cursor:
        for schema, name, create in tag_index_sql(target):
            cursor.execute(
                "SELECT i.indisvalid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "JOIN pg_index i ON i.indexrelid = c.oid WHERE n.nspname = %s AND c.relname = %s",
                [schema, name],
            )
            found = cursor.fetchone()
            if found is not None and found[0]:
                lines.append(f"{schema}.{name}: already there")
                continue
            statements = [create]
            if found is not None:
                statements.insert(0, f"DROP INDEX CONCURRENTLY {quoted(schema)}.{quoted(name)}")
            for statement in statements:
                if not dry_run:
                    cursor.execute(statement)
                lines.append(statement + (";" if dry_run else ";  -- done"))
    return lines
