"""Scenarios as files: the whole configuration — settings, journeys with their scenes and funnel
weights, mindblock types, rhythm profiles, personas, incidents — exported as one JSON or YAML
document, and imported back: validated against the published JSON Schema (synthetics/
scenario.schema.json) and the models' own rules, every error named by its path, the changes listed,
then applied in one transaction or not at all. Importing what was exported changes nothing.

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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import yaml
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from jsonschema import Draft202012Validator

from synthetics.engine.population import PERSONAS
from synthetics.errors import ApplicationError
from synthetics.models import (
    Incident,
    Journey,
    JourneySceneEvent,
    JourneyStatus,
    JourneyTemplate,
    MindblockEvent,
    MindblockType,
    RhythmProfile,
    Scene,
    SyntheticSettings,
)
from synthetics.selectors import insights
from synthetics.services.incidents import incident_checked
from synthetics.services.settings import incidents_still_fit

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "scenario.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
FORMAT_VERSION = 1
SETTINGS = (
    "enabled",
    "sessions_per_min",
    "max_per_run",
    "error_rate",
    "abandon_rate",
    "rhythm_strength",
    "signups_per_day",
    "churn_per_month",
)
SCENE_FIELDS = ("name", "dwell_median_seconds", "mindblock_rate", "dropoff_weight", "error_weight")
INCIDENT_EFFECTS = ("error_rate", "abandon_rate", "sessions_multiplier")


class ScenarioInvalid(ApplicationError):
    """A scenario that cannot be imported: `errors` holds one "path: message" per problem."""

    def __init__(self, errors: list[str]) -> None:
        shown = "\n".join(f"  {error}" for error in errors)
        count = f"{len(errors)} error{'' if len(errors) == 1 else 's'}"
        super().__init__(f"the scenario is not valid ({count}):\n{shown}")
        self.errors = errors


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


class _StrictLoader(yaml.SafeLoader):
    """YAML without aliases (a few hundred bytes of nested aliases expand to gigabytes) and
    without duplicate keys (YAML would keep the last one in silence)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "aliases (*name) are not allowed in a scenario", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        keys = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in keys:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key {key!r} is given twice", key_node.start_mark
                )
            keys.add(key)
        return super().construct_mapping(node, deep=deep)


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    keys = [key for key, _ in pairs]
    for key in keys:
        if keys.count(key) > 1:
            raise ValueError(f"the key {key!r} is given twice")
    return dict(pairs)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number a scenario takes")


def scenario_loads(text: str) -> object:
    """The document in `text`: JSON, or YAML (a superset); a syntax error, a duplicate key, a YAML
    alias or a NaN/Infinity is a ScenarioInvalid."""
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except ValueError as error:
        if "given twice" in str(error) or "not a number" in str(error):
            raise ScenarioInvalid([f"$: {error}"]) from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader, stricter)
    except yaml.YAMLError as error:
        raise ScenarioInvalid([f"$: neither JSON nor YAML: {str(error)[:300]}"]) from None


# --- import ------------------------------------------------------------------------------------------


@dataclass
class ImportPlan:
    """What an import changes, as lines a person reads ("settings.sessions_per_min: 2 -> 5")."""

    changes: list[str] = field(default_factory=list)

    def note(self, line: str) -> None:
        self.changes.append(line)


