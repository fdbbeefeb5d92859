"""The Synthetics Studio page: staff only; the numbers are rendered once here, then refreshed by the API."""

from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.csrf import ensure_csrf_cookie

from synthetics import selectors
from synthetics.api.permissions import CHANGE_PERMISSION
from synthetics.models import MAX_PER_RUN_LIMIT, MAX_SESSIONS_PER_MIN

REFRESH_SECONDS = 10


@staff_member_required
@ensure_csrf_cookie
def studio(request):
    return render(
        request,
        "synthetics/studio.html",
        {
            "summary": selectors.status_summary(now=timezone.now()),
            "can_change": request.user.has_perm(CHANGE_PERMISSION),
            "refresh_seconds": REFRESH_SECONDS,
            "max_sessions_per_min": MAX_SESSIONS_PER_MIN,
            "max_per_run_limit": MAX_PER_RUN_LIMIT,
            "title": "Synthetics Studio",
        },
    )
