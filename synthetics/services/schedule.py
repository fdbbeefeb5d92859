"""The django-q2 schedule that runs the generator every minute, created idempotently by name."""

from __future__ import annotations

from django.utils import timezone
from django_q.models import Schedule

from synthetics.tasks import SCHEDULE_NAME, TICK_FUNC


def schedule_ensure() -> tuple[Schedule, bool]:
    """Create or repair the every-minute schedule; however often it runs there is exactly one."""
    Schedule.objects.filter(func=TICK_FUNC).exclude(name=SCHEDULE_NAME).delete()
    schedule, created = Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": TICK_FUNC,
            "args": None,
            "kwargs": None,
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
        },
    )
    if schedule.next_run is None:
        schedule.next_run = timezone.now()
        schedule.save(update_fields=["next_run"])
    return schedule, created