def _path(parts) -> str:
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _schema_errors(document: object) -> list[str]:
    """Each schema error with its path; messages cut short (jsonschema repeats the whole value).
    Numbers must be finite: JSON Schema lets NaN and Infinity (YAML's .nan, .inf) through."""
    validator = Draft202012Validator(SCHEMA)
    errors = [
        f"{_path(error.absolute_path)}: {error.message[:200]}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.path)))
    ][:100]
    errors += [f"{_path(where)}: must be a finite number" for where in _non_finite(document, [])]
    return errors


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
    `dry_run`, only say what would change. All or nothing: one error, and nothing is written."""
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

    # personas: built in, listed as they are
    if document["personas"] != _personas():
        errors.append(
            "$.personas: personas are built into the engine and cannot be changed by a scenario; "
            "list them as `manage.py scenario export` does"
        )

    # journeys and their scenes
    seen: set[str] = set()
    for index, journey in enumerate(document["journeys"]):
        where = f"$.journeys[{index}]"
        if journey["slug"] in seen:
            errors.append(f"{where}.slug: {journey['slug']!r} is listed twice")
            continue
        seen.add(journey["slug"])
        template = JourneyTemplate.objects.filter(slug=journey["slug"]).first()
        values = {
            "name": journey["name"],
            "popularity": journey["popularity"],
            "is_active": journey.get("active", True),
        }
        if template is None:
            template = JourneyTemplate(slug=journey["slug"], **values)
            plan.note(f"+ journey {journey['slug']}")
            _saved(template, errors, where)
            if template.pk is None:
                continue
        elif _changed(plan, f"journeys[{journey['slug']}]", template, values):
            _saved(template, errors, where)
        _scenes_apply(template, journey["scenes"], plan, errors, where)
    for template in JourneyTemplate.objects.exclude(slug__in=seen).filter(is_active=True):
        plan.note(f"~ journey {template.slug}: not in the scenario, deactivated")
        template.is_active = False
        template.save(update_fields=["is_active", "updated_at"])
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
    for mindblock in MindblockType.objects.exclude(slug__in=seen).filter(is_active=True):
        plan.note(f"~ mindblock {mindblock.slug}: not in the scenario, deactivated")
        mindblock.is_active = False
        mindblock.save(update_fields=["is_active", "updated_at"])

    # rhythm profiles: those the file leaves out go first (a new default or persona profile
    # would otherwise meet the old one's unique persona)
    listed = {item["slug"] for item in document["rhythms"]}
    for profile in RhythmProfile.objects.exclude(slug__in=listed):
        plan.note(f"- rhythm {profile.slug}: not in the scenario, deleted")
        profile.delete()
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
    unmatched = list(
        Incident.objects.filter(cancelled_at__isnull=True).select_related("template").order_by("id")
    )
    for index, item in enumerate(document["incidents"]):
        _incident_apply(item, plan, errors, f"$.incidents[{index}]", unmatched, now=now)


def _upserted(model, items: list[dict], name: str, values_of, plan, errors) -> set[str]:
    """Create or update the rows of `model` listed in `items` by slug; the slugs seen."""
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"$.{name}[{index}]"
        if item["slug"] in seen:
            errors.append(f"{where}.slug: {item['slug']!r} is listed twice")
            continue
        seen.add(item["slug"])
        values = values_of(item)
        row = model.objects.filter(slug=item["slug"]).first()
        if row is None:
            plan.note(f"+ {name[:-1]} {item['slug']}")
            _saved(model(slug=item["slug"], **values), errors, where)
        elif _changed(plan, f"{name}[{item['slug']}]", row, values):
            _saved(row, errors, where)
    return seen


def _scenes_apply(template, scenes: list[dict], plan, errors, where: str) -> None:
    existing = {scene.slug: scene for scene in Scene.objects.filter(template=template)}
    slugs = [scene["slug"] for scene in scenes]
    for index, slug in enumerate(slugs):
        if slugs.index(slug) != index:
            errors.append(f"{where}.scenes[{index}].slug: {slug!r} is listed twice")
            return
    for slug, scene in list(existing.items()):
        if slug in slugs:
            continue
        named = (
            JourneySceneEvent.objects.filter(scene=scene).exists()
            or MindblockEvent.objects.filter(scene=scene).exists()
            # a journey in progress carries the scene in its plan and writes it later
            or Journey.objects.filter(template=template, status=JourneyStatus.ACTIVE).exists()
        )
        if named:
            errors.append(
                f"{where}.scenes: scene {slug!r} of {template.slug!r} is missing, but events name "
                "it or journeys in progress will: a scene in use cannot be removed (deactivate "
                "the journey instead)"
            )
            return
        plan.note(f"- scene {template.slug}/{slug}")
        scene.delete()
        del existing[slug]
    targets = {slug: index + 1 for index, slug in enumerate(slugs)}
    taken = {scene.position: scene.slug for scene in existing.values()}
    if any(taken.get(position, slug) != slug for slug, position in targets.items()):
        # Positions move in two steps, past every current one and then into place, so that the
        # unique (template, position) constraint never sees two scenes on one position.
        plan.note(f"~ journey {template.slug}: scenes in the order {', '.join(slugs)}")
        offset = 1000 + max(taken, default=0)
        for scene in existing.values():
            scene.position += offset
            scene.save(update_fields=["position"])
    for index, item in enumerate(scenes):
        place = f"{where}.scenes[{index}]"
        values = {name: item[name] for name in SCENE_FIELDS if name in item}
        scene = existing.get(item["slug"])
        if scene is None:
            plan.note(f"+ scene {template.slug}/{item['slug']}")
            new = Scene(template=template, slug=item["slug"], position=index + 1, **values)
            _saved(new, errors, place)
            continue
        dirty = _changed(plan, f"journeys[{template.slug}].scenes[{item['slug']}]", scene, values)
        moved = scene.position != index + 1
        scene.position = index + 1
        if dirty:
            _saved(scene, errors, place)
        elif moved:
            scene.save(update_fields=["position"])


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


def _incident_apply(item: dict, plan, errors, where: str, unmatched: list, *, now) -> None:
    try:
        wanted = _normalised(item)
    except (ValueError, OverflowError):
        errors.append(f"{where}.starts_at: {item['starts_at']!r} is not a date and time")
        return
    same_window = None
    for incident in unmatched:
        document = _normalised(_incident_document(incident))
        if document == wanted:
            unmatched.remove(incident)  # one to one: two equal ones in the file need two here
            return
        if (document["label"], document["starts_at"], document["minutes"]) == (
            wanted["label"],
            wanted["starts_at"],
            wanted["minutes"],
        ):
            same_window = same_window or incident
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
