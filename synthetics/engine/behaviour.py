"""How simulated people behave beyond the hourly rhythm: who is engaged, bouts of sessions, the
day-to-day swing of traffic, spells of errors, who fails, how long a scene holds them.

Every parameter is a field of `Behaviour`, the scenario file's `behaviour` section (docs/behaviour.md
"Behaviour model"). The random parts that must agree between processes and shards — the rate's
day and drift factors, the error spells, a user's active and lapsed weeks — are functions of the
seed and the time (a keyed hash, `unit`), not of a run's stream: a scheduled run, a shard, a
backfill and the in-memory simulator all see the same factor at the same minute. The others
(which user a bout brings back, an outcome) come from the run's stream like every other draw.

The seed's contract holds: the factors that change the rate have mean 1 (log-normal, each scaled by
exp(-sigma^2 / 2)), so `sessions_per_min` stays the long-run mean rate; spells and segments change
who errs and when, with the overall shares held to `error_rate` and `abandon_rate`.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, fields
from functools import lru_cache

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS


@dataclass(frozen=True, slots=True)
class Behaviour:
    """The behaviour model's parameters. Defaults: a consumer product (see docs/behaviour.md for sources)."""

    # Engagement: a user's own activity is log-normal around their persona's weight with this
    # log-sd (heavy-tailed: most users light, a few power users).
    engagement_spread: float = 0.8
    # Each settled user alternates between active and lapsed periods of `lapse_weeks` (on their own
    # calendar); a period is lapsed with chance `lapsed_share`, and a lapsed user starts sessions at
    # `lapsed_activity` times their usual rate (0: never).
    lapsed_share: float = 0.5
    lapse_weeks: float = 3.0
    lapsed_activity: float = 0.005
    # Bouts (self-exciting): this share of sessions is a return of a user soon after one of their
    # own sessions, `bout_minutes` after it on average (an exponential kernel).
    bout_share: float = 0.5
    bout_minutes: float = 40.0
    # The rate's day-to-day swing and slow drift: log-normal factors with these log-sds, the drift
    # correlated over `drift_hours` (mean 1 each: the long-run rate holds).
    day_spread: float = 0.12
    drift_spread: float = 0.15
    drift_hours: float = 6.0
    # Error spells: this share of `spell_minutes` slots errs at `spell_factor` times the base rate
    # (the base lowered so that the overall share stays error_rate).
    spell_share: float = 0.02
    spell_minutes: int = 12
    spell_factor: float = 10.0
    # Outcomes by segment (odds multipliers, each normalised so that the overall shares hold):
    # a newcomer's sessions abandon and fail more, and each settled persona abandons at its own
    # odds (devoted users finish what they start, drifting ones leave), night sessions
    # (00:00-06:00 local) abandon more, a session right after an errored one of the same user
    # fails more.
    newcomer_abandon: float = 1.8
    newcomer_error: float = 1.5
    casual_abandon: float = 1.25
    regular_abandon: float = 1.0
    devoted_abandon: float = 0.6
    drifting_abandon: float = 1.6
    night_abandon: float = 1.4
    after_error: float = 2.5
    # Time in a scene: log-normal around the scene's median with a log-sd of `dwell_spread` times a
    # factor of the scene's own (0.7-1.4, from its slug); this share of abandoned sessions bounce:
    # leave the first scene after `bounce_seconds` on average.
    dwell_spread: float = 0.8
    bounce_share: float = 0.35
    bounce_seconds: float = 6.0
    # A mindblock's intensity (1-5) peaks at its type's own level; the larger, the more peaked.
    intensity_peak: float = 1.2
    # Sign-ups: a newcomer signs up at the start of a first session through the `onboarding`
    # journey template (its slug; "" or a template not in the catalogue: any, by popularity), which
    # nobody else runs. A newcomer keeps coming back with chance `newcomer_stay`; the others come
    # back at (1 + days since sign-up / return_days) ^ -return_decay of their rate: retention that
    # falls fast, then slowly (a power law, as products measure it).
    onboarding: str = "first-steps"
    newcomer_stay: float = 0.12
    return_days: float = 0.25
    return_decay: float = 1.1
    # Activity fades before churn: a user whose activity has faded (in a lapsed period, or a
    # newcomer who stopped coming back: engine.picking.activity_now below a half) is `fade_churn`
    # times likelier to be the one who churns (1: churn ignores it).
    fade_churn: float = 20.0

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict | None) -> Behaviour:
        """From the scenario file's (or the stored) `behaviour`, the missing fields at defaults."""
        if not data:
            return DEFAULT_BEHAVIOUR
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown behaviour parameters: {', '.join(unknown)}")
        values = {
            name: value
            if name in TEXT_PARAMETERS
            else int(value)
            if name == "spell_minutes"
            else float(value)
            for name, value in data.items()
        }
        return cls(**values)


