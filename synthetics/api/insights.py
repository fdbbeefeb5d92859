"""Insights: funnels of the last 24 h, the rhythm and the cap's trim, capacity, daily active users and
cohorts."""

from __future__ import annotations

from django.core.cache import cache
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from synthetics.api.errors import READ_ERRORS, error_responses
from synthetics.api.permissions import SyntheticsView
from synthetics.selectors.insights import (
    CACHE_KEY,
    cohort_retention,
    daily_active_users,
    engagement,
    funnels,
    retention_curve,
    rhythm_and_capacity,
)


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
    peak_rate = serializers.FloatField(
        help_text="The highest R over the next week (hourly, and now)."
    )
    quietest_rate = serializers.FloatField()
    cap_trimmed_share = serializers.FloatField(
        help_text="Share of the next week's sessions that max_per_run trims (computed)."
    )
    expected_sessions_week = serializers.FloatField()


class DailyActiveOutput(serializers.Serializer):
    day = serializers.DateField()
    users = serializers.IntegerField(
        allow_null=True,
        help_text="Sim users who started a session that UTC day; null (no data yet) on a day "
        "before the first session kept, 0 on a day after it with none.",
    )


class CohortOutput(serializers.Serializer):
    cohort = serializers.DateField(help_text="Monday of the sign-up week.")
    users = serializers.IntegerField()
    retention = serializers.ListField(
        child=serializers.FloatField(allow_null=True),
        help_text="Share of the cohort active in week 0, 1, 2 ... after signing up; null (no "
        "data yet) for a week that ended before the first session kept, or an empty cohort.",
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


class DaysActiveOutput(serializers.Serializer):
    days = serializers.IntegerField()
    users = serializers.IntegerField()


class EngagementOutput(serializers.Serializer):
    days = serializers.IntegerField(help_text="The window: the last 28 UTC days, today included.")
    mau = serializers.IntegerField(help_text="Sim users with a session in the window.")
    wau = serializers.IntegerField(help_text="Sim users with a session in its last 7 days.")
    dau_mean = serializers.FloatField()
    dau_over_mau = serializers.FloatField(allow_null=True, help_text="Mean DAU over MAU.")
    dau_over_wau = serializers.FloatField(
        allow_null=True, help_text="The last 7 days' mean DAU over their WAU."
    )
    days_active = DaysActiveOutput(
        many=True, help_text="How many users were active on 1, 2 ... 28 days of the window."
    )


class RetentionPointOutput(serializers.Serializer):
    day = serializers.IntegerField(help_text="Calendar days since the sign-up day (0: that day).")
    users = serializers.IntegerField(help_text="Sign-ups of the last 60 days whose day has begun.")
    share = serializers.FloatField(allow_null=True, help_text="Of them, the share active that day.")


class InsightsResponse(serializers.Serializer):
    funnels = FunnelOutput(many=True, help_text="The last 24 hours, per template.")
    rhythm = RhythmOutput()
    capacity = CapacityOutput(help_text="Whether the pool sustains the settings (Little's law).")
    daily_active_users = DailyActiveOutput(many=True, help_text="The last 30 days.")
    cohorts = CohortOutput(many=True, help_text="Weekly sign-up cohorts of the last 8 weeks.")
    engagement = EngagementOutput(help_text="The power-user curve and stickiness (28 days).")
    retention_curve = RetentionPointOutput(
        many=True, help_text="Sign-ups' retention by day since signing up (0-30)."
    )


CACHE_SECONDS = 60


class InsightsView(SyntheticsView):
    @extend_schema(
        operation_id="synthetics_insights",
        summary="Funnels of the last 24 h, the rhythm and the cap's trim, daily active users, cohorts",
        responses={200: InsightsResponse, **error_responses(*READ_ERRORS)},
    )
    def get(self, request):
        # The same for every reader and slow to change: computed at most once a minute, so open
        # Studio tabs refreshing every 10 s don't recompute it each time.
        return Response(cache.get_or_set(CACHE_KEY, _insights_body, CACHE_SECONDS))


def _insights_body() -> dict:
    now = timezone.now()
    rhythm, capacity = rhythm_and_capacity(now=now)
    body = {
        "funnels": funnels(now=now),
        "rhythm": rhythm,
        "capacity": capacity,
        "daily_active_users": daily_active_users(now=now),
        "cohorts": cohort_retention(now=now),
        "engagement": engagement(now=now),
        "retention_curve": retention_curve(now=now),
    }
    return InsightsResponse(body).data
