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

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache, reduce
from importlib import resources
from itertools import accumulate
from operator import add
from zoneinfo import ZoneInfo

import holidays

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
    a session at t.
    """

    def __init__(
        self,
        pool: Sequence[PoolMember],
        profiles: Sequence[RhythmProfile],
    ) -> None:
        self._profiles = profiles
        self._by_persona = {profile.persona: normalised(profile) for profile in profiles}
        self._keys: dict[tuple[str, str, str], int] = {}
        # (zone, locale, persona) -> group: one lookup a member (a pool is rebuilt at each sign-up)
        self._seen: dict[tuple[str, str, str], int] = {}
        self._member_group: list[int] = []
        self._activity: list[float] = []
        self._fields: list[list] = []
        self._index_of: dict[int, int] | None = None
        self._add(pool)
        # the pool's total weight and each persona's, added member after member in pool order
        # (grown goes on adding where these stopped: the same floats)
        by_persona: dict[str, float] = {}
        for member in pool:
            by_persona[member.persona] = (
                by_persona.get(member.persona, 0.0) + member.activity_weight
            )
        self._finish(pool, reduce(add, self._activity, 0.0), by_persona)

    def _add(self, members: Sequence[PoolMember]) -> None:
        """Put `members` in their groups, after the members already in."""
        by_persona, default = self._by_persona, self._by_persona.get("")
        keys, seen, groups = self._keys, self._seen, self._fields
        member_group = self._member_group.append
        for member in members:
            trait = (member.timezone, member.locale, member.persona)
            index = seen.get(trait)
            if index is None:
                profile = by_persona.get(member.persona, default)
                key = (member.timezone, country_of(member.locale), profile.slug if profile else "")
                index = keys.get(key)
                if index is None:
                    index = keys[key] = len(groups)
                    groups.append([member.timezone, key[1], profile, 0.0])
                seen[trait] = index
            groups[index][3] += member.activity_weight
            member_group(index)
        self._activity.extend(member.activity_weight for member in members)

    def grown(self, pool: Sequence[PoolMember]) -> PoolRhythm:
        """The rhythm of `pool`, this rhythm's pool with members appended (sign-ups only: nobody
        churned or settled), without going over the members it has: the same floats as
        PoolRhythm(pool, ...) (each group's weight adds its members in pool order either way, the
        totals go on from this rhythm's, and the factors, user weights and running sums already
        made for this quarter hour are kept and extended by the newcomers': a sign-up costs its
        own members, not the pool's)."""
        count = len(self._member_group)
        if len(pool) < count or (count and pool[count - 1] is not self._pool[count - 1]):
            return PoolRhythm(pool, self._profiles)
        new = pool[count:]
        grown = object.__new__(PoolRhythm)
        grown._profiles, grown._by_persona = self._profiles, self._by_persona
        grown._keys, grown._seen = dict(self._keys), dict(self._seen)
        grown._member_group = list(self._member_group)
        grown._activity = list(self._activity)
        grown._fields = [list(fields) for fields in self._fields]
        grown._index_of = None
        if self._index_of is not None:
            grown._index_of = dict(self._index_of)
            grown._index_of.update(
                (member.sim_user_id, count + offset) for offset, member in enumerate(new)
            )
        grown._add(new)
        by_persona = dict(self._persona_weights)
        for member in new:
            by_persona[member.persona] = (
                by_persona.get(member.persona, 0.0) + member.activity_weight
            )
        grown._finish(pool, reduce(add, grown._activity[count:], self._total), by_persona)
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
                + list(accumulate(added_activity, initial=parent._flat_cumulative[-1]))[1:]
            )
        if parent._cached is None:
            return
        key, factors, moment = parent._cached
        if len(self._groups) > len(factors):
            factors = factors + self._compute_factors(moment, key[1], start=len(factors))
        self._cached = (key, factors, moment)
        if parent._weights is None or parent._weights[0] is not parent._cached[1]:
            return
        added = [
            weight * factors[group]
            for weight, group in zip(added_activity, self._member_group[count:], strict=True)
        ]
        self._weights = (factors, parent._weights[1] + added)
        if parent._cumulative:
            self._cumulative = (
                parent._cumulative + list(accumulate(added, initial=parent._cumulative[-1]))[1:]
            )

    def _finish(
        self, pool: Sequence[PoolMember], total: float, by_persona: dict[str, float]
    ) -> None:
        """What follows from the groups and the totals (`total` weight, each persona's weight):
        the pool's shares, and no cached factors yet."""
        self._groups = tuple(_Group(*fields) for fields in self._fields)
        self._total = total
        self._pool = pool
        # Each persona's share of the pool's sessions (engine.picking: the odds' normalisers).
        self._persona_weights = by_persona
        self.persona_shares = {
            persona: weight / total for persona, weight in by_persona.items() if total > 0
        }
        self.newcomer_share = self.persona_shares.get("newcomer", 0.0)
        # (quarter hour and strength, each group's factor then, the moment they were taken at)
        self._cached: tuple[tuple[int, float], list[float], datetime] | None = None
        self._weights: tuple[list[float], list[float]] | None = None  # (factors, user weights)
        self._cumulative: list[float] | None = None  # running sums of self._weights[1]
        self._flat_cumulative: list[float] | None = None  # running sums of the activity weights

    def members(self) -> Sequence[PoolMember]:
        """The pool this rhythm is of, in its order."""
        return self._pool

    def index_of(self) -> dict[int, int]:
        """Each member's position in the pool, by sim user id (built once, on first use)."""
        if self._index_of is None:
            self._index_of = {member.sim_user_id: i for i, member in enumerate(self._pool)}
        return self._index_of

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
                [
                    weight * factors[group]
                    for weight, group in zip(self._activity, self._member_group, strict=True)
                ],
            )
            self._cumulative = None
        return self._weights[1]

    def cumulative_weights(self, moment: datetime, *, strength: float) -> Sequence[float]:
        """The running sums of user_weights(moment) (read-only, reused like them): what a weighted
        draw bisects, built once a quarter hour instead of once a run."""
        weights = self.user_weights(moment, strength=strength)
        if strength == 0:
            if self._flat_cumulative is None:
                self._flat_cumulative = list(accumulate(weights))
            return self._flat_cumulative
        if self._cumulative is None:
            self._cumulative = list(accumulate(weights))
        return self._cumulative
