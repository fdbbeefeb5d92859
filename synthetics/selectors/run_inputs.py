"""What a generator run reads: the settings, the catalogue and pool as the engine sees them (RunInputs,
the pool kept in this process between runs), the active journeys, and the ledger's coverage (which
minutes runs already covered)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import orjson
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    Max,
    Min,
    Q,
    QuerySet,
    Sum,
    TextField,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Mod

from synthetics.engine import (
    ActiveJourney,
    Catalogue,
    GeneratorSettings,
    MindblockSpec,
    Pool,
    PoolRhythm,
    SceneSpec,
    TemplateSpec,
)
from synthetics.engine.behaviour import Behaviour
from synthetics.engine.bouts import MEMORY_CAP, RecentSession, RecentSessions
from synthetics.engine.incidents import IncidentSpec
from synthetics.engine.pool import NO_DAY, NO_JOIN
from synthetics.engine.run import to_ms
from synthetics.engine.types import Plan, PoolGroup
from synthetics.engine.types import RhythmProfile as RhythmProfileSpec
from synthetics.models import (
    Incident,
    Journey,
    JourneyTemplate,
    MindblockType,
    RhythmProfile,
    RunStatus,
    RunTrigger,
    Scene,
    SimUser,
    SyntheticRun,
    SyntheticSettings,
)

# Coverage further ahead of now than this means the clock stepped back.
CLOCK_STEP_TOLERANCE = timedelta(minutes=1)


def settings_get() -> SyntheticSettings:
    return SyntheticSettings.objects.get(pk=1)


def generator_settings(row: SyntheticSettings | None = None) -> GeneratorSettings:
    row = row or settings_get()
    return GeneratorSettings(**row.setting_values())


def incidents_over(start: datetime, end: datetime) -> list[IncidentSpec]:
    """The incidents that overlap simulated time (start, end], as the engine takes them (a
    cancelled one up to where it was cut: its ends_at). A few rows, through the ends_at index."""
    return [
        IncidentSpec(
            id=pk,
            label=label,
            start_ms=to_ms(starts_at),
            end_ms=to_ms(ends_at),
            error_rate=error_rate,
            abandon_rate=abandon_rate,
            sessions_multiplier=multiplier,
            template=template or "",
            scene=scene,
        )
        for pk, label, starts_at, ends_at, error_rate, abandon_rate, multiplier, template, scene in (
            Incident.objects.filter(ends_at__gt=start, starts_at__lt=end)
            .filter(ends_at__gt=F("starts_at"))
            .order_by("id")
            .values_list(
                "id",
                "label",
                "starts_at",
                "ends_at",
                "error_rate",
                "abandon_rate",
                "sessions_multiplier",
                "template__slug",
                "scene",
            )
        )
    ]


def catalogue_load() -> Catalogue:
    """The active journey templates with their scenes in order, and the active mindblock types."""
    scenes: dict[int, list[SceneSpec]] = {}
    for template_id, *fields in (
        Scene.objects.filter(template__is_active=True)
        .values_list(
            "template_id",
            "id",
            "slug",
            "position",
            "dwell_median_seconds",
            "mindblock_rate",
            "dropoff_weight",
            "error_weight",
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
        rhythms=tuple(
            RhythmProfileSpec(slug, persona, tuple(hourly), tuple(weekly), holiday_factor)
            for slug, persona, hourly, weekly, holiday_factor in RhythmProfile.objects.order_by(
                "persona", "slug"
            ).values_list("slug", "persona", "hourly", "weekly", "holiday_factor")
        ),
        behaviour=behaviour_load(),
    )


def behaviour_load() -> Behaviour:
    """The behaviour model's parameters: the settings row's, the others at their defaults."""
    stored = SyntheticSettings.objects.filter(pk=1).values_list("behaviour", flat=True).first()
    try:
        return Behaviour.from_json(stored)
    except (TypeError, ValueError):  # written around the checks: the defaults, not a crash
        return Behaviour()


def pool_stamp_sql() -> str | None:
    """The statement that reads the pool stamp (pool_stamp), or None where there is none."""
    if connection.vendor == "postgresql":
        return "SELECT version FROM synthetic_pool_stamp WHERE id = 1"
    if connection.vendor == "sqlite":
        # A migration that rebuilds sim_users on SQLite (Django remakes the table) drops its
        # triggers: without all three the stamp would never move, so there is no stamp at all.
        # (GLOB, not LIKE's %: the statement is part of status's, whose parameters Django's query
        # log substitutes with %.)
        return (
            "SELECT version FROM synthetic_pool_stamp WHERE id = 1 AND (SELECT count(*) FROM "
            "sqlite_master WHERE type = 'trigger' AND tbl_name = 'sim_users' "
            "AND name GLOB 'sim_users_pool_stamp_*') = 3"
        )
    return None


def pool_stamp() -> int | None:
    """The stamp the database gives sim_users with every write to it (migration 0018: never the same
    value twice, rollbacks included), or None where there is none. Read it before the pool: a write
    in between then leaves a stamp that no longer matches, never a stale pool under a new stamp."""
    sql = pool_stamp_sql()
    if sql is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    return None if row is None else row[0]


def in_slice(rows: QuerySet, field: str, *, shard: int, shards: int) -> QuerySet:
    """The rows of shard `shard` of `shards`: those whose sim user id (`field`) % shards = shard;
    with one shard, all of them (no filter)."""
    if shards == 1:
        return rows
    return rows.alias(_slice=Mod(field, shards)).filter(_slice=shard)


# The pool's fields, in PoolMember's order (joined_at as the member's joined_ms).
POOL_FIELDS = (
    "id",
    "user_id",
    "persona",
    "activity_weight",
    "timezone",
    "locale",
    "signup_date",
    "settles_into",
    "joined_at",
)
# Rows read from the database at a time, so a million sim users are never held as a million row
# tuples (engine.pool: the pool itself keeps about 50 bytes a member).
POOL_CHUNK = 50_000

# A page of the pool as columns (PostgreSQL): each number column as its values' binary forms end to
# end (int8send, float8send: big-endian), each name column as one text joined by newlines. The page's
# rows are aggregated in the order of the subquery, by id (checked: the ids must come out in order).
# Parsing a column at a time is several times faster than a million rows of nine values.
_POOL_PAGE_SQL = """
SELECT
    string_agg(int8send(id), ''),
    string_agg(int8send(user_id), ''),
    string_agg(persona, E'\\n'),
    string_agg(float8send(activity_weight), ''),
    string_agg(timezone, E'\\n'),
    string_agg(locale, E'\\n'),
    string_agg(int4send(coalesce(signup_date - DATE '0001-01-01' + 1, %s)), ''),
    string_agg(settles_into, E'\\n'),
    string_agg(int8send(coalesce(
        round(extract(epoch FROM date_trunc('milliseconds', joined_at)) * 1000)::bigint, %s
    )), ''),
    max(id),
    count(*)
