"""Sign-ups and churn: how many sim users sign up and leave in a run's window, and which ones leave.

Sign-ups arrive as a Poisson process of `signups_per_day`; each newcomer is a persona "newcomer" for
their first NEWCOMER_DAYS and then settles into the persona drawn for them at sign-up (with that
persona's activity weight and rhythm). Churn retires Poisson(churn_per_month x active pool x
minutes / 30 days) users a window — the count follows the setting — chosen among idle users with a
hazard that is highest in a user's first weeks (CHURN_EARLY_HAZARD), so weekly sign-up cohorts shrink
fastest at first: a real retention curve. A churned user keeps their rows and starts no new session.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from synthetics.engine.behaviour import Behaviour
from synthetics.engine.picking import activity_now
from synthetics.engine.pool import NO_DAY, Pool
from synthetics.engine.population import (
    DEFAULT_ENGAGEMENT_SPREAD,
    NEWCOMER_DAYS,
    Profile,
    make_newcomer,
    settled_weight,
    signup_place,
)
from synthetics.engine.sampling import poisson, weighted_sample
from synthetics.engine.types import GeneratorSettings, PoolMember, RhythmProfile

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_MONTH = 30 * MINUTES_PER_DAY
# A user's churn hazard relative to a settled one: 1 + CHURN_EARLY_HAZARD x exp(-age / CHURN_EARLY_DAYS)
CHURN_EARLY_HAZARD = 4.0
CHURN_EARLY_DAYS = 10.0


def signups_due(
    *, settings: GeneratorSettings, minutes: float, rng: random.Random, rate: float = 1.0
) -> int:
    """New sim users in a window of `minutes`: Poisson(signups_per_day x minutes / 1,440 x rate),
    `rate` the pool's rhythm over the window (mean 1 over a week: people sign up when they are
    awake, and signups_per_day stays the daily mean)."""
    if settings.signups_per_day <= 0 or minutes <= 0:
        return 0
    return poisson(rng, settings.signups_per_day * minutes / MINUTES_PER_DAY * rate)


def churn_hazard(age_days: float) -> float:
    return 1 + CHURN_EARLY_HAZARD * math.exp(-max(0.0, age_days) / CHURN_EARLY_DAYS)


def churned(
    *,
    settings: GeneratorSettings,
    pool: Sequence[PoolMember],
    busy: set[int],
    minutes: float,
    today: date,
    rng: random.Random,
    behaviour: Behaviour | None = None,
    at_ms: int | None = None,
) -> list[PoolMember]:
    """The idle users who churn in the window: Poisson(churn_per_month x pool x minutes / 30 days)
    of them, each picked with weight churn_hazard(age): newer users are likelier to leave; and,
    with a `behaviour` and the window's end `at_ms`, fade_churn times likelier when their activity
    has faded (picking.activity_now below FADED), so that activity fades before churn."""
    if settings.churn_per_month <= 0 or minutes <= 0 or not pool:
        return []
    count = poisson(rng, settings.churn_per_month * len(pool) * minutes / MINUTES_PER_MONTH)
    if count == 0:
        return []
    pool = Pool.of(pool)
    ids, days = pool.ids, pool.signup_days
    today_ordinal = today.toordinal()
    fades = behaviour is not None and at_ms is not None and behaviour.fade_churn != 1

    def weight(index: int) -> float:
        day = days[index]
        hazard = churn_hazard(today_ordinal - day if day != NO_DAY else 365.0)
        if fades and activity_now(behaviour, pool.member(index), at_ms) < FADED:
            return hazard * behaviour.fade_churn
        return hazard

    # Successive draws, each proportional to the weight among the idle users not drawn yet (what
    # weighted_sample's keys give), by rejection: a position drawn uniformly is kept with chance
    # weight / bound. A draw costs a few members' weights, not the pool's (at 200,000 users the
    # whole pool's took a quarter of a second, at every departure); a PoolMember is built only
    # for those drawn (and, for fade_churn, for those weighed).
    bound = (1 + CHURN_EARLY_HAZARD) * max(1.0, behaviour.fade_churn if fades else 1.0)
    chosen: list[int] = []
    taken: set[int] = set()
    size = len(pool)
    for _ in range(CHURN_TRIES * count):
        if len(chosen) == count:
            break
        index = int(rng.random() * size)
        if ids[index] in busy or index in taken:
            continue
        if rng.random() * bound < weight(index):
            chosen.append(index)
            taken.add(index)
    if len(chosen) < count:  # few idle users left: the rest by one draw over all of them
        idle = [i for i, pk in enumerate(ids) if pk not in busy and i not in taken]
        chosen += weighted_sample(rng, idle, [weight(i) for i in idle], count - len(chosen))
    return [pool.member(index) for index in chosen]


CHURN_TRIES = 200  # rejection draws a departure may take before the draw over every idle user


FADED = 0.5  # a user whose activity factor (picking.activity_now) is below this has faded


@dataclass(frozen=True, slots=True)
class PoolChanges:
    """How a run's window changes the pool: who signs up, who churns, who settles into a persona."""

    newcomers: tuple[Profile, ...] = ()  # to create, signed up on the window's last day
    churned: tuple[PoolMember, ...] = ()
    settled: tuple[PoolMember, ...] = ()  # members as they are once settled (settles_into "")
    # each newcomer's first session, in the newcomers' order (engine.onboarding)
    onboarding: tuple = ()
    churned_ms: tuple[int, ...] = ()  # when each of `churned` left (epoch ms), in their order

    def __bool__(self) -> bool:
        return bool(self.newcomers or self.churned or self.settled)


