"""The simulation engine: pure Python, no ORM, no HTTP, no wall clock.

It takes the settings, the catalogue, the pool of simulated users, the active journeys, a seeded
`random.Random` and the simulated time `now`, and returns plain dataclasses: the journeys started or
advanced and the events to write. The behaviour model (docs/behaviour.md) lives here only.
"""

from synthetics.engine.errors import EngineError, InvalidTarget
from synthetics.engine.pool import Pool
from synthetics.engine.rhythm import PoolRhythm
from synthetics.engine.run import (
    manual_session_count,
    scheduled_session_count,
    simulate_run,
    window_session_count,
)
from synthetics.engine.types import (
    DEFAULT_SETTINGS,
    GENERATOR_SETTINGS,
    SETTING_NAMES,
    ActiveJourney,
    Catalogue,
    EventRecord,
    GeneratorSettings,
    JourneyUpdate,
    MindblockSpec,
    NewJourney,
    PoolMember,
    RhythmProfile,
    RunOutcome,
    SceneSpec,
    TemplateSpec,
)

__all__ = [
    "DEFAULT_SETTINGS",
    "GENERATOR_SETTINGS",
    "SETTING_NAMES",
    "ActiveJourney",
    "Catalogue",
    "EngineError",
    "EventRecord",
    "GeneratorSettings",
    "InvalidTarget",
    "JourneyUpdate",
    "MindblockSpec",
    "NewJourney",
    "Pool",
    "PoolMember",
    "PoolRhythm",
    "RhythmProfile",
    "SceneSpec",
    "TemplateSpec",
    "RunOutcome",
    "manual_session_count",
    "scheduled_session_count",
    "simulate_run",
    "window_session_count",
]
