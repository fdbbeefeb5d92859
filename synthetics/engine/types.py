"""Plain data the engine reads and returns: no Django, frozen dataclasses."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, date, datetime
from typing import Any, Literal

from synthetics.engine.behaviour import DEFAULT_BEHAVIOUR, Behaviour

Outcome = Literal["completed", "abandoned", "errored"]
EventKind = Literal["scene", "mindblock", "session"]

# The event types the generator writes, by table: named once here, used by the engine, the admin's
# filters and the README.
SCENE_ENTERED = "scene_entered"
SCENE_ERROR = "scene_error"
JOURNEY_COMPLETED = "journey_completed"
MINDBLOCK_REPORTED = "mindblock_reported"
SESSION_STARTED = "session_started"
SCENE_EVENT_TYPES = (SCENE_ENTERED, SCENE_ERROR, JOURNEY_COMPLETED)
MINDBLOCK_EVENT_TYPES = (MINDBLOCK_REPORTED,)
# Attach mode only: an application's sessions table gets a row as each journey starts.
SESSION_EVENT_TYPES = (SESSION_STARTED,)
EVENT_TYPES = {
    "scene": SCENE_EVENT_TYPES,
    "mindblock": MINDBLOCK_EVENT_TYPES,
    "session": SESSION_EVENT_TYPES,
}

_UNSET = object()


def record(cls):
    """A frozen slots dataclass, built by the million per history, with a faster __init__.

    A frozen dataclass's generated __init__ sets each field through object.__setattr__ (the
    class's own __setattr__ refuses): the constructors of steps, events and journeys took an
    eighth of the engine thread's time. This __init__ stores each field through its slot's
    descriptor instead: twice as fast, the same signature, defaults and default factories, and
    the instance as frozen as before (assignment still raises FrozenInstanceError)."""
    cls = dataclass(frozen=True, slots=True)(cls)
    if hasattr(cls, "__post_init__") or any(f.kw_only for f in fields(cls)):
        raise TypeError(f"record() does not handle {cls.__name__}'s __post_init__ or kw_only")
    names: dict[str, Any] = {"_UNSET": _UNSET}
    params, body = [], []
    for f in fields(cls):
        names[f"_set_{f.name}"] = getattr(cls, f.name).__set__
        if f.default is not MISSING:
            names[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
        elif f.default_factory is not MISSING:
            names[f"_factory_{f.name}"] = f.default_factory
            params.append(f"{f.name}=_UNSET")
            body.append(f"    if {f.name} is _UNSET: {f.name} = _factory_{f.name}()")
        else:
            params.append(f.name)
        body.append(f"    _set_{f.name}(self, {f.name})")
    source = f"def __init__(self, {', '.join(params)}):\n" + "\n".join(body or ["    pass"])
    exec(source, names)  # noqa: S102  the source is made of the class's field names only
    init = names["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = init
    return cls


@dataclass(frozen=True, slots=True)
class GeneratorSettings:
    """The generator's settings: the one list of them. The settings row's fields and defaults
    (models.SyntheticSettings), the API's, the admin's and the scenario file's fields and the
    Studio's form all follow GENERATOR_SETTINGS, made from this class."""

    enabled: bool = True
    sessions_per_min: int = 2
    max_per_run: int = 5
    error_rate: float = 0.05
    abandon_rate: float = 0.15
    # 0: the same rate at every hour; 1: the full daily and weekly rhythm (docs/behaviour.md "Rhythm")
    rhythm_strength: float = 1.0
    signups_per_day: int = 0
    churn_per_month: float = 0.0


# Each setting's name and kind (bool, int or float), in order: the list every layer reads.
GENERATOR_SETTINGS: tuple[tuple[str, type], ...] = tuple(
    (setting.name, type(setting.default)) for setting in fields(GeneratorSettings)
)
SETTING_NAMES: tuple[str, ...] = tuple(name for name, _ in GENERATOR_SETTINGS)
DEFAULT_SETTINGS = GeneratorSettings()


@dataclass(frozen=True, slots=True)
class SceneSpec:
    id: int
    slug: str
    position: int
    dwell_median_seconds: float
    mindblock_rate: float
    dropoff_weight: float = 1.0  # relative chance that an abandoned session stops here
    error_weight: float = 1.0  # relative chance that an errored session fails here


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    id: int
    slug: str
    popularity: float
    scenes: tuple[SceneSpec, ...]


@dataclass(frozen=True, slots=True)
class MindblockSpec:
    id: int
    slug: str
    weight: float


@dataclass(frozen=True, slots=True)
class RhythmProfile:
    """When people start sessions, in their local time: 24 hourly and 7 weekly (Monday first)
    relative weights, and a factor on public holidays. `persona` "" is the default profile."""

    slug: str
    persona: str
    hourly: tuple[float, ...]
    weekly: tuple[float, ...]
    holiday_factor: float = 1.0


@dataclass(frozen=True, slots=True)
class Catalogue:
    templates: tuple[TemplateSpec, ...]
    mindblocks: tuple[MindblockSpec, ...]
    rhythms: tuple[RhythmProfile, ...] = ()
    # How people behave beyond the rhythm (engine.behaviour): the scenario file's `behaviour`.
    behaviour: Behaviour = DEFAULT_BEHAVIOUR


@record
class PoolMember:
    """A simulated user who may be picked for a session (built from the pool's columns each time
    one is read: engine.pool)."""

    sim_user_id: int
    user_id: int
    persona: str
    activity_weight: float
    timezone: str = "UTC"
    locale: str = "en_US"
    signup_date: date | None = None
    settles_into: str = ""  # a newcomer's persona once settled (engine.lifecycle); "" when settled
    joined_ms: int | None = None  # when a sign-up signed up (epoch ms); None: seeded


