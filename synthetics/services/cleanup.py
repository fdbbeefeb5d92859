"""Deleting old synthetic activity: tagged rows only, set-based, in batches a job can resume.

A cleanup walks four stages in order: scene events, mindblock events, the journeys left without
events, then the ledger rows of runs no row left names (the ledger's policy: a run's record stays
exactly as long as a row it wrote does). Each stage is a keyset walk over an index (events by the synthetic-tag index in
created_at order, journeys by (is_synthetic, started_at)): a batch deletes the next CLEANUP_BATCH
rows of ours after the stage's lower bound, in one statement on PostgreSQL (a DELETE of the array
of ids a LIMITed index scan picks), and the bound moves to the newest row it deleted. So no batch re-reads what an earlier
batch deleted (dead index entries stay behind until VACUUM, which may never come when autovacuum is
off), and a stopped cleanup resumes exactly where it was.

A cleanup is a `CleanupJob`: its cursor (stage, lower bound) and its counts move in the same
transaction as the batch they describe, so the counts are exact even if the worker dies. The API
works on a job for a few seconds and hands what is left to django-q2 tasks of bounded length
(`synthetics.tasks.cleanup_continue`); the command works on it to the end with a progress bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import (
    Exists,
    OuterRef,
    QuerySet,
    TextField,
)
from django.db.models.expressions import RawSQL

from synthetics.errors import Conflict, whole_number_required
from synthetics.models import (
    RUN_EVENTS_START,
    CleanupJob,
    CleanupStage,
    CleanupStatus,
    Journey,
    JourneySceneEvent,
    JourneyStatus,
    MindblockEvent,
    RowOrigin,
    RunStatus,
    SyntheticRun,
)
from synthetics.services.writers import run_hours_add
from synthetics.target.mapping import target_in_force
from synthetics.target.tables import event_models

CLEANUP_BATCH = 10_000
# The longest a batch's statement may take (PostgreSQL): well inside a task's budget.
BATCH_STATEMENT_SECONDS = 15
DEFAULT_OLDER_THAN_HOURS = 168  # a week
MAX_OLDER_THAN_HOURS = 24 * 365 * 10
# A running job whose cursor has not moved for this long has lost its worker (the cluster stopped,
# the task was killed): a new cleanup may take over instead of being refused.
STALE_AFTER = timedelta(minutes=2)
# SQLite deletes by a list of ids: this many bound parameters per statement.
_SQLITE_IDS_PER_STATEMENT = 500

_STAGE_ORDER = (
    CleanupStage.SCENE_EVENTS,
    CleanupStage.MINDBLOCK_EVENTS,
    CleanupStage.SESSIONS,
    CleanupStage.JOURNEYS,
    CleanupStage.RUNS,
)
_COUNT_FIELDS = {
    CleanupStage.SCENE_EVENTS: "scene_events_deleted",
    CleanupStage.MINDBLOCK_EVENTS: "mindblock_events_deleted",
    CleanupStage.SESSIONS: "sessions_deleted",
    CleanupStage.JOURNEYS: "journeys_deleted",
    CleanupStage.RUNS: "runs_deleted",
}

# The event kind (tables.event_models) each event stage deletes from.
_STAGE_KINDS = {
    CleanupStage.SCENE_EVENTS: "scene",
    CleanupStage.MINDBLOCK_EVENTS: "mindblock",
    CleanupStage.SESSIONS: "session",
}


@dataclass(frozen=True, slots=True)
class CleanupResult:
    cutoff: datetime
    dry_run: bool
    counts: dict[str, int]
    job: CleanupJob | None = None

    @property
    def done(self) -> bool:
        return self.job is None or self.job.status != CleanupStatus.RUNNING


def cleanup_cutoff(*, older_than_hours: int, now: datetime) -> datetime:
    whole_number_required("older_than_hours", older_than_hours, 1, MAX_OLDER_THAN_HOURS)
    return now - timedelta(hours=older_than_hours)


def cleanup_counts(*, cutoff: datetime) -> dict[str, int]:
    """What a cleanup with this cutoff would delete now (one indexed count per table)."""
    sessions = event_models().get("session")
    return {
        "journey_scene_events": _old_events(event_models()["scene"], cutoff).count(),
        "mindblock_events": _old_events(event_models()["mindblock"], cutoff).count(),
        "sessions": _old_events(sessions, cutoff).count() if sessions is not None else 0,
        "journeys": _journeys_left_without_events(cutoff).count(),
        "synthetic_runs": _runs_left_unnamed(cutoff).count(),
    }


def cleanup_synthetic(
    *,
    older_than_hours: int,
    dry_run: bool,
    now: datetime,
    budget_seconds: float | None = None,
    requested_by: str = "",
    progress: Callable[[CleanupJob], None] | None = None,
) -> CleanupResult:
    """Delete (or with dry_run only count) synthetic activity older than the cutoff.

    Events go by their synthetic tag and created_at (the tag index); journeys by is_synthetic and an
    end before the cutoff, so an active journey is never touched. Real rows are never selected. A
    run's ledger row goes once no row names it; the hourly sums keep what it wrote. With a budget, the job stops after the batch
    that crosses it and stays `running` for a task to continue (`cleanup_job_continue`).
    """
    cutoff = cleanup_cutoff(older_than_hours=older_than_hours, now=now)
    if dry_run:
        return CleanupResult(cutoff=cutoff, dry_run=True, counts=cleanup_counts(cutoff=cutoff))
    job = cleanup_job_start(
        older_than_hours=older_than_hours, cutoff=cutoff, now=now, requested_by=requested_by
    )
    job = cleanup_job_work(job.id, budget_seconds=budget_seconds, progress=progress)
    return CleanupResult(cutoff=cutoff, dry_run=False, counts=job.counts, job=job)


def cleanup_job_start(
    *, older_than_hours: int, cutoff: datetime, now: datetime, requested_by: str
) -> CleanupJob:
    """A new job, unless one is still moving (Conflict); a job that stopped moving is taken over.

    The database keeps it to one running job (a partial unique constraint): of two requests at the
    same moment, the second waits for the first to commit and is then refused.
    """
    try:
        with transaction.atomic():
            running = list(
                CleanupJob.objects.select_for_update().filter(status=CleanupStatus.RUNNING)
            )
            for job in running:
                if job.updated_at > now - STALE_AFTER:
                    raise _still_running(job)
            for stale in running:
                stale.status = CleanupStatus.FAILED
                stale.finished_at = now
                stale.error = (
                    f"Stopped moving at {stale.updated_at.isoformat()} (its worker was lost); "
                    "a new cleanup took over (the rows it had deleted stay deleted)."
                )
                stale.save(update_fields=["status", "finished_at", "error", "updated_at"])
            return CleanupJob.objects.create(
                older_than_hours=older_than_hours,
                cutoff=cutoff,
                requested_by=requested_by,
                stage=_STAGE_ORDER[0],
            )
    except IntegrityError:
        job = CleanupJob.objects.filter(status=CleanupStatus.RUNNING).first()
        raise _still_running(job) from None


def _still_running(job: CleanupJob | None) -> Conflict:
    if job is None:
        return Conflict("Another cleanup job has just started; try again when it is done.")
    return Conflict(
        f"Cleanup job {job.id} is still running (cutoff {job.cutoff.isoformat()}); "
        f"follow it at /api/synthetics/cleanup/{job.id} and try again when it is done.",
        extra={"job_id": job.id},
    )


def cleanup_job_work(
    job_id: int,
    *,
    budget_seconds: float | None,
    progress: Callable[[CleanupJob], None] | None = None,
) -> CleanupJob:
    """Delete batch after batch for the job until it is done or the budget is spent.

    Each batch locks the job row, reads its cursor, deletes and moves the cursor and counts, all in
    one transaction: two workers handed the same job take turns, and a killed worker loses at most
    its batch in flight, which is rolled back with the cursor.
    """
    started = time.monotonic()
    while True:
        failure: Exception | None = None
        with transaction.atomic():
            job = CleanupJob.objects.select_for_update().get(pk=job_id)
            if job.status != CleanupStatus.RUNNING:
                return job
            try:
                _batch(job)
            except Exception as error:  # the batch's savepoint is rolled back; record the verdict
                failure = error
                job.refresh_from_db()
                job.status = CleanupStatus.FAILED
                job.error = f"{type(error).__name__}: {error}"
                job.finished_at = _now()
            job.save()
        if failure is not None:
            raise failure
        if progress is not None:
            progress(job)
        if job.status != CleanupStatus.RUNNING:
            return job
        if budget_seconds is not None and time.monotonic() - started >= budget_seconds:
            return job


def _now() -> datetime:
    from django.utils import timezone

    return timezone.now()


def _batch(job: CleanupJob) -> None:
    """One batch of the job's current stage; moves to the next stage when the stage is exhausted."""
    stage = CleanupStage(job.stage)
    with transaction.atomic():  # a savepoint: a failed batch is undone, the job row is not
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # A batch that outruns its bound fails, recorded, instead of outliving the task's
                # timeout; foreign keys (deferred by Django) are checked here, inside the savepoint.
                # No JIT: a batch's estimated cost (a ledger look-up per row) crosses its
                # threshold, and compiling costs more than the batch's own work saves.
                cursor.execute(
                    "SELECT set_config('statement_timeout', %s, true), set_config('jit', 'off', true)",
                    [f"{int(BATCH_STATEMENT_SECONDS * 1000)}ms"],
                )
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        if stage == CleanupStage.JOURNEYS:
            deleted, lower = _delete_journeys_window(cutoff=job.cutoff, lower=job.lower_bound)
        elif stage == CleanupStage.RUNS:
            deleted, lower = _delete_runs(cutoff=job.cutoff, lower=job.lower_bound)
        else:
            deleted, lower = _delete_events(stage, cutoff=job.cutoff, lower=job.lower_bound)
    field = _COUNT_FIELDS[stage]
    setattr(job, field, getattr(job, field) + deleted)
    if lower is not None:
        job.lower_bound = lower
        return
    later = list(_STAGE_ORDER[_STAGE_ORDER.index(stage) + 1 :])
    if "session" not in event_models():  # no sessions table (demo mode, or none mapped)
        later = [next_stage for next_stage in later if next_stage != CleanupStage.SESSIONS]
    job.lower_bound = None
    if later:
        job.stage = later[0]
    else:
        job.stage = CleanupStage.DONE
        job.status = CleanupStatus.SUCCEEDED
        job.finished_at = _now()


