"""An application's tables as PostgreSQL's catalogue describes them: columns with their types, NOT
NULL, defaults, identity and enum labels; primary and foreign keys; CHECKs; row-level security and
its policies; triggers; and what the connected role may do to each table. Read-only, one statement
per kind of fact, for the tables of the schemas asked for: what `target inspect` proposes a target
file from and `target check` holds one against."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # as PostgreSQL writes it: format_type() ("uuid", "timestamp with time zone", …)
    not_null: bool
    default: str | None  # the default's expression, or None
    identity: str = ""  # "always", "by default" or "" (not an identity column)
    generated: bool = False  # GENERATED ALWAYS AS (…) STORED: never written
    enum_labels: tuple[str, ...] | None = None  # the labels of an enum type, in order

    @property
    def fills_itself(self) -> bool:
        """A value comes without us: a default, an identity or a generated column."""
        return self.default is not None or bool(self.identity) or self.generated


@dataclass(frozen=True, slots=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    references: str  # the referenced table, "schema.table"
    referenced_columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    checks: tuple[tuple[str, str], ...] = ()  # (name, definition)
    check_columns: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (CHECK name, its columns)
    row_security: bool = False
    row_security_forced: bool = False
    policies: tuple[str, ...] = ()
    triggers: tuple[tuple[str, str], ...] = ()  # (name, definition)
    privileges: frozenset[str] = field(default_factory=frozenset)  # of PRIVILEGES, the role's
    owned: bool = False  # the connected role owns it (row-level security spares an owner, unforced)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> Column | None:
        return next((column for column in self.columns if column.name == name), None)


def app_catalog(connection, schemas: Iterable[str]) -> dict[str, Table]:
    """The ordinary and partitioned tables of `schemas`, by "schema.table", as the role connected
    through `connection` (a psycopg or Django database connection) sees them."""
    schemas = sorted(set(schemas))
    with connection.cursor() as cursor:
        cursor.execute(_TABLES, [schemas])
        tables = {oid: list(row) for oid, *row in cursor.fetchall()}
        oids = list(tables)
        cursor.execute(_COLUMNS, [oids])
        columns: dict[int, dict[int, Column]] = {oid: {} for oid in oids}
        for (
            oid,
            number,
            name,
            kind,
            not_null,
            default,
            identity,
            generated,
            labels,
        ) in cursor.fetchall():
            columns[oid][number] = Column(
                name=name,
                type=kind,
                not_null=not_null,
                default=default,
                identity={"a": "always", "d": "by default"}.get(identity, ""),
                generated=bool(generated),
                enum_labels=tuple(labels) if labels is not None else None,
            )
        cursor.execute(_CONSTRAINTS, [oids])
        constraints = cursor.fetchall()
        cursor.execute(_POLICIES, [oids])
        policies: dict[int, list[str]] = {}
        for oid, name in cursor.fetchall():
            policies.setdefault(oid, []).append(name)
        cursor.execute(_TRIGGERS, [oids])
        triggers: dict[int, list[tuple[str, str]]] = {}
        for oid, name, definition in cursor.fetchall():
            triggers.setdefault(oid, []).append((name, definition))
    keys: dict[int, tuple[str, ...]] = {}
    foreign: dict[int, list[ForeignKey]] = {}
    checks: dict[int, list[tuple[str, str]]] = {}
    check_columns: dict[int, dict[str, tuple[str, ...]]] = {}
    for oid, name, kind, numbers, referenced, referenced_numbers, definition in constraints:
        names = tuple(columns[oid][number].name for number in numbers or ())
        if kind == "p":
            keys[oid] = names
        elif kind == "c":
            checks.setdefault(oid, []).append((name, definition))
            check_columns.setdefault(oid, {})[name] = names
        elif kind == "f":
            foreign.setdefault(oid, []).append(
                ForeignKey(
                    name=name,
                    columns=names,
                    references=referenced,
                    referenced_columns=tuple(referenced_numbers),
                )
            )
    catalog = {}
    for oid, (schema, name, secured, forced, owned, *granted) in tables.items():
        table = Table(
            schema=schema,
            name=name,
            columns=tuple(columns[oid][number] for number in sorted(columns[oid])),
            primary_key=keys.get(oid, ()),
            foreign_keys=tuple(foreign.get(oid, ())),
            checks=tuple(checks.get(oid, ())),
            check_columns=tuple(check_columns.get(oid, {}).items()),
            row_security=secured,
            row_security_forced=forced,
            owned=owned,
            policies=tuple(policies.get(oid, ())),
            triggers=tuple(triggers.get(oid, ())),
            privileges=frozenset(
                privilege for privilege, held in zip(PRIVILEGES, granted, strict=True) if held
            ),
        )
        catalog[table.qualified] = table
    return catalog


_TABLES = """
SELECT c.oid, n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity,
       pg_has_role(c.relowner, 'USAGE'),
       has_table_privilege(c.oid, 'SELECT'), has_table_privilege(c.oid, 'INSERT'),
       has_table_privilege(c.oid, 'UPDATE'), has_table_privilege(c.oid, 'DELETE')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY(%s)
ORDER BY n.nspname, c.relname
"""

_COLUMNS = """
SELECT a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated <> '',
       CASE WHEN t.typtype = 'e' THEN (
           SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
           FROM pg_enum e WHERE e.enumtypid = t.oid
       ) END
FROM pg_attribute a
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.attgenerated = ''
WHERE a.attrelid = ANY(%s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attrelid, a.attnum
"""

# A foreign key names its referenced table and columns by name: it may point outside the schemas.
_CONSTRAINTS = """
SELECT con.conrelid, con.conname, con.contype, con.conkey,
       CASE WHEN con.contype = 'f' THEN fn.nspname || '.' || fc.relname END,
       CASE WHEN con.contype = 'f' THEN (
           SELECT array_agg(fa.attname::text ORDER BY k.ordinality)
           FROM unnest(con.confkey) WITH ORDINALITY AS k(number, ordinality)
           JOIN pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attnum = k.number
       ) END,
       pg_get_constraintdef(con.oid)
FROM pg_constraint con
LEFT JOIN pg_class fc ON fc.oid = con.confrelid
LEFT JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE con.conrelid = ANY(%s) AND con.contype IN ('p', 'f', 'c')
ORDER BY con.conrelid, con.conname
"""

_POLICIES = """
SELECT polrelid, polname FROM pg_policy WHERE polrelid = ANY(%s) ORDER BY polrelid, polname
"""

_TRIGGERS = """
SELECT tgrelid, tgname, pg_get_triggerdef(oid)
FROM pg_trigger WHERE tgrelid = ANY(%s) AND NOT tgisinternal
ORDER BY tgrelid, tgname
"""


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    superuser: bool
    bypasses_row_security: bool


def connected_role(connection) -> Role:
    """The role the connection acts as, and what lets it past row-level security."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        name, superuser, bypasses = cursor.fetchone()
    return Role(name, superuser, bypasses)
