"""What the Studio's insight panels read: funnels (observed and implied), the rhythm and the cap's trim,
daily active users and weekly cohort retention, the days-active histogram (the power-user curve) with
DAU/MAU and DAU/WAU, and the sign-ups' retention curve by day — through the indexes on created_at and
started_at."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings as django_settings
from django.db import connection
from django.db.models import Count, DateField
from django.db.models.functions import TruncDate, TruncWeek

from synthetics.engine import PoolRhythm
from synthetics.engine.capacity import Capacity, pool_capacity
from synthetics.engine.run import ExpectedSessions, expected_sessions
from synthetics.engine.types import SCENE_ENTERED, Catalogue, GeneratorSettings, stand_ins
from synthetics.models import Journey, JourneySceneEvent, SimUser
from synthetics.selectors.run_inputs import (
    catalogue_load,
    generator_settings,
    pool_groups,
    pool_signups,
)
from synthetics.services.planned import kept_mean_journey_minutes
from synthetics.target.mapping import target_in_force

# The insights endpoint keeps its answer this long under this key; a settings change drops it.
CACHE_KEY = "synthetics:insights"
FUNNEL_HOURS = 24
FUNNEL_SETTLE = timedelta(hours=1)
DAU_DAYS = 30
COHORT_WEEKS = 8


@dataclass(frozen=True, slots=True)
class FunnelStep:
    scene: str
    position: int
    observed: float | None  # share of the sessions entering the first scene that reached this one
    implied: float  # what the catalogue and the settings imply


@dataclass(frozen=True, slots=True)
class Funnel:
    template: str
    sessions: int  # sessions that entered the first scene in the window
    steps: list[FunnelStep]


def _scenes_reached_from_journeys(*, since: datetime, until: datetime) -> dict[int, int]:
    """Attach mode: the scene_entered steps our journeys started in (since, until] have written,
    per scene, read from their plans and cursors (a step before `next_step` was written) instead of
    from the application's events, which need not name a journey or a scene. The journeys'
    started_at index bounds the rows read. PostgreSQL (attach mode is)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (step ->> 'scene_id')::bigint, count(*) FROM journeys j "
            "CROSS JOIN LATERAL jsonb_array_elements(j.plan -> 'steps') WITH ORDINALITY "
            "AS s(step, position) WHERE j.is_synthetic AND j.started_at > %s "
            "AND j.started_at <= %s AND s.position <= j.next_step "
            "AND step ->> 'event_type' = %s GROUP BY 1",
            [since, until, SCENE_ENTERED],
        )
        return dict(cursor.fetchall())


def funnels(*, now: datetime) -> list[Funnel]:
    """Per template, the share of sessions reaching each scene (sessions started in the 24 hours up
    to an hour ago), beside the
    funnel the drop-off and error weights imply: P(reach scene k) = 1 - abandon_rate x (drop-off
    weight of the scenes before k) / (all drop-off weight) - error_rate x the same for errors."""
    settings = generator_settings()
    catalogue = catalogue_load()
    # Sessions that started in the 24 hours before the last hour: each had an hour to finish (a
    # session writes for ~4.5 minutes; one silent for 15 is closed), so one still under way is not
    # read as a drop-off, and one that started before the window is not counted halfway in.
    until = now - FUNNEL_SETTLE
    since = until - timedelta(hours=FUNNEL_HOURS)
    if target_in_force() is not None:
        reached = _scenes_reached_from_journeys(since=since, until=until)
    else:
        reached = dict(
            JourneySceneEvent.objects.synthetic()
            .filter(
                created_at__gt=since,  # the created_at index bounds the rows read
                journey__started_at__gt=since,
                journey__started_at__lte=until,
                event_type=SCENE_ENTERED,
            )
            .values_list("scene_id")
            .annotate(n=Count("id"))
            .values_list("scene_id", "n")
        )
    result = []
    for template in catalogue.templates:
        if not template.scenes:
            continue
        dropoff_total = sum(scene.dropoff_weight for scene in template.scenes) or 1.0
        error_total = sum(scene.error_weight for scene in template.scenes) or 1.0
        first = reached.get(template.scenes[0].id, 0)
        steps, dropped_before, errored_before = [], 0.0, 0.0
        for scene in template.scenes:
            implied = (
                1
                - settings.abandon_rate * dropped_before / dropoff_total
                - settings.error_rate * errored_before / error_total
            )
            observed = reached.get(scene.id, 0) / first if first else None
            steps.append(FunnelStep(scene.slug, scene.position, observed, round(implied, 4)))
            dropped_before += scene.dropoff_weight
            errored_before += scene.error_weight
        result.append(Funnel(template=template.slug, sessions=first, steps=steps))
    return result


@dataclass(frozen=True, slots=True)
class RhythmSummary:
    strength: float
    rate_now: float  # R now: the multiple of sessions_per_min expected this minute
    peak_rate: float  # the highest R over the next week (hourly steps, and now)
    quietest_rate: float  # the lowest
    cap_trimmed_share: float  # of the next week's sessions, what max_per_run trims
    expected_sessions_week: float


