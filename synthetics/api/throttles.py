"""Per-user throttling of the costly writes (run-now, cleanup), exact under concurrency.

DRF's throttle keeps each user's recent calls in the cache and reads, then writes them: two calls at
once both read the same history and both pass (22 of 40 simultaneous calls got through a 20/min
limit). Here the history lives in a `synthetics_throttle` row that each call locks (SELECT ... FOR
UPDATE on PostgreSQL; SQLite's single write lock, taken by BEGIN IMMEDIATE) while it decides, so
at most SYNTHETICS_API_BURST_RATE calls pass in any window of that length, in one web process or many.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import OperationalError, transaction
from rest_framework.throttling import BaseThrottle

from synthetics.models import ThrottleBucket
from synthetics.services.locks import GeneratorBusy, is_database_locked, sqlite_write_wait

_PERIODS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
}


def parse_rate(rate: str) -> tuple[int, int]:
    """'20/min' -> (20 calls, in 60 seconds)."""
    count, _, period = rate.partition("/")
    calls, seconds = int(count), _PERIODS[period.strip().lower()]
    if calls < 1:
        raise ValueError(f"a throttle rate needs at least one call per period, got {rate!r}")
    return calls, seconds


def throttle_take(*, key: str, calls: int, seconds: int, now: float) -> float | None:
    """Let one call through if fewer than `calls` passed in the last `seconds`: None, else the wait.

    On SQLite the decision needs the write lock: it waits as long as a manual run would, then the
    call is answered 503 "busy" (GeneratorBusy) instead of hanging.
    """
    wait = settings.SYNTHETICS_MANUAL_LOCK_WAIT_SECONDS
    try:
        with sqlite_write_wait(wait):
            return _throttle_take(key=key, calls=calls, seconds=seconds, now=now)
    except OperationalError as error:
        if is_database_locked(error):
            raise GeneratorBusy(
                "The database is busy with another write; try again in a few seconds.",
                retry_after=max(1, round(wait)),
            ) from error
        raise


def _throttle_take(*, key: str, calls: int, seconds: int, now: float) -> float | None:
    with transaction.atomic():
        ThrottleBucket.objects.bulk_create([ThrottleBucket(key=key)], ignore_conflicts=True)
        bucket = ThrottleBucket.objects.select_for_update().get(key=key)
        history = [moment for moment in bucket.history if moment > now - seconds]
        if len(history) >= calls:
            return max(0.0, min(history) + seconds - now)
        bucket.history = [*history, now]
        bucket.save(update_fields=["history", "updated_at"])
        return None


class BurstThrottle(BaseThrottle):
    """At most SYNTHETICS_API_BURST_RATE calls per user and operation; `throttle_bucket` names it."""

    def allow_request(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return True  # refused by the permission check anyway
        calls, seconds = parse_rate(settings.API_BURST_RATE)
        bucket = getattr(view, "throttle_bucket", view.__class__.__name__)
        self.wait_seconds = throttle_take(
            key=f"{request.user.pk}:{bucket}", calls=calls, seconds=seconds, now=time.time()
        )
        return self.wait_seconds is None

    def wait(self) -> float | None:
        return self.wait_seconds
