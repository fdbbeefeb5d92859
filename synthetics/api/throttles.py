"""Per-user throttling of the costly writes (run-now, cleanup), shared by all web worker processes.

The counts live in the default cache: the database cache table, or Redis when REDIS_URL is set.
"""

from rest_framework.throttling import UserRateThrottle


class BurstThrottle(UserRateThrottle):
    scope = "synthetics-burst"

    def get_cache_key(self, request, view):
        key = super().get_cache_key(request, view)
        return f"{key}:{getattr(view, 'throttle_bucket', view.__class__.__name__)}"