@dataclass(frozen=True, slots=True)
class _Week:
    """The current settings, active pool size and catalogue, and the sessions expected over the
    coming week."""

    settings: GeneratorSettings
    active_users: int
    catalogue: Catalogue
    rhythm: PoolRhythm
    sessions: ExpectedSessions


def _week_ahead(now: datetime) -> _Week:
    settings = generator_settings()
    # The pool in groups of the same persona, zone and locale with their weights summed: the
    # rhythm of those is the pool's (engine.rhythm groups its members so anyway), read from a few
    # thousand rows the database keeps instead of every sim user.
    groups = pool_groups()
    catalogue = catalogue_load()
    rhythm = PoolRhythm(stand_ins(groups), catalogue.rhythms)
    sessions = expected_sessions(
        settings=settings,
        rhythm=rhythm,
        start=now,
        minutes=7 * 24 * 60,
        step_minutes=60,
        shards=django_settings.SYNTHETICS_SHARDS,
    )
    return _Week(settings, sum(group.users for group in groups), catalogue, rhythm, sessions)


def capacity_summary(*, now: datetime, week: _Week | None = None) -> Capacity:
    """Whether the active pool sustains the current settings at the coming week's peak (Little's
    law, engine/capacity.py): the numbers, and a warning in words when it does not."""
    week = week or _week_ahead(now)
    return pool_capacity(
        settings=week.settings,
        catalogue=week.catalogue,
        active_users=week.active_users,
        peak_factor=max(week.sessions.rates),
        # planned once for every process (services.planned): a new one reads it back
        mean_minutes=kept_mean_journey_minutes(catalogue=week.catalogue, settings=week.settings),
    )


def rhythm_summary(*, now: datetime, week: _Week | None = None) -> RhythmSummary:
    """The rhythm at the current settings over the coming week, computed at hourly steps."""
    week = week or _week_ahead(now)
    strength = week.settings.rhythm_strength
    rate_now = week.rhythm.rate(now, strength=strength)
    # The range holds now too: the hourly steps can step over this minute's R (it moves within
    # an hour), and a range that leaves out the R shown beside it reads as a mistake.
    return RhythmSummary(
        strength=strength,
        rate_now=rate_now,
        peak_rate=max(*week.sessions.rates, rate_now),
        quietest_rate=min(*week.sessions.rates, rate_now),
        cap_trimmed_share=week.sessions.trimmed_share,
        expected_sessions_week=week.sessions.capped,
    )


def rhythm_and_capacity(*, now: datetime) -> tuple[RhythmSummary, Capacity]:
    """Both from one reading of the pool and one week of expected sessions."""
    week = _week_ahead(now)
    return rhythm_summary(now=now, week=week), capacity_summary(now=now, week=week)


def first_activity_day() -> date | None:
    """The UTC day of the first synthetic session kept (None: none yet), the first row of the
    journeys' (is_synthetic, started_at) index. Before it the charts have no data, not zero."""
    first = (
        Journey.objects.synthetic()
        .order_by("started_at")
        .values_list("started_at", flat=True)
        .first()
    )
    return None if first is None else first.astimezone(UTC).date()


