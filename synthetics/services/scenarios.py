"""Scenarios as files: the whole configuration — settings, journeys with their scenes and funnel
weights, mindblock types, rhythm profiles, personas, incidents — exported as one JSON or YAML
document, and imported back: validated against the published JSON Schema (synthetics/
scenario.schema.json) and the models' own rules, every error named by its path, the changes listed,
then applied in one transaction or not at all. Importing what was exported changes nothing. A file
too large, too deep, with a list too long or not UTF-8 is refused as a whole, in one line naming
where (ScenarioUnreadable, services.scenario_files), before it can cost more than its reading.

What an import does with what the file leaves out: a journey template or a mindblock type missing
from it is deactivated (rows name them: they are never deleted); a rhythm profile missing from it
is deleted; a scene missing from its template is deleted when no event names it, and refused when
one does. Personas are built into the engine: the file must list them as they are. Incidents are
never edited or cancelled by an import: one in the file that matches an existing incident (label,
start, length) must match it entirely; the others are created (history included, for a backfill).
"""

from __future__ import annotations

import json
import math
import operator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice

import yaml
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import CheckConstraint, F, Q
from django.utils import timezone
from jsonschema import Draft202012Validator

from synthetics.engine.behaviour import DEFAULT_BEHAVIOUR, Behaviour, behaviour_problems
from synthetics.engine.population import PERSONAS
from synthetics.engine.types import SETTING_NAMES
from synthetics.errors import ApplicationError, GeneratorBusy
from synthetics.models import (
    Incident,
    JourneyTemplate,
    MindblockType,
    RhythmProfile,
    Scene,
    SyntheticSettings,
)
from synthetics.selectors import insights
from synthetics.services.catalogue import catalogue_change_check
from synthetics.services.incidents import incident_checked
from synthetics.services.scenario_files import (  # the reading half, re-exported with it
    SCENARIO_MAX_BYTES as SCENARIO_MAX_BYTES,
)
from synthetics.services.scenario_files import (
    SCENARIO_MAX_DEPTH as SCENARIO_MAX_DEPTH,
)
from synthetics.services.scenario_files import (
    SCHEMA,
    ScenarioInvalid,
    ScenarioUnreadable,
    limit_problem,
    path_of,
)
from synthetics.services.scenario_files import (
    scenario_loads as scenario_loads,
)
from synthetics.services.settings import incidents_still_fit

FORMAT_VERSION = 1

SETTINGS = SETTING_NAMES  # the scenario's settings: the generator's (its schema says the same)
SCENE_FIELDS = ("name", "dwell_median_seconds", "mindblock_rate", "dropoff_weight", "error_weight")
INCIDENT_EFFECTS = ("error_rate", "abandon_rate", "sessions_multiplier")


# --- export ------------------------------------------------------------------------------------------


def scenario_export() -> dict:
    """The whole configuration as a scenario document (keys in a fixed order)."""
    row = SyntheticSettings.objects.get(pk=1)
    scenes: dict[int, list[dict]] = {}
    for scene in Scene.objects.order_by("template_id", "position"):
        scenes.setdefault(scene.template_id, []).append(
            {"slug": scene.slug, **{name: getattr(scene, name) for name in SCENE_FIELDS}}
        )
    return {
        "scenario": FORMAT_VERSION,
        "settings": {name: getattr(row, name) for name in SETTINGS},
        "behaviour": stored_behaviour(row).to_json(),
        "journeys": [
            {
                "slug": template.slug,
                "name": template.name,
                "popularity": template.popularity,
                "active": template.is_active,
                "scenes": scenes.get(template.id, []),
            }
            for template in JourneyTemplate.objects.order_by("slug")
        ],
        "mindblocks": [
            {"slug": m.slug, "name": m.name, "weight": m.weight, "active": m.is_active}
            for m in MindblockType.objects.order_by("slug")
        ],
        "rhythms": [
            {
                "slug": r.slug,
                "name": r.name,
                "persona": r.persona,
                "hourly": list(r.hourly),
                "weekly": list(r.weekly),
                "holiday_factor": r.holiday_factor,
            }
            for r in RhythmProfile.objects.order_by("persona", "slug")
        ],
        "personas": _personas(),
        "incidents": [
            _incident_document(incident)
            for incident in Incident.objects.filter(cancelled_at__isnull=True)
            .select_related("template")
            .order_by("starts_at", "id")
        ],
    }