FROM ({page}) AS page
"""


def _pool_read(rows: QuerySet) -> Pool:
    """The sim users of `rows` as a pool, in id order, read a chunk at a time."""
    rows = rows.order_by("id").values_list(*POOL_FIELDS)
    if connection.vendor == "postgresql":
        try:
            return _pool_read_pages(rows)
        except ValueError:  # a name with a newline in it: read row by row
            pass
    pool = Pool()
    pool.extend_rows(rows.iterator(chunk_size=POOL_CHUNK), chunk=POOL_CHUNK, joined_ms=to_ms)
    return pool


def _pool_read_pages(rows: QuerySet) -> Pool:
    """PostgreSQL: the pool a page of POOL_CHUNK at a time by id, each page as columns; outside a
    transaction, all pages in one REPEATABLE READ transaction (one snapshot, as a single query
    would see). Raises ValueError when a page's columns do not line up."""
    pool, last = Pool(), 0
    outermost = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if outermost:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        while True:
            page, params = rows.filter(id__gt=last)[:POOL_CHUNK].query.sql_with_params()
            cursor.execute(_POOL_PAGE_SQL.format(page=page), (NO_DAY, NO_JOIN, *params))
            ids, user_ids, personas, weights, zones, locales, days, settles, joined, last, count = (
                cursor.fetchone()
            )
            if not count:
                return pool
            pool.extend_columns(
                ids=ids,
                user_ids=user_ids,
                personas=personas.split("\n"),
                weights=weights,
                zones=zones.split("\n"),
                locales=locales.split("\n"),
                signup_days=days,
                settles=settles.split("\n"),
                joined=joined,
            )
            if not pool.in_id_order():
                raise ValueError("a page of the pool came out of id order")