def _delete_events(
    stage: CleanupStage, *, cutoff: datetime, lower: datetime | None
) -> tuple[int, datetime | None]:
    """Delete the next CLEANUP_BATCH of our old events from `lower` on, in created_at order.

    Returns the rows deleted and where the next batch starts: the newest created_at deleted (>=,
    so rows that share it but missed this batch come next), or None when the stage is exhausted.
    """
    model = event_models().get(_STAGE_KINDS[stage])
    if model is None:  # no sessions table: nothing to do
        return 0, None
    rows = _old_events(model, cutoff)
    if lower is not None:
        rows = rows.filter(created_at__gte=lower)
    deleted, newest = _delete_rows(rows, key="created_at", limit=CLEANUP_BATCH)
    return deleted, (newest if deleted == CLEANUP_BATCH else None)


def _delete_journeys_window(
    *, cutoff: datetime, lower: datetime | None
) -> tuple[int, datetime | None]:
    """Delete our finished old journeys left without events among the next CLEANUP_BATCH or so.

    The window is a range of started_at: from `lower` to the start of the CLEANUP_BATCH-th of our
    journeys after it (both included; an index look-up), so the database probes each journey of the
    window for events instead of weighing every event against every journey. The next window
    starts a microsecond later (the timestamps' own resolution); None when this was the last one.
    """
    ours = Journey.objects.filter(is_synthetic=True, started_at__lt=cutoff)
    if lower is not None:
        ours = ours.filter(started_at__gte=lower)
    starts = ours.order_by("started_at").values_list("started_at", flat=True)
    upper = starts[CLEANUP_BATCH - 1 : CLEANUP_BATCH].first()
    rows = _journeys_without_any_event(cutoff)
    if lower is not None:
        rows = rows.filter(started_at__gte=lower)
    if upper is not None:
        rows = rows.filter(started_at__lte=upper)
    deleted, _ = _delete_rows(rows, key="started_at")
    return deleted, (None if upper is None else upper + timedelta(microseconds=1))


