"""Where events live, as the ORM reaches them: the demo tables (JourneySceneEvent, MindblockEvent)
or, in attach mode, the application's own event tables seen through models built from the target
file. An attached table's model names the mapped columns with the demo models' field names
(`created_at`, `event_payload`, `event_type`) and carries the same EventQuerySet, so the identity
rule (`EventQuerySet.synthetic()`), the tag index's expression, the status counts and cleanup's
batches are one code for both modes. These models live in a registry of their own: they are the
application's, never Synthetics', and no migration ever sees them."""

from __future__ import annotations

import functools

from django.apps.registry import Apps
from django.db import connection, models

from synthetics.engine.types import EVENT_TYPES
from synthetics.models import (
    EventQuerySet,
    JourneySceneEvent,
    MindblockEvent,
    OriginEventQuerySet,
)
from synthetics.target.catalog import Table, app_catalog
from synthetics.target.mapping import EventMapping, target_in_force

_KEY_FIELDS = {
    "uuid": models.UUIDField,
    "bigint": models.BigIntegerField,
    "integer": models.IntegerField,
    "smallint": models.SmallIntegerField,
}


def db_table(table: str) -> str:
    """A schema-qualified table as Django's db_table: quote_name leaves a name that starts and ends
    with a double quote as it is, so 'schema"."table' becomes "schema"."table"."""
    schema, name = table.split(".", 1)
    return f'{schema}"."{name}'


def event_model(
    mapping: EventMapping, table: Table, registry: Apps, *, shared: bool = False
) -> type[models.Model]:
    """An unmanaged model of one attached event table, named as the demo models' fields are.
    `shared`: another kind goes into this table too, so each kind's model sees only its own event types
    (`target check` asks for a type column then)."""
    key = table.primary_key[0] if len(table.primary_key) == 1 else None
    key_column = table.column(key) if key else None
    key_field = _KEY_FIELDS.get(key_column.type if key_column else "", models.TextField)
    attrs = {
        "__module__": __name__,
        # Django wants a primary key; a table without a single-column one is counted and deleted
        # by its rows' addresses (ctid) only, so any column serves as the stand-in.
        "row_key": key_field(primary_key=True, db_column=key or mapping.time),
        "created_at": models.DateTimeField(db_column=mapping.time),
        "account": models.TextField(db_column=mapping.account),
        "objects": _manager(mapping, shared),
        "origin_table": "" if mapping.payload is not None else mapping.table,
        "Meta": type(
            "Meta",
            (),
            {
                "managed": False,
                "db_table": db_table(mapping.table),
                "apps": registry,
                "app_label": "application",
                "ordering": ["-created_at"],
            },
        ),
    }
    if mapping.payload is not None:
        attrs["event_payload"] = models.JSONField(db_column=mapping.payload)
    if mapping.type is not None:
        attrs["event_type"] = models.TextField(db_column=mapping.type)
    name = f"Attached{mapping.kind.title()}Event"
    return type(name, (models.Model,), attrs)


def _manager(mapping: EventMapping, shared: bool) -> models.Manager:
    manager = _queryset(mapping).as_manager()
    if not shared:
        return manager
    types = list(EVENT_TYPES[mapping.kind])

    class KindManager(type(manager)):
        def get_queryset(self):
            return super().get_queryset().filter(event_type__in=types)

    return KindManager()


def _queryset(mapping: EventMapping) -> type[EventQuerySet]:
    """The rule's queryset: the tag in the payload, or the origin rows of the table's rows."""
    if mapping.payload is not None:
        return EventQuerySet
    return type("OriginQuerySet", (OriginEventQuerySet,), {"origin_table": mapping.table})


@functools.cache
def _attached_models() -> dict[str, type[models.Model]]:
    """The attached event tables' models, read from the catalogue once per process, in a registry
    apart from Django's (so no migration, system check or admin ever lists them)."""
    target = target_in_force()
    schemas = {mapping.table.split(".", 1)[0] for mapping in target.events.values()}
    catalog = app_catalog(connection, schemas)
    registry = Apps()
    tables = [mapping.table for mapping in target.events.values()]
    return {
        kind: event_model(
            mapping, catalog[mapping.table], registry, shared=tables.count(mapping.table) > 1
        )
        for kind, mapping in target.events.items()
    }


def event_models() -> dict[str, type[models.Model]]:
    """The event tables by kind ("scene", "mindblock", and "session" where an attached app's
    sessions table is mapped): the demo models, or the attached app's."""
    target = target_in_force()
    if target is None:
        return {"scene": JourneySceneEvent, "mindblock": MindblockEvent}
    return _attached_models()


def target_reset() -> None:
    """Forget the target read and the models built from it (a test that switches targets)."""
    target_in_force.cache_clear()
    _attached_models.cache_clear()