def sim_user_pool(*, shard: int = 0, shards: int = 1, joined_by: datetime | None = None) -> Pool:
    """The active pool in id order: with `shards`, the slice of shard `shard`; with `joined_by`,
    without the sim users who signed up after it (a run of another shard of the same window
    created them: they start sessions from the next window on, whichever shard ran first)."""
    rows = in_slice(SimUser.objects.active(), "id", shard=shard, shards=shards)
    if joined_by is not None:
        rows = rows.filter(Q(joined_at__isnull=True) | Q(joined_at__lte=joined_by))
    return _pool_read(rows)


def sim_user_pool_joined() -> Pool:
    """The active sim users who signed up in a run (joined_at set), as pool members."""
    return _pool_read(SimUser.objects.active().filter(joined_at__isnull=False))


def pool_groups() -> list[PoolGroup]:
    """The active pool in groups (engine.types.PoolGroup), sorted by their key: on PostgreSQL the
    rows the database keeps with every write to sim_users (migration 0032; a few hundred for a
    million users, read whole), elsewhere counted by pool_groups_counted."""
    if connection.vendor != "postgresql":
        return pool_groups_counted()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT persona, timezone, locale, settles_into, joined, users, activity "
            "FROM synthetic_pool_groups"
        )
        rows = cursor.fetchall()
    return [
        PoolGroup(*key, bool(joined), users, activity)
        for *key, joined, users, activity in sorted(rows)
    ]


def pool_groups_counted() -> list[PoolGroup]:
    """The same groups counted over sim_users by one GROUP BY (every active row read)."""
    rows = (
        SimUser.objects.active()
        .annotate(joined=ExpressionWrapper(Q(joined_at__isnull=False), output_field=BooleanField()))
        .values("persona", "timezone", "locale", "settles_into", "joined")
        .annotate(users=Count("id"), activity=Sum("activity_weight"))
        .values_list("persona", "timezone", "locale", "settles_into", "joined", "users", "activity")
        .order_by()
    )
    return [
        PoolGroup(*key, bool(joined), users, activity)
        for *key, joined, users, activity in sorted(rows)
    ]


def pool_signups(*, since: date) -> dict[date, int]:
    """Sim users (churned ones too) by sign-up date, from `since` on: on PostgreSQL the counts the
    database keeps with every write to sim_users (migration 0032: a row a day), elsewhere counted
    by pool_signups_counted."""
    if connection.vendor != "postgresql":
        return pool_signups_counted(since=since)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT signup_date, users FROM synthetic_pool_signups WHERE signup_date >= %s",
            [since],
        )
        return dict(cursor.fetchall())


def pool_signups_counted(*, since: date) -> dict[date, int]:
    """The same counts over sim_users by one GROUP BY (every row from `since` read)."""
    return dict(
        SimUser.objects.filter(signup_date__gte=since)
        .values_list("signup_date")
        .annotate(users=Count("id"))
        .values_list("signup_date", "users")
        .order_by()
    )


def next_join_after(moment: datetime, *, shard: int = 0, shards: int = 1) -> datetime | None:
    """The first sign-up in the slice after `moment` (None: none): a pool read with joined_by set
    anywhere from `moment` up to just before it is the same pool."""
    rows = in_slice(SimUser.objects.active(), "id", shard=shard, shards=shards)
    return rows.filter(joined_at__gt=moment).aggregate(first=Min("joined_at"))["first"]


