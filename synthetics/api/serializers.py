"""Input serializers (strict: JSON types only, no unknown fields, text read as sent by api.parsers) and output serializers (the seed's shapes)."""

from __future__ import annotations

import math
from datetime import UTC
from operator import itemgetter

from django.http import QueryDict
from django.utils import timezone
from rest_framework import serializers

from synthetics.api.parsers import (
    aware_datetime_read,
    label_read,
    slug_read,
    whole_number_read,
)
from synthetics.engine.expectations import METRICS as EXPECTATION_METRICS
from synthetics.engine.population import PERSONAS
from synthetics.engine.run import MAX_MANUAL_TARGET
from synthetics.models import MAX_INCIDENT_MINUTES, MAX_SESSIONS_MULTIPLIER, SETTING_RANGES
from synthetics.services.cleanup import DEFAULT_OLDER_THAN_HOURS, MAX_OLDER_THAN_HOURS

# --- strict fields: a string is not a number, a number is not a boolean ------------------------------


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false (a JSON boolean), got {input!r}."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class _DocumentedRangeMixin:
    """A range shown in the OpenAPI schema only: the range itself is checked where it is defined (the
    model's full_clean for settings, the services for a run's target and cleanup's hours), so each
    range and its message are written once."""

    def __init__(self, *, documented_range: tuple[int, int] | None = None, **kwargs):
        super().__init__(**kwargs)
        if documented_range is not None:
            self.min_value, self.max_value = documented_range


class StrictIntegerField(_DocumentedRangeMixin, serializers.IntegerField):
    """A JSON integer: 5, never 5.0 or 5e0 (a float, whole or not, is refused)."""

    default_error_messages = {
        "invalid": "Must be a whole number written as a JSON integer (no decimal point or "
        "exponent), got {input!r}."
    }

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid", input=data)
        return data


class StrictFloatField(_DocumentedRangeMixin, serializers.FloatField):
    default_error_messages = {"invalid": "Must be a number (a JSON number), got {input!r}."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid", input=data)
        try:
            value = float(data)
        except OverflowError:  # an integer of hundreds of digits
            self.fail("invalid", input=data)
        if not math.isfinite(value):
            self.fail("invalid", input=data)
        return value


class MillisecondDateTimeField(serializers.DateTimeField):
    """ISO-8601 in UTC with milliseconds and Z, as the seed writes it: 2026-01-09T19:15:00.000Z."""

    def to_representation(self, value):
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StrictInputSerializer(serializers.Serializer):
    """Refuses a body that is not a JSON object or that names a field this operation doesn't know."""

    def to_internal_value(self, data):
        if isinstance(data, QueryDict):
            # An empty body under a form Content-Type arrives as an empty QueryDict; read it as a
            # plain object so HTML-form defaults (a missing boolean meaning false) never apply.
            data = data.dict()
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["The body must be a JSON object."]}
            )
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {
                    name: [f"Unknown field; this operation takes: {', '.join(self.fields)}."]
                    for name in unknown
                }
            )
        return super().to_internal_value(data)


# --- inputs ----------------------------------------------------------------------------------------


class ToggleInput(StrictInputSerializer):
    enabled = StrictBooleanField(help_text="true resumes generation, false pauses it.")


class SettingsInput(StrictInputSerializer):
    """Types only; the ranges (SETTING_RANGES) are the model's, checked by settings_update."""

    enabled = StrictBooleanField(required=False)
    sessions_per_min = StrictIntegerField(
        required=False, documented_range=SETTING_RANGES["sessions_per_min"]
    )
    max_per_run = StrictIntegerField(required=False, documented_range=SETTING_RANGES["max_per_run"])
    error_rate = StrictFloatField(required=False, documented_range=SETTING_RANGES["error_rate"])
    abandon_rate = StrictFloatField(required=False, documented_range=SETTING_RANGES["abandon_rate"])
    rhythm_strength = StrictFloatField(
        required=False,
        documented_range=SETTING_RANGES["rhythm_strength"],
        help_text="0: a flat rate; 1: each user's full daily and weekly rhythm in local time.",
    )
    signups_per_day = StrictIntegerField(
        required=False,
        documented_range=SETTING_RANGES["signups_per_day"],
        help_text="New sim users a day (0: the pool stays as seeded).",
    )
    churn_per_month = StrictFloatField(
        required=False,
        documented_range=SETTING_RANGES["churn_per_month"],
        help_text="Share of the active pool that churns in 30 days.",
    )

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError(
                f"Send at least one setting to change: {', '.join(self.fields)}."
            )
        return attrs


