"""The Synthetics Studio page (the API's read permission; rendered once here, then refreshed by the
API) and /metrics for Prometheus (a bearer token, or loopback only)."""

import ipaddress

from django.conf import settings
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.utils.text import capfirst
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from synthetics.access import can_change_synthetics, synthetics_viewer_required
from synthetics.engine.run import MAX_MANUAL_TARGET, manual_target_limit
from synthetics.engine.types import GENERATOR_SETTINGS
from synthetics.models import (
    MAX_INCIDENT_MINUTES,
    SETTING_RANGES,
    JourneyTemplate,
    SyntheticSettings,
)
from synthetics.selectors.insights import COHORT_WEEKS
from synthetics.selectors.metrics import metrics_text
from synthetics.selectors.run_inputs import generator_settings
from synthetics.selectors.status import status_summary

REFRESH_SECONDS = 10
# A step of the number inputs' arrows, by the setting's kind (the API reads any value in range).
_STEPS = {int: "1", float: "0.01"}


def _setting_fields() -> list[dict]:
    """The Studio's settings form: each numeric generator setting in the list's order
    (engine.types.GENERATOR_SETTINGS) with its kind, range (models.SETTING_RANGES), label and
    help (the model's field); `enabled` is the Pause/Resume button."""
    fields = []
    for name, kind in GENERATOR_SETTINGS:
        if kind is bool:
            continue
        field = SyntheticSettings._meta.get_field(name)
        low, high = SETTING_RANGES[name]
        label = capfirst(field.verbose_name) + (f" ({low}–{high})" if kind is float else "")
        fields.append(
            {
                "name": name,
                "kind": kind.__name__,
                "min": low,
                "max": high,
                "step": _STEPS[kind],
                "label": label,
                "help": str(field.help_text),
            }
        )
    return fields


@synthetics_viewer_required
@ensure_csrf_cookie
def studio(request):
    summary = status_summary(now=timezone.now())
    setting_fields = _setting_fields()
    return render(
        request,
        "synthetics/studio.html",
        {
            "summary": summary,
            "max_manual_target": MAX_MANUAL_TARGET,
            "run_target_max": manual_target_limit(generator_settings(summary.settings)),
            "can_change": can_change_synthetics(request.user),
            "refresh_seconds": REFRESH_SECONDS,
            "setting_fields": setting_fields,  # for studio.js, as JSON
            "setting_inputs": [
                {**field, "value": getattr(summary.settings, field["name"])}
                for field in setting_fields
            ],
            "cohort_weeks": range(COHORT_WEEKS),
            "max_incident_minutes": MAX_INCIDENT_MINUTES,
            "template_slugs": list(
                JourneyTemplate.objects.filter(is_active=True).values_list("slug", flat=True)
            ),
            "title": "Synthetics Studio",
        },
    )


_PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def _direct_from_loopback(request) -> bool:
    """A request from this machine that no proxy forwarded (a proxy on the same host would make
    the whole world look like loopback, so a forwarding header refuses it)."""
    if any(header in request.headers for header in _PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _plain(status: int, text: str, **headers) -> HttpResponse:
    return HttpResponse(
        text + "\n", status=status, content_type="text/plain; charset=utf-8", headers=headers
    )


@require_GET
def metrics(request):
    token = settings.SYNTHETICS_METRICS_TOKEN
    if token:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not constant_time_compare(given.strip(), token):
            return _plain(
                401,
                "/metrics needs Authorization: Bearer <SYNTHETICS_METRICS_TOKEN>.",
                **{"WWW-Authenticate": "Bearer"},
            )
    elif not _direct_from_loopback(request):
        return _plain(
            403,
            "/metrics is open to loopback only while SYNTHETICS_METRICS_TOKEN is unset: set it and "
            "scrape with that bearer token.",
        )
    # The classic text format, which every Prometheus since 2.0 reads (our names are plain ASCII).
    return HttpResponse(metrics_text(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
