"""Reads: settings, the catalogue and pool as the engine sees them, and synthetic activity counts.

Counts of events go through the synthetic-tag expression index (`SyntheticTag`, created_at), never a
scan of the event tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet, Sum
from django.db.models.functions import TruncHour, TruncMinute

from synthetics.engine import (
    ActiveJourney,
    Catalogue,
    GeneratorSettings,
    MindblockSpec,
    PoolMember,
    SceneSpec,
    TemplateSpec,
)
from synthetics.engine.types import Plan
from synthetics.models import (
    Journey,
    JourneySceneEvent,
    JourneyStatus,
    JourneyTemplate,
    MindblockEvent,
    MindblockType,
    RunStatus,
    RunTrigger,
    Scene,
    SimUser,
    SyntheticRun,
    SyntheticSettings,
)


def settings_get() -> SyntheticSettings:
    return SyntheticSettings.objects.get(pk=1)


def generator_settings(row: SyntheticSettings | None = None) -> GeneratorSettings:
    row = row or settings_get()
    return GeneratorSettings(
        enabled=row.enabled,
        sessions_per_min=row.sessions_per_min,
        max_per_run=row.max_per_run,
        error_rate=row.error_rate,
        abandon_rate=row.abandon_rate,
    )


def catalogue_load() -> Catalogue:
    """The active journey templates with their scenes in order, and the active mindblock types."""
    scenes: dict[int, list[SceneSpec]] = {}
    for template_id, *fields in (
        Scene.objects.filter(template__is_active=True)
        .values_list(
            "template_id", "id", "slug", "position", "dwell_median_seconds", "mindblock_rate"
        )
        .order_by("template_id", "position")
    ):
        scenes.setdefault(template_id, []).append(SceneSpec(*fields))
    templates = JourneyTemplate.objects.filter(is_active=True).order_by("slug")
    return Catalogue(
        templates=tuple(
            TemplateSpec(id=pk, slug=slug, popularity=popularity, scenes=tuple(scenes.get(pk, ())))
            for pk, slug, popularity in templates.values_list("id", "slug", "popularity")
        ),
        mindblocks=tuple(
            MindblockSpec(*fields)
            for fields in MindblockType.objects.filter(is_active=True, weight__gt=0)
            .order_by("slug")
            .values_list("id", "slug", "weight")
        ),
    )


def sim_user_pool() -> list[PoolMember]:
    rows = SimUser.objects.order_by("id").values_list("id", "user_id", "persona", "activity_weight")
    return [
        PoolMember(sim_user_id=a, user_id=b, persona=c, activity_weight=d) for a, b, c, d in rows
    ]


def active_journeys() -> list[ActiveJourney]:
    """Synthetic journeys in progress (served by the partial index on active journeys)."""
    rows = (
        Journey.objects.synthetic()
        .active()
        .values_list(
            "id", "sim_user_id", "user_id", "template_id", "started_at", "plan", "next_step"
        )
    )
    return [
        ActiveJourney(
            id=journey_id,
            sim_user_id=sim_user_id,
            user_id=user_id,
            template_id=template_id,
            started_at=started_at,
            plan=Plan.from_json(plan),
            next_step=next_step,
        )
        for journey_id, sim_user_id, user_id, template_id, started_at, plan, next_step in rows
    ]


def synthetic_scene_events() -> QuerySet[JourneySceneEvent]:
    return JourneySceneEvent.objects.synthetic()


def synthetic_mindblock_events() -> QuerySet[MindblockEvent]:
    return MindblockEvent.objects.synthetic()


def synthetic_event_counts(*, since: datetime, until: datetime | None = None) -> dict[str, int]:
    """Synthetic scene and mindblock events with created_at in (since, until]."""
    window = Q(created_at__gt=since)
    if until is not None:
        window &= Q(created_at__lte=until)
    return {
        "scene_events": synthetic_scene_events().filter(window).count(),
        "mindblock_events": synthetic_mindblock_events().filter(window).count(),
    }


def active_journey_count() -> int:
    return Journey.objects.synthetic().active().count()


def sim_user_count() -> int:
    return SimUser.objects.count()


def covered_until() -> datetime | None:
    """End of the simulated time already covered by scheduled and backfill runs."""
    return SyntheticRun.objects.filter(
        trigger__in=[RunTrigger.SCHEDULED, RunTrigger.BACKFILL],
        status__in=[RunStatus.SUCCEEDED, RunStatus.SKIPPED],
    ).aggregate(end=Max("window_end"))["end"]


def coverage_ahead(*, covered: datetime | None, now: datetime) -> bool:
    """Whether coverage reaches past now: the clock stepped back behind minutes already covered."""
    return covered is not None and covered > now + CLOCK_STEP_TOLERANCE


def last_scheduled_run_failed() -> bool:
    """Whether the newest scheduled run that did anything (not a skip) failed."""
    latest = (
        SyntheticRun.objects.filter(
            trigger=RunTrigger.SCHEDULED, status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED]
        )
        .order_by("-started_at", "-id")
        .values_list("status", flat=True)
        .first()
    )
    return latest == RunStatus.FAILED


def minute_is_covered(*, minute_end: datetime, minute_start: datetime) -> bool:
    """Whether a scheduled or backfill run already covered the minute (minute_start, minute_end]."""
    return SyntheticRun.objects.filter(
        trigger__in=[RunTrigger.SCHEDULED, RunTrigger.BACKFILL],
        status__in=[RunStatus.SUCCEEDED, RunStatus.SKIPPED],
        window_end__gt=minute_start,
        window_start__lt=minute_end,
    ).exists()


def run_totals(*, since: datetime, until: datetime | None = None) -> dict[str, int]:
    """Totals from the run ledger for runs that covered simulated time in (since, until]."""
    runs = SyntheticRun.objects.filter(status=RunStatus.SUCCEEDED, window_end__gt=since)
    if until is not None:
        runs = runs.filter(window_end__lte=until)
    totals = runs.aggregate(
        runs=Count("id"),
        sessions=Sum("sessions_created"),
        scene_events=Sum("scene_events_created"),
        mindblock_events=Sum("mindblock_events_created"),
        completed=Sum("journeys_completed"),
        abandoned=Sum("journeys_abandoned"),
        errored=Sum("journeys_errored"),
    )
    return {key: value or 0 for key, value in totals.items()}


# --- the dashboards: status, activity, sim users --------------------------------------------------

# Enabled but no scheduled run has finished for this long: the scheduler is down. (Manual runs,
# from the Studio or an external cron, don't count: they would hide a dead scheduler.)
STALLED_AFTER = timedelta(minutes=3)
# Coverage further ahead of now than this means the clock stepped back.
CLOCK_STEP_TOLERANCE = timedelta(minutes=1)
# Activity series: per minute up to this many hours, per hour above.
MINUTE_BUCKETS_UP_TO_HOURS = 6


def last_run() -> SyntheticRun | None:
    """The most recently finished run of any trigger (the ledger's finished_at index)."""
    return SyntheticRun.objects.filter(finished_at__isnull=False).order_by("-finished_at").first()


@dataclass(frozen=True, slots=True)
class GeneratorState:
    status: str  # paused, running, failing, stalled, clock_behind
    reason: str


def generator_state(*, row: SyntheticSettings, now: datetime) -> GeneratorState:
    """What the scheduler is doing, from the ledger alone (its finished_at and window indexes).

    paused: disabled. clock_behind: the ledger covers minutes after now (the clock stepped back),
    so runs skip until it catches up. running: the newest scheduled run of the last 3 minutes
    succeeded or skipped; failing: it failed; stalled: there is none, the scheduler is down.
    """
    if not row.enabled:
        return GeneratorState("paused", "generation is paused")
    covered = covered_until()
    if coverage_ahead(covered=covered, now=now):
        return GeneratorState(
            "clock_behind",
            f"the ledger already covers up to {covered.isoformat()}, after now: the clock stepped "
            "back; runs skip until it gets there",
        )
    recent = (
        SyntheticRun.objects.filter(
            trigger=RunTrigger.SCHEDULED, finished_at__gt=now - STALLED_AFTER
        )
        .order_by("-finished_at")
        .first()
    )
    if recent is None:
        return GeneratorState(
            "stalled",
            f"no scheduled run finished in the last {STALLED_AFTER.seconds // 60} minutes: "
            "is the django-q2 cluster running?",
        )
    if recent.status == RunStatus.FAILED:
        error_lines = recent.error.strip().splitlines()
        first_line = recent.note or (error_lines[-1] if error_lines else "no details recorded")
        return GeneratorState(
            "failing", f"the last scheduled run ({recent.id}) failed: {first_line}"
        )
    return GeneratorState("running", "scheduled runs are succeeding")


@dataclass(frozen=True, slots=True)
class StatusSummary:
    settings: SyntheticSettings
    state: GeneratorState
    last_5_min: dict[str, int]
    last_24_hours: dict[str, int]
    active_journeys: int
    sim_users: int
    last_run: SyntheticRun | None
    recent_runs: list[SyntheticRun]
    now: datetime


def recent_runs(*, limit: int = 10) -> list[SyntheticRun]:
    """The newest runs of every trigger but backfill (the ledger's started_at index)."""
    return list(
        SyntheticRun.objects.exclude(trigger=RunTrigger.BACKFILL).order_by("-started_at", "-id")[
            :limit
        ]
    )


def status_summary(*, now: datetime) -> StatusSummary:
    row = settings_get()
    return StatusSummary(
        settings=row,
        state=generator_state(row=row, now=now),
        # Bounded by now as well: a row dated in the future is not activity of the last 5 minutes.
        last_5_min=synthetic_event_counts(since=now - timedelta(minutes=5), until=now),
        last_24_hours=run_totals(since=now - timedelta(hours=24)),
        active_journeys=active_journey_count(),
        sim_users=sim_user_count(),
        last_run=last_run(),
        recent_runs=recent_runs(),
        now=now,
    )


@dataclass(frozen=True, slots=True)
class ActivitySeries:
    hours: int
    bucket: str  # "minute" or "hour"
    since: datetime
    until: datetime
    totals: dict[str, int]
    series: list[dict]


_SERIES_FIELDS = {
    "scene_events": "scene_events_created",
    "mindblock_events": "mindblock_events_created",
    "journeys_started": "sessions_created",
    "journeys_completed": "journeys_completed",
    "journeys_abandoned": "journeys_abandoned",
    "journeys_errored": "journeys_errored",
}


def activity_series(*, hours: int, now: datetime) -> ActivitySeries:
    """Totals and a zero-filled series over the last `hours`, from the run ledger alone.

    Each run's counts fall in the bucket of the simulated time it covered up to (window_end); the
    event tables are not read at all.
    """
    per_minute = hours <= MINUTE_BUCKETS_UP_TO_HOURS
    step = timedelta(minutes=1) if per_minute else timedelta(hours=1)
    trunc = TruncMinute if per_minute else TruncHour
    until = now
    since = now - timedelta(hours=hours)
    runs = SyntheticRun.objects.filter(
        status=RunStatus.SUCCEEDED, window_end__gt=since, window_end__lte=until
    )
    sums = {key: Sum(column) for key, column in _SERIES_FIELDS.items()}
    sums["runs"] = Count("id")
    rows = (
        runs.annotate(bucket=trunc("window_end", tzinfo=UTC))
        .values("bucket")
        .annotate(**sums)
        .order_by("bucket")
    )
    by_bucket = {row["bucket"]: row for row in rows}
    first = _truncate(since, per_minute)
    last = _truncate(until, per_minute)
    series = []
    moment = first
    while moment <= last:
        row = by_bucket.get(moment, {})
        series.append({"bucket": moment, **{key: row.get(key) or 0 for key in _SERIES_FIELDS}})
        moment += step
    totals = {key: sum(point[key] for point in series) for key in _SERIES_FIELDS}
    totals["runs"] = sum(row["runs"] for row in by_bucket.values())
    return ActivitySeries(
        hours=hours,
        bucket="minute" if per_minute else "hour",
        since=since,
        until=until,
        totals=totals,
        series=series,
    )


def _truncate(moment: datetime, per_minute: bool) -> datetime:
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    return moment if per_minute else moment.replace(minute=0)


def sim_user_list(*, persona: str | None = None) -> QuerySet[SimUser]:
    """Sim users with their account and whether they are in an active journey (partial index)."""
    in_journey = Journey.objects.filter(sim_user=OuterRef("pk"), status=JourneyStatus.ACTIVE)
    users = (
        SimUser.objects.select_related("user")
        .annotate(in_active_journey=Exists(in_journey))
        .order_by("id")
    )
    if persona:
        users = users.filter(persona=persona)
    return users


def sim_user_persona_counts() -> dict[str, int]:
    rows = SimUser.objects.values("persona").annotate(n=Count("id")).order_by("persona")
    return {row["persona"]: row["n"] for row in rows}
