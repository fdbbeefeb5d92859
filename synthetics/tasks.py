"""django-q2 entry points and the schedule that calls them: module-level functions with stable dotted paths."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone
from django_q.models import Schedule
from django_q.tasks import async_task

from synthetics.errors import RunFailed
from synthetics.models import CleanupStatus
from synthetics.services import run_scheduled
from synthetics.services.cleanup import cleanup_job_hand_off, cleanup_job_work
from synthetics.services.expectations import fidelity_refresh
from synthetics.services.maintenance import tables_tidy
from synthetics.services.runs import MAX_CATCH_UP_MINUTES

logger = logging.getLogger("synthetics")

SCHEDULE_NAME = "synthetics-run"
SCHEDULED_RUN_FUNC = "synthetics.tasks.scheduled_run"
SHARD_RUN_FUNC = "synthetics.tasks.shard_run"
SHARD_GROUP = "synthetics-shards"
# The schedule passes each task the time it was due, as this keyword (django-q2's
# `intended_date_kwarg`): the run covers the minute the scheduler meant.
INTENDED_KWARG = "intended"
TIDY_MARGIN_SECONDS = 5  # the tidy ends this long before the task's timeout at the latest


def scheduled_run(intended: str | datetime | None = None) -> dict:
    """The every-minute run. A failure is already rolled back and in the ledger; the next minute proceeds.

    `intended`: the time the schedule meant this task for (ISO 8601, given by django-q2: the
    schedule's `intended_date_kwarg`): the run covers the minutes up to it, whichever second a
    worker takes the task (see _moment). None (a task queued by hand): this worker's now.

    Split into SYNTHETICS_SHARDS shards (more than one): the runs of shards 1.. are queued as tasks
    of their own for the same `now`, for any worker on any machine to take, and this task runs
    shard 0's. Each shard's run holds its own lock and covers its own minutes, so a shard's task
    that runs late, or twice, still covers each minute of its slice once.
    """
    started = time.monotonic()
    now = _moment(intended)
    shards = settings.SYNTHETICS_SHARDS
    if shards == 1:
        result = _result(now=now)
    else:
        queued = [
            async_task(SHARD_RUN_FUNC, shard, shards, now.isoformat(), group=SHARD_GROUP)
            for shard in range(1, shards)
        ]
        result = {"shards": shards, "queued": queued, **_result(now=now, shards=shards)}
    _fidelity_refreshed()
    _tidied(started)
    return result


def _moment(intended: str | datetime | None) -> datetime:
    """The time a task was meant for; this worker's now when it is not given, when it is ahead of
    this worker's clock (a run never dates rows ahead), or when it is older than a run catches up
    (the cluster was down: the scheduler queues one task for the first missed minute, and the run
    covers the last minutes before now, as after any downtime)."""
    now = timezone.now()
    if not intended:
        return now
    moment = intended if isinstance(intended, datetime) else datetime.fromisoformat(intended)
    if timezone.is_naive(moment):  # django-q2 gives an aware time; a hand-queued one may not be
        moment = timezone.make_aware(moment)
    # In UTC, as every other way in reads a time: the same instant gives the same random stream
    # (run_random reads the window's text), however it was written.
    moment = moment.astimezone(UTC)
    if moment > now or now - moment > timedelta(minutes=MAX_CATCH_UP_MINUTES):
        return now
    return moment


def _fidelity_refreshed() -> None:
    """The last hour's expected-versus-observed verdict, kept for status and /metrics (services.
    expectations); a failure is logged and never fails the task."""
    try:
        fidelity_refresh(now=timezone.now())
    except Exception:
        logger.exception("synthetics fidelity: could not compute expected versus observed")


def _tidied(started: float) -> None:
    """Vacuum and statistics where due (services.maintenance): after the task's work, never in its
    way, in what is left of the task's timeout (less a margin); a failure is logged, and the next
    minute looks again."""
    budget = settings.Q_CLUSTER["timeout"] - TIDY_MARGIN_SECONDS - (time.monotonic() - started)
    if budget < 1:
        return
    try:
        tables_tidy(budget_seconds=budget)
    except Exception:
        logger.exception("synthetics tidy failed")


def shard_run(shard: int, shards: int, now: str) -> dict:
    """One shard's run of the minute the schedule's task saw at `now` (ISO 8601), or of this
    worker's now if its clock is behind the scheduler's (a run never dates rows ahead of its clock)."""
    moment = min(datetime.fromisoformat(now), timezone.now())
    return _result(now=moment, shard=shard, shards=shards)


def _result(**kwargs) -> dict:
    try:
        run = run_scheduled(**kwargs)
    except RunFailed as error:
        return {"run_id": error.run_id, "status": "failed", "error": str(error)}
    return {
        **({"shard": run.shard} if run.shards > 1 else {}),
        "run_id": run.id,
        "status": run.status,
        "sessions_started": run.sessions_started,
        "scene_events_created": run.scene_events_created,
        "mindblock_events_created": run.mindblock_events_created,
        "note": run.note,
    }


def cleanup_continue(job_id: int) -> dict:
    """Work on a cleanup job for one task's budget; queue the next task while rows are left."""
    started = time.monotonic()
    job = cleanup_job_work(job_id, budget_seconds=settings.SYNTHETICS_CLEANUP_TASK_SECONDS)
    if job.status == CleanupStatus.RUNNING:
        cleanup_job_hand_off(job.id)
    elif job.status == CleanupStatus.SUCCEEDED:
        _tidied(started)  # the deleted rows' versions and index entries
    logger.info("cleanup %s %s at %s: %s", job.id, job.status, job.stage, job.counts)
    return {"job_id": job.id, "status": job.status, "stage": job.stage, "counts": job.counts}


def schedule_ensure() -> tuple[Schedule, bool]:
    """Create or repair the every-minute schedule; however often it runs there is exactly one."""
    Schedule.objects.filter(func=SCHEDULED_RUN_FUNC).exclude(name=SCHEDULE_NAME).delete()
    schedule, created = Schedule.objects.update_or_create(
        name=SCHEDULE_NAME,
        defaults={
            "func": SCHEDULED_RUN_FUNC,
            "args": None,
            "kwargs": None,
            "schedule_type": Schedule.MINUTES,
            "minutes": 1,
            "repeats": -1,
            "intended_date_kwarg": INTENDED_KWARG,
        },
    )
    if schedule.next_run is None:
        schedule.next_run = timezone.now()
        schedule.save(update_fields=["next_run"])
    return schedule, created
