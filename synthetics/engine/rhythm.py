"""Daily and weekly rhythm in each user's own time zone: how likely a user is to start a session at a moment.

A user's factor at an instant is their profile's weight for the local hour, times the weight for the
local weekday, times the holiday factor on a public holiday of their country (`holidays`). Local time
comes from `zoneinfo`, so a daylight-saving change moves the curve with the user's clock: the day of a
change has 23 or 25 local hours, and every UTC minute still has exactly one factor. Each profile is
normalised so that its hourly and weekly weights average 1: the factor averages 1 over a week (less
the rare holiday), and `sessions_per_min` stays the long-run mean rate.

With `rhythm_strength` s the factor used is 1 - s + s x factor: 0 is a flat rate, 1 the full profile.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from itertools import accumulate
from operator import mul
from zoneinfo import ZoneInfo

import holidays

from synthetics.engine.pool import Pool, PoolPositions
from synthetics.engine.types import PoolMember, RhythmProfile

MINUTE = timedelta(minutes=1)
# Every zone's UTC offset since 2000 (the earliest simulated time) is a whole number of quarter
# hours, so a local hour, weekday and date never change inside a UTC quarter hour: the factors of a
# quarter hour are computed once and reused for its 15 minutes (the same floats, only fewer calls).
QUARTER = timedelta(minutes=15)
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@cache
def country_of(locale: str) -> str:
    """The country of a Faker locale such as en_US (US) or pt_BR (BR)."""
    return locale.rsplit("_", 1)[-1].upper()


@cache
def _holiday_calendar(country: str, year: int):
    try:
        return holidays.country_holidays(country, years=year)
    except NotImplementedError:  # a country the package does not know has no holidays here
        return {}


def holidays_load() -> None:
    """Import the holiday package's countries: its registry imports all of them on the first
    look-up (about 60 ms), which a web process does as it starts rather than in a request."""
    import holidays.countries  # noqa: F401


def is_public_holiday(country: str, day: date) -> bool:
    return day in _holiday_calendar(country, day.year)


@cache
def known_zones() -> frozenset[str]:
    """The zone names the pinned `tzdata` package has (its own list, not the machine's)."""
    with resources.files("tzdata").joinpath("zones").open("r", encoding="utf-8") as listing:
        return frozenset(line.strip() for line in listing if line.strip())


@cache
def _zone(name: str) -> ZoneInfo:
    """The zone's rules from the pinned `tzdata` package, never the machine's own database, so the
    same seed gives the same rows on every machine. A name tzdata does not know (a typo made in the
    admin) counts as UTC: it never reaches the file system."""
    if name not in known_zones():
        name = "UTC"
    with resources.files("tzdata.zoneinfo").joinpath(*name.split("/")).open("rb") as data:
        return ZoneInfo.from_file(data, key=name)


zone_of = _zone  # the public name: other modules read local times on the same pinned rules


def normalised(profile: RhythmProfile) -> RhythmProfile:
    """The profile scaled so that its hourly and its weekly weights each average 1."""
    hourly_mean = sum(profile.hourly) / len(profile.hourly)
    weekly_mean = sum(profile.weekly) / len(profile.weekly)
    return RhythmProfile(
        slug=profile.slug,
        persona=profile.persona,
        hourly=tuple(weight / hourly_mean for weight in profile.hourly),
        weekly=tuple(weight / weekly_mean for weight in profile.weekly),
        holiday_factor=profile.holiday_factor,
    )


def persona_profile(profiles: Sequence[RhythmProfile], persona: str) -> RhythmProfile | None:
    """The (normalised) profile a user of `persona` follows: their persona's, or the default ("")."""
    chosen = next((p for p in profiles if p.persona == persona), None) or next(
        (p for p in profiles if p.persona == ""), None
    )
    return normalised(chosen) if chosen is not None else None


def local_factor(profile: RhythmProfile, *, zone: str, country: str, moment: datetime) -> float:
    """The (normalised) profile's weight at `moment` on the clock of a user in `zone` and `country`."""
    local = moment.astimezone(_zone(zone))
    factor = profile.hourly[local.hour] * profile.weekly[local.weekday()]
    if profile.holiday_factor != 1.0 and is_public_holiday(country, local.date()):
        factor *= profile.holiday_factor
    return factor


def strengthened(factor: float, strength: float) -> float:
    return 1.0 - strength + strength * factor


@dataclass(frozen=True, slots=True)
class _Group:
    zone: str
    country: str
    profile: RhythmProfile
    weight: float  # the sum of its members' activity weights


class PoolRhythm:
    """The rhythm of a pool: users grouped by time zone, country and profile (a few dozen groups).

    `rate(t)` is the pool's combined factor R(t) — the activity-weighted mean of its users' factors —
    and `user_weights(t)` each user's activity weight times their own factor, for picking who starts
    a session at t. The pool is held as an engine.pool.Pool (a list of members is put in one), and
    what is kept per member is typed arrays: their group, and the weights of the quarter hour.
    """

    def __init__(
        self,
        pool: Sequence[PoolMember],
        profiles: Sequence[RhythmProfile],
    ) -> None:
        pool = Pool.of(pool)
        self._profiles = profiles
        self._by_persona = {profile.persona: normalised(profile) for profile in profiles}
        self._keys: dict[tuple[str, str, str], int] = {}
        # (zone, locale, persona) codes -> group: one lookup a member
        self._seen: dict[tuple[int, int, int], int] = {}
        self._member_group = array("I")
        self._fields: list[list] = []
        # each persona's (by code) summed weight, and the personas in order of first appearance
        self._persona_sums: list[float] = []
        self._persona_order: dict[int, None] = {}
        self._add(pool, 0)
        self._finish(pool)

    def _add(self, pool: Pool, start: int) -> None:
        """Put the members of `pool` from `start` on in their groups, after the members already in
        (each group's weight, and each persona's, adds its members' in pool order)."""
        by_persona, default = self._by_persona, self._by_persona.get("")
        keys, seen, groups = self._keys, self._seen, self._fields
        zones, locales = pool.zone_names.names, pool.locale_names.names
        personas = pool.persona_names.names
        traits = zip(pool.zones[start:], pool.locales[start:], pool.personas[start:], strict=True)
        for trait in dict.fromkeys(traits):  # each (zone, locale, persona), in order of first use
            if trait in seen:
                continue
            zone, locale, persona = zones[trait[0]], locales[trait[1]], personas[trait[2]]
            profile = by_persona.get(persona, default)
            key = (zone, country_of(locale), profile.slug if profile else "")
            index = keys.get(key)
            if index is None:
                index = keys[key] = len(groups)
                groups.append([zone, key[1], profile, 0.0])
            seen[trait] = index
        added = array(
            "I",
            map(
                seen.__getitem__,
                zip(pool.zones[start:], pool.locales[start:], pool.personas[start:], strict=True),
            ),
        )
        sums = [fields[3] for fields in groups]
        persona_codes = pool.personas[start:]
        self._persona_order.update(dict.fromkeys(persona_codes))
        persona_sums = self._persona_sums
        persona_sums += [0.0] * (len(personas) - len(persona_sums))
        for group, persona, weight in zip(added, persona_codes, pool.weights[start:], strict=True):
            sums[group] += weight
            persona_sums[persona] += weight
        for fields, total in zip(groups, sums, strict=True):
            fields[3] = total
        self._member_group.extend(added)

    def grown(self, pool: Sequence[PoolMember]) -> PoolRhythm:
        """The rhythm of `pool`, this rhythm's pool with members appended (sign-ups only: nobody
        churned or settled), without going over the members it has: the same floats as
        PoolRhythm(pool, ...) (each group's weight adds its members in pool order either way, and
        the factors, user weights and running sums already made for this quarter hour are kept and
        extended by the newcomers': a sign-up costs its own members, not the pool's)."""
        pool = Pool.of(pool)
        count = len(self._member_group)
        if (
            len(pool) < count
            or (count and pool[count - 1] != self._pool[count - 1])
            or not pool.shares_names(self._pool)  # the groups are keyed by the pool's codes
        ):
            return PoolRhythm(pool, self._profiles)
        grown = object.__new__(PoolRhythm)
        grown._profiles, grown._by_persona = self._profiles, self._by_persona
        grown._keys, grown._seen = dict(self._keys), dict(self._seen)
        grown._member_group = array("I", self._member_group)
        grown._fields = [list(fields) for fields in self._fields]
        grown._persona_sums = list(self._persona_sums)
        grown._persona_order = dict(self._persona_order)
        grown._add(pool, count)
        grown._finish(pool)
        grown._carried_from(self, count)
        return grown

    def _carried_from(self, parent: PoolRhythm, count: int) -> None:
        """Keep what `parent` (this rhythm's first `count` members) computed for its quarter hour,
        extended by the members after them: the factors of groups the newcomers opened (at the
        moment the parent's were taken at), their user weights and running sums."""
        added_activity = self._activity[count:]
        if parent._flat_cumulative:
            self._flat_cumulative = (
                parent._flat_cumulative
                + array("d", accumulate(added_activity, initial=parent._flat_cumulative[-1]))[1:]
            )
        if parent._cached is None:
            return
        key, factors, moment = parent._cached
        if len(self._groups) > len(factors):
            factors = factors + self._compute_factors(moment, key[1], start=len(factors))
        self._cached = (key, factors, moment)
        if parent._weights is None or parent._weights[0] is not parent._cached[1]:
            return
        added = array(
            "d", map(mul, added_activity, map(factors.__getitem__, self._member_group[count:]))
        )
        self._weights = (factors, parent._weights[1] + added)
        if parent._cumulative:
            self._cumulative = (
                parent._cumulative
                + array("d", accumulate(added, initial=parent._cumulative[-1]))[1:]
            )

    def _finish(self, pool: Pool) -> None:
        """What follows from the groups: the pool's totals, and no cached factors yet."""
        self._groups = tuple(_Group(*fields) for fields in self._fields)
        self._activity = pool.weights
        self._total = sum(self._activity)
        self._pool = pool
        # Each persona's share of the pool's sessions (engine.picking: the odds' normalisers).
        total, sums = self._total, self._persona_sums
        names = pool.persona_names.names
        self.persona_shares = {
            names[code]: sums[code] / total for code in self._persona_order if total > 0
        }
        self.newcomer_share = self.persona_shares.get("newcomer", 0.0)
        # (quarter hour and strength, each group's factor then, the moment they were taken at)
        self._cached: tuple[tuple[int, float], list[float], datetime] | None = None
        self._weights: tuple[list[float], Sequence[float]] | None = None  # (factors, user weights)
        self._cumulative: Sequence[float] | None = None  # running sums of self._weights[1]
        self._flat_cumulative: Sequence[float] | None = None  # running sums of the activity weights

    def members(self) -> Pool:
        """The pool this rhythm is of, in its order."""
        return self._pool

    def index_of(self) -> PoolPositions:
        """Each member's position in the pool, by sim user id (`.get(id)`)."""
        return self._pool.index_of()

    def _group_factors(self, moment: datetime, strength: float) -> list[float]:
        key = ((moment - _EPOCH) // QUARTER, strength)
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, self._compute_factors(moment, strength), moment)
        return self._cached[1]

    def _compute_factors(self, moment: datetime, strength: float, start: int = 0) -> list[float]:
        """Each group's factor at `moment` (from group `start` on)."""
        return [
            1.0
            if group.profile is None
            else strengthened(
                local_factor(group.profile, zone=group.zone, country=group.country, moment=moment),
                strength,
            )
            for group in self._groups[start:]
        ]

    def rate(self, moment: datetime, *, strength: float) -> float:
        """R(t) at this strength: 1 on average over a week; 1 everywhere at strength 0."""
        if strength == 0 or self._total <= 0:
            return 1.0
        factors = self._group_factors(moment, strength)
        return sum(g.weight * f for g, f in zip(self._groups, factors, strict=True)) / self._total

    def window_rate(self, start: datetime, end: datetime, *, strength: float) -> float:
        """The mean of R over the minutes of (start, end], each taken at the middle of its minute."""
        minutes = int((end - start) / MINUTE)
        if minutes <= 0 or strength == 0:
            return 1.0
        middle = start + MINUTE / 2
        return (
            sum(self.rate(middle + step * MINUTE, strength=strength) for step in range(minutes))
            / minutes
        )

    def user_weights(self, moment: datetime, *, strength: float) -> Sequence[float]:
        """Each pool member's activity weight times their own factor at `moment` (read-only: the
        same list serves every minute of a quarter hour)."""
        if strength == 0:
            return self._activity
        factors = self._group_factors(moment, strength)
        if self._weights is None or self._weights[0] is not factors:
            self._weights = (
                factors,
                array("d", map(mul, self._activity, map(factors.__getitem__, self._member_group))),
            )
            self._cumulative = None
        return self._weights[1]

    def cumulative_weights(self, moment: datetime, *, strength: float) -> Sequence[float]:
        """The running sums of user_weights(moment) (read-only, reused like them): what a weighted
        draw bisects, built once a quarter hour instead of once a run."""
        weights = self.user_weights(moment, strength=strength)
        if strength == 0:
            if self._flat_cumulative is None:
                self._flat_cumulative = array("d", accumulate(weights))
            return self._flat_cumulative
        if self._cumulative is None:
            self._cumulative = array("d", accumulate(weights))
        return self._cumulative