def _personas() -> list[dict]:
    return [
        {
            "slug": p.slug,
            "share": p.share,
            "activity_weight": p.activity_weight,
            "mindblock_multiplier": p.mindblock_multiplier,
            "description": p.description,
        }
        for p in PERSONAS
    ]


def _incident_document(incident: Incident) -> dict:
    document = {
        "label": incident.label,
        "starts_at": incident.starts_at.isoformat().replace("+00:00", "Z"),
        "minutes": incident.minutes,
    }
    for name in INCIDENT_EFFECTS:
        if getattr(incident, name) is not None:
            document[name] = getattr(incident, name)
    if incident.template is not None:
        document["template"] = incident.template.slug
    if incident.scene:
        document["scene"] = incident.scene
    return document


def scenario_dumps(document: dict, *, fmt: str = "json") -> str:
    if fmt == "yaml":
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --- import ------------------------------------------------------------------------------------------


@dataclass
class ImportPlan:
    """What an import changes, as lines a person reads ("settings.sessions_per_min: 2 -> 5")."""

    changes: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        self.changes.append(line)


def _schema_errors(document: object) -> list[str]:
    """The first 100 schema errors, each with its path; messages cut short (jsonschema repeats the
    whole value). Numbers must be finite: JSON Schema lets NaN and Infinity (YAML's .nan, .inf)
    through."""
    found = sorted(
        islice(Draft202012Validator(SCHEMA).iter_errors(document), 100),
        key=lambda e: list(map(str, e.path)),
    )
    # The missing keys of one object in one line (a file with only settings was 13 lines of
    # "'x' is a required property"), in the schema's order.
    missing: dict[str, list[str]] = {}
    errors = []
    for error in found:
        where = path_of(error.absolute_path)
        if error.validator == "required":
            absent = [key for key in error.validator_value if key not in error.instance]
            if where not in missing:
                errors.append(where)
            missing[where] = absent
        else:
            errors.append(f"{where}: {_schema_message(error)}")
    whole = " (a scenario file holds the whole configuration: export one to start from)"
    errors = [
        f"{line}: missing {', '.join(missing[line])}{whole if line == '$' else ''}"
        if line in missing
        else line
        for line in errors
    ]
    errors += [f"{path_of(where)}: must be a finite number" for where in _non_finite(document, [])]
    return errors


def _schema_message(error) -> str:
    if error.validator == "maxLength":
        return f"{len(error.instance):,} characters; at most {error.validator_value:,}"
    if error.validator == "maxItems":
        return f"{len(error.instance):,} items; at most {error.validator_value:,}"
    return error.message[:200]


def _non_finite(value: object, where: list) -> list[list]:
    if isinstance(value, float) and not math.isfinite(value):
        return [where]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 1e15:
        return [where]  # (no field of ours takes such a number; a float field would overflow)
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _non_finite(item, [*where, key])]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _non_finite(item, [*where, index])]
    return []


def scenario_import(document: object, *, now: datetime, dry_run: bool = False) -> ImportPlan:
    """Validate `document` and make the configuration match it (see the module's docstring); with
    `dry_run`, only say what would change. All or nothing: one error, and nothing is written.
    Refused as a whole first (ScenarioUnreadable) when nested too deep or too large for the schema
    to be worth asking; then every error is listed by its path (ScenarioInvalid)."""
    if (problem := limit_problem(document)) is not None:
        raise ScenarioUnreadable(problem)
    errors = _schema_errors(document)
    if errors:
        raise ScenarioInvalid(errors)
    plan, errors = ImportPlan(), []
    try:
        with transaction.atomic():
            _apply(document, plan, errors, now=now)
            if errors:
                raise ScenarioInvalid(errors)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    return plan


class _DryRun(Exception):
    """Rolls a dry run's transaction back."""


def stored_behaviour(row: SyntheticSettings) -> Behaviour:
    try:
        return Behaviour.from_json(row.behaviour)
    except (TypeError, ValueError):
        return DEFAULT_BEHAVIOUR


