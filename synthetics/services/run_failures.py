"""The one failure rule of every run, and the lock a run's work holds (synthetics.errors).

A run's work goes inside `run_attempt`: one transaction under the generator lock, its failures
handled by `failures_recorded`:
- a refusal (an ApplicationError) is raised before anything is written, and nothing is recorded;
- the lock not coming in time is recorded as a failed run and raised as GeneratorBusy;
- any other failure is rolled back, recorded in the ledger as a failed run (its traceback kept) and
  raised as RunFailed;
- an interruption (django-q2's task timeout raises SystemExit inside the run, Ctrl-C raises
  KeyboardInterrupt) is rolled back, recorded the same way and raised as itself.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings as django_settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from synthetics.engine.minute import floor_minute
from synthetics.errors import ApplicationError, GeneratorBusy, RunFailed
from synthetics.models import RunStatus, RunTrigger, SyntheticRun
from synthetics.services.locks import (
    RunDeadline,
    RunOverBudget,
    generator_transaction,
    is_database_locked,
    is_statement_timeout,
    run_deadline_start,
    sqlite_write_wait,
)
from synthetics.services.writers import run_counters_add

logger = logging.getLogger("synthetics")


class RunInterrupted(RuntimeError):
    """The run was stopped from outside (django-q2's task timeout, Ctrl-C) and rolled back."""


@dataclass(frozen=True, slots=True)
class Attempt:
    """A run under way: when it started, and its time budget."""

    started_at: datetime
    deadline: RunDeadline


@contextlib.contextmanager
def run_attempt(
    *, trigger: str, now: datetime, target: int | None = None, shard: int = 0, shards: int = 1
) -> Iterator[Attempt]:
    """A run's work in one transaction under the generator lock, with the one failure rule.

    A manual run answers a person or a cron waiting on HTTP: it waits a few seconds for a run in
    progress, then says the generator is busy, and commits durably. Scheduled and backfill runs
    wait up to their budget and commit without waiting for the disk (locks.generator_transaction).
    A scheduled shard's run holds its shard's lock beside the others'; every other run (a backfill
    of a slice too) holds the generator lock alone.
    """
    started_at = timezone.now()
    manual = trigger == RunTrigger.MANUAL
    deadline = run_deadline_start(manual=manual)
    split = shards > 1 and trigger == RunTrigger.SCHEDULED
    with (
        cyclic_gc_paused(),
        failures_recorded(
            trigger=trigger,
            now=now,
            target=target,
            started_at=started_at,
            deadline=deadline,
            shard=shard,
            shards=shards,
        ),
        generator_transaction(
            deadline=deadline,
            synchronous_commit=manual,
            shard=(shard, shards) if split else None,
        ),
    ):
        yield Attempt(started_at, deadline)


@contextlib.contextmanager
def failures_recorded(
    *,
    trigger: str,
    now: datetime,
    started_at: datetime,
    target: int | None = None,
    deadline: RunDeadline | None = None,
    shard: int = 0,
    shards: int = 1,
) -> Iterator[None]:
    """The failure rule around a run's work (its transaction inside, already rolled back when a
    failure reaches this): see the module's docstring. `shard`/`shards`: whose minutes a failed
    run's ledger row names."""
    where = {
        "trigger": trigger,
        "now": now,
        "target": target,
        "started_at": started_at,
        "shard": shard,
        "shards": shards,
    }
    try:
        yield
    except ApplicationError:
        raise  # a refusal: rolled back, nothing written, nothing to record
    except GeneratorBusy as error:
        raise _busy_recorded(error=error, **where) from error
    except Exception as error:
        if deadline is not None and is_statement_timeout(error):
            # PostgreSQL's statement_timeout: the budget, spent in SQL
            cancelled = error
            error = RunOverBudget(
                f"the run used up its time budget of {deadline.budget_seconds:g} s in a database "
                "statement; it was rolled back"
            )
            error.__cause__ = cancelled  # the ledger's traceback shows the cancelled statement
        run = _failure_recorded(error=error, **where)
        raise RunFailed(f"The run failed and was rolled back: {error}", run_id=run.id) from error
    except BaseException as error:
        # Record how the run ended, then let the interruption go on (even when the record cannot
        # be written).
        try:
            _failure_recorded(
                error=RunInterrupted(_interruption_message(error)), cause=error, **where
            )
        except Exception:
            logger.exception("synthetics run: could not record the interrupted run")
        raise


_gc_pause_lock = threading.Lock()
_gc_pause = {"depth": 0, "was_enabled": False}


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """A run allocates a few objects per step of every due journey (hundreds of thousands at scale)
    and frees them by reference counting: the cyclic collector's passes over them, triggered by
    the allocations alone, took a sixth of a large run. Paused while any run or span is under way
    (a depth count: the backfill's two threads nest), then back as it was."""
    with _gc_pause_lock:
        if _gc_pause["depth"] == 0:
            _gc_pause["was_enabled"] = gc.isenabled()
            gc.disable()
        _gc_pause["depth"] += 1
    try:
        yield
    finally:
        with _gc_pause_lock:
            _gc_pause["depth"] -= 1
            if _gc_pause["depth"] == 0 and _gc_pause["was_enabled"]:
                gc.enable()


def _interruption_message(error: BaseException) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "the run was interrupted (Ctrl-C) and rolled back"
    if isinstance(error, SystemExit):
        return (
            f"the run was stopped by its worker ({error or 'SystemExit'}): most likely django-q2's "
            f"task timeout of {django_settings.Q_CLUSTER.get('timeout')} s; it was rolled back"
        )
    return f"the run was stopped by {type(error).__name__}: {error}; it was rolled back"


def _failed_row(
    *,
    trigger: str,
    now: datetime,
    target: int | None,
    started_at: datetime,
    note: str,
    error="",
    shard: int = 0,
    shards: int = 1,
) -> SyntheticRun:
    """The ledger row of a run that wrote nothing, dated where its window would end (unsaved)."""
    window_end = now if trigger == RunTrigger.MANUAL else floor_minute(now)
    return SyntheticRun(
        trigger=trigger,
        status=RunStatus.FAILED,
        started_at=started_at,
        finished_at=timezone.now(),
        window_start=window_end,
        window_end=window_end,
        target=target,
        note=note[:200],
        error=error,
        shard=shard,
        shards=shards,
    )


def _busy_recorded(
    *,
    trigger: str,
    now: datetime,
    target: int | None,
    started_at: datetime,
    error: GeneratorBusy,
    shard: int = 0,
    shards: int = 1,
) -> GeneratorBusy:
    """A run that could not get the generator lock in time: recorded as failed, to be raised.

    Failed, not skipped: a skipped scheduled run counts as covering its minute, and this one
    generated nothing, so the next run must cover the minute instead. On SQLite the ledger row
    itself needs the write lock that another writer holds: it is recorded if the lock comes within
    a second, else only logged, so the caller still hears "busy" in time.
    """
    run = _failed_row(
        trigger=trigger,
        now=now,
        target=target,
        started_at=started_at,
        note="generator busy: another run held the lock",
        shard=shard,
        shards=shards,
    )
    try:
        with sqlite_write_wait(1.0), transaction.atomic():
            run.save()
            run_counters_add([run])
    except OperationalError as locked:
        if not is_database_locked(locked):
            raise
    run_log(run)
    return GeneratorBusy(str(error), run_id=run.id, retry_after=error.retry_after)


def _failure_recorded(
    *,
    trigger: str,
    now: datetime,
    target: int | None,
    started_at: datetime,
    error: BaseException,
    cause: BaseException | None = None,
    shard: int = 0,
    shards: int = 1,
) -> SyntheticRun:
    """Record a failed run in its own transaction (the run's own work has been rolled back)."""
    shown = cause or error
    logger.error(
        "synthetics run trigger=%s status=failed error=%s",
        trigger,
        error,
        exc_info=(type(shown), shown, shown.__traceback__),
    )
    details = "".join(traceback.format_exception(shown))
    if cause is not None:
        details = f"{error}\n\n{details}"
    run = _failed_row(
        trigger=trigger,
        now=now,
        target=target,
        started_at=started_at,
        note=str(error),
        error=details[-10000:],
        shard=shard,
        shards=shards,
    )

    try:
        _recorded(run)
    except Exception:
        if connection.in_atomic_block:
            raise  # inside a caller's transaction: reconnecting is not ours to do
        # The connection died with the run (killed backend, interrupted query): reconnect once.
        connection.close()
        run.pk = None
        _recorded(run)
    return run


def _recorded(run: SyntheticRun) -> None:
    """Save a run that wrote nothing, with its count, in one transaction."""
    with transaction.atomic():
        run.save()
        run_counters_add([run])


def run_log(run: SyntheticRun) -> None:
    """One structured line per run; backfill minutes go to DEBUG so a day of history is not 1,440
    lines."""
    level = logging.DEBUG if run.trigger == RunTrigger.BACKFILL else logging.INFO
    logger.log(
        level,
        "synthetics run id=%s trigger=%s status=%s window=%s..%s sessions_started=%d "
        "scene_events=%d mindblock_events=%d completed=%d abandoned=%d errored=%d active=%d%s",
        run.id,
        run.trigger,
        run.status,
        run.window_start.isoformat(),
        run.window_end.isoformat(),
        run.sessions_started,
        run.scene_events_created,
        run.mindblock_events_created,
        run.journeys_completed,
        run.journeys_abandoned,
        run.journeys_errored,
        run.active_journeys,
        f" note={run.note!r}" if run.note else "",
        extra={  # the same fields as keys of their own, for SYNTHETICS_LOG_FORMAT=json
            "run_id": run.id,
            "trigger": str(run.trigger),
            "status": str(run.status),
            "window_start": run.window_start.isoformat(),
            "window_end": run.window_end.isoformat(),
            "shard": run.shard,
            "shards": run.shards,
            "sessions_started": run.sessions_started,
            "scene_events": run.scene_events_created,
            "mindblock_events": run.mindblock_events_created,
            "completed": run.journeys_completed,
            "abandoned": run.journeys_abandoned,
            "errored": run.journeys_errored,
            "active": run.active_journeys,
            "note": run.note,
        },
    )