class RunNowInput(StrictInputSerializer):
    target = StrictIntegerField(
        documented_range=(1, MAX_MANUAL_TARGET),
        help_text=f"Sessions to start: 1..max_per_run (the current setting), at most "
        f"{MAX_MANUAL_TARGET:,}.",
    )
    force = StrictBooleanField(
        required=False, default=False, help_text="Run even while generation is paused."
    )


class CleanupInput(StrictInputSerializer):
    """A destructive call says what it wants: `dry_run` is required, so an empty body deletes nothing."""

    older_than_hours = StrictIntegerField(
        required=False,
        default=DEFAULT_OLDER_THAN_HOURS,
        documented_range=(1, MAX_OLDER_THAN_HOURS),
        help_text=f"Delete synthetic activity older than this (default {DEFAULT_OLDER_THAN_HOURS}).",
    )
    dry_run = StrictBooleanField(
        help_text="Required: true only counts what would be deleted, false deletes it.",
        error_messages={
            "required": (
                "Required: send true to count what would be deleted, or false to delete it "
                f"(with older_than_hours, default {DEFAULT_OLDER_THAN_HOURS})."
            )
        },
    )


class StrictTextField(serializers.CharField):
    """A JSON string of printable text, taken as sent: not trimmed (label_read)."""

    default_error_messages = {"invalid": "Must be text (a JSON string), got {input!r}."}
    read = staticmethod(label_read)

    def __init__(self, **kwargs):
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid", input=data)
        try:
            return self.read(data)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


class StrictSlugField(StrictTextField):
    """A JSON string that is a slug exactly (slug_read)."""

    read = staticmethod(slug_read)

    def __init__(self, **kwargs):
        super().__init__(max_length=64, **kwargs)


class StrictDateTimeField(serializers.DateTimeField):
    """A JSON string read by aware_datetime_read: ISO 8601 with a time zone, in UTC."""

    def to_internal_value(self, data):
        try:
            return aware_datetime_read(data)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


class IncidentInput(StrictInputSerializer):
    """Types only; the rules (whole minutes, ranges, scope, overlaps) are services.incidents'."""

    starts_at = StrictDateTimeField(
        help_text="When it starts, on a whole minute, with a time zone."
    )
    minutes = StrictIntegerField(
        documented_range=(1, MAX_INCIDENT_MINUTES), help_text="How long, in minutes."
    )
    label = StrictTextField(
        max_length=100, help_text="Written into the payload of every event it changes."
    )
    error_rate = StrictFloatField(
        required=False, documented_range=(0, 1), help_text="The error rate of sessions in scope."
    )
    abandon_rate = StrictFloatField(
        required=False, documented_range=(0, 1), help_text="The abandon rate of sessions in scope."
    )
    sessions_multiplier = StrictFloatField(
        required=False,
        documented_range=(0, int(MAX_SESSIONS_MULTIPLIER)),
        help_text="Multiplies the rate of new sessions in scope (0: none start; 3: a surge).",
    )
    template = StrictSlugField(
        required=False, help_text="A journey template's slug: only its sessions."
    )
    scene = StrictSlugField(
        required=False,
        help_text="A scene's slug: only sessions of templates that visit it; the errors and "
        "abandonments the incident draws happen there.",
    )


# --- query strings and paths: text, read by the strict readers ------------------------------------

MAX_ACTIVITY_HOURS = 720
MAX_PAGE_SIZE = 500


class QueryWholeNumberField(serializers.IntegerField):
    """A whole number in a query string or a path: whole_number_read from min_value to max_value."""

    def __init__(self, *, min_value: int, max_value: int, **kwargs):
        super().__init__(min_value=min_value, max_value=max_value, **kwargs)

    def to_internal_value(self, data):
        try:
            return whole_number_read(data, low=self.min_value, high=self.max_value)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