DEFAULT_BEHAVIOUR = Behaviour()
# The seed prototype's behaviour: every user alike within their persona, a Poisson rate, outcomes
# alike for everyone, one dwell spread, no bounces, uniform intensities (the scenario file can ask
# for it; tests of the rhythm and the count use it to see those alone).
PLAIN_BEHAVIOUR = Behaviour(
    onboarding="",
    fade_churn=1.0,
    newcomer_stay=1.0,
    engagement_spread=0.3,
    lapsed_share=0.0,
    bout_share=0.0,
    day_spread=0.0,
    drift_spread=0.0,
    spell_share=0.0,
    newcomer_abandon=1.0,
    newcomer_error=1.0,
    casual_abandon=1.0,
    regular_abandon=1.0,
    devoted_abandon=1.0,
    drifting_abandon=1.0,
    night_abandon=1.0,
    after_error=1.0,
    bounce_share=0.0,
    intensity_peak=0.0,
)

# Each parameter's allowed range (the scenario schema and the loader check these).
BEHAVIOUR_RANGES: dict[str, tuple[float, float]] = {
    "engagement_spread": (0.0, 3.0),
    "lapsed_share": (0.0, 0.95),
    "lapse_weeks": (0.5, 26.0),
    "lapsed_activity": (0.0, 1.0),
    "bout_share": (0.0, 0.9),
    "bout_minutes": (1.0, 1440.0),
    "day_spread": (0.0, 1.0),
    "drift_spread": (0.0, 1.0),
    "drift_hours": (0.5, 168.0),
    "spell_share": (0.0, 0.5),
    "spell_minutes": (1, 1440),
    "spell_factor": (1.0, 100.0),
    "newcomer_abandon": (0.1, 10.0),
    "newcomer_error": (0.1, 10.0),
    "casual_abandon": (0.1, 10.0),
    "regular_abandon": (0.1, 10.0),
    "devoted_abandon": (0.1, 10.0),
    "drifting_abandon": (0.1, 10.0),
    "night_abandon": (0.1, 10.0),
    "after_error": (0.1, 10.0),
    "dwell_spread": (0.05, 2.0),
    "bounce_share": (0.0, 1.0),
    "bounce_seconds": (0.5, 120.0),
    "intensity_peak": (0.0, 5.0),
    "newcomer_stay": (0.0, 1.0),
    "return_days": (0.01, 365.0),
    "return_decay": (0.0, 5.0),
    "fade_churn": (1.0, 1000.0),
}
TEXT_PARAMETERS = {"onboarding": 64}  # names of journey templates: their longest


def abandon_odds(behaviour: Behaviour, persona: str) -> float:
    """A persona's own abandon multiplier (1 for a persona the model does not name)."""
    return getattr(behaviour, f"{persona}_abandon", 1.0) if persona in PERSONA_ODDS else 1.0


PERSONA_ODDS = frozenset({"newcomer", "casual", "regular", "devoted", "drifting"})


def behaviour_problems(data: object) -> list[str]:
    """What is wrong with a `behaviour` mapping, one message each (empty: nothing)."""
    if data is None:
        return []
    if not isinstance(data, dict):
        return ["behaviour must be a mapping of parameter names to numbers"]
    problems = []
    for name, value in data.items():
        if name in TEXT_PARAMETERS:
            if not isinstance(value, str) or len(value) > TEXT_PARAMETERS[name]:
                problems.append(
                    f"behaviour.{name} must be a template's slug of at most "
                    f'{TEXT_PARAMETERS[name]} characters ("": none), got {value!r}'
                )
            continue
        if name not in BEHAVIOUR_RANGES:
            problems.append(f"behaviour.{name} is not a parameter of the behaviour model")
            continue
        low, high = BEHAVIOUR_RANGES[name]
        whole = name == "spell_minutes"
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"behaviour.{name} must be a number, got {value!r}")
        elif whole and value != int(value):
            problems.append(f"behaviour.{name} must be a whole number, got {value!r}")
        elif not low <= value <= high:  # NaN is in no range
            problems.append(f"behaviour.{name} must be between {low} and {high}, got {value!r}")
    return problems


# --- keyed uniforms and normals: the same value for the same key in every process -----------------