def active_journeys(
    *, due_by: datetime | None = None, shard: int = 0, shards: int = 1
) -> list[ActiveJourney]:
    """Synthetic journeys in progress; with `due_by`, only those with a step (or their end) due by
    then (the partial index on next_at: a run reads what is due, not everything in progress); with
    `shards`, only those of the slice of shard `shard`."""
    journeys = in_slice(
        Journey.objects.synthetic().active(), "sim_user_id", shard=shard, shards=shards
    )
    if due_by is not None:
        journeys = journeys.filter(Q(next_at__lte=due_by) | Q(next_at__isnull=True))
    # The plan as text, parsed by orjson: Django's JSONField would parse it with json.loads, three
    # times slower, and a run parses every due plan.
    rows = journeys.annotate(plan_text=Cast("plan", TextField())).values_list(
        "id", "sim_user_id", "user_id", "template_id", "started_at", "plan_text", "next_step"
    )
    return [
        ActiveJourney(
            id=journey_id,
            sim_user_id=sim_user_id,
            user_id=user_id,
            template_id=template_id,
            started_at=started_at,
            plan=Plan.from_json(orjson.loads(plan)),
            next_step=next_step,
        )
        for journey_id, sim_user_id, user_id, template_id, started_at, plan, next_step in rows
    ]


def recent_sessions(
    *, before: datetime, bout_minutes: float, shard: int = 0, shards: int = 1
) -> RecentSessions:
    """The memory of bouts (engine.bouts) at `before`: the synthetic journeys started in the last
    MEMORY_BOUTS bout lengths up to it, at most the last MEMORY_CAP (by start, then id), with their
    planned outcome (through the journeys' started_at index)."""
    memory = RecentSessions(bout_minutes)
    since = before - timedelta(milliseconds=memory.memory_ms)
    journeys = in_slice(Journey.objects.synthetic(), "sim_user_id", shard=shard, shards=shards)
    rows = (
        journeys.filter(started_at__gte=since, started_at__lte=before)
        .order_by("-started_at", "-id")
        .values_list(
            "started_at",
            "id",
            "sim_user_id",
            KeyTextTransform("outcome", "plan"),
            KeyTextTransform("persona", "plan"),
        )[:MEMORY_CAP]
    )
    memory.add(
        sorted(
            (
                RecentSession(
                    to_ms(started_at), journey_id.int, sim_user_id, outcome == "errored", persona
                )
                for started_at, journey_id, sim_user_id, outcome, persona in rows
            ),
            key=lambda session: (session.start_ms, session.order),
        )
    )
    return memory


def waiting_journey_users(*, due_by: datetime, shard: int = 0, shards: int = 1) -> list[int]:
    """The sim users of journeys in progress with nothing due by `due_by`: busy, nothing to read."""
    rows = (
        in_slice(Journey.objects.synthetic().active(), "sim_user_id", shard=shard, shards=shards)
        .filter(next_at__gt=due_by)
        .order_by()
        .values("sim_user_id")
    )
    sql, params = rows.query.sql_with_params()
    with connection.cursor() as cursor:  # plain integers: no ORM row machinery for ~all in progress
        cursor.execute(sql, params)
        return [sim_user_id for (sim_user_id,) in cursor.fetchall()]


def active_journey_count(*, shard: int = 0, shards: int = 1) -> int:
    journeys = Journey.objects.synthetic().active()
    return in_slice(journeys, "sim_user_id", shard=shard, shards=shards).count()


def active_sim_user_count() -> int:
    """Sim users a run may pick: those who have not churned."""
    return SimUser.objects.active().count()


def sim_user_count() -> int:
    return SimUser.objects.count()


def churned_sim_user_count() -> int:
    return SimUser.objects.filter(churned_at__isnull=False).count()


def of_shard(*, shard: int, shards: int) -> Q:
    """The runs that count for shard `shard` of `shards`: its own, and those of any other split
    (a backfill, the runs before the shard count changed), which covered the whole pool or a
    slice of another split. With one shard: every run."""
    return Q(shards=shards, shard=shard) | ~Q(shards=shards)