class QueryChoiceField(serializers.ChoiceField):
    """One of the choices exactly: not trimmed, not folded to lower case."""

    def __init__(self, *, choices, **kwargs):
        names = ", ".join(str(choice) for choice in choices)
        kwargs.setdefault(
            "error_messages", {"invalid_choice": f"Must be one of: {names}; got {{input!r}}."}
        )
        super().__init__(choices=choices, **kwargs)


class StrictQuerySerializer(serializers.Serializer):
    """Reads its parameters from a query string (or a path), each given at most once and each read
    as sent: an empty value is a value to refuse, not an absent one (as DRF would read it).
    Parameters it does not know (a cache-buster, a paginator's) are left to others."""

    def to_internal_value(self, data):
        values, repeated = {}, []
        for name in self.fields:
            if hasattr(data, "getlist"):  # a QueryDict
                given = data.getlist(name)
            else:
                given = [data[name]] if name in data else []
            if len(given) > 1:
                repeated.append(name)
            elif given:
                values[name] = given[0]
        if repeated:
            raise serializers.ValidationError(
                {name: ["Given more than once: give it once."] for name in repeated}
            )
        return super().to_internal_value(values)


class ActivityPath(StrictQuerySerializer):
    hours = QueryWholeNumberField(
        min_value=1, max_value=MAX_ACTIVITY_HOURS, help_text="Window length in hours."
    )


class IncidentListQuery(StrictQuerySerializer):
    state = QueryChoiceField(
        choices=["upcoming", "in_progress", "over", "cancelled"],
        required=False,
        help_text="Only incidents in this state.",
    )
    hours = QueryWholeNumberField(
        required=False,
        min_value=1,
        max_value=720,
        help_text="Only incidents not over before this many hours ago (what a chart of the last "
        "hours shades), upcoming ones included.",
    )


class SimUserQuery(StrictQuerySerializer):
    persona = QueryChoiceField(choices=[persona.slug for persona in PERSONAS], required=False)


class PageSizeQuery(StrictQuerySerializer):
    page_size = QueryWholeNumberField(
        required=False, min_value=1, max_value=MAX_PAGE_SIZE, help_text="Rows per page."
    )


# --- outputs ---------------------------------------------------------------------------------------


class SettingsOutput(serializers.Serializer):
    enabled = serializers.BooleanField()
    sessions_per_min = serializers.IntegerField()
    max_per_run = serializers.IntegerField()
    error_rate = serializers.FloatField()
    abandon_rate = serializers.FloatField()
    rhythm_strength = serializers.FloatField()
    signups_per_day = serializers.IntegerField()
    churn_per_month = serializers.FloatField()


class SettingsResponse(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    settings = SettingsOutput(source="*")
    warnings = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="Set when the new settings are more than the pool can sustain (Little's law): "
        "saved all the same, with the numbers.",
    )


class EventCountsOutput(serializers.Serializer):
    scene_events = serializers.IntegerField()
    mindblock_events = serializers.IntegerField()


class LedgerTotalsOutput(serializers.Serializer):
    runs = serializers.IntegerField()
    sessions_started = serializers.IntegerField()
    sessions = serializers.IntegerField(
        source="sessions_started", help_text="An alias of sessions_started (the first name)."
    )
    scene_events = serializers.IntegerField()
    mindblock_events = serializers.IntegerField()
    completed = serializers.IntegerField()
    abandoned = serializers.IntegerField()
    errored = serializers.IntegerField()


class StatusActivityOutput(serializers.Serializer):
    last_5_min = EventCountsOutput()
    active_journeys = serializers.IntegerField()
    last_24_hours = LedgerTotalsOutput(help_text="From the run ledger.")


def _masked(error: str) -> str:
    return "The details are for users who may change Synthetics." if error else ""


_DATETIME = serializers.DateTimeField()  # DRF's own conversions, shared (they keep no state)
_DATE = serializers.DateField()

_RUN_TIMES = ("started_at", "finished_at", "window_start", "window_end")
_RUN_TEXTS = ("trigger", "status", "note", "error")


