"""Expected versus observed: what the generator should have written over a stretch of runs, with
statistical intervals, computed from the settings, the catalogue, the rhythm and the incidents —
never from what it wrote.

For each run that generated (scheduled or backfill, one a minute, or one a shard a minute):

- **sessions**: the run draws min(Poisson(sessions_per_min x minutes x R x surge / shards), cap)
  (engine.run.scheduled_session_count), so its mean and variance are those of a capped Poisson,
  summed exactly over the runs (independent draws);
- **events**: each session writes a number of scene and mindblock events that depends on its
  template, its outcome and its persona; their mean and variance per session come from sessions
  planned by the engine itself (PROFILE_SAMPLES, a fixed seed), per template and rates in force;
  a window's events are a random sum: mean E[N] mu, variance E[N] sigma^2 + Var[N] mu^2;
- **outcome shares** of the journeys that ended: each session's outcome is a Bernoulli draw at the
  rates in force when it started, so a share among n finished is binomial around the expected mix;
- **active journeys** (Little's law): arrivals at lambda a minute staying W minutes on average keep
  lambda W in progress; the time average of the runs' snapshots has the variance of an M/G/infinity
  count's average, Cov(lag k) = lambda E[(D - k)+], D a session's length (from the same plans).

Intervals are normal (mean +/- z sd). With `level` for the whole family of metrics, each metric's
interval is at 1 - (1 - level) / metrics (Bonferroni): at 0.99 and 7 metrics, a healthy generator
is called drifting on some metric in at most 1 % of windows.

What it leaves out, said where it matters: the pool's shortfall when it cannot sustain the rate
(capacity warns about that; it shows here as sessions below the band), and events carried across
the window's edges (sessions started before it write into it, sessions started in it write after
it: equal on average at a steady rate, they widen the spread a little).
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from statistics import NormalDist

from synthetics.engine.behaviour import in_error_spell, rate_factor_variance, spell_multiplier
from synthetics.engine.incidents import Incidents, SessionIncident, lifted_cap
from synthetics.engine.planning import plan_journey
from synthetics.engine.rhythm import PoolRhythm
from synthetics.engine.run import to_ms, window_rate_factor
from synthetics.engine.sampling import weighted_choice
from synthetics.engine.types import Catalogue, GeneratorSettings, TemplateSpec

PROFILE_SAMPLES = 2000
PROFILE_SEED = 20261206
METRICS = (
    "sessions",
    "scene_events",
    "mindblock_events",
    "completed_share",
    "abandoned_share",
    "errored_share",
    "active_journeys",
)
OUTCOMES = ("completed", "abandoned", "errored")
MIXED = "*"  # a profile of the fixed persona mix (no per-persona rhythm given)


def capped_poisson_moments(mean: float, cap: int) -> tuple[float, float]:
    """E and Var of min(Poisson(mean), cap), summed exactly (the normal approximation above 500,
    as engine.sampling.poisson draws it, with a cap far above the mean: mean and mean)."""
    if mean <= 0 or cap <= 0:
        return 0.0, 0.0
    if cap > mean + 12 * math.sqrt(mean) + 20:  # the cap is never reached in practice
        return mean, mean
    # P(k) in log space (exp(-mean) underflows to 0 above a mean of about 745), summed over the
    # k that carry any weight: within 40 standard deviations of the mean
    spread = 40 * math.sqrt(mean) + 40
    low = max(0, int(mean - spread))
    first = second = below = 0.0
    log_mean = math.log(mean)
    for k in range(low, cap):
        probability = math.exp(k * log_mean - mean - math.lgamma(k + 1))
        first += k * probability
        second += k * k * probability
        below += probability
    tail = max(0.0, 1.0 - below)
    first += cap * tail
    second += cap * cap * tail
    return first, max(0.0, second - first * first)


@dataclass(frozen=True, slots=True)
class SessionProfile:
    """Per session of one template at given rates: events written and length, from planned ones."""

    scene_mean: float
    scene_var: float
    mindblock_mean: float
    mindblock_var: float
    minutes_mean: float
    minutes: tuple[float, ...]  # the planned lengths, for Little's law's covariance

    def to_floats(self) -> list[float]:
        """The profile as one list of floats (to keep it: services.planned), from_floats's input."""
        return [
            self.scene_mean,
            self.scene_var,
            self.mindblock_mean,
            self.mindblock_var,
            self.minutes_mean,
            *self.minutes,
        ]

    @classmethod
    def from_floats(cls, values: Sequence[float]) -> SessionProfile:
        return cls(*values[:5], minutes=tuple(values[5:]))