def _delete_runs(*, cutoff: datetime, lower: datetime | None) -> tuple[int, datetime | None]:
    """Delete the next CLEANUP_BATCH ledger rows of succeeded runs that ended before the cutoff and
    that no row left names, in window_end order (the keyset as for events), and take what they
    wrote off their hours' sums in the same transaction (a backfill over the cleaned minutes then
    adds them back once, not twice)."""
    rows = _runs_unnamed(cutoff)
    if lower is not None:
        rows = rows.filter(window_end__gte=lower)
    picked = list(rows.order_by("window_end", "pk")[:CLEANUP_BATCH])
    if not picked:
        return 0, None
    SyntheticRun.objects.filter(pk__in=[run.pk for run in picked]).delete()
    run_hours_add(picked, sign=-1)
    newest = picked[-1].window_end
    return len(picked), (newest if len(picked) == CLEANUP_BATCH else None)


def _delete_rows(
    rows: QuerySet, *, key: str, limit: int | None = None
) -> tuple[int, datetime | None]:
    """Delete the rows of the queryset (the first `limit` in `key` order) in one statement.

    Returns the rows deleted and their newest `key`.
    """
    table = rows.model._meta.db_table
    quoted = connection.ops.quote_name(table)
    column = connection.ops.quote_name(rows.model._meta.get_field(key).column)
    if limit is not None:
        rows = rows.order_by(key)
    if connection.vendor == "postgresql":
        # The rows' physical addresses as an array, taken in the same statement: the DELETE goes
        # straight to each (a TID scan), where a join with the batch could hash it against a scan
        # of the whole table and a list of ids would walk the primary key once per row.
        tids = rows.annotate(tid=RawSQL(f"{quoted}.ctid", (), output_field=TextField()))
        tids = tids.values_list("tid")
        if limit is not None:
            tids = tids[:limit]
        select_sql, params = tids.query.sql_with_params()
        origins = ""
        origin_table = getattr(rows.model, "origin_table", "")
        if origin_table:  # an attached table whose rows' origin is ours: it goes with the row
            pk = connection.ops.quote_name(rows.model._meta.pk.column)
            column = f"{column} AS key, {quoted}.{pk}::text AS row_key"
            origins = (
                f", origins AS (DELETE FROM {connection.ops.quote_name(RowOrigin._meta.db_table)} "
                f"o USING gone WHERE o.{connection.ops.quote_name('table')} = %s "
                f"AND o.row_key = gone.row_key)"
            )
            params = (*params, origin_table)
        else:
            column = f"{column} AS key"
        with connection.cursor() as cursor:
            cursor.execute(
                f"WITH gone AS (DELETE FROM {quoted} WHERE ctid = ANY(ARRAY({select_sql})) "
                f"RETURNING {column}){origins} SELECT count(*), max(key) FROM gone",
                params,
            )
            deleted, newest = cursor.fetchone()
        return deleted, newest
    if limit is not None:
        rows = rows[:limit]
    picked = list(rows.values_list("pk", key))
    if not picked:
        return 0, None
    prepare = rows.model._meta.pk.get_db_prep_value  # a journey's UUID is text on SQLite
    ids = [prepare(pk, connection) for pk, _ in picked]
    with connection.cursor() as cursor:
        for start in range(0, len(ids), _SQLITE_IDS_PER_STATEMENT):
            chunk = ids[start : start + _SQLITE_IDS_PER_STATEMENT]
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(f"DELETE FROM {quoted} WHERE id IN ({marks})", chunk)
    return len(ids), max(moment for _, moment in picked)