def unit(*key: object) -> float:
    """A uniform on [0, 1) that is a function of `key` alone (BLAKE2b of its text)."""
    digest = hashlib.blake2b(":".join(map(str, key)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


@lru_cache(maxsize=4096)
def keyed_normal(*key: object) -> float:
    """A standard normal that is a function of `key` alone (Box-Muller on two keyed uniforms)."""
    radius = math.sqrt(-2.0 * math.log(1.0 - unit(*key, "r")))
    return radius * math.cos(math.tau * unit(*key, "a"))


# --- the rate's random factor ----------------------------------------------------------------------


def rate_factor(behaviour: Behaviour, *, seed: int, at_ms: int, strength: float = 1.0) -> float:
    """The day-level and drifting factor on the rate at `at_ms`: mean 1 over seeds and days. Its
    log-sds scale with the rhythm's `strength`: at 0 the rate is the seed's flat one.

    Day: exp(s_d Z_day - s_d^2 / 2), one Z per UTC day. Drift: exp(s_r X(t) - s_r^2 / 2), X a
    standard normal at knots every drift_hours, between them the mix (w0 Z0 + w1 Z1) / |w| with
    cosine weights: a standard normal at every t (stationary), correlated over about a knot's span."""
    day, drift = behaviour.day_spread * strength, behaviour.drift_spread * strength
    if day == 0 and drift == 0:
        return 1.0
    log = 0.0
    if day:
        log += day * keyed_normal(seed, "day", at_ms // DAY_MS) - day * day / 2
    if drift:
        span = behaviour.drift_hours * HOUR_MS
        knot, into = divmod(at_ms / span, 1.0)
        w1 = (1 - math.cos(math.pi * into)) / 2
        w0 = 1 - w1
        z = w0 * keyed_normal(seed, "drift", int(knot)) + w1 * keyed_normal(
            seed, "drift", int(knot) + 1
        )
        log += drift * z / math.hypot(w0, w1) - drift * drift / 2
    return math.exp(log)


def rate_factor_variance(behaviour: Behaviour, strength: float = 1.0) -> float:
    """Var of rate_factor over days and seeds: E[F^2] - 1 = exp(s_d^2 + s_r^2) - 1."""
    return math.exp(strength**2 * (behaviour.day_spread**2 + behaviour.drift_spread**2)) - 1


# --- error spells ---------------------------------------------------------------------------------


def in_error_spell(behaviour: Behaviour, *, seed: int, at_ms: int) -> bool:
    if behaviour.spell_share <= 0 or behaviour.spell_factor == 1:
        return False
    return _spell(seed, at_ms // (behaviour.spell_minutes * MINUTE_MS), behaviour.spell_share)


@lru_cache(maxsize=4096)
def _spell(seed: int, slot: int, share: float) -> bool:
    """Slot `slot` of `seed` is a spell (a run's sessions share a slot: one hash for all)."""
    return unit(seed, "spell", slot) < share


def spell_multiplier(behaviour: Behaviour, spell: bool) -> float:
    """The error rate's multiplier in or out of a spell: mean 1 over time (share s at factor M,
    1 - s at the base 1 / (1 - s + s M))."""
    if behaviour.spell_share <= 0:
        return 1.0
    base = 1.0 / (1 - behaviour.spell_share + behaviour.spell_share * behaviour.spell_factor)
    return base * behaviour.spell_factor if spell else base


# --- active and lapsed periods --------------------------------------------------------------------


@lru_cache(maxsize=65536)
def lapse_phase_ms(behaviour: Behaviour, key: str) -> int:
    """Where the calendar of periods of the user `key` starts: each changes state on their own
    days."""
    period = int(behaviour.lapse_weeks * WEEK_MS)
    return int(unit("lapse-phase", key) * period)


@lru_cache(maxsize=65536)
def lapse_factor(behaviour: Behaviour, *, key: str, period: int) -> float:
    """A user's activity factor in their `period`-th period: 1 active, lapsed_activity lapsed."""
    if behaviour.lapsed_share <= 0:
        return 1.0
    lapsed = unit("lapse", key, period) < behaviour.lapsed_share
    return behaviour.lapsed_activity if lapsed else 1.0


def lapse_period(behaviour: Behaviour, *, key: str, at_ms: int) -> tuple[int, int]:
    """The user's period at `at_ms` and when it ends (epoch ms)."""
    length = int(behaviour.lapse_weeks * WEEK_MS)
    phase = lapse_phase_ms(behaviour, key)
    period = (at_ms + phase) // length
    return period, (period + 1) * length - phase


def returning(behaviour: Behaviour, *, key: str, age_days: float) -> float:
    """A signed-up user's return factor `age_days` after signing up: 1 for those who stay (chance
    newcomer_stay, by `key`), else (1 + age / return_days) ^ -return_decay."""
    if behaviour.newcomer_stay >= 1 or unit("stay", key) < behaviour.newcomer_stay:
        return 1.0
    return (1 + max(0.0, age_days) / behaviour.return_days) ** -behaviour.return_decay


# --- time in a scene, intensities -----------------------------------------------------------------


@lru_cache(maxsize=1024)
def scene_spread(behaviour: Behaviour, slug: str) -> float:
    """A scene's own log-sd of dwell: dwell_spread times 0.7-1.4 from its slug."""
    return behaviour.dwell_spread * (0.7 + 0.7 * unit("dwell", slug))


@lru_cache(maxsize=1024)
def intensity_weights(behaviour: Behaviour, slug: str) -> tuple[float, ...]:
    """The chances of intensity 1..5 for a mindblock type: peaked at the type's own level (2, 3
    or 4, from its slug), falling by exp(-intensity_peak) a step away (0: uniform)."""
    mode = 2 + int(unit("intensity", slug) * 3)
    weights = [math.exp(-behaviour.intensity_peak * abs(level - mode)) for level in range(1, 6)]
    total = sum(weights)
    return tuple(weight / total for weight in weights)
