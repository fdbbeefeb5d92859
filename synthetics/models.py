"""Tables of the generator: settings, simulated users, the journey catalogue, journeys, events and the run ledger.

`Meta.db_table` names are the seed's contract: its verification SQL runs unchanged on PostgreSQL.
Rules that must always hold are database constraints here and validated with a message in `clean()`.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import (
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Least

from synthetics.db import RUN_KEY_KEY, TAG_TRUE, SyntheticOrigin, SyntheticTag, origin_claim
from synthetics.engine.run import STALE_AFTER as SESSION_STALE_AFTER
from synthetics.engine.types import DEFAULT_SETTINGS, SETTING_NAMES

# Documented bounds: a run never starts more than this many sessions, and the schedule never asks
# for more than this many per minute. Rates beyond what one run can write in its budget are split
# into shards (SYNTHETICS_SHARDS, docs/operations.md "Scaling out"): each shard's run starts its share.
MAX_PER_RUN_LIMIT = 100_000
MAX_SESSIONS_PER_MIN = 100_000
# Shards a scheduled run may be split into (settings SYNTHETICS_SHARDS).
MAX_SHARDS = 64
MAX_SIGNUPS_PER_DAY = 10_000

# The range of each numeric setting, written once: the check constraints, clean()'s messages and
# the API's schema all read it.
SETTING_RANGES: dict[str, tuple[int, int]] = {
    "sessions_per_min": (0, MAX_SESSIONS_PER_MIN),
    "max_per_run": (0, MAX_PER_RUN_LIMIT),
    "error_rate": (0, 1),
    "abandon_rate": (0, 1),
    "rhythm_strength": (0, 1),
    "signups_per_day": (0, MAX_SIGNUPS_PER_DAY),
    "churn_per_month": (0, 1),
}

# The catalogue's bounds, as the scenario schema states them: a weight or popularity beyond this,
# summed with others, overflows the engine's draws (1e308 made every run fail), and a dwell time
# beyond a day overflows a session's plan in milliseconds.
MAX_CATALOGUE_WEIGHT = 1_000_000
MAX_DWELL_SECONDS = 86_400

# Reserved by RFC 2606: mail to it can never be delivered, so a synthetic account can't reach anybody.
SYNTHETIC_EMAIL_DOMAIN = "synthetics.invalid"


def _in_range(table: str, field: str, low: float, high: float) -> models.CheckConstraint:
    """The check constraint that keeps `field` from low to high (NaN is in no range)."""
    return models.CheckConstraint(
        condition=Q(**{f"{field}__gte": low, f"{field}__lte": high}),
        name=f"{table}_{field}_range",
        violation_error_message=f"{field} must be between {low} and {high}.",
    )


class TimestampedModel(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class User(AbstractUser):
    """The application's account table; synthetic accounts are flagged and can never log in."""

    is_synthetic = models.BooleanField(
        default=False,
        db_index=True,
        help_text="Created by Synthetics: inactive, unusable password, e-mail under .invalid.",
    )

    class Meta(AbstractUser.Meta):
        db_table = "users"
        ordering = ["id"]
        swappable = "AUTH_USER_MODEL"
        constraints = [
            models.CheckConstraint(
                condition=Q(is_synthetic=False) | Q(is_active=False),
                name="users_synthetic_inactive",
                violation_error_message="A synthetic account must be inactive.",
            ),
        ]


