"""Per-user throttling of the costly writes (run-now, cleanup): SYNTHETICS_API_BURST_RATE calls in
any such window, exact under concurrency (the counting lives in synthetics.services.throttle)."""

from __future__ import annotations

import time

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from synthetics.api.permissions import SteeringView
from synthetics.services.throttle import throttle_rate_parse, throttle_take


class BurstThrottle(BaseThrottle):
    """At most SYNTHETICS_API_BURST_RATE calls per user and operation; `throttle_bucket` names it."""

    def allow_request(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return True  # refused by the permission check anyway
        calls, seconds = throttle_rate_parse(settings.API_BURST_RATE)
        bucket = getattr(view, "throttle_bucket", view.__class__.__name__)
        self.wait_seconds = throttle_take(
            key=f"{request.user.pk}:{bucket}", calls=calls, seconds=seconds, now=time.time()
        )
        return self.wait_seconds is None

    def wait(self) -> float | None:
        return self.wait_seconds


class CostlyWriteView(SteeringView):  # steers, and each user's calls are throttled (BurstThrottle)
    throttle_classes = [BurstThrottle]
