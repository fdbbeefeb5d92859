"""Bouts: a session raises its user's chance of another soon after (a self-exciting process).

A run keeps the sessions started in the last few bout lengths (`RecentSessions`, oldest first).
Each new session of a run is, with chance `bout_share`, a return: its user is the user of one of
the recent sessions, picked with weight exp(-age / bout_minutes) (an exponential kernel, cut at
MEMORY_BOUTS bout lengths). The others are picked from the pool as before (activity x rhythm).
The count of sessions is drawn before, so the rate stays sessions_per_min; what changes is who:
each session brings on average bout_share / (1 - bout_share) more of the same user's within an
hour or so, and one user's gaps are bursty (many short, a few long).

The weights exp(-age / tau) of a run at `now` are exp(-now / tau) x exp(start / tau): the same
ratios for every run, so the memory keeps running sums of exp((start - base) / tau) and a pick is
one bisection, whatever the memory's size. A database run reads the memory from the journeys
table (selectors.run_inputs.recent_sessions), a history keeps it in memory: the same sessions in
the same order, so both give the same picks.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

MEMORY_BOUTS = 6.0  # the kernel is cut after this many bout lengths (weight e^-6 = 0.25 %)
MEMORY_CAP = 20_000  # at most the last this many sessions (a run at 20,000 a minute: its last one)


@dataclass(frozen=True, slots=True)
class RecentSession:
    start_ms: int
    order: int  # the journey id as an integer: ties of start_ms ordered by it
    sim_user_id: int
    errored: bool  # its planned outcome was an error
    persona: str = ""  # its user's persona when it started (its plan's)


class LastErrored:
    """Whether each remembered user's latest session erred, by sim user id (RecentSessions)."""

    __slots__ = ("_latest",)

    def __init__(self, latest: dict[int, RecentSession]) -> None:
        self._latest = latest

    def get(self, sim_user_id: int, default: bool | None = None) -> bool | None:
        session = self._latest.get(sim_user_id)
        return default if session is None else session.errored

    def __len__(self) -> int:
        return len(self._latest)

    def as_dict(self) -> dict[int, bool]:
        return {user: session.errored for user, session in self._latest.items()}


class RecentSessions:
    """The sessions started in the last MEMORY_BOUTS bout lengths, in (start, id) order."""

    def __init__(self, bout_minutes: float, sessions: Iterable[RecentSession] = ()) -> None:
        self.tau_ms = bout_minutes * 60_000
        self._items: list[RecentSession] = []
        self._starts: list[int] = []
        self._sums: list[float] = [0.0]  # running sums of exp((start - base) / tau)
        self._first = 0  # entries before it are out of memory
        self._base = 0
        self._personas: dict[str, int] = {}  # the remembered sessions by persona
        self._latest: dict[int, RecentSession] = {}  # each remembered user's latest session
        self.add(sorted(sessions, key=lambda s: (s.start_ms, s.order)))

    def __len__(self) -> int:
        return len(self._items) - self._first

    @property
    def memory_ms(self) -> int:
        return int(MEMORY_BOUTS * self.tau_ms)

    def add(self, sessions: Iterable[RecentSession]) -> None:
        """Sessions started after every one kept (a run's new sessions, in start order)."""
        for session in sessions:
            if not self._items:
                self._base = session.start_ms
            weight = math.exp((session.start_ms - self._base) / self.tau_ms)
            self._items.append(session)
            self._starts.append(session.start_ms)
            self._sums.append(self._sums[-1] + weight)
            self._personas[session.persona] = self._personas.get(session.persona, 0) + 1
            self._latest[session.sim_user_id] = session
        if len(self._items) - self._first > MEMORY_CAP:
            self._move_first(len(self._items) - MEMORY_CAP)
        # Rebuild when the forgotten part is most of it, or the weights grow large.
        if self._first > len(self._items) // 2 or self._sums[-1] > 1e250:
            self._rebuild()

    def forget_before(self, moment_ms: int) -> None:
        """Drop the sessions that started before `moment_ms`."""
        self._move_first(max(self._first, bisect_left(self._starts, moment_ms, self._first)))

    def _move_first(self, first: int) -> None:
        personas, latest = self._personas, self._latest
        for session in self._items[self._first : first]:
            personas[session.persona] -= 1
            if latest.get(session.sim_user_id) is session:  # no later one of theirs remembered
                del latest[session.sim_user_id]
        self._first = first

    def _rebuild(self) -> None:
        kept = self._items[self._first :]
        self._items, self._starts, self._sums, self._first = [], [], [0.0], 0
        self._personas, self._latest = {}, {}
        self.add(kept)

    def persona_shares(self, least: int) -> dict[str, float] | None:
        """Each persona's share of the remembered sessions (None: fewer than `least`)."""
        total = len(self)
        if total < least:
            return None
        return {persona: n / total for persona, n in self._personas.items() if n}

    def users(self) -> list[int]:
        """The sim user of each remembered session, in start order (a user once per session)."""
        return [s.sim_user_id for s in self._items[self._first :]]

    def last_errored(self) -> LastErrored:
        """Each remembered user's latest session: did it err? (A view kept as sessions are added
        and forgotten: building it as a dict went over every remembered session, every minute.)"""
        return LastErrored(self._latest)

    def pick(self, u: float, *, before_ms: int) -> RecentSession | None:
        """The session whose user returns, for a uniform `u`: weighted exp(start / tau) among those
        started before `before_ms` and within memory (None: nobody to return)."""
        low = max(self._first, bisect_left(self._starts, before_ms - self.memory_ms, self._first))
        high = bisect_right(self._starts, before_ms - 1, low)
        if high <= low:
            return None
        floor, top = self._sums[low], self._sums[high]
        index = bisect_right(self._sums, floor + u * (top - floor), low + 1, high) - 1
        return self._items[min(max(index, low), high - 1)]