def covered_until(*, shard: int = 0, shards: int = 1) -> datetime | None:
    """End of the simulated time already covered by scheduled and backfill runs (for a shard: by
    its own runs and those of any other split, so a minute is never covered twice for a slice; at
    a change of the shard count a slice behind the others loses the minutes in between, until a
    backfill generates them: slices_left). A backfill leaves no slice of a minute behind the
    minutes it generates after it, so its coverage never takes a shard past a hole in its slice."""
    runs = SyntheticRun.objects.covering()
    if shards > 1:
        runs = runs.filter(of_shard(shard=shard, shards=shards))
    return runs.aggregate(end=Max("window_end"))["end"]


def coverage_ahead(*, covered: datetime | None, now: datetime) -> bool:
    """Whether coverage reaches past now: the clock stepped back behind minutes already covered."""
    return covered is not None and covered > now + CLOCK_STEP_TOLERANCE


def last_scheduled_run_failed(*, shard: int = 0, shards: int = 1) -> bool:
    """Whether the newest scheduled run that did anything (not a skip) failed (for a shard: the
    newest of its own runs and of other splits)."""
    runs = SyntheticRun.objects.filter(
        trigger=RunTrigger.SCHEDULED, status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED]
    )
    if shards > 1:
        runs = runs.filter(of_shard(shard=shard, shards=shards))
    latest = runs.order_by("-started_at", "-id").values_list("status", flat=True).first()
    return latest == RunStatus.FAILED


def minute_is_covered(*, minute_end: datetime, minute_start: datetime) -> bool:
    """Whether a scheduled or backfill run already covered the minute (minute_start, minute_end],
    whole or a slice of it (slices_left: which slices are left)."""
    return SyntheticRun.objects.covering(start=minute_start, end=minute_end).exists()


def covered_minute_ends(*, start: datetime, end: datetime) -> set[datetime]:
    """The ends of the minutes of (start, end] that scheduled or backfill runs already covered, in
    whole or in part (slices_left: the slices a split's runs left of them)."""
    return set(_slices_by_minute(start=start, end=end))


@dataclass(frozen=True, slots=True)
class SlicesLeft:
    """What is left of a minute that runs of one split into `shards` covered in part: the shards
    (`left`, in order) whose slices no run covered yet."""

    shards: int
    left: tuple[int, ...]


def slices_left(*, start: datetime, end: datetime) -> dict[datetime, SlicesLeft]:
    """The minutes of (start, end] (by their end) that runs of one split into shards covered in
    part, with the slices left. A minute is covered for slice k of N by a run of the whole pool or
    of slice k of N: so a minute that a run of the whole pool covered, or every slice of a split,
    is not here; nor one that runs of two splits covered (a change of the shard count: filling it
    would cover some sim users twice); nor one no run covered (not in covered_minute_ends)."""
    left: dict[datetime, SlicesLeft] = {}
    for minute_end, slices in _slices_by_minute(start=start, end=end).items():
        splits = {shards for _, shards in slices}
        if len(splits) > 1 or 1 in splits:
            continue
        (shards,) = splits
        missing = tuple(sorted(set(range(shards)) - {shard for shard, _ in slices}))
        if missing:
            left[minute_end] = SlicesLeft(shards=shards, left=missing)
    return left


def _slices_by_minute(*, start: datetime, end: datetime) -> dict[datetime, set[tuple[int, int]]]:
    """For each minute of (start, end] a run covered (by its end): the (shard, shards) of the runs
    that covered it ((0, 1): the whole pool)."""
    minute = timedelta(minutes=1)
    covered: dict[datetime, set[tuple[int, int]]] = {}
    for window_start, window_end, shard, shards in SyntheticRun.objects.covering(
        start=start, end=end
    ).values_list("window_start", "window_end", "shard", "shards"):
        moment = max(window_start, start) + minute
        while moment <= min(window_end, end):
            covered.setdefault(moment, set()).add((shard, shards))
            moment += minute
    return covered


def newest_run_id() -> int:
    """The ledger's newest id (0 when empty)."""
    return SyntheticRun.objects.aggregate(newest=Max("id"))["newest"] or 0