def _behaviour_apply(row, given: object, plan: ImportPlan, errors: list[str]) -> None:
    problems = behaviour_problems(given)
    if problems:
        errors.extend(f"$.{problem}" for problem in problems)
        return
    wanted = Behaviour.from_json(given).to_json()
    before = stored_behaviour(row).to_json()
    if wanted == before:
        return
    for name, value in wanted.items():
        if value != before[name]:
            plan.note(f"behaviour.{name}: {before[name]!r} -> {value!r}")
    defaults = DEFAULT_BEHAVIOUR.to_json()
    row.behaviour = {name: value for name, value in wanted.items() if value != defaults[name]}
    row.save(update_fields=["behaviour", "updated_at"])


def _changed(plan: ImportPlan, where: str, row, values: dict) -> bool:
    dirty = False
    for name, value in values.items():
        old = getattr(row, name)
        if old != value:
            plan.note(f"{where}.{name}: {old!r} -> {value!r}")
            setattr(row, name, value)
            dirty = True
    return dirty


def _saved(row, errors: list[str], where: str) -> None:
    try:
        row.full_clean()
    except ValidationError as error:
        for name, messages in error.message_dict.items():
            place = where if name == "__all__" else f"{where}.{name}"
            errors.extend(f"{place}: {message}" for message in messages)
        return
    row.save()


def _checked(row, errors: list[str], where: str, *, exclude: tuple[str, ...] = ()) -> bool:
    """Whether `row` passes its fields' validators and its check constraints, each failure added to
    `errors` by its path. Nothing is asked of the database (full_clean would ask it once per
    unique field, constraint and foreign key of every row): the caller matched the rows by slug."""
    try:
        row.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
        problems = {
            "__all__": [
                constraint.get_violation_error_message()
                for constraint in row._meta.constraints
                if isinstance(constraint, CheckConstraint) and not _holds(constraint, row)
            ]
        }
    except ValidationError as error:
        problems = error.message_dict
    for name, messages in problems.items():
        place = where if name == "__all__" else f"{where}.{name}"
        errors.extend(f"{place}: {message}" for message in messages)
    return not any(problems.values())