class RunOutput(serializers.Serializer):
    """A ledger row. Status shows eleven of them: they are written by one direct loop instead of
    DRF's walk over fresh copies of every field, the same JSON (a test compares the two)."""

    id = serializers.IntegerField()
    trigger = serializers.CharField()
    status = serializers.CharField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)
    window_start = serializers.DateTimeField()
    window_end = serializers.DateTimeField()
    sessions_started = serializers.IntegerField()
    sessions_created = serializers.IntegerField(
        source="sessions_started", help_text="An alias of sessions_started."
    )
    scene_events_created = serializers.IntegerField()
    mindblock_events_created = serializers.IntegerField()
    note = serializers.CharField()
    error = serializers.CharField(
        help_text="A failed run's traceback, for readers with the change permission only."
    )
    shard = serializers.IntegerField(
        help_text="The slice of the pool a scheduled run simulated: sim users with id % shards = "
        "shard (0 for a run of the whole pool)."
    )
    shards = serializers.IntegerField(
        help_text="Shards the scheduled runs were split into (SYNTHETICS_SHARDS); 1: one run "
        "for the whole pool."
    )

    def _details_shown(self) -> bool:
        """A failed run's traceback is for readers who may change Synthetics (the view's context
        says so); view-only readers get its note and a pointer. Closed unless told."""
        return bool(self.root.context.get("can_change", False))

    def to_representation(self, run) -> dict:
        times = {name: _DATETIME.to_representation(getattr(run, name)) for name in _RUN_TIMES}
        texts = {name: str(getattr(run, name)) for name in _RUN_TEXTS}
        return {
            "id": int(run.id),
            "trigger": texts["trigger"],
            "status": texts["status"],
            "started_at": times["started_at"],
            "finished_at": times["finished_at"],
            "duration_ms": None if run.duration_ms is None else int(run.duration_ms),
            "window_start": times["window_start"],
            "window_end": times["window_end"],
            "sessions_started": int(run.sessions_started),
            "sessions_created": int(run.sessions_started),
            "scene_events_created": int(run.scene_events_created),
            "mindblock_events_created": int(run.mindblock_events_created),
            "note": texts["note"],
            "error": texts["error"] if self._details_shown() else _masked(texts["error"]),
            "shard": int(run.shard),
            "shards": int(run.shards),
        }


# Choice sets named in the schema (settings SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]): fields
# named `status` carry three different sets.
FIDELITY_CHOICES = ["ok", "drifting", "unknown"]
GENERATOR_STATUS_CHOICES = ["running", "paused", "failing", "stalled", "clock_behind"]
CLEANUP_STATUS_CHOICES = ["running", "succeeded", "failed"]


class FidelityOutput(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=FIDELITY_CHOICES,
        help_text="ok: every metric inside its band; drifting: one is outside; unknown: not "
        "computed yet, or too little generated to tell.",
    )
    metric = serializers.CharField(allow_null=True, help_text="The first metric drifting.")


