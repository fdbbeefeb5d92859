"""What the engine measures of sessions it plans with a fixed seed, kept in the database: the
expectations' profile of each kind of session (engine.expectations.session_profile: 2,000
sessions each, some 50,000 for an hour's answer) and the capacity's mean journey length
(engine.capacity.mean_journey_minutes: 4,000). Planning them took a new web process over a second
on its first call; reading them back takes a few milliseconds.

Each answer is kept under a digest of everything it depends on: the catalogue (its templates,
scenes, mindblocks, rhythms and behaviour), the kind of session (template, rates, an incident's
stops, persona), the sample's size and seed, and the engine's own source with the Python version
(the random streams). Any change gives a new key, so a kept answer is never stale: it is the same
answer the engine would plan again, to the last bit. A catalogue or engine that changed starts a
new `generation`, and the first write of it deletes the rows of the others. Whoever plans first
keeps it: in practice the worker, whose fidelity refresh after each scheduled minute computes the
last hour's expectations (services.expectations.fidelity_refresh); a read that finds nothing kept
plans and keeps it itself. A process also keeps what it read (up to KEPT_IN_PROCESS answers).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import sys
from array import array
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from django.db import DatabaseError, transaction

import synthetics.engine
from synthetics.engine.capacity import LENGTH_SAMPLES, LENGTH_SEED, mean_journey_minutes
from synthetics.engine.expectations import (
    PROFILE_SAMPLES,
    PROFILE_SEED,
    SessionProfile,
    session_profile,
)
from synthetics.engine.types import Catalogue, GeneratorSettings, TemplateSpec
from synthetics.models import PlannedProfile

logger = logging.getLogger("synthetics")

KEPT_IN_PROCESS = 256  # answers a process keeps after reading them (a profile: about 64 kB)
_KEPT: OrderedDict[str, object] = OrderedDict()
_PRUNED: set[str] = set()  # generations this process has already pruned the others for


@functools.cache
def engine_digest() -> str:
    """The engine's source files (planning, sampling, behaviour: what a plan depends on), the
    Python version (random's streams) and the byte order (the kept floats)."""
    digest = hashlib.sha256(f"{sys.version_info[:2]} {sys.byteorder}".encode())
    for path in sorted(Path(synthetics.engine.__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _digest(*parts: object) -> str:
    # repr of frozen dataclasses, tuples, strings and floats: the same text in every process
    return hashlib.sha256(repr(parts).encode()).hexdigest()


@functools.lru_cache(maxsize=8)
def generation(catalogue: Catalogue) -> str:
    """The catalogue and the engine a kept answer was planned with."""
    return _digest("catalogue", catalogue, engine_digest())


def _kept(
    key: str,
    generation: str,
    plan: Callable[[], list[float]],
) -> list[float]:
    """The numbers kept under `key`: from this process, else the database, else planned now and
    kept in both."""
    found = _KEPT.get(key)
    if found is not None:
        with contextlib.suppress(KeyError):  # another thread may have let it go just now
            _KEPT.move_to_end(key)
        return found
    stored = PlannedProfile.objects.filter(key=key).values_list("values", flat=True).first()
    if stored is not None:
        values = array("d")
        values.frombytes(bytes(stored))
        found = values.tolist()
    else:
        found = plan()
        _store(key, generation, array("d", found).tobytes())
    _KEPT[key] = found
    if len(_KEPT) > KEPT_IN_PROCESS:
        with contextlib.suppress(KeyError):
            _KEPT.popitem(last=False)
    return found


def _store(key: str, generation: str, values: bytes) -> None:
    """Keep one answer (another process may have kept it first: the same bytes). A database that
    refuses the write (a read-only replica) costs the next process the planning, never the read."""
    try:
        with transaction.atomic():
            if generation not in _PRUNED:
                PlannedProfile.objects.exclude(generation=generation).delete()
            PlannedProfile.objects.bulk_create(
                [PlannedProfile(key=key, generation=generation, values=values)],
                ignore_conflicts=True,
            )
        _PRUNED.add(generation)
    except DatabaseError:
        logger.warning("synthetics: could not keep a planned profile", exc_info=True)


def kept_session_profile(
    catalogue: Catalogue,
    template: TemplateSpec,
    abandon_rate: float,
    error_rate: float,
    personas: tuple[tuple[str, float], ...],
    stop_scenes: tuple[tuple[str, str], ...] = (),
) -> SessionProfile:
    """engine.expectations.session_profile's answer, kept (its ProfileSource)."""
    kept_in = generation(catalogue)
    key = _digest(
        "session",
        kept_in,
        template,
        abandon_rate,
        error_rate,
        personas,
        stop_scenes,
        PROFILE_SAMPLES,
        PROFILE_SEED,
    )
    return SessionProfile.from_floats(
        _kept(
            key,
            kept_in,
            lambda: session_profile(
                catalogue, template, abandon_rate, error_rate, personas, stop_scenes
            ).to_floats(),
        )
    )


def kept_mean_journey_minutes(*, catalogue: Catalogue, settings: GeneratorSettings) -> float:
    """engine.capacity.mean_journey_minutes's answer, kept (it depends on the two rates only)."""
    kept_in = generation(catalogue)
    key = _digest(
        "length", kept_in, settings.abandon_rate, settings.error_rate, LENGTH_SAMPLES, LENGTH_SEED
    )
    return _kept(
        key, kept_in, lambda: [mean_journey_minutes(catalogue=catalogue, settings=settings)]
    )[0]