_COMPARISONS = {
    "exact": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def _holds(constraint: CheckConstraint, row) -> bool:
    """Whether `row` meets `constraint`: in Python when its condition compares fields with
    constants (every one of ours does), else asked of the database."""
    try:
        return _met(constraint.condition, row)
    except LookupError:
        try:
            constraint.validate(type(row), row)
        except ValidationError:
            return False
        return True


def _met(condition: Q, row) -> bool:
    results = []
    for child in condition.children:
        if isinstance(child, Q):
            results.append(_met(child, row))
            continue
        if not isinstance(child, tuple) or hasattr(child[1], "resolve_expression"):
            raise LookupError(child)
        name, _, comparison = child[0].partition("__")
        if (compare := _COMPARISONS.get(comparison or "exact")) is None:
            raise LookupError(child)
        value = getattr(row, name)
        results.append(value is None or compare(value, child[1]))  # (SQL: NULL meets a check)
    met = all(results) if condition.connector == Q.AND else any(results)
    return not met if condition.negated else met


def _written(model, created: list, updated: list, fields: list[str]) -> None:
    """Write checked rows: the changed ones first (a scene may leave the position a new one takes),
    in one UPDATE per batch, then the new ones in one INSERT per batch."""
    stamp = timezone.now()
    for row in updated:
        row.updated_at = stamp
    model.objects.bulk_update(updated, [*fields, "updated_at"], batch_size=500)
    model.objects.bulk_create(created, batch_size=500)


def _deactivated(rows, what: str, plan: ImportPlan) -> None:
    """Deactivate `rows` (rows name them: they are never deleted), one line each in the plan."""
    for slug in rows.values_list("slug", flat=True):
        plan.note(f"~ {what} {slug}: not in the scenario, deactivated")
    rows.update(is_active=False, updated_at=timezone.now())


def _apply(document: dict, plan: ImportPlan, errors: list[str], *, now: datetime) -> None:
    # settings
    row = SyntheticSettings.objects.select_for_update().get(pk=1)
    if _changed(plan, "settings", row, document["settings"]):
        _saved(row, errors, "$.settings")
        try:
            incidents_still_fit(row, now=now)
        except ValidationError as error:
            errors.extend(
                f"$.settings.{name}: {message}"
                for name, messages in error.message_dict.items()
                for message in messages
            )
        transaction.on_commit(lambda: cache.delete(insights.CACHE_KEY))

    # the behaviour model: the file's parameters, the missing ones (or a missing section) at defaults
    _behaviour_apply(row, document.get("behaviour"), plan, errors)

    # personas: built in, listed as they are
    if document["personas"] != _personas():
        errors.append(
            "$.personas: personas are built into the engine and cannot be changed by a scenario; "
            "list them as `manage.py scenario export` does"
        )

    # journeys and their scenes: a few queries a journey, the scenes written together
    templates = JourneyTemplate.objects.in_bulk(
        [journey["slug"] for journey in document["journeys"]], field_name="slug"
    )
    new_scenes: list[Scene] = []
    changed_scenes: list[Scene] = []
    seen: set[str] = set()
    for index, journey in enumerate(document["journeys"]):
        where = f"$.journeys[{index}]"
        if journey["slug"] in seen:
            errors.append(f"{where}.slug: {journey['slug']!r} is listed twice")
            continue
        seen.add(journey["slug"])
        template = templates.get(journey["slug"])
        values = {
            "name": journey["name"],
            "popularity": journey["popularity"],
            "is_active": journey.get("active", True),
        }
        if template is None:
            template = JourneyTemplate(slug=journey["slug"], **values)
            plan.note(f"+ journey {journey['slug']}")
            if not _checked(template, errors, where):
                continue
            template.save()
        elif _changed(plan, f"journeys[{journey['slug']}]", template, values) and _checked(
            template, errors, where
        ):
            template.save()
        _scenes_apply(template, journey["scenes"], plan, errors, where, new_scenes, changed_scenes)
    _written(Scene, new_scenes, changed_scenes, [*SCENE_FIELDS, "position"])
    _deactivated(
        JourneyTemplate.objects.exclude(slug__in=seen).filter(is_active=True), "journey", plan
    )
    runnable = [
        j
        for j in document["journeys"]
        if j.get("active", True) and j["popularity"] > 0 and j["scenes"]
    ]
    if not runnable:
        errors.append(
            "$.journeys: no journey is active with a popularity above 0 and a scene: no run "
            "could start a session"
        )

    # mindblock types
    seen = _upserted(
        MindblockType,
        document["mindblocks"],
        "mindblocks",
        lambda item: {
            "name": item["name"],
            "weight": item["weight"],
            "is_active": item.get("active", True),
        },
        plan,
        errors,
    )
    _deactivated(
        MindblockType.objects.exclude(slug__in=seen).filter(is_active=True), "mindblock", plan
    )

    # rhythm profiles: those the file leaves out go first (a new default or persona profile
    # would otherwise meet the old one's unique persona)
    left_out = RhythmProfile.objects.exclude(
        slug__in={item["slug"] for item in document["rhythms"]}
    )
    for slug in left_out.values_list("slug", flat=True):
        plan.note(f"- rhythm {slug}: not in the scenario, deleted")
    left_out.delete()
    _upserted(
        RhythmProfile,
        document["rhythms"],
        "rhythms",
        lambda item: {
            "name": item["name"],
            "persona": item.get("persona", ""),
            "hourly": item["hourly"],
            "weekly": item["weekly"],
            "holiday_factor": item.get("holiday_factor", 1.0),
        },
        plan,
        errors,
    )

    # incidents: each matched to an existing one, one to one, or created; never edited or cancelled
    known = _KnownIncidents(
        Incident.objects.filter(cancelled_at__isnull=True).select_related("template").order_by("id")
    )
    for index, item in enumerate(document["incidents"]):
        _incident_apply(item, plan, errors, f"$.incidents[{index}]", known, now=now)


def _upserted(model, items: list[dict], name: str, values_of, plan, errors) -> set[str]:
    """Create or update the rows of `model` listed in `items` by slug; the slugs seen. The rows are
    matched in one query, checked in Python and written in bulk; a field unique besides the slug (a
    rhythm's persona) is refused when another item of the file or another row has it."""
    existing = model.objects.in_bulk([item["slug"] for item in items], field_name="slug")
    unique = [
        f.name for f in model._meta.fields if f.unique and not f.primary_key and f.name != "slug"
    ]
    held = {
        (field_name, value): slug
        for slug, *values in (model.objects.values_list("slug", *unique) if unique else [])
        for field_name, value in zip(unique, values, strict=True)
    }
    taken: dict[tuple, str] = {}
    created, updated, fields = [], [], []
    seen: set[str] = set()
    for index, item in enumerate(items):
        where, slug = f"$.{name}[{index}]", item["slug"]
        if slug in seen:
            errors.append(f"{where}.slug: {slug!r} is listed twice")
            continue
        seen.add(slug)
        values = values_of(item)
        fields = list(values)
        row, rows = existing.get(slug), updated
        if row is None:
            plan.note(f"+ {name[:-1]} {slug}")
            row, rows = model(slug=slug, **values), created
        elif not _changed(plan, f"{name}[{slug}]", row, values):
            rows = None
        clashes = False
        for field_name in unique:
            value = getattr(row, field_name)
            other = taken.setdefault((field_name, value), slug)
            other = held.get((field_name, value), slug) if other == slug else other
            if other != slug:
                errors.append(
                    f"{where}.{field_name}: {value!r} is the {field_name} of {name[:-1]} {other!r}"
                )
                clashes = True
        if rows is not None and not clashes and _checked(row, errors, where):
            rows.append(row)
    _written(model, created, updated, fields)
    return seen


def _scenes_apply(
    template, scenes: list[dict], plan, errors, where: str, created: list, updated: list
) -> None:
    """Make the scenes of `template` those listed: removed ones deleted now, positions moved now,
    new and changed ones checked and added to `created` and `updated` (the caller writes them)."""
    existing = {scene.slug: scene for scene in Scene.objects.filter(template=template)}
    slugs = [scene["slug"] for scene in scenes]
    first: dict[str, int] = {}
    for index, slug in enumerate(slugs):
        if first.setdefault(slug, index) != index:
            errors.append(f"{where}.scenes[{index}].slug: {slug!r} is listed twice")
            return
    for slug, scene in list(existing.items()):
        if slug in slugs:
            continue
        try:  # the catalogue's one rule, under the generator lock (services.catalogue)
            catalogue_change_check(row=scene, delete=True)
        except ApplicationError as refusal:
            errors.append(
                f"{where}.scenes: scene {slug!r} of {template.slug!r} is missing, but events name "
                f"it or journeys in progress will: {refusal.message}"
            )
            return
        except GeneratorBusy as busy:
            errors.append(f"{where}.scenes: {busy}")
            return
        plan.note(f"- scene {template.slug}/{slug}")
        scene.delete()
        del existing[slug]
    targets = {slug: index + 1 for index, slug in enumerate(slugs)}
    kept_in_order = [slug for slug in slugs if slug in existing]
    if kept_in_order == sorted(existing, key=lambda slug: existing[slug].position) and all(
        slug in existing for slug in slugs[: len(kept_in_order)]
    ):
        # The scenes already there keep their order and the new ones come after them: their
        # positions stay as they are (gaps included), the new ones follow. An export imported
        # again moves nothing, so sessions in progress are never in the way.
        last = max((scene.position for scene in existing.values()), default=0)
        targets = {slug: existing[slug].position for slug in kept_in_order}
        targets.update({slug: last + 1 + n for n, slug in enumerate(slugs[len(kept_in_order) :])})
    for slug, scene in existing.items():
        if targets[slug] == scene.position:
            continue
        try:  # a scene moved while sessions in progress planned its place: the same rule
            catalogue_change_check(row=scene, changed=["position"])
        except ApplicationError as refusal:
            errors.append(f"{where}.scenes[{slugs.index(slug)}]: {refusal.message}")
            return
        except GeneratorBusy as busy:
            errors.append(f"{where}.scenes: {busy}")
            return
    taken = {scene.position: scene.slug for scene in existing.values()}
    if any(taken.get(position, slug) != slug for slug, position in targets.items()):
        # Positions move in two steps, past every current one and then into place, so that the
        # unique (template, position) constraint never sees two scenes on one position.
        plan.note(f"~ journey {template.slug}: scenes in the order {', '.join(slugs)}")
        offset = 1000 + max(taken, default=0)
        Scene.objects.filter(pk__in=[s.pk for s in existing.values()]).update(
            position=F("position") + offset
        )
        for scene in existing.values():
            scene.position += offset
    for index, item in enumerate(scenes):
        place = f"{where}.scenes[{index}]"
        values = {name: item[name] for name in SCENE_FIELDS if name in item}
        scene = existing.get(item["slug"])
        if scene is None:
            plan.note(f"+ scene {template.slug}/{item['slug']}")
            new = Scene(
                template=template, slug=item["slug"], position=targets[item["slug"]], **values
            )
            if _checked(new, errors, place, exclude=("template",)):
                created.append(new)
            continue
        dirty = _changed(plan, f"journeys[{template.slug}].scenes[{item['slug']}]", scene, values)
        moved = scene.position != targets[item["slug"]]
        scene.position = targets[item["slug"]]
        if dirty and not _checked(scene, errors, place, exclude=("template",)):
            continue
        if dirty or moved:
            updated.append(scene)


def _normalised(item: dict) -> dict:
    """An incident's document as export writes it: label trimmed, the start in UTC with Z, floats."""
    document = {
        "label": item["label"].strip(),
        "starts_at": _utc(item["starts_at"]),
        "minutes": item["minutes"],
    }
    for name in INCIDENT_EFFECTS:
        if item.get(name) is not None:
            document[name] = float(item[name])
    for name in ("template", "scene"):
        if item.get(name):
            document[name] = item[name]
    return document


def _utc(text: str) -> str:
    from datetime import UTC

    return datetime.fromisoformat(text).astimezone(UTC).isoformat().replace("+00:00", "Z")


class _KnownIncidents:
    """The incidents an import may match, found by their values in one step each (a file's
    incidents against every one of the database's would be their product)."""

    def __init__(self, incidents) -> None:
        self.unmatched: dict[tuple, list[Incident]] = {}
        self.windows: dict[tuple, list[tuple[tuple, Incident]]] = {}
        for incident in incidents:
            document = _normalised(_incident_document(incident))
            self.unmatched.setdefault(self.key(document), []).append(incident)
            self.windows.setdefault(self.window(document), []).append(
                (self.key(document), incident)
            )

    @staticmethod
    def key(document: dict) -> tuple:
        return tuple(sorted(document.items()))

    @staticmethod
    def window(document: dict) -> tuple:
        return document["label"], document["starts_at"], document["minutes"]

    def matched(self, wanted: dict) -> bool:
        """Whether an unmatched incident has the values `wanted`; it is matched from now on (one to
        one: two equal ones in the file need two here)."""
        same = self.unmatched.get(self.key(wanted))
        return bool(same) and same.pop(0) is not None

    def same_window(self, wanted: dict) -> Incident | None:
        """The first incident with the label and window of `wanted` and other values."""
        key = self.key(wanted)
        return next((i for k, i in self.windows.get(self.window(wanted), []) if k != key), None)


def _incident_apply(item: dict, plan, errors, where: str, known: _KnownIncidents, *, now) -> None:
    try:
        wanted = _normalised(item)
    except (ValueError, OverflowError):
        errors.append(f"{where}.starts_at: {item['starts_at']!r} is not a date and time")
        return
    if known.matched(wanted):
        return
    same_window = known.same_window(wanted)
    try:
        incident = incident_checked(
            starts_at=datetime.fromisoformat(item["starts_at"]),
            minutes=item["minutes"],
            label=item["label"],
            now=now,
            error_rate=item.get("error_rate"),
            abandon_rate=item.get("abandon_rate"),
            sessions_multiplier=item.get("sessions_multiplier"),
            template=item.get("template"),
            scene=item.get("scene"),
            allow_past=True,
            created_by="scenario import",
        )
    except ApplicationError as error:
        hint = (
            f" (incident {same_window.id} has this label and window with other values: an import "
            "never edits an incident; cancel it and list the new one)"
            if same_window is not None
            else ""
        )
        errors.append(f"{where}.{error.extra.get('field', 'incident')}: {error.message}{hint}")
        return
    incident.save()
    plan.note(f"+ incident {wanted['label']!r} from {wanted['starts_at']} ({item['minutes']} min)")