# Where expected_activity gets a kind of session's profile: session_profile's arguments in, the
# profile out (session_profile itself, or a keeper of its answers: services.planned).
ProfileSource = Callable[..., SessionProfile]


@functools.lru_cache(maxsize=256)
def session_profile(
    catalogue: Catalogue,
    template: TemplateSpec,
    abandon_rate: float,
    error_rate: float,
    personas: tuple[tuple[str, float], ...],
    stop_scenes: tuple[tuple[str, str], ...] = (),
) -> SessionProfile:
    """Plan PROFILE_SAMPLES sessions of `template` at these rates (an incident's outcomes in its
    scenes: `stop_scenes`), personas drawn by their share of the pool's activity, and measure them
    (fixed seed: the same answer every time)."""
    rng = random.Random(PROFILE_SEED)
    settings = GeneratorSettings(abandon_rate=abandon_rate, error_rate=error_rate)
    incident = (
        SessionIncident(settings=settings, tags=(), stop_scenes=stop_scenes)
        if stop_scenes
        else None
    )
    names = [name for name, _ in personas] or [""]
    weights = [weight for _, weight in personas] or [1.0]
    scenes, mindblocks, minutes = [], [], []
    for _ in range(PROFILE_SAMPLES):
        persona = weighted_choice(rng, names, weights)
        plan = plan_journey(
            rng, template=template, catalogue=catalogue, settings=settings, persona=persona,
            start_ms=0, incident=incident,
        )  # fmt: skip
        scene = sum(1 for step in plan.steps if step.kind == "scene")
        scenes.append(scene)
        mindblocks.append(len(plan.steps) - scene)
        minutes.append(plan.end_ms / 60_000)
    return SessionProfile(
        scene_mean=_mean(scenes),
        scene_var=_variance(scenes),
        mindblock_mean=_mean(mindblocks),
        mindblock_var=_variance(mindblocks),
        minutes_mean=_mean(minutes),
        minutes=tuple(sorted(minutes)),
    )


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else 0.0