def daily_active_users(*, now: datetime, days: int = DAU_DAYS) -> list[dict]:
    """Sim users who started a session, per UTC day, over the last `days` days: zero-filled from
    the day of the first session kept, None ("no data yet") on the days before it."""
    first_day = (now - timedelta(days=days - 1)).date()
    data_from = first_activity_day()
    rows = dict(
        Journey.objects.synthetic()
        .filter(started_at__date__gte=first_day, started_at__lte=now)
        .annotate(day=TruncDate("started_at"))
        .values("day")
        .annotate(users=Count("sim_user", distinct=True))
        .values_list("day", "users")
    )
    return [
        {
            "day": first_day + timedelta(days=offset),
            "users": (
                rows.get(first_day + timedelta(days=offset), 0)
                if data_from is not None and first_day + timedelta(days=offset) >= data_from
                else None
            ),
        }
        for offset in range(days)
    ]


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def cohort_retention(*, now: datetime, weeks: int = COHORT_WEEKS) -> list[dict]:
    """Weekly sign-up cohorts of the last `weeks` weeks: their size and, for each week since, the
    share of the cohort that started a session that week (a retention table). None where the
    cohort is empty, or for a week that ended before the first session kept ("no data yet")."""
    this_week = _monday(now.date())
    data_from = first_activity_day()
    # The first week with data: its Monday (None: no week has any).
    data_week = None if data_from is None else _monday(data_from)
    first = this_week - timedelta(weeks=weeks - 1)
    since = datetime.combine(first, time.min, tzinfo=UTC)
    # cohorts' sizes from the sign-ups per day the database keeps (run_inputs.pool_signups: the
    # weeks' 56 rows, not the sim users who signed up in them)
    sizes: Counter = Counter()
    for day, users in pool_signups(since=first).items():
        sizes[_monday(day)] += users
    # Distinct active users per (cohort, week), counted by the database over the journeys started
    # since the oldest cohort's Monday (the started_at index bounds the rows read).
    active = {
        (cohort, (week - cohort).days // 7): users
        for cohort, week, users in Journey.objects.synthetic()
        .filter(started_at__gte=since, started_at__lte=now, sim_user__signup_date__gte=first)
        .annotate(
            cohort=TruncWeek("sim_user__signup_date"),
            week=TruncWeek("started_at", output_field=DateField()),
        )
        .values("cohort", "week")
        .annotate(users=Count("sim_user", distinct=True))
        .values_list("cohort", "week", "users")
    }
    table = []
    for index in range(weeks):
        cohort = first + timedelta(weeks=index)
        size = sizes.get(cohort, 0)
        elapsed = (this_week - cohort).days // 7 + 1
        table.append(
            {
                "cohort": cohort,
                "users": size,
                "retention": [
                    round(active.get((cohort, week), 0) / size, 4)
                    if size
                    and data_week is not None
                    and cohort + timedelta(weeks=week) >= data_week
                    else None
                    for week in range(elapsed)
                ],
            }
        )
    return table


ENGAGEMENT_DAYS = 28
RETENTION_DAYS = 30


@dataclass(frozen=True, slots=True)
class Engagement:
    """How many days of a window each user was active: the power-user curve, DAU/MAU, DAU/WAU."""

    days: int
    mau: int  # sim users with a session in the window
    wau: int  # in its last 7 days
    dau_mean: float  # over the window's days
    dau_week_mean: float  # over its last 7 days
    days_active: list[dict]  # {"days": d, "users": n} for d in 1..days

    @property
    def dau_over_mau(self) -> float | None:
        return round(self.dau_mean / self.mau, 4) if self.mau else None

    @property
    def dau_over_wau(self) -> float | None:
        return round(self.dau_week_mean / self.wau, 4) if self.wau else None


def _active_days(*, since: date, now: datetime, joined: bool = False):
    """(sim user, UTC day[, their joined_at]) once per day with a session started, read through
    the journeys' (is_synthetic, started_at) index over the window: a row per active user-day."""
    fields = ["sim_user_id", "day", *(["sim_user__joined_at"] if joined else [])]
    journeys = Journey.objects.synthetic()
    if joined:  # only sign-ups of the window
        journeys = journeys.filter(sim_user__joined_at__date__gte=since)
    return (
        journeys.filter(started_at__date__gte=since, started_at__lte=now)
        .annotate(day=TruncDate("started_at"))
        .values_list(*fields)
        .distinct()
        .order_by()
    )


def engagement(*, now: datetime, days: int = ENGAGEMENT_DAYS) -> Engagement:
    """The days-active histogram of the last `days` UTC days (today included) and the stickiness
    ratios: the mean DAU over MAU, the last week's mean DAU over its WAU."""
    first = (now - timedelta(days=days - 1)).date()
    week_first = now.date() - timedelta(days=6)
    per_user: Counter = Counter()
    per_day: Counter = Counter()
    weekly: set[int] = set()
    for sim_user_id, day in _active_days(since=first, now=now):
        per_user[sim_user_id] += 1
        per_day[day] += 1
        if day >= week_first:
            weekly.add(sim_user_id)
    histogram = Counter(per_user.values())
    week_days = [week_first + timedelta(days=i) for i in range(7)]
    return Engagement(
        days=days,
        mau=len(per_user),
        wau=len(weekly),
        dau_mean=sum(per_day.values()) / days,
        dau_week_mean=sum(per_day[d] for d in week_days) / 7,
        days_active=[{"days": d, "users": histogram.get(d, 0)} for d in range(1, days + 1)],
    )


def retention_curve(*, now: datetime, days: int = RETENTION_DAYS) -> list[dict]:
    """Of the sim users who signed up in a run (joined_at) in the last 2 x `days` days, the share
    active on calendar day k after their sign-up day, for k = 0..days: among those whose day k has
    begun (`users`), `share` (None while nobody's has)."""
    since = (now - timedelta(days=2 * days)).date()
    joined = dict(
        SimUser.objects.filter(joined_at__date__gte=since, joined_at__lte=now).values_list(
            "id", "joined_at"
        )
    )
    today = now.date()
    eligible = Counter()
    for joined_at in joined.values():
        for k in range(min(days, (today - joined_at.date()).days) + 1):
            eligible[k] += 1
    back: Counter = Counter()
    for sim_user_id, day, joined_at in _active_days(since=since, now=now, joined=True):
        if joined_at is None or sim_user_id not in joined:
            continue
        k = (day - joined_at.date()).days
        if 0 <= k <= days:
            back[k] += 1
    return [
        {
            "day": k,
            "users": eligible[k],
            "share": round(back[k] / eligible[k], 4) if eligible[k] else None,
        }
        for k in range(days + 1)
    ]