@dataclass(frozen=True, slots=True)
class PoolGroup:
    """The active sim users who share a persona, time zone, locale, settles_into and whether they
    signed up in a run: how many, and their activity weights summed. What the pool's rhythm, its
    capacity and the expectations' persona mix need of it (a few thousand groups for a million)."""

    persona: str
    timezone: str
    locale: str
    settles_into: str
    joined: bool
    users: int
    activity: float


def stand_ins(groups: Sequence[PoolGroup]) -> list[PoolMember]:
    """One member for each group, with its summed weight and a negative id (a group: never picked,
    never anyone's calendar): the rhythm of these is the rhythm of the users they stand for."""
    return [
        PoolMember(
            -index,
            0,
            group.persona,
            group.activity,
            group.timezone,
            group.locale,
            settles_into=group.settles_into,
        )  # fmt: skip
        for index, group in enumerate(groups, start=1)
    ]


@record
class Step:
    """One timed event of a journey's plan."""

    at_ms: int
    kind: EventKind
    event_type: str
    scene_id: int
    scene_slug: str
    scene_position: int
    mindblock_id: int | None = None
    mindblock_slug: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "at_ms": self.at_ms,
            "kind": self.kind,
            "event_type": self.event_type,
            "scene_id": self.scene_id,
            "scene": self.scene_slug,
            "position": self.scene_position,
            "mindblock_id": self.mindblock_id,
            "mindblock": self.mindblock_slug,
            "extra": self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        # Positional and unconverted: a run parses every due journey's plan, tens of thousands of
        # steps a minute at scale. The numbers are JSON numbers the engine wrote (ints already);
        # `extra` is the freshly parsed dict, not shared with anything.
        return cls(
            data["at_ms"],
            data["kind"],
            data["event_type"],
            data["scene_id"],
            data["scene"],
            data["position"],
            data.get("mindblock_id"),
            data.get("mindblock"),
            data.get("extra") or {},
        )


@record
class Plan:
    """Everything decided when a session starts: outcome, end time and timed steps."""

    template_slug: str
    persona: str
    outcome: Outcome
    end_ms: int
    steps: tuple[Step, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "template": self.template_slug,
            "persona": self.persona,
            "outcome": self.outcome,
            "end_ms": self.end_ms,
            "steps": [step.to_json() for step in self.steps],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(
            template_slug=data["template"],
            persona=data["persona"],
            outcome=data["outcome"],
            end_ms=int(data["end_ms"]),
            steps=tuple([Step.from_json(step) for step in data["steps"]]),
        )


@record
class ActiveJourney:
    """A journey in progress, as stored between runs."""

    id: uuid.UUID
    sim_user_id: int
    user_id: int
    template_id: int
    started_at: datetime
    plan: Plan
    next_step: int

    def at_step(self, next_step: int) -> ActiveJourney:
        """The journey with its cursor moved (a constructor call: dataclasses.replace is slow)."""
        return ActiveJourney(*_identity(self), self.plan, next_step)


@record
class EventRecord:
    """An event to write; the service adds the run id to `payload`."""

    kind: EventKind
    user_id: int
    journey_id: uuid.UUID
    scene_id: int
    mindblock_id: int | None
    event_type: str
    at_ms: int  # when, in milliseconds since the epoch (UTC): created_at as the engine keeps it
    payload: dict[str, Any]

    @property
    def created_at(self) -> datetime:
        return datetime.fromtimestamp(self.at_ms / 1000, UTC)  # exact: see run.from_ms


@record
class NewJourney:
    """A journey started by this run, in its state at the end of the run."""

    id: uuid.UUID
    sim_user_id: int
    user_id: int
    template_id: int
    started_at: datetime
    ended_at: datetime | None
    status: str
    plan: Plan
    next_step: int

    def in_progress(self) -> ActiveJourney:
        """The journey as the next run reads it while it is in progress."""
        return ActiveJourney(*_identity(self), self.plan, self.next_step)

    def changed(self, update: JourneyUpdate) -> NewJourney:
        """The journey after a later run's change (still to be written as new)."""
        return NewJourney(
            *_identity(self), update.ended_at, update.status, self.plan, update.next_step
        )


def _identity(journey: ActiveJourney | NewJourney) -> tuple:
    """What a journey keeps from start to end: its id, sim user, account, template and start
    (a tuple for the constructors above: dataclasses.replace is slow)."""
    return journey.id, journey.sim_user_id, journey.user_id, journey.template_id, journey.started_at


@record
class JourneyUpdate:
    """A change to a journey that was active before this run."""

    id: uuid.UUID
    next_step: int
    status: str
    ended_at: datetime | None
    next_at: datetime | None = None  # an active journey's next step (or end) is due then


@dataclass(frozen=True, slots=True)
class RunOutcome:
    new_journeys: tuple[NewJourney, ...]
    journey_updates: tuple[JourneyUpdate, ...]
    events: tuple[EventRecord, ...]
    sessions_requested: int
    active_after: int

    @property
    def sessions_started(self) -> int:
        return len(self.new_journeys)

    @property
    def scene_events(self) -> int:
        return sum(1 for event in self.events if event.kind == "scene")

    @property
    def mindblock_events(self) -> int:
        return sum(1 for event in self.events if event.kind == "mindblock")

    def finished(self, outcome: str) -> int:
        return sum(1 for j in self.new_journeys if j.status == outcome) + sum(
            1 for u in self.journey_updates if u.status == outcome
        )