def run_since(run_id: int) -> bool:
    """Whether a run of any kind (another backfill too) wrote anything after ledger row `run_id`: it
    may have started or moved journeys that a span simulated ahead did not see. Successful runs
    create their ledger row under the generator lock, so their ids follow the lock's order."""
    return SyntheticRun.objects.filter(id__gt=run_id, status=RunStatus.SUCCEEDED).exists()


def manual_run_count() -> int:
    """How many manual runs the ledger holds (tells apart the random streams of manual runs)."""
    return SyntheticRun.objects.filter(trigger=RunTrigger.MANUAL).count()


# --- the catalogue and the pool a run reads, kept between runs -----------------------------------


# The pool a run loaded, with its rhythm, per database and shard. The engine never changes a pool in
# place (pool_changed returns a new one) and a rhythm's own caches are keyed by time, so a run can
# reuse both.
@dataclass(frozen=True, slots=True)
class _KeptPool:
    stamp: int
    rhythms: tuple
    pool: Pool
    rhythm: PoolRhythm
    # A shard's slice is read without the sign-ups after `joined_by`; it holds for any window
    # starting from joined_by up to just before `next_join` (the next sign-up; None: none).
    joined_by: datetime | None = None
    next_join: datetime | None = None

    def serves(self, *, stamp: int, rhythms: tuple, window_start: datetime | None) -> bool:
        if (self.stamp, self.rhythms) != (stamp, rhythms):
            return False
        if self.joined_by is None:
            return True
        return self.joined_by <= window_start and (
            self.next_join is None or window_start < self.next_join
        )


_POOL_KEPT: dict[tuple[str, str, int, int], _KeptPool] = {}


@dataclass(frozen=True, slots=True)
class RunInputs:
    """What a run reads besides settings and active journeys: the catalogue and the user pool."""

    catalogue: Catalogue
    pool: Pool
    rhythm: PoolRhythm

    @classmethod
    def load(
        cls, *, shard: int = 0, shards: int = 1, window_start: datetime | None = None
    ) -> RunInputs:
        """The catalogue (a few rows, read every time) and the pool with its rhythm: kept in this
        process between runs while the database's pool stamp has not moved (any write to sim_users
        moves it, rolled back or not: migration 0018), read again when it has.

        With `shards` > 1, the slice of shard `shard` as a run of the window starting at
        `window_start` sees it: without the sim users who signed up after the window's start (in
        another shard's run of the same window), whichever shard ran first."""
        catalogue = catalogue_load()
        stamp = pool_stamp()  # before the pool: see pool_stamp
        where = (connection.alias, connection.settings_dict["NAME"], shard, shards)
        joined_by = window_start if shards > 1 else None
        if shards > 1 and window_start is None:
            raise ValueError("a shard's pool is read for a window: pass window_start")
        kept = _POOL_KEPT.get(where)
        if (
            stamp is not None
            and kept is not None
            and kept.serves(stamp=stamp, rhythms=catalogue.rhythms, window_start=joined_by)
        ):
            return cls(catalogue=catalogue, pool=kept.pool, rhythm=kept.rhythm)
        pool = sim_user_pool(shard=shard, shards=shards, joined_by=joined_by)
        next_join = (
            next_join_after(joined_by, shard=shard, shards=shards)
            if joined_by is not None
            else None
        )
        rhythm = PoolRhythm(pool, catalogue.rhythms)
        if stamp is not None:
            _POOL_KEPT[where] = _KeptPool(
                stamp, catalogue.rhythms, pool, rhythm, joined_by=joined_by, next_join=next_join
            )
        return cls(catalogue=catalogue, pool=pool, rhythm=rhythm)

    def with_pool(self, pool: Pool) -> RunInputs:
        """The same catalogue with the pool as a run left it (no reload: a backfill with sign-ups
        changes the pool most minutes)."""
        return RunInputs(
            catalogue=self.catalogue, pool=pool, rhythm=PoolRhythm(pool, self.catalogue.rhythms)
        )