class StatusResponse(serializers.Serializer):
    settings = SettingsOutput()
    activity = StatusActivityOutput(source="*")
    status = serializers.ChoiceField(
        choices=GENERATOR_STATUS_CHOICES,
        source="status.status",
        help_text=(
            "running: scheduled runs succeed; paused: disabled; failing: the newest scheduled run "
            "failed; stalled: no scheduled run for 3 minutes (the scheduler is down); "
            "clock_behind: the clock stepped back behind what is already covered."
        ),
    )
    status_reason = serializers.CharField(source="status.reason", help_text="The status, in words.")
    last_run = RunOutput(allow_null=True)
    recent_runs = RunOutput(many=True, help_text="The newest scheduled and manual runs.")
    sim_users = serializers.IntegerField(
        help_text="Sim users a run may pick: the pool less the churned ones."
    )
    sim_users_churned = serializers.IntegerField(
        help_text="Sim users who churned: they keep their rows and start no new session."
    )
    timestamp = serializers.DateTimeField(source="now")
    fidelity = FidelityOutput(
        help_text="The last hour's expected versus observed (GET /api/synthetics/expectations), "
        "as the worker computed it after its last scheduled minute."
    )

    def to_representation(self, summary) -> dict:
        """Written by one direct function instead of DRF's walk over fresh copies of every field of
        five nested serializers (a third of the page's time in Python): the same JSON, a test
        compares the two."""
        row = summary.settings
        runs = RunOutput(context=self.context)  # its root: the view's context (can_change)
        totals = summary.last_24_hours
        status = summary.status.status  # self.fields is never read: it would copy every field
        return {
            "settings": {
                "enabled": bool(row.enabled),
                "sessions_per_min": int(row.sessions_per_min),
                "max_per_run": int(row.max_per_run),
                "error_rate": float(row.error_rate),
                "abandon_rate": float(row.abandon_rate),
                "rhythm_strength": float(row.rhythm_strength),
                "signups_per_day": int(row.signups_per_day),
                "churn_per_month": float(row.churn_per_month),
            },
            "activity": {
                "last_5_min": {
                    "scene_events": int(summary.last_5_min["scene_events"]),
                    "mindblock_events": int(summary.last_5_min["mindblock_events"]),
                },
                "active_journeys": int(summary.active_journeys),
                "last_24_hours": {
                    "runs": int(totals["runs"]),
                    "sessions_started": int(totals["sessions_started"]),
                    "sessions": int(totals["sessions_started"]),
                    "scene_events": int(totals["scene_events"]),
                    "mindblock_events": int(totals["mindblock_events"]),
                    "completed": int(totals["completed"]),
                    "abandoned": int(totals["abandoned"]),
                    "errored": int(totals["errored"]),
                },
            },
            "status": str(status),  # one of the choices, which are strings
            "status_reason": str(summary.status.reason),
            "last_run": (
                None if summary.last_run is None else runs.to_representation(summary.last_run)
            ),
            "recent_runs": [runs.to_representation(run) for run in summary.recent_runs],
            "sim_users": int(summary.sim_users),
            "sim_users_churned": int(summary.sim_users_churned),
            "timestamp": _DATETIME.to_representation(summary.now),
            "fidelity": {
                "status": str(summary.fidelity["status"]),
                "metric": (
                    None if summary.fidelity["metric"] is None else str(summary.fidelity["metric"])
                ),
            },
        }


class RunSettingsOutput(serializers.Serializer):
    target = serializers.IntegerField(allow_null=True)
    abandon_rate = serializers.FloatField(allow_null=True)
    error_rate = serializers.FloatField(allow_null=True)


class RunResultOutput(serializers.Serializer):
    """A run of the ledger in the seed's run-now shape (`sessions_created` is `sessions_started`)."""

    success = serializers.SerializerMethodField()
    sessions_started = serializers.IntegerField()
    sessions_created = serializers.IntegerField(
        source="sessions_started", help_text="The seed's name for sessions_started (an alias)."
    )
    scene_events_created = serializers.IntegerField()
    mindblock_events_created = serializers.IntegerField()
    settings = RunSettingsOutput(source="*", help_text="The settings the run used.")
    timestamp = MillisecondDateTimeField(source="window_end")
    run_id = serializers.IntegerField(source="id")
    status = serializers.CharField()
    journeys_completed = serializers.IntegerField()
    journeys_abandoned = serializers.IntegerField()
    journeys_errored = serializers.IntegerField()
    active_journeys = serializers.IntegerField()
    note = serializers.CharField()

    def get_success(self, run) -> bool:
        return run.status != "failed"


class RunNowResponse(serializers.Serializer):
    success = serializers.SerializerMethodField()
    result = RunResultOutput(source="*")

    def get_success(self, run) -> bool:
        return run.status != "failed"


class ActivityCountsOutput(serializers.Serializer):
    scene_events = serializers.IntegerField()
    mindblock_events = serializers.IntegerField()
    sessions_started = serializers.IntegerField()
    journeys_started = serializers.IntegerField(
        source="sessions_started", help_text="An alias of sessions_started (the first name)."
    )
    journeys_completed = serializers.IntegerField()
    journeys_abandoned = serializers.IntegerField()
    journeys_errored = serializers.IntegerField()


class ActivityTotalsOutput(ActivityCountsOutput):
    runs = serializers.IntegerField()