def _old_events(model, cutoff: datetime) -> QuerySet:
    return model.objects.synthetic().filter(created_at__lt=cutoff)


def _our_finished_journeys(cutoff: datetime) -> QuerySet[Journey]:
    # started_at < cutoff follows from ended_at < cutoff (a constraint: the end is not before the
    # start) and bounds the walk on the (is_synthetic, started_at) index.
    return (
        Journey.objects.synthetic()
        .filter(started_at__lt=cutoff, ended_at__lt=cutoff)
        .exclude(status=JourneyStatus.ACTIVE)
    )


def _journeys_without_any_event(cutoff: datetime) -> QuerySet[Journey]:
    journeys = _our_finished_journeys(cutoff)
    for model in _events_naming_journeys():
        journeys = journeys.exclude(Exists(model.objects.filter(journey=OuterRef("pk"))))
    return journeys


def _events_naming_journeys() -> tuple:
    """The event tables whose rows can name one of our journeys by a foreign key: the demo ones.
    An attached application's tables cannot (our journeys live in our own schema), so there a
    finished journey goes once it ends before the cutoff; its events, all dated before its end,
    went in the stages before."""
    if target_in_force() is not None:
        return ()
    return (JourneySceneEvent, MindblockEvent)


def _journeys_left_without_events(cutoff: datetime) -> QuerySet[Journey]:
    """Our finished journeys that end before the cutoff and keep no event once cleanup is done.

    An event is kept when it is not ours or not older than the cutoff. Asked before the events are
    deleted (a dry run) or after (the real run), the answer is the same, and a journey that still
    has any event is never deleted, so no cascade can reach a row we did not write. After the
    events' stages every event left is a kept one, so the real run asks the cheaper question
    (`_journeys_without_any_event`), whose answer is then the same.
    """
    kept: list[Exists] = []
    for model in _events_naming_journeys():
        of_journey = model.objects.filter(journey=OuterRef("pk"))
        kept += [
            Exists(of_journey.real()),
            Exists(of_journey.synthetic().filter(created_at__gte=cutoff)),
        ]
    journeys = _our_finished_journeys(cutoff)
    for condition in kept:
        journeys = journeys.exclude(condition)
    return journeys