@dataclass(frozen=True, slots=True)
class SignupAccounts:
    """Where a run's sign-ups get their accounts: the first free account number (`next_index()`,
    asked once a run that signs anybody up) and the e-mail domain of their addresses."""

    next_index: Callable[[], int]
    email_domain: str


def pool_changes(
    *,
    settings: GeneratorSettings,
    pool: Sequence[PoolMember],
    busy: set[int],
    window_start: datetime,
    window_end: datetime,
    rng: random.Random,
    seed: int,
    accounts: SignupAccounts,
    signups: bool = True,
    engagement_spread: float = DEFAULT_ENGAGEMENT_SPREAD,
    signup_rate: float = 1.0,
    signup_rhythm: RhythmProfile | None = None,
    rhythm_strength: float = 0.0,
    behaviour: Behaviour | None = None,
) -> PoolChanges:
    """The pool's changes over (window_start, window_end], drawn after the run's sessions from the
    same stream: Poisson sign-ups (profiles from `seed` and their account number, the first one
    `next_index()`), churn among idle users, and — in the run that covers a midnight — the
    newcomers whose first NEWCOMER_DAYS are over settling into the persona drawn for them.

    `signups` False (every shard but the first of a split run): no sign-up, and no draw for it;
    the run's churn and settling then concern its own slice of the pool, `pool`."""
    minutes = (window_end - window_start) / timedelta(minutes=1)
    today = window_end.date()
    signed_up = (
        signups_due(settings=settings, minutes=minutes, rng=rng, rate=signup_rate) if signups else 0
    )
    end_ms = int((window_end - EPOCH) / timedelta(milliseconds=1))
    leaving = churned(
        settings=settings,
        pool=pool,
        busy=busy,
        minutes=minutes,
        today=today,
        rng=rng,
        behaviour=behaviour,
        at_ms=end_ms,
    )
    newcomers: tuple[Profile, ...] = ()
    # sign-ups and departures each at a moment of the window (to the millisecond)
    start_ms = int((window_start - EPOCH) / timedelta(milliseconds=1))
    span_ms = int((window_end - window_start) / timedelta(milliseconds=1))
    if signed_up:
        first = accounts.next_index()
        moments = sorted(start_ms + 1 + int(rng.random() * span_ms) for _ in range(signed_up))
        # where each lives: people sign up when they are awake (population.signup_place)
        places = [
            signup_place(
                rng,
                moment=EPOCH + timedelta(milliseconds=moment),
                profile=signup_rhythm,
                strength=rhythm_strength,
            )
            for moment in moments
        ]
        newcomers = tuple(
            make_newcomer(
                index=first + offset,
                seed=seed,
                signed_up=(EPOCH + timedelta(milliseconds=moment)).date(),
                email_domain=accounts.email_domain,
                engagement_spread=engagement_spread,
                joined_ms=min(moment, start_ms + span_ms),
                place=place,
            )
            for offset, (moment, place) in enumerate(zip(moments, places, strict=True))
        )
    settled: tuple[PoolMember, ...] = ()
    if window_start.date() != today:  # newcomers settle in the run that covers midnight
        gone = {member.sim_user_id for member in leaving}
        columns = Pool.of(pool)
        settled_code = columns.code_of("")  # "": settled (never a newcomer)
        settling = (
            columns.member(index)
            for index, code in enumerate(columns.settles)
            if code != settled_code
        )
        settled = tuple(
            replace(
                member,
                persona=member.settles_into,
                activity_weight=settled_weight(
                    activity_weight=member.activity_weight, into=member.settles_into
                ),
                settles_into="",
            )
            for member in settling
            if member.settles_into
            and member.signup_date is not None
            and member.signup_date <= today - timedelta(days=NEWCOMER_DAYS)
            and member.sim_user_id not in gone
        )
    return PoolChanges(
        newcomers=newcomers,
        churned=tuple(leaving),
        settled=settled,
        churned_ms=tuple(start_ms + 1 + int(rng.random() * span_ms) for _ in leaving),
    )


def pool_changed(
    pool: Sequence[PoolMember], changes: PoolChanges, joined: Sequence[PoolMember]
) -> Pool:
    """The pool after `changes`, in the order the database gives it (by id): churned members gone,
    settled ones replaced, and `joined` (the newcomers as created, with their ids) at the end."""
    return Pool.of(pool).changed(
        gone=[member.sim_user_id for member in changes.churned],
        replaced=changes.settled,
        appended=sorted(joined, key=lambda member: member.sim_user_id),
    )