class ActivityPointsOutput(serializers.ListSerializer):
    """721 points for 30 days, each a dict of ints and a UTC datetime from the selector: written in
    one loop (the values copied, the time as DRF writes it: ISO 8601 in the current zone, "Z" for
    UTC), the same JSON as DRF's field-by-field walk at a fraction of its cost (a test compares
    the two)."""

    # The fields (and sources) of ActivityPointOutput, in order: the literal below writes them.
    POINT = (
        ("scene_events", "scene_events"),
        ("mindblock_events", "mindblock_events"),
        ("sessions_started", "sessions_started"),
        ("journeys_started", "sessions_started"),
        ("journeys_completed", "journeys_completed"),
        ("journeys_abandoned", "journeys_abandoned"),
        ("journeys_errored", "journeys_errored"),
        ("bucket", "bucket"),
    )

    def to_representation(self, data):
        fields = self.child.fields
        zone = timezone.get_current_timezone()
        in_utc = getattr(zone, "key", None) == "UTC"
        if tuple((name, field.source) for name, field in fields.items()) != self.POINT:
            return self._walked(data, fields, zone)  # other fields: the generic loop
        points = []
        for point in data:
            moment = point["bucket"]
            # A UTC time in UTC as is; else in the current zone (astimezone, as DRF does)
            text = (
                moment if in_utc and moment.tzinfo is UTC else moment.astimezone(zone)
            ).isoformat()
            sessions = point["sessions_started"]
            points.append(
                {
                    "scene_events": point["scene_events"],
                    "mindblock_events": point["mindblock_events"],
                    "sessions_started": sessions,
                    "journeys_started": sessions,
                    "journeys_completed": point["journeys_completed"],
                    "journeys_abandoned": point["journeys_abandoned"],
                    "journeys_errored": point["journeys_errored"],
                    "bucket": text[:-6] + "Z" if text.endswith("+00:00") else text,
                }
            )
        return points

    @staticmethod
    def _walked(data, fields, zone):
        names = list(fields)
        values_of = itemgetter(*(field.source for field in fields.values()))
        points = []
        for point in data:
            body = dict(zip(names, values_of(point), strict=True))  # in the fields' order
            moment = point["bucket"].astimezone(zone).isoformat()
            body["bucket"] = moment[:-6] + "Z" if moment.endswith("+00:00") else moment
            points.append(body)
        return points


class ActivityPointOutput(ActivityCountsOutput):
    bucket = serializers.DateTimeField(help_text="Start of the minute or hour.")

    class Meta:
        list_serializer_class = ActivityPointsOutput


class ActivityResponse(serializers.Serializer):
    hours = serializers.IntegerField()
    bucket = serializers.ChoiceField(choices=["minute", "hour"])
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    totals = ActivityTotalsOutput()
    series = ActivityPointOutput(many=True)


class CleanupCountsOutput(serializers.Serializer):
    journey_scene_events = serializers.IntegerField()
    mindblock_events = serializers.IntegerField()
    journeys = serializers.IntegerField()
    synthetic_runs = serializers.IntegerField(
        help_text="Ledger rows of runs that ended before the cutoff and name no row left."
    )


class CleanupJobOutput(serializers.Serializer):
    id = serializers.IntegerField()
    url = serializers.SerializerMethodField(help_text="Where to follow the job (GET).")
    status = serializers.ChoiceField(
        choices=CLEANUP_STATUS_CHOICES,
        help_text="running: rows are left and django-q2 tasks are deleting them, batch by batch.",
    )
    stage = serializers.CharField(help_text="The table being cleaned, or done.")
    older_than_hours = serializers.IntegerField()
    cutoff = serializers.DateTimeField()
    requested_by = serializers.CharField(
        help_text="Who started it (empty for readers without the change permission)."
    )
    counts = CleanupCountsOutput(help_text="Rows deleted so far, per table.")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField(help_text="The last batch: the job's heartbeat.")
    finished_at = serializers.DateTimeField(allow_null=True)
    error = serializers.CharField(
        help_text="Why it failed (the error's type and message; for readers with the change "
        "permission only)."
    )

    def get_url(self, job) -> str:
        return f"/api/synthetics/cleanup/{job.id}"

    def to_representation(self, job):
        body = super().to_representation(job)
        if not self.root.context.get("can_change", False):
            # Who asked and why it failed are for those who may steer (view-only readers get the
            # job's progress; an error says where the details are)
            body["requested_by"] = ""
            if body["error"]:
                body["error"] = (
                    "The job failed; the details are for users who may change Synthetics."
                )
        return body


