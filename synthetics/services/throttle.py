"""The API's per-user call limit, exact under concurrency: the recent calls of one user to one
operation live in a `synthetics_throttle` row that each call locks while it decides.

DRF's throttle keeps the history in the cache and reads, then writes it: two calls at once both read
the same history and both pass (22 of 40 simultaneous calls got through a 20/min limit). Here the
row is locked (SELECT ... FOR UPDATE on PostgreSQL; SQLite's single write lock, taken by BEGIN
IMMEDIATE), so at most `calls` pass in any window of `seconds`, in one web process or many.
"""

from __future__ import annotations

from django.conf import settings
from django.db import OperationalError, transaction

from synthetics.errors import DatabaseBusy
from synthetics.models import ThrottleBucket
from synthetics.services.locks import is_database_locked, sqlite_write_wait

_PERIODS = {
    "s": 1, "sec": 1, "second": 1,
    "m": 60, "min": 60, "minute": 60,
    "h": 3600, "hour": 3600,
    "d": 86400, "day": 86400,
}  # fmt: skip


def throttle_rate_parse(rate: str) -> tuple[int, int]:
    """'20/min' -> (20 calls, in 60 seconds); DRF's units: s, m, h, d and their long names."""
    count, _, period = rate.partition("/")
    try:
        calls, seconds = int(count), _PERIODS[period.strip().lower()]
    except (ValueError, KeyError):
        raise ValueError(f"a throttle rate is '<calls>/<s|min|hour|day>', got {rate!r}") from None
    if calls < 1:
        raise ValueError(f"a throttle rate needs at least one call per period, got {rate!r}")
    return calls, seconds


def throttle_take(*, key: str, calls: int, seconds: int, now: float) -> float | None:
    """Let one call through if fewer than `calls` passed in the last `seconds`: None, else the wait.

    On SQLite the decision needs the write lock: it waits as long as a manual run would, then
    raises DatabaseBusy (the API's 503) instead of hanging.
    """
    wait = settings.SYNTHETICS_MANUAL_LOCK_WAIT_SECONDS
    try:
        with sqlite_write_wait(wait), transaction.atomic():
            ThrottleBucket.objects.bulk_create([ThrottleBucket(key=key)], ignore_conflicts=True)
            bucket = ThrottleBucket.objects.select_for_update().get(key=key)
            history = [moment for moment in bucket.history if moment > now - seconds]
            if len(history) >= calls:
                return max(0.0, min(history) + seconds - now)
            bucket.history = [*history, now]
            bucket.save(update_fields=["history", "updated_at"])
            return None
    except OperationalError as error:
        if is_database_locked(error):
            raise DatabaseBusy(retry_after=max(1, round(wait))) from error
        raise