CLEANUP_TASK_FUNC = "synthetics.tasks.cleanup_continue"


def cleanup_job_hand_off(job_id: int) -> None:
    """Queue a django-q2 task that continues the job (after the caller's transaction commits)."""
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task(CLEANUP_TASK_FUNC, job_id))


def _tagged_events_of_run(model) -> QuerySet:
    """Events that claim the outer run (the boolean tag and its id, or an origin row naming it),
    dated where it writes: from its `events_start` (annotated by _runs_unnamed) to the end of its
    window."""
    return model.objects.claiming(OuterRef("pk")).filter(
        created_at__gt=OuterRef("events_start"), created_at__lte=OuterRef("window_end")
    )


def _runs_unnamed(cutoff: datetime) -> QuerySet[SyntheticRun]:
    """Succeeded runs that ended before the cutoff and that no journey and no tagged event where it
    writes names (asked once the events and journeys are gone: the real run's last stage).

    A run writes its events from its `events_from` (or its window's start) to its window's end,
    so once its events are gone, a probe of the tag index over that stretch finds none. A row
    dated outside it that names the run (only a forged one can) would read as real once the run is
    gone, so it is never deleted by a later cleanup: the safe direction. Runs that wrote nothing
    (skipped, failed) are the scheduled runs' to prune, after 30 days (services/runs.py).
    """
    runs = SyntheticRun.objects.filter(status=RunStatus.SUCCEEDED, window_end__lt=cutoff).annotate(
        events_start=RUN_EVENTS_START
    )
    runs = runs.exclude(Exists(Journey.objects.filter(run=OuterRef("pk"))))
    for model in event_models().values():
        runs = runs.exclude(Exists(_tagged_events_of_run(model)))
    return runs


def _runs_left_unnamed(cutoff: datetime) -> QuerySet[SyntheticRun]:
    """What `_runs_unnamed` will say once the events and journeys cleanup deletes are gone: the
    dry run's question, asked before any of them is deleted.

    Journeys kept by the cleanup still name their run. Of the tagged events in a succeeded run's
    span that name it, the cleanup deletes those that are ours (all older than the cutoff, as the
    run ended before it) and keeps the others (without the run's key: a look-alike), which then
    keep the run's ledger row too.
    """
    doomed_journeys = _journeys_left_without_events(cutoff).values("pk")
    runs = SyntheticRun.objects.filter(status=RunStatus.SUCCEEDED, window_end__lt=cutoff).annotate(
        events_start=RUN_EVENTS_START
    )
    runs = runs.exclude(
        Exists(Journey.objects.filter(run=OuterRef("pk")).exclude(pk__in=doomed_journeys))
    )
    for model in event_models().values():
        kept = (
            model.objects.real()
            .claiming(OuterRef("pk"))
            .filter(created_at__gt=OuterRef("events_start"), created_at__lte=OuterRef("window_end"))
        )
        runs = runs.exclude(Exists(kept))
    return runs
