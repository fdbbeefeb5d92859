"""The Synthetics Studio page: the API's read permission; rendered once here, then refreshed by the API."""

from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import ensure_csrf_cookie

from synthetics.api.permissions import can_change_synthetics, synthetics_viewer_required
from synthetics.engine.run import MAX_MANUAL_TARGET
from synthetics.models import (
    MAX_INCIDENT_MINUTES,
    MAX_PER_RUN_LIMIT,
    MAX_SESSIONS_PER_MIN,
    MAX_SIGNUPS_PER_DAY,
    JourneyTemplate,
)
from synthetics.selectors import dashboards
from synthetics.selectors.insights import COHORT_WEEKS

REFRESH_SECONDS = 10


@synthetics_viewer_required
@ensure_csrf_cookie
def studio(request):
    summary = dashboards.status_summary(now=timezone.now())
    return render(
        request,
        "synthetics/studio.html",
        {
            "summary": summary,
            "max_manual_target": MAX_MANUAL_TARGET,
            "run_target_max": min(summary.settings.max_per_run, MAX_MANUAL_TARGET),
            "can_change": can_change_synthetics(request.user),
            "refresh_seconds": REFRESH_SECONDS,
            "max_sessions_per_min": MAX_SESSIONS_PER_MIN,
            "max_per_run_limit": MAX_PER_RUN_LIMIT,
            "max_signups_per_day": MAX_SIGNUPS_PER_DAY,
            "cohort_weeks": range(COHORT_WEEKS),
            "max_incident_minutes": MAX_INCIDENT_MINUTES,
            "template_slugs": list(
                JourneyTemplate.objects.filter(is_active=True).values_list("slug", flat=True)
            ),
            "title": "Synthetics Studio",
        },
    )