class CleanupResponse(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    dry_run = serializers.BooleanField()
    older_than_hours = serializers.IntegerField()
    cutoff = serializers.DateTimeField()
    counts = CleanupCountsOutput(
        help_text="Rows deleted (or, with dry_run, that would be) per table; while the job is "
        "still running, deleted so far."
    )
    job = CleanupJobOutput(
        allow_null=True,
        required=False,
        help_text="The cleanup job (null for a dry run). 200: done within the request; 202: "
        "the job goes on in django-q2 tasks: follow job.url.",
    )


class CleanupJobResponse(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    job = CleanupJobOutput()


class SimUserOutput(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField(source="user.username")
    display_name = serializers.CharField()
    persona = serializers.CharField()
    activity_weight = serializers.FloatField()
    timezone = serializers.CharField()
    locale = serializers.CharField()
    signup_date = serializers.DateField()
    settles_into = serializers.CharField(help_text="A newcomer's persona after their first weeks.")
    churned_at = serializers.DateTimeField(allow_null=True, help_text="Set once the user churned.")
    in_active_journey = serializers.BooleanField()

    def to_representation(self, sim_user) -> dict:
        """A page holds 50 to 500 of them: written by one direct loop instead of DRF's walk over
        fresh copies of every field, the same JSON (a test compares the two)."""
        churned_at = sim_user.churned_at
        return {
            "id": int(sim_user.id),
            "username": str(sim_user.user.username),
            "display_name": str(sim_user.display_name),
            "persona": str(sim_user.persona),
            "activity_weight": float(sim_user.activity_weight),
            "timezone": str(sim_user.timezone),
            "locale": str(sim_user.locale),
            "signup_date": _DATE.to_representation(sim_user.signup_date),
            "settles_into": str(sim_user.settles_into),
            "churned_at": None if churned_at is None else _DATETIME.to_representation(churned_at),
            "in_active_journey": bool(sim_user.in_active_journey),
        }


class IncidentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    label = serializers.CharField()
    state = serializers.ChoiceField(choices=["upcoming", "in_progress", "over", "cancelled"])
    starts_at = serializers.DateTimeField()
    minutes = serializers.IntegerField(help_text="How long it was asked to last.")
    ends_at = serializers.DateTimeField(
        help_text="Where it stops applying: starts_at + minutes, or the minute it was cancelled."
    )
    error_rate = serializers.FloatField(allow_null=True)
    abandon_rate = serializers.FloatField(allow_null=True)
    sessions_multiplier = serializers.FloatField(allow_null=True)
    template = serializers.CharField(source="template.slug", allow_null=True, default=None)
    scene = serializers.CharField(allow_null=True)
    cancelled_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def to_representation(self, incident):
        body = super().to_representation(incident)
        body["scene"] = incident.scene or None
        return body


class IncidentResponse(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    incident = IncidentOutput()


class IncidentListResponse(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    incidents = IncidentOutput(many=True, help_text="Newest start first, at most 200.")


class ExpectationsQuery(StrictQuerySerializer):
    hours = QueryWholeNumberField(
        required=False, default=1, min_value=1, max_value=168, help_text="The last N hours, 1..168."
    )


class MetricCheckOutput(serializers.Serializer):
    metric = serializers.ChoiceField(choices=list(EXPECTATION_METRICS))
    expected = serializers.FloatField()
    low = serializers.FloatField(help_text="The interval's lower end.")
    high = serializers.FloatField(help_text="The interval's upper end.")
    observed = serializers.FloatField(allow_null=True)
    ratio = serializers.FloatField(allow_null=True, help_text="observed / expected.")
    verdict = serializers.ChoiceField(choices=["ok", "drifting", "too_few"])


class ExpectationsResponse(serializers.Serializer):
    success = serializers.BooleanField(default=True)
    hours = serializers.IntegerField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    level = serializers.FloatField(
        help_text="The family's confidence level: each of the metrics' intervals is at 1 - (1 - "
        "level) / metrics, so a healthy generator is called drifting in at most 1 - level of "
        "windows."
    )
    runs = serializers.IntegerField(help_text="Scheduled and backfill runs compared.")
    fidelity = serializers.ChoiceField(
        choices=FIDELITY_CHOICES,
        help_text="unknown: no metric could be judged (too little generated).",
    )
    drifting = serializers.ListField(child=serializers.CharField())
    settling = serializers.CharField(
        help_text="Why only sessions are judged now (an incident's edge, a pause, a catch-up "
        "within the last hours), or empty."
    )
    summary = serializers.CharField(help_text="The verdict, in words.")
    metrics = MetricCheckOutput(many=True, source="checks")


class ErrorResponse(serializers.Serializer):
    success = serializers.BooleanField(default=False)
    error = serializers.CharField(help_text="What went wrong, for a person.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Per-field messages on a 400.",
    )
    retry_after = serializers.IntegerField(required=False, help_text="Seconds, on a 429 or 503.")
    run_id = serializers.IntegerField(required=False, help_text="The failed run, on a 500.")


# --- insights: funnels, rhythm, daily active users, cohorts --------------------------------------


class FunnelStepOutput(serializers.Serializer):
    scene = serializers.CharField()
    position = serializers.IntegerField()
    observed = serializers.FloatField(
        allow_null=True, help_text="Share of the sessions entering the first scene that reached it."
    )
    implied = serializers.FloatField(
        help_text="What the catalogue's weights and the settings imply."
    )


class FunnelOutput(serializers.Serializer):
    template = serializers.CharField()
    sessions = serializers.IntegerField(help_text="Sessions that entered the first scene.")
    steps = FunnelStepOutput(many=True)


class RhythmOutput(serializers.Serializer):
    strength = serializers.FloatField()
    rate_now = serializers.FloatField(help_text="R now: a multiple of sessions_per_min.")
    peak_rate = serializers.FloatField(help_text="The highest hourly R over the next week.")
    quietest_rate = serializers.FloatField()
    cap_trimmed_share = serializers.FloatField(
        help_text="Share of the next week's sessions that max_per_run trims (computed)."
    )
    expected_sessions_week = serializers.FloatField()


class DailyActiveOutput(serializers.Serializer):
    day = serializers.DateField()
    users = serializers.IntegerField()


class CohortOutput(serializers.Serializer):
    cohort = serializers.DateField(help_text="Monday of the sign-up week.")
    users = serializers.IntegerField()
    retention = serializers.ListField(
        child=serializers.FloatField(allow_null=True),
        help_text="Share of the cohort active in week 0, 1, 2 ... after signing up.",
    )


class CapacityOutput(serializers.Serializer):
    peak_rate_per_min = serializers.FloatField(
        help_text="Sessions asked for in the week's busiest minute (after max_per_run)."
    )
    mean_journey_minutes = serializers.FloatField()
    in_progress_at_peak = serializers.FloatField(help_text="Little's law: peak rate x mean length.")
    needed_users = serializers.FloatField(help_text="In a session, plus a minute's new sessions.")
    active_users = serializers.IntegerField()
    utilization = serializers.FloatField(
        allow_null=True, help_text="needed_users / active_users (null with no active user)."
    )
    sustainable = serializers.BooleanField()
    warning = serializers.SerializerMethodField(
        help_text="When not sustainable: the numbers in words, and what to change."
    )

    def get_warning(self, capacity) -> str | None:
        return capacity.warning()


class InsightsResponse(serializers.Serializer):
    funnels = FunnelOutput(many=True, help_text="The last 24 hours, per template.")
    rhythm = RhythmOutput()
    capacity = CapacityOutput(help_text="Whether the pool sustains the settings (Little's law).")
    daily_active_users = DailyActiveOutput(many=True, help_text="The last 30 days.")
    cohorts = CohortOutput(many=True, help_text="Weekly sign-up cohorts of the last 8 weeks.")
