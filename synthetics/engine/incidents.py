"""Incidents: time windows in which the generator writes something else on purpose.

An incident covers simulated time (start, end] (as a run's window does) and may set any of an error
rate, an abandon rate and a sessions multiplier, for every session or only for the sessions of one
journey template, or of the templates that visit one scene. Everything about a session is decided
when it starts (engine.planning), so an incident applies to the sessions that *start* inside it:

- their outcome is drawn with the incident's rates (a rate it does not set keeps the setting);
- with a scene, a session the incident errors or abandons stops in that scene;
- a multiplier scales the rate of new sessions in its scope while it lasts (the per-run cap is
  lifted by as much, so a surge is not trimmed away), and moves session starts into it;
- every event of such a session carries ``"incidents": [{"id": ..., "label": ...}]`` in its payload.

Sessions already in progress when an incident starts keep their plans. With no incident over a
window, the engine makes exactly the random draws it makes without this module: the same seed gives
the same rows as before incidents existed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from synthetics.engine.types import Catalogue, GeneratorSettings, Plan, TemplateSpec


@dataclass(frozen=True, slots=True)
class IncidentSpec:
    """One incident as the engine sees it (times in epoch milliseconds, (start, end])."""

    id: int
    label: str
    start_ms: int
    end_ms: int
    error_rate: float | None = None
    abandon_rate: float | None = None
    sessions_multiplier: float | None = None
    template: str = ""  # a template's slug: only its sessions ("" = every template)
    scene: str = ""  # a scene's slug: only the sessions of templates that visit it

    def covers(self, at_ms: int) -> bool:
        return self.start_ms < at_ms <= self.end_ms

    def overlaps(self, start_ms: int, end_ms: int) -> bool:
        return self.start_ms < end_ms and start_ms < self.end_ms

    def applies_to(self, template: TemplateSpec) -> bool:
        if self.template and template.slug != self.template:
            return False
        return not self.scene or any(scene.slug == self.scene for scene in template.scenes)

    @property
    def tag(self) -> dict:
        return {"id": self.id, "label": self.label}


@dataclass(frozen=True, slots=True)
class SessionIncident:
    """What the incidents in force at a session's start change for it."""

    settings: GeneratorSettings  # the settings with the incidents' rates
    tags: tuple[dict, ...]  # {"id", "label"} of each, by id
    # Where an outcome whose rate a scene's incident set happens: {"errored": slug, ...}; an
    # outcome not in it stops where the template's funnel says.
    stop_scenes: tuple[tuple[str, str], ...] = ()

    def stop_scene(self, outcome: str) -> str:
        return dict(self.stop_scenes).get(outcome, "")

    def marked(self, plan: Plan) -> Plan:
        """The plan with every step's payload naming the incidents."""
        tags = [dict(tag) for tag in self.tags]
        steps = tuple(replace(step, extra={**step.extra, "incidents": tags}) for step in plan.steps)
        return replace(plan, steps=steps)


