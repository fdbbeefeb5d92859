"""Who starts a run's sessions, and the odds of their outcomes by segment.

Picks (docs/behaviour.md): each session is, with chance bout_share, a return of the user of
a recent session (engine.bouts); otherwise a draw from the pool in proportion to activity weight x
the user's rhythm now, thinned by the user's active or lapsed period (engine.behaviour: a lapsed
user is kept with chance lapsed_activity). A pick that lands on a busy user, one already picked or
one thinned away is drawn again; when draws pile up (most of the pool busy) the rest come from one
exact weighted draw over the eligible users.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Collection, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from itertools import accumulate

from synthetics.engine.behaviour import (
    DAY_MS,
    HOUR_MS,
    WEEK_MS,
    Behaviour,
    abandon_odds,
    in_error_spell,
    lapse_factor,
    lapse_phase_ms,
    returning,
    spell_multiplier,
)
from synthetics.engine.bouts import RecentSessions
from synthetics.engine.rhythm import normalised, persona_profile, zone_of
from synthetics.engine.sampling import weighted_sample
from synthetics.engine.types import Catalogue, PoolMember, RhythmProfile, TemplateSpec

BOUT_TRIES = 3  # a return that lands on a busy or gone user is tried again this often


def activity_now(behaviour: Behaviour, member: PoolMember, at_ms: int) -> float:
    """A member's period factor at `at_ms`: 1 active, lapsed_activity lapsed; a newcomer (still
    settling in) is never lapsed."""
    factor = 1.0
    if member.joined_ms is not None:  # signed up in a run: stays, or comes back less and less
        age_days = (at_ms - member.joined_ms) / DAY_MS
        factor = returning(behaviour, key=joined_key(member), age_days=age_days)
    if behaviour.lapsed_share <= 0 or member.settles_into:
        return factor
    return factor * _period_factor(behaviour, member, at_ms)


# Each member's calendar of periods, remembered by sim user id for the behaviour last asked about:
# (behaviour, period length, {sim user id: [member, phase, (period, its factor)]}). lapse_period
# and lapse_factor key their caches on the behaviour (a frozen dataclass of thirty fields, hashed
# on every call) and the member's key (formatted on every call), and a pool of 200,000 overflows
# those caches: at 20,000 sessions a minute a run's picks spent most of their time there (a pick
# is thinned by its period factor, and when redraws pile up every eligible member is weighed).
# The same numbers, looked up instead of recomputed. Each change is one assignment (a new entry,
# a new (period, factor) pair, a new state), so threads that share it never read a half-made one.
_CALENDARS_LIMIT = 2_000_000  # members remembered at most (a few hundred bytes each)
_calendars: tuple[Behaviour | None, int, dict[int, list]] = (None, 0, {})


def _period_factor(behaviour: Behaviour, member: PoolMember, at_ms: int) -> float:
    """lapse_factor of the member's period at `at_ms` (lapse_period), remembered."""
    global _calendars
    known, length, calendars = _calendars
    if known is not behaviour:
        if known != behaviour or len(calendars) > _CALENDARS_LIMIT:
            calendars = {}
        length = int(behaviour.lapse_weeks * WEEK_MS)
        _calendars = (behaviour, length, calendars)
    entry = calendars.get(member.sim_user_id)
    if entry is None or (entry[0] is not member and entry[0] != member):
        if len(calendars) > _CALENDARS_LIMIT:
            calendars.clear()
        key = member_key(member)
        phase = lapse_phase_ms(behaviour, key)
        period = (at_ms + phase) // length
        factor = lapse_factor(behaviour, key=key, period=period)
        calendars[member.sim_user_id] = [member, phase, (period, factor)]
        return factor
    period = (at_ms + entry[1]) // length
    known_period, factor = entry[2]
    if known_period != period:
        factor = lapse_factor(behaviour, key=member_key(member), period=period)
        entry[2] = (period, factor)
    return factor


