"""The pool of sim users in columns: a worker keeps a million of them between runs, so each member
costs about 50 bytes (typed arrays, with their names interned in small tables) instead of a
PoolMember object and its strings (about 800 bytes); a PoolMember is built only when one is read."""

from __future__ import annotations

import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date
from itertools import islice, repeat
from operator import lt
from typing import overload

from synthetics.engine.types import PoolMember

NO_DAY = 0  # signup_date None (a date's ordinal is at least 1)
NO_JOIN = -(2**63)  # joined_ms None
_LITTLE_ENDIAN = sys.byteorder == "little"


class Names(dict):
    """A table of interned names: name -> code, and `names[code]` back; a new name gets the next
    code. Shared by the pools made from one another (a code never changes meaning)."""

    __slots__ = ("names",)

    def __init__(self, names: Iterable[str] = ()) -> None:
        super().__init__()
        self.names: list[str] = []
        for name in names:
            self[name]  # noqa: B018  interns it

    def __missing__(self, name: str) -> int:
        code = self[name] = len(self.names)
        self.names.append(name)
        return code


class _Days(dict):
    """A date -> its ordinal (None -> NO_DAY), computed once per distinct date."""

    __slots__ = ()

    def __missing__(self, day: date | None) -> int:
        ordinal = self[day] = NO_DAY if day is None else day.toordinal()
        return ordinal