class Incidents:
    """The incidents over a stretch of simulated time, with the catalogue whose templates they
    scope: what a run asks of them (engine.run)."""

    def __init__(self, specs: Sequence[IncidentSpec], catalogue: Catalogue) -> None:
        self.specs = tuple(sorted(specs, key=lambda spec: spec.id))
        self._templates = [t for t in catalogue.templates if t.popularity > 0 and t.scenes]
        total = sum(t.popularity for t in self._templates)
        self._shares = [t.popularity / total for t in self._templates] if total else []

    def __bool__(self) -> bool:
        return bool(self.specs)

    def over(self, start_ms: int, end_ms: int) -> Incidents | None:
        """The incidents that overlap (start, end], or None when none does."""
        specs = [spec for spec in self.specs if spec.overlaps(start_ms, end_ms)]
        if not specs:
            return None
        found = Incidents.__new__(Incidents)
        found.specs = tuple(specs)
        found._templates, found._shares = self._templates, self._shares
        return found

    # --- the rate of new sessions ------------------------------------------------------------------

    def multiplier(self, template: TemplateSpec, at_ms: int) -> float:
        """The sessions multiplier of `template`'s sessions at `at_ms` (1: none). Incidents that
        overlap with scopes that meet never set different multipliers (services.incidents)."""
        for spec in self.specs:
            if (
                spec.sessions_multiplier is not None
                and spec.covers(at_ms)
                and spec.applies_to(template)
            ):
                return spec.sessions_multiplier
        return 1.0

    def _factor(self, at_ms: int) -> float:
        """The rate of new sessions at `at_ms` relative to the settings': each template's share
        of the sessions times its multiplier."""
        multipliers = [self.multiplier(template, at_ms) for template in self._templates]
        if not multipliers:
            return 1.0
        if all(m == multipliers[0] for m in multipliers):
            return multipliers[0]  # exactly: not a sum of shares that rounds to 1.7000000000000002
        return math.fsum(share * m for share, m in zip(self._shares, multipliers, strict=True))

    def _segments(self, start_ms: int, end_ms: int) -> list[tuple[int, int, float]]:
        """(start, end] split where an incident starts or ends, each piece with its factor."""
        cuts = {start_ms, end_ms}
        for spec in self.specs:
            cuts.update(ms for ms in (spec.start_ms, spec.end_ms) if start_ms < ms < end_ms)
        ordered = sorted(cuts)
        return [(a, b, self._factor(b)) for a, b in zip(ordered, ordered[1:], strict=False)]

    def window_factor(self, start_ms: int, end_ms: int) -> float:
        """The mean of the factor over (start, end]: what multiplies a window's sessions."""
        if end_ms <= start_ms:
            return self._factor(end_ms)
        weighted = sum((b - a) * factor for a, b, factor in self._segments(start_ms, end_ms))
        return weighted / (end_ms - start_ms)

    def start_at(self, draw: float, start_ms: int, end_ms: int) -> int:
        """A session's start in (start, end] for a uniform `draw` in [0, 1), with a density
        proportional to the factor: a surge's sessions start inside the surge."""
        segments = [s for s in self._segments(start_ms, end_ms) if s[2] > 0]
        total = sum((b - a) * factor for a, b, factor in segments)
        if total <= 0:
            return end_ms
        target = draw * total
        for a, b, factor in segments:
            mass = (b - a) * factor
            if target < mass:
                return min(a + int(target / factor) + 1, b)
            target -= mass
        return segments[-1][1]

    def template_weights(self, templates: Sequence[TemplateSpec], at_ms: int) -> list[float]:
        return [t.popularity * self.multiplier(t, at_ms) for t in templates]

    # --- a session's outcome -----------------------------------------------------------------------

    def session(
        self, template: TemplateSpec, at_ms: int, settings: GeneratorSettings
    ) -> SessionIncident | None:
        """What the incidents in force at `at_ms` change for a session of `template` (None:
        nothing; it is planned as without incidents)."""
        found = [s for s in self.specs if s.covers(at_ms) and s.applies_to(template)]
        if not found:
            return None
        error_rate, abandon_rate = settings.error_rate, settings.abandon_rate
        stops: dict[str, str] = {}
        for spec in found:
            if spec.error_rate is not None:
                error_rate = spec.error_rate
                if spec.scene:
                    stops["errored"] = spec.scene
            if spec.abandon_rate is not None:
                abandon_rate = spec.abandon_rate
                if spec.scene:
                    stops["abandoned"] = spec.scene
        return SessionIncident(
            settings=replace(settings, error_rate=error_rate, abandon_rate=abandon_rate),
            tags=tuple(spec.tag for spec in found),
            stop_scenes=tuple(sorted(stops.items())),
        )


def lifted_cap(cap: int, factor: float) -> int:
    """A run's cap under a surge: raised by the surge's factor, never lowered (a drop lowers the
    mean, and the cap stays what the settings say)."""
    # (rounded to 9 places first: a factor a rounding error above a whole multiple lifts no further)
    return max(cap, math.ceil(round(cap * factor, 9))) if factor > 1 else cap