def utc_day(at_ms: int) -> date:
    return date.fromordinal(_EPOCH_ORDINAL + at_ms // DAY_MS)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def not_signed_up(member: PoolMember, today: date) -> bool:
    """A seeded member (no sign-up moment) starts nothing until the UTC day after their sign-up
    date: their account's date_joined is a time of that day (population.Profile.signed_up_at), so
    history generated before seeding never puts a session before the account existed."""
    return (
        member.joined_ms is None and member.signup_date is not None and member.signup_date >= today
    )


def joined_key(member: PoolMember) -> str:
    """What names a signed-up member's draw to stay: their sign-up moment and place (it holds
    when they settle into a persona and their weight changes)."""
    return f"{member.joined_ms}|{member.timezone}|{member.locale}"


def member_key(member: PoolMember) -> str:
    """What names a member's calendar of active and lapsed periods: their profile's traits, not
    their id (ids differ between databases and runs of the tests; the same seed must give the
    same rows on each)."""
    return f"{member.activity_weight!r}|{member.timezone}|{member.locale}|{member.signup_date}"


def mean_activity(behaviour: Behaviour, member: PoolMember, at_ms: int) -> float:
    """What a member's factor (activity_now) averages to around `at_ms` over the draws: 1 - s +
    s x a for a settled user's periods; for a sign-up, times stay + (1 - stay) x the return
    factor at their age."""
    factor = 1.0
    if member.joined_ms is not None:
        stay = behaviour.newcomer_stay
        age = max(0.0, (at_ms - member.joined_ms) / DAY_MS)
        factor = stay + (1 - stay) * (1 + age / behaviour.return_days) ** -behaviour.return_decay
    if member.settles_into:
        return factor
    share = behaviour.lapsed_share
    return factor * (1 - share + share * behaviour.lapsed_activity)


def pick_members(
    rng: random.Random,
    *,
    pool: Sequence[PoolMember],
    weights: Sequence[float],
    cumulative: Sequence[float] | None,
    count: int,
    busy: Collection[int],
    behaviour: Behaviour,
    at_ms: int,
    recent: RecentSessions | None = None,
    index_of: dict[int, int] | None = None,
) -> list[PoolMember]:
    """`count` distinct members who are not `busy`: returns (from `recent`) and pool draws."""
    if count <= 0 or not pool:
        return []
    if cumulative is None:
        cumulative = list(accumulate(weights))
    total = cumulative[-1]
    chosen: list[PoolMember] = []
    taken: set[int] = set()
    bouts = recent is not None and index_of is not None and behaviour.bout_share > 0
    redraws = 0
    lapsing = behaviour.lapsed_share > 0 and behaviour.lapsed_activity < 1
    today = utc_day(at_ms)
    while len(chosen) < count and total > 0 and redraws <= 4 * count + 16:
        if bouts and rng.random() < behaviour.bout_share:
            member = _returning(rng, pool, recent, index_of, busy, taken, at_ms)
            if member is not None:
                taken.add(member.sim_user_id)
                chosen.append(member)
                continue
        index = bisect_right(cumulative, rng.random() * total)
        if index >= len(pool):
            redraws += 1
            continue
        member = pool[index]
        if member.sim_user_id in taken or member.sim_user_id in busy:
            redraws += 1
            continue
        if not_signed_up(member, today):
            redraws += 1
            continue
        if lapsing and rng.random() >= activity_now(behaviour, member, at_ms):
            redraws += 1
            continue
        taken.add(member.sim_user_id)
        chosen.append(member)
    if len(chosen) < count:
        eligible = [
            (member, weight * activity_now(behaviour, member, at_ms))
            for member, weight in zip(pool, weights, strict=True)
            if member.sim_user_id not in taken
            and member.sim_user_id not in busy
            and not not_signed_up(member, today)
        ]
        chosen += weighted_sample(
            rng, [m for m, _ in eligible], [w for _, w in eligible], count - len(chosen)
        )
    return chosen


def _returning(
    rng: random.Random,
    pool: Sequence[PoolMember],
    recent: RecentSessions,
    index_of: dict[int, int],
    busy: Collection[int],
    taken: set[int],
    at_ms: int,
) -> PoolMember | None:
    for _ in range(BOUT_TRIES):
        session = recent.pick(rng.random(), before_ms=at_ms)
        if session is None:
            return None
        index = index_of.get(session.sim_user_id)
        if index is None:
            continue  # churned, or not in this slice
        member = pool[index]
        if member.sim_user_id in busy or member.sim_user_id in taken:
            continue
        return member
    return None


def onboarding_template(catalogue: Catalogue) -> TemplateSpec | None:
    """The behaviour's onboarding template, if the catalogue has it active with scenes."""
    slug = catalogue.behaviour.onboarding
    if not slug:
        return None
    return next(
        (t for t in catalogue.templates if t.slug == slug and t.popularity > 0 and t.scenes), None
    )


def regular_templates(catalogue: Catalogue) -> list[TemplateSpec]:
    """The templates a session that is not a first one picks from: every active one with scenes
    but the onboarding template (unless it is the only one)."""
    templates = [t for t in catalogue.templates if t.popularity > 0 and t.scenes]
    onboarding = onboarding_template(catalogue)
    others = [t for t in templates if t is not onboarding]
    return others if others else templates


# --- outcome odds by segment ----------------------------------------------------------------------

NIGHT_HOURS = range(0, 6)  # local 00:00-06:00


@lru_cache(maxsize=64)
def night_share(profile: RhythmProfile | None, strength: float) -> float:
    """The share of a day's sessions that start at night on this profile's clock (a flat rate:
    6 / 24)."""
    if profile is None or strength == 0:
        return len(NIGHT_HOURS) / 24
    hourly = normalised(profile).hourly
    factors = [1 - strength + strength * weight for weight in hourly]
    return sum(factors[hour] for hour in NIGHT_HOURS) / sum(factors)


def is_night(member: PoolMember, at_ms: int) -> bool:
    # a zone's offset changes only on a UTC quarter hour (engine.rhythm): one answer a quarter
    return _night(member.timezone, at_ms // QUARTER_MS)


QUARTER_MS = 15 * 60_000


@lru_cache(maxsize=8192)
def _night(zone: str, quarter: int) -> bool:
    local = datetime.fromtimestamp(quarter * QUARTER_MS / 1000, UTC).astimezone(zone_of(zone))
    return local.hour in NIGHT_HOURS


def odds_normalisers(
    behaviour: Behaviour, *, persona_shares: dict[str, float], night: float, error_rate: float
) -> tuple[float, float]:
    """What the abandon and error multipliers average to over the sessions (each segment's
    multiplier weighted by its expected share): dividing by them keeps the overall shares."""
    listed = sum(persona_shares.values())
    by_persona = sum(
        share * abandon_odds(behaviour, persona) for persona, share in persona_shares.items()
    ) + max(0.0, 1 - listed)  # an empty pool: 1
    abandon = by_persona * (1 - night + night * behaviour.night_abandon)
    newcomer_share = persona_shares.get("newcomer", 0.0)
    # Sessions right after an errored one: about error_rate of the returns.
    after = error_rate * behaviour.bout_share
    error = (1 - newcomer_share + newcomer_share * behaviour.newcomer_error) * (
        1 - after + after * behaviour.after_error
    )
    return abandon, error


SHARE_SAMPLE = 2048  # members read for the personas' shares of the sessions (every k-th)


def persona_session_shares(behaviour: Behaviour, rhythm, at_ms: int) -> dict[str, float]:
    """Each persona's expected share of the sessions starting about `at_ms`: the members' weights
    times their period factor now (activity_now: lapsed periods, a newcomer's fading returns),
    summed by persona over every k-th member of the pool (at most SHARE_SAMPLE: a deterministic
    sample, the same in every process), kept for the hour on the rhythm (they change over days).
    The pool's weights alone would overstate the settled personas: about half of their members
    are in a lapsed period at any time."""
    hour = at_ms // HOUR_MS
    cached = getattr(rhythm, "_persona_shares_at", None)
    if cached is not None and cached[0] == hour:
        return cached[1]
    pool = rhythm.members()
    step = max(1, -(-len(pool) // SHARE_SAMPLE))
    sums: dict[str, float] = {}
    for member in pool[::step]:
        weight = member.activity_weight * activity_now(behaviour, member, at_ms)
        sums[member.persona] = sums.get(member.persona, 0.0) + weight
    total = sum(sums.values())
    shares = (
        {persona: weight / total for persona, weight in sums.items()}
        if total > 0
        else dict(rhythm.persona_shares)
    )
    rhythm._persona_shares_at = (hour, shares)
    return shares


# Remembered sessions (engine.bouts: the last hours', with the persona each started as) needed to
# take the personas' shares from them: what the segments' odds actually met, bouts and busy users
# included. A database run reads the same sessions as a history or the simulator keeps.
MIX_SESSIONS = 200


class Segments:
    """The odds multipliers of one run's sessions: (abandon, error) for a member starting at a
    time, normalised over the segments' expected shares (odds_normalisers), the error's times the
    spell multiplier of the minute (engine.behaviour: mean 1 over time)."""

    def __init__(
        self,
        behaviour: Behaviour,
        *,
        seed: int,
        settings,
        rhythm,
        catalogue,
        errored: dict[int, bool],
        at_ms: int | None = None,
        recent: RecentSessions | None = None,
    ) -> None:
        self.behaviour, self.seed, self.errored = behaviour, seed, errored
        self.night_matters = behaviour.night_abandon != 1
        strength = settings.rhythm_strength
        # the personas' shares of the sessions: as remembered for the bouts where enough are,
        # else as the pool's weights and periods predict
        shares = (
            recent.persona_shares(MIX_SESSIONS)
            if recent is not None and rhythm is not None
            else None
        )
        if shares is None:
            shares = (
                {}
                if rhythm is None
                else rhythm.persona_shares
                if at_ms is None
                else persona_session_shares(behaviour, rhythm, at_ms)
            )
        # each persona's sessions at night on its own profile's clock (the bouts' returns, which
        # carry an evening into the night, are not counted: see docs/behaviour.md)
        night = (
            sum(
                share * night_share(persona_profile(catalogue.rhythms, persona), strength)
                for persona, share in (shares or {"": 1.0}).items()
            )
            if self.night_matters
            else 0.0
        )
        self.abandon_norm, self.error_norm = odds_normalisers(
            behaviour, persona_shares=shares, night=night, error_rate=settings.error_rate
        )

    def odds(self, member: PoolMember, at_ms: int) -> tuple[float, float]:
        behaviour = self.behaviour
        abandon, error = abandon_odds(behaviour, member.persona), 1.0
        if member.persona == "newcomer":
            error = behaviour.newcomer_error
        if self.night_matters and is_night(member, at_ms):
            abandon *= behaviour.night_abandon
        if self.errored.get(member.sim_user_id):
            error *= behaviour.after_error
        spell = in_error_spell(behaviour, seed=self.seed, at_ms=at_ms)
        error *= spell_multiplier(behaviour, spell)
        return abandon / self.abandon_norm, error / self.error_norm