class SyntheticSettings(models.Model):
    """The single row of generator settings (id is always 1)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    # The settings of engine.types.GeneratorSettings, with its defaults (a test holds the two alike).
    enabled = models.BooleanField(default=DEFAULT_SETTINGS.enabled)
    sessions_per_min = models.PositiveIntegerField(
        "sessions per minute",
        default=DEFAULT_SETTINGS.sessions_per_min,
        help_text=f"Mean sessions started per minute (0 to {MAX_SESSIONS_PER_MIN}).",
    )
    max_per_run = models.PositiveIntegerField(
        "most sessions per run",
        default=DEFAULT_SETTINGS.max_per_run,
        help_text=f"Most sessions one run may start (0 to {MAX_PER_RUN_LIMIT}).",
    )
    error_rate = models.FloatField(
        default=DEFAULT_SETTINGS.error_rate, help_text="Share of sessions that end in an error."
    )
    abandon_rate = models.FloatField(
        default=DEFAULT_SETTINGS.abandon_rate, help_text="Share of sessions that are abandoned."
    )
    rhythm_strength = models.FloatField(  # docs/behaviour.md "Rhythm": why 1.0 by default
        "daily and weekly rhythm",
        default=DEFAULT_SETTINGS.rhythm_strength,
        help_text="0: the same rate at every hour; 1: the full daily and weekly rhythm of each "
        "user's local time.",
    )
    signups_per_day = models.PositiveIntegerField(
        "sign-ups per day",
        default=DEFAULT_SETTINGS.signups_per_day,
        help_text="New sim users a day, signed up as newcomers (0: the pool stays as seeded).",
    )
    churn_per_month = models.FloatField(
        default=DEFAULT_SETTINGS.churn_per_month,
        help_text="Share of the active pool that churns in 30 days (0: nobody leaves).",
    )
    behaviour = models.JSONField(
        default=dict,
        blank=True,
        help_text="The behaviour model's parameters that differ from its defaults (the scenario "
        "file's `behaviour`; engine.behaviour).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "synthetic_settings"
        ordering = ["id"]
        verbose_name = "settings"
        verbose_name_plural = "settings"
        constraints = [
            models.CheckConstraint(
                condition=Q(id=1),
                name="synthetic_settings_single_row",
                violation_error_message="There is exactly one settings row.",
            ),
            *(
                _in_range("synthetic_settings", field, low, high)
                for field, (low, high) in SETTING_RANGES.items()
            ),
            models.CheckConstraint(
                condition=Q(abandon_rate__lte=1 - F("error_rate")),
                name="synthetic_settings_rates_sum",
                violation_error_message="abandon_rate + error_rate must not exceed 1.",
            ),
        ]

    def __str__(self) -> str:
        state = "enabled" if self.enabled else "paused"
        return f"Synthetics settings ({state}, {self.sessions_per_min}/min)"

    def setting_values(self) -> dict:
        """Each generator setting's value, by name, in the list's order (engine.types)."""
        return {name: getattr(self, name) for name in SETTING_NAMES}

    def clean(self) -> None:
        errors: dict[str, str] = {}
        for field, (low, high) in SETTING_RANGES.items():
            value = getattr(self, field)
            if value is not None and not low <= value <= high:  # NaN is in no range
                errors[field] = f"{field} must be between {low} and {high} (got {value})."
        if not errors.keys() & {"error_rate", "abandon_rate"} and (
            self.abandon_rate + self.error_rate > 1 + 1e-12
        ):
            errors["abandon_rate"] = (
                f"abandon_rate + error_rate must not exceed 1 "
                f"(got {self.abandon_rate} + {self.error_rate})."
            )
        if errors:
            raise ValidationError(errors)


def timezone_validate(value: str) -> None:
    from synthetics.engine.rhythm import known_zones

    if value not in known_zones():
        raise ValidationError(
            f"{value!r} is not a time zone: use an IANA name such as Europe/Berlin."
        )


class SimUserQuerySet(models.QuerySet):
    def active(self) -> SimUserQuerySet:
        """Sim users who have not churned: the pool that runs pick from."""
        return self.filter(churned_at__isnull=True)

    def with_activity(self) -> SimUserQuerySet:
        """Annotate `in_active_journey`: the user has a journey in progress (the partial index)."""
        in_journey = Journey.objects.active().filter(sim_user=OuterRef("pk"))
        return self.annotate(in_active_journey=Exists(in_journey))


class SimUser(TimestampedModel):
    """The simulation profile of one synthetic account."""

    user = models.OneToOneField(
        "synthetics.User", on_delete=models.CASCADE, related_name="sim_profile"
    )
    persona = models.CharField(max_length=32, db_index=True)
    activity_weight = models.FloatField(help_text="Relative chance of being picked for a session.")
    timezone = models.CharField(
        max_length=64,
        validators=[timezone_validate],
        help_text="An IANA time zone such as Europe/Berlin: the user's daily rhythm runs on it.",
    )
    locale = models.CharField(max_length=16)
    display_name = models.CharField(max_length=150)
    signup_date = models.DateField()
    settles_into = models.CharField(
        max_length=32,
        blank=True,
        help_text="A newcomer's persona after their first weeks (empty: seeded, already settled).",
    )
    churned_at = models.DateTimeField(
        null=True, blank=True, help_text="Retired: keeps its history, starts no new session."
    )
    joined_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Simulated time of a sign-up: the end of the window of the run that created the "
        "user, who starts sessions from the next window on (empty: seeded).",
    )
    account_key = models.CharField(
        max_length=255,
        blank=True,
        default="",
        help_text="Attach mode: the key of this sim user's account in the application's account "
        "table (empty in demo mode, where the account is `user`).",
    )

    objects = SimUserQuerySet.as_manager()

    class Meta:
        db_table = "sim_users"
        ordering = ["id"]
        verbose_name = "sim user"
        indexes = [
            # A shard's run reads its slice without the latest sign-ups (runs.RunInputs.load).
            models.Index(
                fields=["joined_at"],
                condition=Q(joined_at__isnull=False),
                name="sim_users_joined_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(activity_weight__gt=0),
                name="sim_users_activity_weight_positive",
                violation_error_message="activity_weight must be positive.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.persona})"


def _catalogue_weight(help_text: str) -> models.FloatField:
    """A relative weight of the catalogue: 1 by default, at most MAX_CATALOGUE_WEIGHT."""
    return models.FloatField(
        default=1.0, validators=[MaxValueValidator(MAX_CATALOGUE_WEIGHT)], help_text=help_text
    )


def _non_negative(table: str, field: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(**{f"{field}__gte": 0}),
        name=f"{table}_{field}_non_negative",
        violation_error_message=f"{field} must not be negative.",
    )


class CatalogueEntry(TimestampedModel):
    """A named, switchable entry of the catalogue, picked by its weight."""

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    is_active = models.BooleanField(default=True)

    class Meta:
        abstract = True
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.name


class JourneyTemplate(CatalogueEntry):
    """A kind of session: an ordered list of scenes, picked in proportion to its popularity."""

    popularity = _catalogue_weight("Relative weight when picking a journey.")

    class Meta(CatalogueEntry.Meta):
        db_table = "journey_templates"
        constraints = [_non_negative("journey_templates", "popularity")]


class Scene(TimestampedModel):
    """One step of a journey template, with its dwell time and mindblock rate."""

    template = models.ForeignKey(JourneyTemplate, on_delete=models.CASCADE, related_name="scenes")
    position = models.PositiveSmallIntegerField()
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=120)
    dwell_median_seconds = models.FloatField(
        default=60.0,
        validators=[MaxValueValidator(MAX_DWELL_SECONDS)],
        help_text="Median time spent in the scene (log-normal, see README).",
    )
    mindblock_rate = models.FloatField(
        default=0.4, help_text="Chance that a visit to this scene reports a mindblock."
    )
    dropoff_weight = _catalogue_weight(
        "Relative chance that an abandoned session stops at this scene (the funnel)."
    )
    error_weight = _catalogue_weight("Relative chance that an errored session fails at this scene.")

    class Meta:
        db_table = "scenes"
        ordering = ["template", "position"]
        constraints = [
            models.UniqueConstraint(fields=["template", "position"], name="scenes_unique_position"),
            models.UniqueConstraint(fields=["template", "slug"], name="scenes_unique_slug"),
            models.CheckConstraint(
                condition=Q(dwell_median_seconds__gt=0),
                name="scenes_dwell_positive",
                violation_error_message="dwell_median_seconds must be positive.",
            ),
            _in_range("scenes", "mindblock_rate", 0, 1),
            models.CheckConstraint(
                condition=Q(dropoff_weight__gte=0, error_weight__gte=0),
                name="scenes_funnel_weights_non_negative",
                violation_error_message="dropoff_weight and error_weight must not be negative.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template.slug}/{self.slug}"


def _weights_valid(value, length: int, what: str) -> None:
    if (
        not isinstance(value, list)
        or len(value) != length
        or not all(
            isinstance(w, int | float) and not isinstance(w, bool) and 0 <= w <= 100 for w in value
        )
        or sum(value) <= 0
    ):
        raise ValidationError(
            f"{what}: a list of {length} numbers from 0 to 100, not all 0 (got {value!r})."
        )


def hourly_weights_validate(value) -> None:
    _weights_valid(value, 24, "hourly")


def weekly_weights_validate(value) -> None:
    _weights_valid(value, 7, "weekly")


class RhythmProfile(TimestampedModel):
    """When people start sessions in their local time: 24 hourly and 7 weekly weights, a holiday factor.

    The profile of a persona applies to its users; the one with no persona to everybody else. Each is
    normalised to an average of 1 (engine.rhythm), so only the shape matters.
    """

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=120)
    persona = models.CharField(
        max_length=32, blank=True, unique=True, help_text="Empty: the default for every persona."
    )
    hourly = models.JSONField(
        validators=[hourly_weights_validate],
        help_text="24 relative weights, local hour 0 (midnight) to 23.",
    )
    weekly = models.JSONField(
        validators=[weekly_weights_validate],
        help_text="7 relative weights, Monday to Sunday.",
    )
    holiday_factor = models.FloatField(
        default=0.7, help_text="Multiplies the weight on a public holiday of the user's country."
    )

    class Meta:
        db_table = "rhythm_profiles"
        ordering = ["persona", "slug"]
        constraints = [_in_range("rhythm_profiles", "holiday_factor", 0, 10)]

    def __str__(self) -> str:
        return f"{self.name} ({self.persona or 'default'})"


class MindblockType(CatalogueEntry):
    """A kind of mental block a user can report during a scene."""

    weight = _catalogue_weight("Relative weight when picking a mindblock.")

    class Meta(CatalogueEntry.Meta):
        db_table = "mindblock_types"
        constraints = [_non_negative("mindblock_types", "weight")]


class JourneyStatus(models.TextChoices):
    ACTIVE = "active"
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    ERRORED = "errored"


class JourneyQuerySet(models.QuerySet):
    def synthetic(self) -> JourneyQuerySet:
        """Journeys this generator wrote: flagged, and started by a run of its ledger.

        `run_id` is a foreign key to the ledger, so the database itself guarantees the run exists,
        and a run writes journeys only when it succeeds (a failed run is rolled back). No join: the
        engine reads the active ones every minute through the partial index, and a join with the
        ledger turns into a loop over every run when the planner has no statistics (autovacuum off).
        """
        return self.filter(is_synthetic=True, run__isnull=False)

    def real(self) -> JourneyQuerySet:
        """Every journey that `synthetic()` leaves out."""
        return self.exclude(is_synthetic=True, run__isnull=False)

    def active(self) -> JourneyQuerySet:
        return self.filter(status=JourneyStatus.ACTIVE)


class Journey(models.Model):
    """One session of one user through a journey template.

    Synthetic journeys carry their whole plan (timed steps decided when the session starts) and a
    cursor: each run writes the steps whose time has come.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey("synthetics.User", on_delete=models.CASCADE, related_name="journeys")
    sim_user = models.ForeignKey(
        SimUser, null=True, blank=True, on_delete=models.CASCADE, related_name="journeys"
    )
    template = models.ForeignKey(JourneyTemplate, on_delete=models.PROTECT, related_name="journeys")
    status = models.CharField(
        max_length=16, choices=JourneyStatus.choices, default=JourneyStatus.ACTIVE
    )
    is_synthetic = models.BooleanField(default=False)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    plan = models.JSONField(default=list, blank=True, help_text="Timed steps (synthetic only).")
    next_step = models.PositiveIntegerField(default=0)
    next_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="When an active synthetic journey next has a step (or its end) due: a run reads "
        "only the journeys due by its time.",
    )
    run = models.ForeignKey(
        "synthetics.SyntheticRun",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="journeys_started",
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = JourneyQuerySet.as_manager()

    class Meta:
        db_table = "journeys"
        ordering = ["-started_at"]
        indexes = [
            models.Index(
                fields=["sim_user"],
                condition=Q(status="active"),
                name="journeys_active_idx",
            ),
            models.Index(
                fields=["next_at"],
                condition=Q(status="active", is_synthetic=True),
                name="journeys_due_idx",
            ),
            models.Index(fields=["is_synthetic", "started_at"], name="journeys_synthetic_started"),
            models.Index(fields=["started_at"], name="journeys_started_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=F("started_at")),
                name="journeys_end_after_start",
                violation_error_message="ended_at must not be before started_at.",
            ),
            models.CheckConstraint(
                condition=Q(status="active", ended_at__isnull=True)
                | (~Q(status="active") & Q(ended_at__isnull=False)),
                name="journeys_ended_iff_finished",
                violation_error_message="A finished journey has an end time; an active one has none.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template_id} {self.status} @ {self.started_at:%Y-%m-%d %H:%M}"


def _ours(runs: models.QuerySet | None = None) -> Coalesce:
    """The identity rule in SQL, for the event of the outer row (aliases `origin_run` and
    `origin_key`, its `created_at`): a succeeded run of the ledger has that id, the row is dated
    inside the run's span, and it carries the run's key (SyntheticRun.wrote is the same rule in
    Python, for rows already read). `runs`: where to look, when the caller knows the runs can
    only be some of the ledger.

    A scalar subquery, true or false for every row, not EXISTS: PostgreSQL turns an EXISTS into a
    join, and with the span's range conditions it guesses that few rows match, then reads every
    tagged row and sorts them instead of walking the tag index in order and stopping at a batch or
    a page (cleanup ran at a fifth of plain DELETEs so). A scalar subquery stays one primary-key
    look-up per row, in the index's order."""
    runs = SyntheticRun.objects.all() if runs is None else runs
    wrote = (
        runs.filter(pk=OuterRef("origin_run"), status=RunStatus.SUCCEEDED)
        .alias(events_start=RUN_EVENTS_START)
        .filter(events_start__lt=OuterRef("created_at"), window_end__gte=OuterRef("created_at"))
        .filter(Q(run_key="") | Q(run_key=OuterRef("origin_key")))
        .order_by()
        .values_list(Value(True, output_field=models.BooleanField()))[:1]
    )
    return Coalesce(Subquery(wrote, output_field=models.BooleanField()), Value(False))


def _origin_aliases() -> dict:
    return {
        "origin_run": SyntheticOrigin("event_payload"),
        "origin_key": KeyTextTransform(RUN_KEY_KEY, "event_payload"),
    }


class EventQuerySet(models.QuerySet):
    """What marks an event as ours, defined once for selectors, cleanup, admin and API alike."""

    def _origin_aliases(self) -> dict:
        return _origin_aliases()

    def synthetic(self, *, runs: models.QuerySet | None = None) -> EventQuerySet:
        """Events this generator wrote: the boolean tag, and the id and key of a succeeded run of
        the ledger whose span holds the row's time (docs/data-model.md "What marks a row as ours"); with
        `runs`, written by one of those runs.

        The text tag (`event_payload->>'synthetic' = 'true'`, the seed's own test) narrows the rows
        through the tag index; the strict origin then drops a real row that merely says "true".
        The alias `origin_run` is the run id the row names.
        """
        return (
            self.alias(tag=SyntheticTag("event_payload"), **self._origin_aliases())
            .alias(ours=_ours(runs))
            .filter(tag=TAG_TRUE, ours=True)
        )

    def real(self) -> EventQuerySet:
        """Every event that `synthetic()` leaves out: the two partition the table."""
        return self.alias(**self._origin_aliases()).alias(ours=_ours()).filter(ours=False)

    def claiming(self, run: OuterRef) -> EventQuerySet:
        """Rows that claim the run `run` (the boolean tag and its id), whoever wrote them: what
        keeps a run's ledger row while any is left (cleanup)."""
        return self.alias(
            tag=SyntheticTag("event_payload"), claimed=SyntheticOrigin("event_payload")
        ).filter(tag=TAG_TRUE, claimed=run)


class RowOrigin(models.Model):
    """Attach mode: the run that wrote a row of an application table without a jsonb column for
    the tag (its target file says `payload: null`), by the row's primary key as text. Written in
    the run's transaction with the row; the identity rule reads the run id and key here instead of
    in the payload, and is otherwise the same rule (`_ours`)."""

    table = models.CharField(max_length=127, help_text="The application table, schema.table.")
    row_key = models.TextField(help_text="The row's primary key, as text.")
    run_id = models.BigIntegerField()
    run_key = models.CharField(max_length=32)
    created_at = models.DateTimeField(help_text="The row's time (its mapped time column).")

    class Meta:
        db_table = "synthetic_row_origins"
        ordering = ["table", "created_at"]
        constraints = [
            models.UniqueConstraint(fields=["table", "row_key"], name="row_origins_unique_row")
        ]
        indexes = [
            models.Index(fields=["table", "created_at"], name="row_origins_table_time"),
            models.Index(fields=["run_id"], name="row_origins_run"),
        ]

    def __str__(self) -> str:
        return f"{self.table} {self.row_key} by run {self.run_id}"


class OriginEventQuerySet(EventQuerySet):
    """EventQuerySet for an attached table whose rows' origin is in RowOrigin: the same rule, the
    run id and key read from there (`origin_table`: the table's name in RowOrigin)."""

    origin_table = ""

    def _origins(self) -> QuerySet:
        # The row's key and its time: a row the application wrote later under the key of one of
        # ours it deleted (a key given by hand) is not ours, whatever its key says.
        return RowOrigin.objects.filter(
            table=self.origin_table,
            row_key=Cast(OuterRef("pk"), models.TextField()),
            created_at=OuterRef("created_at"),
        )

    def _origin_aliases(self) -> dict:
        origins = self._origins()
        return {
            "origin_run": Subquery(origins.values("run_id")[:1]),
            "origin_key": Subquery(origins.values("run_key")[:1]),
        }

    def synthetic(self, *, runs: models.QuerySet | None = None) -> EventQuerySet:
        """Rows with an origin row whose run wrote them (the rule of EventQuerySet.synthetic)."""
        # A correlated probe of the origin's unique (table, row_key) index per row, not an IN list:
        # with no statistics (a fresh attach, autovacuum off) the planner took the list for a
        # handful of rows and compared every row with every origin (5 s for 4,000 sessions).
        return (
            self.filter(Exists(self._origins()))
            .alias(**self._origin_aliases())
            .alias(ours=_ours(runs))
            .filter(ours=True)
        )

    def claiming(self, run: OuterRef) -> EventQuerySet:
        # `run` is the caller's outer reference (the ledger row, from the events' query); inside
        # the origins' subquery it is one level further out.
        claimed = self._origins().filter(run_id=OuterRef(run))
        return self.filter(Exists(claimed))


class EventBase(models.Model):
    """Columns shared by both event tables; `event_payload` carries the synthetic tag and the run id."""

    user = models.ForeignKey("synthetics.User", on_delete=models.CASCADE, related_name="+")
    journey = models.ForeignKey(
        Journey, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    event_type = models.CharField(max_length=32)
    created_at = models.DateTimeField()
    event_payload = models.JSONField(default=dict, blank=True)

    objects = EventQuerySet.as_manager()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.event_type} @ {self.created_at:%Y-%m-%d %H:%M:%S}"


def _event_indexes(table: str) -> list[models.Index]:
    """An event table's indexes: ours by time (the tag's expression index), and all by time."""
    return [
        models.Index(SyntheticTag("event_payload"), "created_at", name=f"{table}_synthetic_idx"),
        models.Index(fields=["created_at"], name=f"{table}_created_idx"),
    ]


class JourneySceneEvent(EventBase):
    scene = models.ForeignKey(Scene, null=True, on_delete=models.PROTECT, related_name="+")

    class Meta:
        db_table = "journey_scene_events"
        ordering = ["-created_at", "-id"]
        indexes = _event_indexes("scene_events")


class MindblockEvent(EventBase):
    scene = models.ForeignKey(
        Scene, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    mindblock = models.ForeignKey(MindblockType, on_delete=models.PROTECT, related_name="+")

    class Meta:
        db_table = "mindblock_events"
        ordering = ["-created_at", "-id"]
        indexes = _event_indexes("mindblock_events")


class RunTrigger(models.TextChoices):
    SCHEDULED = "scheduled"
    MANUAL = "manual"
    BACKFILL = "backfill"


class RunStatus(models.TextChoices):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


class SyntheticRunQuerySet(models.QuerySet):
    def covering(self, *, start=None, end=None) -> SyntheticRunQuerySet:
        """Runs that cover simulated minutes (of the window (start, end], when given).

        Scheduled and backfill runs that succeeded or skipped cover their window: a skipped run (paused,
        nothing new) covers its minutes with nothing. A failed run covers nothing, so the next run
        takes its minutes on; a manual run adds sessions on top and covers nothing either. A run of
        shard k of N (`shard`, `shards` > 1) covers its minutes for slice k of N only: a minute is
        covered for a slice by a run of the whole pool or of that slice (run_inputs.slices_left).
        """
        runs = self.filter(
            trigger__in=[RunTrigger.SCHEDULED, RunTrigger.BACKFILL],
            status__in=[RunStatus.SUCCEEDED, RunStatus.SKIPPED],
        )
        if start is not None:
            runs = runs.filter(window_end__gt=start)
        if end is not None:
            runs = runs.filter(window_start__lt=end)
        return runs


def run_key_new() -> str:
    """A run's key: 64 random bits as hex after a "k". Every row the run writes carries it
    (`run_key`), so a row written before the run existed cannot carry it, whatever run id and
    time it names. The letter keeps it apart from any JSON number or literal as text (the SQL
    reads the key with `->>`, which renders 5 as '5')."""
    return f"k{secrets.token_hex(8)}"


# Where a run's span begins (exclusive): just before its earliest event (`events_from`). A run
# recorded before events_from was kept is taken to reach as far back as the engine ever writes:
# its window's start, or SESSION_STALE_AFTER (15 minutes) before its end. Its span ends at its
# window's end (inclusive).
_EPSILON = timedelta(microseconds=1)
RUN_EVENTS_START = Coalesce(
    ExpressionWrapper(F("events_from") - _EPSILON, output_field=DateTimeField()),
    Least(
        F("window_start"),
        ExpressionWrapper(F("window_end") - SESSION_STALE_AFTER, output_field=DateTimeField()),
    ),
)


def run_events_start(
    *, window_start: datetime, window_end: datetime, events_from: datetime | None
) -> datetime:
    """RUN_EVENTS_START in Python, for a ledger row's values already read."""
    if events_from is not None:
        return events_from - _EPSILON
    return min(window_start, window_end - SESSION_STALE_AFTER)


# What a succeeded run wrote, as the ledger counts it: summed by the hourly sums (writers), the
# expectations and the history's totals.
RUN_COUNTS = (
    "sessions_started",
    "scene_events_created",
    "mindblock_events_created",
    "journeys_completed",
    "journeys_abandoned",
    "journeys_errored",
)


class SyntheticRun(TimestampedModel):
    """The ledger: one row per generator run, written in the run's own transaction."""

    trigger = models.CharField(max_length=16, choices=RunTrigger.choices)
    status = models.CharField(max_length=16, choices=RunStatus.choices)
    started_at = models.DateTimeField(help_text="Wall-clock time the run began.")
    finished_at = models.DateTimeField(null=True, blank=True)
    window_start = models.DateTimeField(help_text="Simulated time covered: start (exclusive).")
    window_end = models.DateTimeField(help_text="Simulated time covered: end (inclusive).")
    events_from = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The earliest created_at of the events the run wrote (empty: none, or a run "
        "recorded before this was kept). A run writes the steps of journeys in progress that were "
        "due before its window too (after a pause, or a manual run before the minute's scheduled "
        "one), at most 15 minutes before its end (engine.run.STALE_AFTER).",
    )
    run_key = models.CharField(
        max_length=32,
        blank=True,
        default=run_key_new,
        db_default="",
        editable=False,
        help_text="Random, written into every row the run writes (`run_key`): a row is ours only "
        "when it carries its run's key (empty: a run recorded before keys were kept, or by SQL "
        "that names none; its rows are judged by their id and time alone).",
    )
    target = models.PositiveIntegerField(null=True, blank=True)
    sessions_started = models.PositiveIntegerField(
        default=0,
        help_text="Sessions (journeys) the run started; the API also calls it sessions_created.",
    )
    scene_events_created = models.PositiveIntegerField(default=0)
    mindblock_events_created = models.PositiveIntegerField(default=0)
    journeys_completed = models.PositiveIntegerField(default=0)
    journeys_abandoned = models.PositiveIntegerField(default=0)
    journeys_errored = models.PositiveIntegerField(default=0)
    active_journeys = models.PositiveIntegerField(default=0, help_text="Active after the run.")
    users_signed_up = models.PositiveIntegerField(default=0)
    users_churned = models.PositiveIntegerField(default=0)
    abandon_rate = models.FloatField(null=True, blank=True, help_text="The setting the run used.")
    error_rate = models.FloatField(null=True, blank=True, help_text="The setting the run used.")
    # The rest of what decided the run's rate, so that each minute is judged with what was in
    # force in it (engine.expectations; empty on runs from before they were recorded).
    sessions_per_min = models.PositiveIntegerField(
        null=True, blank=True, help_text="The setting the run used."
    )
    max_per_run = models.PositiveIntegerField(
        null=True, blank=True, help_text="The setting the run used."
    )
    rhythm_strength = models.FloatField(
        null=True, blank=True, help_text="The setting the run used."
    )
    seed = models.BigIntegerField(
        null=True,
        blank=True,
        help_text="The seed of the run's random stream and of the behaviour's rate factor and "
        "error spells (engine.behaviour).",
    )
    note = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    # Defaults in the database too: a row written by SQL that names neither is a run of the whole
    # pool (bench/reads.py copies ledger rows so, and so may an operator's script).
    shard = models.PositiveSmallIntegerField(
        default=0,
        db_default=0,
        help_text="The slice of the pool the run simulated: sim users with id % shards = shard.",
    )
    shards = models.PositiveSmallIntegerField(
        default=1,
        db_default=1,
        help_text="Shards the scheduled runs were split into (1: the whole pool).",
    )

    objects = SyntheticRunQuerySet.as_manager()

    class Meta:
        db_table = "synthetic_runs"
        ordering = ["-started_at", "-id"]
        verbose_name = "run"
        indexes = [
            models.Index(fields=["trigger", "window_end"], name="synthetic_runs_window_idx"),
            models.Index(fields=["status", "window_end"], name="synthetic_runs_status_idx"),
            models.Index(fields=["-started_at"], name="synthetic_runs_started_idx"),
            models.Index(fields=["-finished_at"], name="synthetic_runs_finished_idx"),
            # What covers simulated time (SyntheticRunQuerySet.covering): its newest end is an
            # index look-up however many runs the ledger holds.
            models.Index(
                fields=["window_end"],
                condition=Q(
                    trigger__in=["scheduled", "backfill"], status__in=["succeeded", "skipped"]
                ),
                name="synthetic_runs_covering_idx",
            ),
            # The dashboards' recent runs leave backfill out: after a long backfill, a walk of
            # started_at would step over every one of its rows.
            models.Index(
                F("started_at").desc(),
                F("id").desc(),
                condition=~Q(trigger="backfill"),
                name="synthetic_runs_recent_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(window_end__gte=F("window_start")),
                name="synthetic_runs_window_order",
                violation_error_message="window_end must not be before window_start.",
            ),
            models.CheckConstraint(
                condition=Q(shards__gte=1, shard__lt=F("shards")),
                name="synthetic_runs_shard_in_range",
                violation_error_message="shard must be between 0 and shards - 1.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.trigger} run {self.status} @ {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def duration_ms(self) -> int | None:
        if self.finished_at is None:
            return None
        return int((self.finished_at - self.started_at).total_seconds() * 1000)

    @property
    def span_start(self) -> datetime:
        """RUN_EVENTS_START in Python: where the run's span begins (exclusive)."""
        return run_events_start(
            window_start=self.window_start, window_end=self.window_end, events_from=self.events_from
        )

    def wrote(self, *, payload: object, created_at: datetime) -> bool:
        """The identity rule (`EventQuerySet.synthetic()`) in Python, for an event already read
        whose payload names this run: succeeded, dated inside its span, carrying its key."""
        claim = origin_claim(payload)
        return (
            claim is not None
            and claim[0] == self.pk
            and self.status == RunStatus.SUCCEEDED
            and self.span_start < created_at <= self.window_end
            and (self.run_key == "" or claim[1] == self.run_key)
        )


class SyntheticRunHour(models.Model):
    """The ledger's succeeded runs summed per UTC hour of window_end, written with each run.

    The activity chart's hourly buckets read these (720 rows for 30 days) instead of aggregating
    a run per minute; the first and the last, partial, hours come from the ledger itself.
    """

    hour = models.DateTimeField(primary_key=True)
    runs = models.BigIntegerField(default=0)
    sessions_started = models.BigIntegerField(default=0)
    scene_events_created = models.BigIntegerField(default=0)
    mindblock_events_created = models.BigIntegerField(default=0)
    journeys_completed = models.BigIntegerField(default=0)
    journeys_abandoned = models.BigIntegerField(default=0)
    journeys_errored = models.BigIntegerField(default=0)

    class Meta:
        db_table = "synthetic_run_hours"
        ordering = ["hour"]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.runs} runs"


MAX_INCIDENT_MINUTES = 7 * 24 * 60
MAX_SESSIONS_MULTIPLIER = 100.0


class Incident(TimestampedModel):
    """A window of simulated time (starts_at, ends_at] in which the generator writes something else
    on purpose: other error or abandon rates, more or fewer sessions, for every session or one
    template's or one scene's (engine.incidents). Every event of a session it changed names it.

    `ends_at` is where it stops applying: starts_at + minutes, or, once cancelled, the minute it was
    cancelled in (never before starts_at). Checked as a whole by services.incidents.
    """

    label = models.CharField(max_length=100)
    starts_at = models.DateTimeField(help_text="Start, on a whole minute (exclusive).")
    minutes = models.PositiveIntegerField(help_text="How long, as asked.")
    ends_at = models.DateTimeField(
        help_text="Where it stops applying: starts_at + minutes, or the minute it was cancelled."
    )
    error_rate = models.FloatField(null=True, blank=True)
    abandon_rate = models.FloatField(null=True, blank=True)
    sessions_multiplier = models.FloatField(null=True, blank=True)
    template = models.ForeignKey(
        JourneyTemplate,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Only this template's sessions (empty: every template).",
    )
    scene = models.SlugField(
        max_length=64,
        blank=True,
        help_text="Only the sessions of templates that visit the scene with this slug; an error "
        "or abandonment the incident draws happens there.",
    )
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_by = models.CharField(max_length=150, blank=True)

    class Meta:
        db_table = "synthetic_incidents"
        ordering = ["-starts_at", "-id"]
        indexes = [models.Index(fields=["ends_at"], name="synthetic_incidents_end_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(ends_at__gte=F("starts_at")),
                name="synthetic_incidents_ends_after_start",
            ),
            models.CheckConstraint(
                condition=Q(minutes__gte=1, minutes__lte=MAX_INCIDENT_MINUTES),
                name="synthetic_incidents_minutes_range",
            ),
            models.CheckConstraint(
                condition=(
                    (Q(error_rate__isnull=True) | Q(error_rate__gte=0, error_rate__lte=1))
                    & (Q(abandon_rate__isnull=True) | Q(abandon_rate__gte=0, abandon_rate__lte=1))
                    & (
                        Q(sessions_multiplier__isnull=True)
                        | Q(
                            sessions_multiplier__gte=0,
                            sessions_multiplier__lte=MAX_SESSIONS_MULTIPLIER,
                        )
                    )
                ),
                name="synthetic_incidents_values_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.starts_at:%Y-%m-%d %H:%M}, {self.minutes} min)"


# The run-duration histogram's upper bounds, in seconds (Prometheus' `le`), and one column each.
RUN_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
RUN_DURATION_COLUMNS = tuple(f"duration_le_{index}" for index in range(len(RUN_DURATION_BUCKETS)))


class SyntheticCounter(models.Model):
    """Monotonic totals of every run ever recorded, per trigger, status and shard: what /metrics
    exports as Prometheus counters. Written in each run's own transaction (services.writers.
    run_counters_add) and never decreased — cleanup and the ledger's pruning leave them alone, so a
    counter only goes back to zero with the database. Keyed by shard too, so the shards of a split
    run never wait on each other's row.

    The duration columns are a histogram of scheduled and manual runs' wall-clock seconds
    (finished_at - started_at): how many runs fell at or below each bound of RUN_DURATION_BUCKETS
    and above the one before (not cumulative); `timed` counts them all.
    """

    trigger = models.CharField(max_length=16)
    status = models.CharField(max_length=16)
    shard = models.PositiveSmallIntegerField(default=0)
    runs = models.BigIntegerField(default=0)
    sessions_started = models.BigIntegerField(default=0)
    scene_events = models.BigIntegerField(default=0)
    mindblock_events = models.BigIntegerField(default=0)
    journeys_completed = models.BigIntegerField(default=0)
    journeys_abandoned = models.BigIntegerField(default=0)
    journeys_errored = models.BigIntegerField(default=0)
    timed = models.BigIntegerField(default=0)
    duration_seconds = models.FloatField(default=0.0)
    duration_le_0 = models.BigIntegerField(default=0)
    duration_le_1 = models.BigIntegerField(default=0)
    duration_le_2 = models.BigIntegerField(default=0)
    duration_le_3 = models.BigIntegerField(default=0)
    duration_le_4 = models.BigIntegerField(default=0)
    duration_le_5 = models.BigIntegerField(default=0)
    duration_le_6 = models.BigIntegerField(default=0)
    duration_le_7 = models.BigIntegerField(default=0)
    duration_le_8 = models.BigIntegerField(default=0)
    duration_le_9 = models.BigIntegerField(default=0)

    class Meta:
        db_table = "synthetic_counters"
        ordering = ["trigger", "status", "shard"]
        constraints = [
            models.UniqueConstraint(
                fields=["trigger", "status", "shard"], name="synthetic_counters_unique_key"
            )
        ]

    def __str__(self) -> str:
        return f"{self.trigger}/{self.status}/shard {self.shard}: {self.runs} runs"


class SyntheticFidelity(models.Model):
    """The last hour's expected-versus-observed verdict, one row (id 1), written after each
    scheduled minute by the worker (services.expectations.fidelity_refresh): status reads it with
    its other scalars, /metrics exports its ratios, so neither recomputes it per request."""

    verdict = models.CharField(max_length=16, default="unknown")  # ok, drifting, unknown
    metric = models.CharField(max_length=32, blank=True, help_text="The first metric drifting.")
    hours = models.PositiveSmallIntegerField(default=1)
    checks = models.JSONField(default=list, help_text="Each metric's expected, interval, observed.")
    computed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "synthetic_fidelity"

    def __str__(self) -> str:
        return f"fidelity {self.verdict} ({self.computed_at})"


class PlannedProfile(models.Model):
    """What the engine measured of sessions it planned with a fixed seed (the expectations'
    events and lengths per kind of session, the capacity's mean length), kept so a new process
    reads them instead of planning thousands of sessions again (services.planned_profiles).

    Keyed by a digest of everything the planning depends on: the catalogue, the kind of session,
    the sample's size and seed and the engine's own source. A change of any of them gives another
    key; the rows of an older `generation` (catalogue and engine) are deleted when a new one is
    first written."""

    key = models.CharField(max_length=64, primary_key=True)
    generation = models.CharField(max_length=64, db_index=True)
    values = models.BinaryField(help_text="The measured numbers, as float64s.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "synthetic_planned_profiles"
        ordering = ["key"]

    def __str__(self) -> str:
        return f"planned profile {self.key[:12]}"


class ThrottleBucket(models.Model):
    """The recent calls of one user to one throttled operation (synthetics.api.throttles)."""

    key = models.CharField(max_length=200, primary_key=True)
    history = models.JSONField(default=list, help_text="Unix times of the calls let through.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "synthetics_throttle"
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key}: {len(self.history)} recent calls"


class CleanupStage(models.TextChoices):
    SCENE_EVENTS = "journey_scene_events"
    MINDBLOCK_EVENTS = "mindblock_events"
    SESSIONS = "sessions"  # an attached application's sessions table (attach mode, if mapped)
    JOURNEYS = "journeys"
    RUNS = "synthetic_runs"
    DONE = "done"


class CleanupStatus(models.TextChoices):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class CleanupJob(TimestampedModel):
    """One cleanup: its cutoff, where it is (stage and the keyset bound within it) and what it deleted.

    The cursor and the counts move in the transaction of the batch they describe (services/cleanup.py),
    so a job read at any moment says exactly what is gone; `updated_at` is its heartbeat.
    """

    older_than_hours = models.PositiveIntegerField()
    cutoff = models.DateTimeField(help_text="Synthetic activity before this instant is deleted.")
    requested_by = models.CharField(max_length=150, blank=True)
    status = models.CharField(
        max_length=16, choices=CleanupStatus.choices, default=CleanupStatus.RUNNING
    )
    stage = models.CharField(max_length=32, choices=CleanupStage.choices)
    lower_bound = models.DateTimeField(
        null=True, blank=True, help_text="Where the stage's next batch starts (its index key)."
    )
    scene_events_deleted = models.BigIntegerField(default=0)
    mindblock_events_deleted = models.BigIntegerField(default=0)
    sessions_deleted = models.BigIntegerField(
        default=0, help_text="Rows of an attached application's sessions table."
    )
    journeys_deleted = models.BigIntegerField(default=0)
    runs_deleted = models.BigIntegerField(
        default=0, help_text="Ledger rows of runs none of whose rows is left."
    )
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        db_table = "synthetic_cleanup_jobs"
        ordering = ["-created_at", "-id"]
        constraints = [
            # One job moves at a time, decided by the database: two requests at the same moment
            # cannot both start one.
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="running"), name="cleanup_jobs_one_running"
            )
        ]

    def __str__(self) -> str:
        return f"cleanup {self.id} {self.status} (before {self.cutoff:%Y-%m-%d %H:%M})"

    @property
    def counts(self) -> dict[str, int]:
        return {
            "journey_scene_events": self.scene_events_deleted,
            "mindblock_events": self.mindblock_events_deleted,
            "sessions": self.sessions_deleted,
            "journeys": self.journeys_deleted,
            "synthetic_runs": self.runs_deleted,
        }