def _variance(values: Sequence[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = _mean(values)
    return math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1)


@dataclass(frozen=True, slots=True)
class RunWindow:
    """A run that generated: its simulated window, how many shards split its minutes, and the
    settings and seed it ran with where the ledger recorded them (None: the settings passed)."""

    start: datetime
    end: datetime
    shards: int = 1
    sessions_per_min: int | None = None
    max_per_run: int | None = None
    rhythm_strength: float | None = None
    abandon_rate: float | None = None
    error_rate: float | None = None
    seed: int | None = None

    def settings_in(self, current: GeneratorSettings) -> GeneratorSettings:
        """The settings the run used: its recorded ones, the others as `current`."""
        recorded = {
            name: getattr(self, name)
            for name in (
                "sessions_per_min",
                "max_per_run",
                "rhythm_strength",
                "abandon_rate",
                "error_rate",
            )
            if getattr(self, name) is not None
        }
        return replace(current, **recorded) if recorded else current


@dataclass(frozen=True, slots=True)
class Observed:
    """What the ledger says the runs wrote."""

    sessions: int
    scene_events: int
    mindblock_events: int
    completed: int
    abandoned: int
    errored: int
    active_samples: tuple[int, ...]  # journeys in progress after each minute (shards summed)


@dataclass(frozen=True, slots=True)
class MetricCheck:
    metric: str
    expected: float
    low: float
    high: float
    observed: float | None
    verdict: str  # ok, drifting, or too_few (nothing to compare yet)

    @property
    def ratio(self) -> float | None:
        """observed / expected (None when nothing is expected or observed)."""
        if self.observed is None or self.expected <= 0:
            return None
        return self.observed / self.expected


@dataclass(frozen=True, slots=True)
class Expected:
    sessions: tuple[float, float]  # mean, variance
    scene_events: tuple[float, float]
    mindblock_events: tuple[float, float]
    shares: dict[str, float]  # the outcome mix of the sessions expected
    active_mean: float
    arrivals_per_minute: float
    minutes: tuple[float, ...]  # session lengths, mixed by expected sessions
    started: float = 0.0  # sessions expected to start, manual runs' included
    # The behaviour's dispersion (engine.behaviour): the relative variance of the rate's day and
    # drift factor, shared by every count of the window, and each share's extra variance from the
    # error spells.
    rate_dispersion: float = 0.0
    share_dispersion: tuple[tuple[str, float], ...] = ()


def expected_activity(
    *,
    settings: GeneratorSettings,
    catalogue: Catalogue,
    runs: Sequence[RunWindow],
    rhythm: PoolRhythm | None = None,
    personas: tuple[tuple[str, float], ...] = (),
    incidents: Incidents | None = None,
    manual: Sequence[tuple[RunWindow, int]] = (),
    persona_rhythms: Sequence[tuple[str, float, PoolRhythm]] = (),
    profiles: ProfileSource = session_profile,
) -> Expected:
    """What `runs` should have written at these settings (see the module's docstring). `manual`
    runs started exactly their count of sessions: not part of the `sessions` promise, but their
    sessions write events, finish and stay in progress like any other.

    `persona_rhythms`: (persona, its users' total activity, the rhythm of its users): who starts a
    session at a time is picked by activity times their own rhythm there, so a persona with its own
    profile starts more of the sessions at its hours (and personas report mindblocks at different
    rates). Without it, `personas` gives fixed shares. `profiles`: where each kind of session's
    profile comes from (session_profile, or what keeps its answers)."""
    templates = [t for t in catalogue.templates if t.popularity > 0 and t.scenes]
    total_popularity = sum(t.popularity for t in templates)
    sessions_mean = sessions_var = started = 0.0
    scene_mean = scene_var = mindblock_mean = mindblock_var = length_total = 0.0
    per_key: dict[tuple, float] = {}
    covered_minutes = 0.0

    # session_profile's cache hashes the whole catalogue on every look-up (a few hundred fields):
    # each kind of session is looked up there once per call, then here by its own key
    kept: dict[tuple, SessionProfile] = {}

    def _profile(key: tuple) -> SessionProfile:
        profile = kept.get(key)
        if profile is None:
            template, abandon, error, stops, persona = key
            mixed = personas if persona == MIXED else ((persona, 1.0),)
            profile = kept[key] = profiles(catalogue, template, abandon, error, mixed, stops)
        return profile

    def persona_shares(run: RunWindow, used: GeneratorSettings) -> list[tuple[str, float]]:
        if not persona_rhythms:
            return [(MIXED, 1.0)]  # the fixed mix `personas`, in one profile
        weights = [
            (
                persona,
                activity * rhythm.window_rate(run.start, run.end, strength=used.rhythm_strength),
            )
            for persona, activity, rhythm in persona_rhythms
        ]
        total = sum(weight for _, weight in weights) or 1.0
        return [(persona, weight / total) for persona, weight in weights]

    def mix(
        run: RunWindow, over: Incidents | None, surge: float, used: GeneratorSettings
    ) -> list[tuple[tuple, float]]:
        """The kinds of session a run starts, (template, rates, incident scenes, persona), with
        their shares, at the settings the run `used` (its error rate times the error spell's
        multiplier where its seed is known: engine.behaviour)."""
        start_ms, end_ms = to_ms(run.start), to_ms(run.end)
        middle = end_ms - (end_ms - start_ms) // 2
        weights = (
            over.template_weights(templates, middle)
            if over is not None and surge > 0
            else [t.popularity / total_popularity for t in templates]
        )
        total = sum(weights) or 1.0
        kinds = []
        by_persona = persona_shares(run, used)
        spelled = used
        if run.seed is not None and behaviour.spell_share > 0:
            spell = in_error_spell(behaviour, seed=run.seed, at_ms=middle)
            error = min(1 - used.abandon_rate, used.error_rate * spell_multiplier(behaviour, spell))
            spelled = replace(used, error_rate=error)
        for template, weight in zip(templates, weights, strict=True):
            rates, stops = spelled, ()
            if over is not None:
                session = over.session(template, middle, used)
                if session is not None:
                    rates, stops = session.settings, session.stop_scenes
            for persona, persona_share in by_persona:
                key = (template, rates.abandon_rate, rates.error_rate, stops, persona)
                kinds.append((key, weight / total * persona_share))
        return kinds

    def add(kinds: list[tuple[tuple, float]], mean: float, variance: float) -> None:
        """A random number N of sessions of this mix: each kind's share of E[N], and the events'
        random sum, Var = E[N] Var(S) + Var(N) E[S]^2 with S over the whole mix."""
        nonlocal scene_mean, scene_var, mindblock_mean, mindblock_var, length_total, started
        moments = [0.0, 0.0, 0.0, 0.0]  # E[S], E[S^2] of scene then mindblock events
        for key, share in kinds:
            profile = _profile(key)
            per_key[key] = per_key.get(key, 0.0) + mean * share
            moments[0] += share * profile.scene_mean
            moments[1] += share * (profile.scene_var + profile.scene_mean**2)
            moments[2] += share * profile.mindblock_mean
            moments[3] += share * (profile.mindblock_var + profile.mindblock_mean**2)
            length_total += mean * share * profile.minutes_mean
        started += mean
        scene_mean += mean * moments[0]
        scene_var += mean * (moments[1] - moments[0] ** 2) + variance * moments[0] ** 2
        mindblock_mean += mean * moments[2]
        mindblock_var += mean * (moments[3] - moments[2] ** 2) + variance * moments[2] ** 2

    behaviour = catalogue.behaviour
    unseeded = [0.0, 0.0, 0.0, 0.0]  # sessions, scene and mindblock events, minutes: no seed
    for run in runs:
        minutes = (run.end - run.start) / timedelta(minutes=1)
        if minutes <= 0 or not templates:
            continue
        used = run.settings_in(settings)
        covered_minutes += minutes / run.shards
        start_ms, end_ms = to_ms(run.start), to_ms(run.end)
        over = incidents.over(start_ms, end_ms) if incidents is not None else None
        surge = over.window_factor(start_ms, end_ms) if over is not None else 1.0
        rate = (
            rhythm.window_rate(run.start, run.end, strength=used.rhythm_strength)
            if rhythm is not None
            else 1.0
        )
        if run.seed is not None:  # the rate factor the run drew its count at (engine.behaviour)
            rate *= window_rate_factor(
                behaviour,
                seed=run.seed,
                start=run.start,
                end=run.end,
                strength=used.rhythm_strength,
            )
        cap = used.max_per_run if run.shards == 1 else -(-used.max_per_run // run.shards)
        mean, variance = capped_poisson_moments(
            used.sessions_per_min * minutes * rate * surge / run.shards,
            lifted_cap(cap, surge),
        )
        sessions_mean += mean
        sessions_var += variance
        before = (scene_mean, mindblock_mean)
        add(mix(run, over, surge, used), mean, variance)
        if run.seed is None:
            unseeded[0] += mean
            unseeded[1] += scene_mean - before[0]
            unseeded[2] += mindblock_mean - before[1]
            unseeded[3] += minutes / run.shards
    for run, count in manual:
        if count <= 0 or not templates:
            continue
        start_ms, end_ms = to_ms(run.start), to_ms(run.end)
        over = incidents.over(start_ms, end_ms) if incidents is not None else None
        add(mix(run, over, 1.0, run.settings_in(settings)), float(count), 0.0)

    # A run with its seed recorded was judged at its own rate factor and error spells (both are
    # functions of the seed and the time: engine.behaviour). For the others they are random: the
    # day and drift factor F (mean 1) multiplies every run's mean alike over a window shorter than
    # its correlation (a day; drift_hours), so a count's variance gains Var(F) times its mean
    # squared (an upper bound for longer windows); a window of k spell slots holds Binomial(k, s)
    # / k of them, so the error share's multiplier has variance b^2 (M - 1)^2 s (1 - s) / k (b the
    # base multiplier): e^2 times that for the error share, as much for the completed share.
    dispersion = rate_factor_variance(behaviour, settings.rhythm_strength) if unseeded[0] else 0.0
    sessions_var += dispersion * unseeded[0] ** 2
    scene_var += dispersion * unseeded[1] ** 2
    mindblock_var += dispersion * unseeded[2] ** 2
    spells: tuple[tuple[str, float], ...] = ()
    if behaviour.spell_share > 0 and unseeded[3] > 0:
        slots = max(1.0, unseeded[3] / behaviour.spell_minutes)
        base = spell_multiplier(behaviour, False)
        s_ = behaviour.spell_share
        spread = base**2 * (behaviour.spell_factor - 1) ** 2 * s_ * (1 - s_) / slots
        share = unseeded[3] / covered_minutes  # of the window's minutes
        error = (share * settings.error_rate) ** 2 * spread
        spells = (("errored", error), ("completed", error))
    shares = dict.fromkeys(OUTCOMES, 0.0)
    lengths: list[float] = []
    for key, n in per_key.items():
        abandon, error = key[1], key[2]
        shares["abandoned"] += n * abandon
        shares["errored"] += n * error
        shares["completed"] += n * (1 - abandon - error)
        profile = _profile(key)
        # lengths weighted by sessions, for the covariance: each kind's sorted sample thinned in
        # proportion to its sessions, taking the middle of each stretch (not its shortest)
        take = max(1, min(200, round(200 * n / max(started, 1e-9))))
        step = max(1, len(profile.minutes) // take)
        lengths.extend(profile.minutes[step // 2 :: step])
    if started > 0:
        shares = {key: value / started for key, value in shares.items()}
    arrivals = started / covered_minutes if covered_minutes else 0.0
    length = length_total / started if started > 0 else 0.0
    return Expected(
        sessions=(sessions_mean, sessions_var),
        scene_events=(scene_mean, scene_var),
        mindblock_events=(mindblock_mean, mindblock_var),
        shares=shares,
        active_mean=arrivals * length,
        arrivals_per_minute=arrivals,
        minutes=tuple(lengths),
        started=started,
        rate_dispersion=dispersion,
        share_dispersion=spells,
    )


def _average_snapshot_variance(arrivals: float, lengths: Sequence[float], samples: int) -> float:
    """Var of the mean of `samples` snapshots a minute apart of an M/G/infinity count with these
    arrivals a minute and session lengths: (lambda / n^2) sum over i, j of E[(D - |i - j|)+]."""
    if samples <= 0 or not lengths:
        return 0.0
    longest = int(max(lengths)) + 1
    excess = [_mean([max(0.0, d - lag) for d in lengths]) for lag in range(min(samples, longest))]
    total = samples * excess[0] + 2 * sum(
        (samples - lag) * excess[lag] for lag in range(1, len(excess))
    )
    return arrivals * total / samples**2


def compare(
    expected: Expected, observed: Observed, *, level: float = 0.99, settling: bool = False
) -> list[MetricCheck]:
    """Each metric's expected value, interval and verdict against what was observed. `settling`:
    the window holds the edge of an incident or a gap in generation (a pause, the scheduler down),
    after which what finishes and what is in progress lag what starts by a session's length; only
    `sessions` (a property of each run alone) is judged then, the others say too_few."""
    z = NormalDist().inv_cdf(1 - (1 - level) / (2 * len(METRICS)))
    checks = []

    def interval(metric: str, mean: float, variance: float, seen: float | None, enough: bool):
        spread = z * math.sqrt(max(variance, 0.0))
        low, high = max(0.0, mean - spread), mean + spread
        if seen is None or not enough:
            verdict = "too_few"
        else:
            verdict = "ok" if low <= seen <= high else "drifting"
        checks.append(MetricCheck(metric, mean, low, high, seen, verdict))

    # Counts: a window with fewer than 10 expected sessions tells nothing yet.
    enough = expected.sessions[0] >= 10
    interval("sessions", *expected.sessions, observed.sessions, enough)
    steady = enough and not settling
    interval("scene_events", *expected.scene_events, observed.scene_events, steady)
    interval("mindblock_events", *expected.mindblock_events, observed.mindblock_events, steady)
    finished = observed.completed + observed.abandoned + observed.errored
    for outcome in OUTCOMES:
        share = expected.shares[outcome]
        seen = getattr(observed, outcome) / finished if finished else None
        variance = share * (1 - share) / finished if finished else 0.0
        variance += dict(expected.share_dispersion).get(outcome, 0.0)
        judged = finished >= 30 and expected.started >= 10 and not settling
        interval(f"{outcome}_share", share, variance, seen, judged)
    samples = observed.active_samples
    seen = _mean(samples) if samples else None
    variance = _average_snapshot_variance(
        expected.arrivals_per_minute, expected.minutes, len(samples)
    )
    variance += expected.rate_dispersion * expected.active_mean**2  # no seed recorded: F unknown
    interval("active_journeys", expected.active_mean, variance, seen, len(samples) >= 10 and steady)
    return checks