class Pool(Sequence[PoolMember]):
    """The pool's members in order, one typed array per field: ids and weights as 64-bit numbers,
    persona, time zone, locale and settles_into as codes into shared name tables, the sign-up date
    as its ordinal and the sign-up moment in epoch ms (NO_DAY and NO_JOIN for None).

    A Sequence of PoolMember: `pool[i]` (and iteration) builds the member from its columns, equal to
    the one that was put in. Code that goes over every member reads the columns instead."""

    __slots__ = (
        "ids",
        "user_ids",
        "weights",
        "personas",
        "zones",
        "locales",
        "signup_days",
        "settles",
        "joined",
        "persona_names",
        "zone_names",
        "locale_names",
        "_positions",
        "_dates",
    )

    def __init__(
        self,
        *,
        persona_names: Names | None = None,
        zone_names: Names | None = None,
        locale_names: Names | None = None,
    ) -> None:
        self.ids = array("q")
        self.user_ids = array("q")
        self.weights = array("d")
        self.personas = array("I")  # codes into persona_names (settles_into's too)
        self.zones = array("I")
        self.locales = array("I")
        self.signup_days = array("i")
        self.settles = array("I")
        self.joined = array("q")
        self.persona_names = persona_names if persona_names is not None else Names([""])
        self.zone_names = zone_names if zone_names is not None else Names()
        self.locale_names = locale_names if locale_names is not None else Names()
        # {}: the ids are in increasing order (a position is a bisection); a table by id where they
        # are not; None: not known yet (found out on first use)
        self._positions: dict[int, int] | None = {}
        self._dates: dict[int, date] = {}

    # --- building ---------------------------------------------------------------------------------

    @classmethod
    def of(cls, members: Iterable[PoolMember]) -> Pool:
        """The pool of `members`, in their order (a Pool is returned as it is)."""
        if isinstance(members, Pool):
            return members
        pool = cls()
        pool.extend(members)
        return pool

    def _empty_like(self) -> Pool:
        return Pool(
            persona_names=self.persona_names,
            zone_names=self.zone_names,
            locale_names=self.locale_names,
        )

    def extend(self, members: Iterable[PoolMember]) -> None:
        """Append `members` (only while the pool is being built: a pool in use never changes)."""
        self.extend_rows(
            (
                m.sim_user_id,
                m.user_id,
                m.persona,
                m.activity_weight,
                m.timezone,
                m.locale,
                m.signup_date,
                m.settles_into,
                m.joined_ms,
            )
            for m in members
        )

    def extend_rows(
        self,
        rows: Iterable[Sequence],
        *,
        chunk: int = 10_000,
        joined_ms: Callable[[object], int] | None = None,
    ) -> None:
        """Append rows of (sim_user_id, user_id, persona, activity_weight, timezone, locale,
        signup_date, settles_into, joined_ms), read `chunk` at a time (a database cursor's rows
        are never all held at once), each chunk column by column. `joined_ms`: what turns a row's
        last field, when not None, into epoch ms (a datetime from the database)."""
        rows = iter(rows)
        days = _Days()
        start = len(self.ids)
        personas = self.persona_names.__getitem__
        while batch := list(islice(rows, chunk)):
            (ids, user_ids, persona, weight, zone, locale, signup, settles, joined) = zip(
                *batch, strict=True
            )
            del batch
            self.ids.extend(ids)
            self.user_ids.extend(user_ids)
            self.personas.extend(map(personas, persona))
            self.weights.extend(weight)
            self.zones.extend(map(self.zone_names.__getitem__, zone))
            self.locales.extend(map(self.locale_names.__getitem__, locale))
            self.signup_days.extend(map(days.__getitem__, signup))
            self.settles.extend(map(personas, settles))
            if joined.count(None) == len(joined):
                self.joined.extend(repeat(NO_JOIN, len(joined)))
            else:
                convert = joined_ms or int
                self.joined.extend(NO_JOIN if at is None else convert(at) for at in joined)
            self._appended(start)
            start = len(self.ids)

    def extend_columns(
        self,
        *,
        ids: bytes,
        user_ids: bytes,
        personas: Sequence[str],
        weights: bytes,
        zones: Sequence[str],
        locales: Sequence[str],
        signup_days: bytes,
        settles: Sequence[str],
        joined: bytes,
    ) -> None:
        """Append members given column by column: the numbers as big-endian machine values (64-bit
        ids, user ids, IEEE doubles and joined ms, NO_JOIN for none; 32-bit day ordinals, NO_DAY for
        none), the names as sequences of strings. Raises ValueError if the columns' lengths differ."""
        count = len(personas)
        numbers = [
            (self.ids, ids),
            (self.user_ids, user_ids),
            (self.weights, weights),
            (self.signup_days, signup_days),
            (self.joined, joined),
        ]
        parsed = []
        for column, data in numbers:
            values = array(column.typecode)
            values.frombytes(data)
            if _LITTLE_ENDIAN:
                values.byteswap()
            parsed.append(values)
        if any(len(values) != count for values in parsed) or not (
            len(zones) == len(locales) == len(settles) == count
        ):
            raise ValueError("the pool's columns differ in length")
        for (column, _), values in zip(numbers, parsed, strict=True):
            column.extend(values)
        self.personas.extend(map(self.persona_names.__getitem__, personas))
        self.zones.extend(map(self.zone_names.__getitem__, zones))
        self.locales.extend(map(self.locale_names.__getitem__, locales))
        self.settles.extend(map(self.persona_names.__getitem__, settles))
        self._appended(len(self.ids) - count)

    def _appended(self, start: int) -> None:
        """Members were appended from `start` on: whether the ids are still in order."""
        if self._positions != {} or not self._ordered_from(start):
            self._positions = None

    # --- reading ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> PoolMember: ...

    @overload
    def __getitem__(self, index: slice) -> list[PoolMember]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self.member(i) for i in range(*index.indices(len(self.ids)))]
        if index < 0:
            index += len(self.ids)
        return self.member(index)

    def member(self, index: int) -> PoolMember:
        """The member at `index`, built from the columns."""
        persona_names = self.persona_names.names
        day = self.signup_days[index]
        joined = self.joined[index]
        return PoolMember(
            self.ids[index],
            self.user_ids[index],
            persona_names[self.personas[index]],
            self.weights[index],
            self.zone_names.names[self.zones[index]],
            self.locale_names.names[self.locales[index]],
            None if day == NO_DAY else self._date(day),
            persona_names[self.settles[index]],
            None if joined == NO_JOIN else joined,
        )

    def _date(self, ordinal: int) -> date:
        day = self._dates.get(ordinal)
        if day is None:
            day = self._dates[ordinal] = date.fromordinal(ordinal)
        return day

    def __iter__(self) -> Iterator[PoolMember]:
        return map(self.member, range(len(self.ids)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Pool of {len(self):,} members>"

    def position(self, sim_user_id: int) -> int | None:
        """Where the member with this id is in the pool (None: not in it). The ids of a pool read
        from the database are in order: a bisection; otherwise a table made on first use."""
        if not self.in_id_order():
            return self._positions.get(sim_user_id)
        index = bisect_left(self.ids, sim_user_id)
        return index if index < len(self.ids) and self.ids[index] == sim_user_id else None

    def in_id_order(self) -> bool:
        """Whether the members are in increasing order of id (as the database gives them)."""
        if self._positions is None:
            ordered = self._ordered_from(0)
            self._positions = {} if ordered else {pk: i for i, pk in enumerate(self.ids)}
        return not self._positions

    def _ordered_from(self, start: int) -> bool:
        """Whether the ids from `start` on (and the one before) are in increasing order."""
        ids = self.ids
        start = max(0, start - 1)
        return all(map(lt, ids[start:], ids[start + 1 :]))

    def index_of(self) -> PoolPositions:
        """A mapping-like `.get(sim_user_id)` -> position, without a dict of a million ids."""
        return PoolPositions(self)

    def shares_names(self, other: Pool) -> bool:
        """Whether `other` codes its names with this pool's tables (one was made from the other)."""
        return (
            self.persona_names is other.persona_names
            and self.zone_names is other.zone_names
            and self.locale_names is other.locale_names
        )

    def code_of(self, persona: str) -> int | None:
        """A persona's (or settles_into's) code in this pool, None where no member ever had it."""
        return self.persona_names.get(persona)

    # --- changed copies ---------------------------------------------------------------------------

    def select(self, indexes: Iterable[int]) -> Pool:
        """The members at `indexes`, in that order, as a pool sharing this one's name tables."""
        if not isinstance(indexes, Sequence):
            indexes = list(indexes)
        picked = self._empty_like()
        for name in _COLUMNS:
            column = getattr(self, name)
            getattr(picked, name).extend(map(column.__getitem__, indexes))
        picked._positions = None
        return picked

    def changed(
        self,
        *,
        gone: Iterable[int] = (),
        replaced: Sequence[PoolMember] = (),
        appended: Sequence[PoolMember] = (),
    ) -> Pool:
        """A copy without the members whose ids are `gone`, with `replaced` members (same ids)
        put in place of the ones they replace, and `appended` at the end."""
        copy = self._empty_like()
        for name in _COLUMNS:
            getattr(copy, name).extend(getattr(self, name))
        copy._positions = {} if self.in_id_order() else None
        for member in replaced:
            index = self.position(member.sim_user_id)
            if index is not None:
                copy._put(index, member)
        positions = sorted(
            (i for i in (self.position(pk) for pk in set(gone)) if i is not None), reverse=True
        )
        for index in positions:
            for name in _COLUMNS:
                del getattr(copy, name)[index]
        copy.extend(appended)
        return copy

    def _put(self, index: int, member: PoolMember) -> None:
        if self.ids[index] != member.sim_user_id:
            self._positions = None
        self.ids[index] = member.sim_user_id
        self.user_ids[index] = member.user_id
        self.personas[index] = self.persona_names[member.persona]
        self.weights[index] = member.activity_weight
        self.zones[index] = self.zone_names[member.timezone]
        self.locales[index] = self.locale_names[member.locale]
        self.signup_days[index] = _Days()[member.signup_date]
        self.settles[index] = self.persona_names[member.settles_into]
        self.joined[index] = NO_JOIN if member.joined_ms is None else member.joined_ms


_COLUMNS = (
    "ids",
    "user_ids",
    "weights",
    "personas",
    "zones",
    "locales",
    "signup_days",
    "settles",
    "joined",
)


class PoolPositions:
    """Each member's position in a pool by sim user id, answered from the pool's own ids."""

    __slots__ = ("_pool",)

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    def get(self, sim_user_id: int, default: int | None = None) -> int | None:
        index = self._pool.position(sim_user_id)
        return default if index is None else index

    def __getitem__(self, sim_user_id: int) -> int:
        index = self._pool.position(sim_user_id)
        if index is None:
            raise KeyError(sim_user_id)
        return index

    def __contains__(self, sim_user_id: object) -> bool:
        return isinstance(sim_user_id, int) and self._pool.position(sim_user_id) is not None

    def __len__(self) -> int:
        return len(self._pool)

    def items(self) -> Iterator[tuple[int, int]]:
        return ((pk, index) for index, pk in enumerate(self._pool.ids))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PoolPositions):
            return self._pool.ids == other._pool.ids
        if isinstance(other, dict):
            return dict(self.items()) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]
