"""The one rule for changing the journey catalogue while sessions are in progress: an edit that
would strand a session is refused, with one message, wherever it comes from (the admin's forms,
inlines, delete views and bulk delete; a scenario import).

A session is planned whole when it starts (engine/planning.py) and its plan, kept in Journey.plan,
is written step by step for minutes. Every step names its scene by id, slug and position, the plan
names its template by slug, and a mindblock step names its mindblock type by id and slug; a run
writes the ids into foreign keys and the rest into the events' payloads. So while a session is in
progress:

- its template, its template's scenes and the mindblock types it planned must not be deleted: the
  next run's insert would violate a foreign key and every run would fail until the session went
  stale (issue 21: 26 failed runs in a row);
- a scene must not change template, position or slug, nor a template or a mindblock type its
  slug: the session would go on writing a path the catalogue no longer has.

Everything else only shapes the sessions that have not started (names, popularity, weights, dwell
times, rates, `is_active`, new scenes, rhythm profiles) and is never refused: deactivating a
template or a mindblock type is how one is retired while sessions are in progress — unless it
would leave no template a run can start a session from (catalogue_runnable_refusal: every run
would fail), which the scenario import refuses too.

Which sessions: a template's journeys in progress (the runs' own `Journey.objects.synthetic().
active()`), for the template and each of its scenes — whatever part of it each one planned,
as the scenario import always judged it; for a mindblock type, the plans in progress that name it
(read in the database). A deletion is refused too while rows name the row (its foreign keys are
PROTECT), so it never fails half-way.

The check holds the generator lock (services.locks) until the caller's transaction ends: a run
that planned on the old catalogue has committed before the check reads the journeys, and the next
one waits for the change and plans on the new catalogue. It must run in the transaction that then
makes the change.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection
from django.db.models import BooleanField, Model
from django.db.models.expressions import RawSQL

from synthetics.errors import Conflict
from synthetics.models import (
    Incident,
    Journey,
    JourneySceneEvent,
    JourneyTemplate,
    MindblockEvent,
    MindblockType,
    Scene,
)
from synthetics.services.locks import generator_lock_hold

# What a plan names of a row, by model (engine.types.Step and Plan): while a session that planned
# the row is in progress, these fields keep their values.
PLANNED_FIELDS: dict[type[Model], tuple[str, ...]] = {
    JourneyTemplate: ("slug",),
    Scene: ("template", "position", "slug"),
    MindblockType: ("slug",),
}
IN_PROGRESS = "journeys in progress will still write it as they planned it"
_CHANGES = {
    "template": "moved to another template",
    "position": "moved to another position",
    "slug": "given another slug",
}


class CatalogueInUse(Conflict):
    """A catalogue change that sessions in progress (or rows that name the row) refuse (API: 409);
    `extra["field"]` names the first field refused, for a form."""


def catalogue_change_check(
    *, row: Model, changed: Iterable[str] = (), delete: bool = False
) -> None:
    """Refuse (CatalogueInUse) deleting `row` (`delete`) or changing the fields named in `changed`
    when that would strand a session in progress (see the module's docstring); anything else
    passes. Holds the generator lock first, until the caller's transaction ends (GeneratorBusy
    when a run holds it longer than a manual run waits): call it inside the transaction that then
    makes the change."""
    refused = _refused_fields(row, changed)
    if row.pk is None or type(row) not in PLANNED_FIELDS or not (delete or refused):
        return  # nothing a plan names: no lock to wait for
    generator_lock_hold()
    refusal = _refusal(row, refused, delete=delete)
    if refusal is not None:
        raise refusal


def catalogue_change_refusal(
    *, row: Model, changed: Iterable[str] = (), delete: bool = False
) -> str | None:
    """What catalogue_change_check would say now (None: nothing), read without the lock: for a
    page that asks before it changes anything (a delete confirmation). The change itself must go
    through catalogue_change_check."""
    refusal = _refusal(row, _refused_fields(row, changed), delete=delete)
    return None if refusal is None else refusal.message


# What the engine needs to start a session (engine.run.simulate_run): an active template with a
# popularity above 0 and a scene. The scenario import refuses a file without one, in these words.
NOT_RUNNABLE = (
    "no journey template would be active with a popularity above 0 and a scene: no run could "
    "start a session (every run would fail). Keep one such template"
)


def catalogue_runnable_refusal(
    *,
    templates: dict[int, tuple[bool, float]] | None = None,
    removed_templates: Iterable[int] = (),
    removed_scenes: Iterable[int] = (),
) -> str | None:
    """Why a change would leave the catalogue with no template a run can start a session from
    (NOT_RUNNABLE), or None. The change: templates' new (is_active, popularity) by id, templates
    deleted, scenes deleted or moved away from their template. A catalogue that has no such
    template already is not held to it, so it can be mended one edit at a time."""
    templates = templates or {}
    removed_templates, removed_scenes = set(removed_templates), set(removed_scenes)
    scenes: dict[int, set[int]] = {}
    for scene_id, template_id in Scene.objects.values_list("id", "template_id"):
        scenes.setdefault(template_id, set()).add(scene_id)
    now_runnable = after_runnable = False
    for pk, active, popularity in JourneyTemplate.objects.values_list(
        "id", "is_active", "popularity"
    ):
        has_scenes = bool(scenes.get(pk))
        now_runnable |= active and popularity > 0 and has_scenes
        active, popularity = templates.get(pk, (active, popularity))
        after_runnable |= (
            pk not in removed_templates
            and active
            and popularity > 0
            and bool(scenes.get(pk, set()) - removed_scenes)
        )
    if now_runnable and not after_runnable:
        return NOT_RUNNABLE
    return None


# --- the rule ------------------------------------------------------------------------------------


def _refused_fields(row: Model, changed: Iterable[str]) -> list[str]:
    """The fields among `changed` that plans name (none of a new row's: no plan names it)."""
    changed = set(changed)
    planned = PLANNED_FIELDS.get(type(row), ()) if row.pk is not None else ()
    return [name for name in planned if name in changed]


def _refusal(row: Model, refused: list[str], *, delete: bool) -> CatalogueInUse | None:
    if row.pk is None or type(row) not in PLANNED_FIELDS or not (delete or refused):
        return None
    change = "deleted" if delete else " or ".join(_CHANGES[name] for name in refused)
    extra = {} if delete else {"field": refused[0]}
    if _planned(row):
        return CatalogueInUse(
            f"{_subject(row)} cannot be {change} now: {IN_PROGRESS}. Make the change once they "
            f"have ended (a session lasts a few minutes); {_instead(row)} first, so that no new "
            "session plans it.",
            extra=extra,
        )
    if delete and _named(row):
        return CatalogueInUse(
            f"{_subject(row)} cannot be deleted: {_named_by(row)} name it. "
            f"{_instead(row).capitalize()} instead."
        )
    return None


def _in_progress():
    """The journeys the runs advance: synthetic ones in progress (run_inputs.active_journeys)."""
    return Journey.objects.synthetic().active()


def _planned(row: Model) -> bool:
    """Whether a journey in progress planned `row` (a template or a scene: its template's)."""
    if isinstance(row, JourneyTemplate):
        return _in_progress().filter(template=row.pk).exists()
    if isinstance(row, Scene):
        # The template the scene has in the database (a form may hold another one already).
        return _in_progress().filter(template__scenes=row.pk).exists()
    return _plans_naming_mindblock(row.pk)


def _plans_naming_mindblock(mindblock_id: int) -> bool:
    """Whether a plan in progress names the mindblock type, read in the database: jsonb
    containment on PostgreSQL, json_each on SQLite."""
    journeys = _in_progress()
    if connection.vendor == "postgresql":
        return journeys.filter(plan__steps__contains=[{"mindblock_id": mindblock_id}]).exists()
    table = connection.ops.quote_name(Journey._meta.db_table)
    names = RawSQL(
        f"EXISTS (SELECT 1 FROM json_each({table}.plan, '$.steps') AS step "
        "WHERE json_extract(step.value, '$.mindblock_id') = %s)",
        [mindblock_id],
        output_field=BooleanField(),
    )
    return journeys.alias(names=names).filter(names=True).exists()


def _named(row: Model) -> bool:
    """Whether rows name `row` through a PROTECT foreign key (its deletion would fail)."""
    if isinstance(row, Scene):
        return (
            JourneySceneEvent.objects.filter(scene=row.pk).exists()
            or MindblockEvent.objects.filter(scene=row.pk).exists()
        )
    if isinstance(row, JourneyTemplate):
        return (
            Journey.objects.filter(template=row.pk).exists()
            or Incident.objects.filter(template=row.pk).exists()
            or JourneySceneEvent.objects.filter(scene__template=row.pk).exists()
            or MindblockEvent.objects.filter(scene__template=row.pk).exists()
        )
    return MindblockEvent.objects.filter(mindblock=row.pk).exists()


def _named_by(row: Model) -> str:
    return "journeys, incidents or events" if isinstance(row, JourneyTemplate) else "events"


def _subject(row: Model) -> str:
    if isinstance(row, Scene):
        template = JourneyTemplate.objects.filter(scenes=row.pk).values_list("slug", flat=True)
        return f"Scene '{template.first() or '?'}/{_original_slug(row)}'"
    kind = "Journey template" if isinstance(row, JourneyTemplate) else "Mindblock type"
    return f"{kind} {_original_slug(row)!r}"


def _original_slug(row: Model) -> str:
    """The slug in the database (a form may hold another one already)."""
    return type(row).objects.filter(pk=row.pk).values_list("slug", flat=True).first() or row.slug


def _instead(row: Model) -> str:
    if isinstance(row, Scene):
        return "deactivate its journey template"
    kind = "journey template" if isinstance(row, JourneyTemplate) else "mindblock type"
    return f"deactivate the {kind}"
