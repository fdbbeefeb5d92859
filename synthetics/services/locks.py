"""The one-run-at-a-time rule and a run's time budget: every generator run holds the generator lock
for its whole transaction, waits for it a bounded time, and must finish inside its budget.

PostgreSQL: a transaction-scoped advisory lock, released at commit or rollback, so concurrent runs
(several workers, several machines) queue up behind each other; `lock_timeout` bounds the wait and
`statement_timeout` the rest of the run. SQLite: the connection opens every transaction with BEGIN
IMMEDIATE (settings `transaction_mode`), which takes the database's single write lock; the busy
timeout bounds the wait.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.db import OperationalError, connection, transaction

from synthetics.errors import GeneratorBusy

# An arbitrary key reserved for the generator: "SYNTHETC" in ASCII, a positive signed 64-bit value.
GENERATOR_LOCK_KEY = 0x53594E5448455443
# A shard's lock: the two-key form (this class, the shard), a key space apart from the one-key form.
SHARD_LOCK_CLASS = 0x53484152  # "SHAR" in ASCII, a positive signed 32-bit value
# Held shared by every run of a split into N shards: (this class, N). Runs of two different splits
# see each other's in pg_locks (run_inputs.other_split_running).
SPLIT_LOCK_CLASS = 0x53504C54  # "SPLT" in ASCII
# SQLite's usual busy timeout (settings: PRAGMA busy_timeout), restored after a shorter wait.
SQLITE_BUSY_TIMEOUT_MS = 20_000
LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"


class RunOverBudget(RuntimeError):
    """The run used up its time budget before writing; it is rolled back and recorded as failed."""


@dataclass(frozen=True, slots=True)
class RunDeadline:
    """When a run must be done by (a monotonic clock), and how long it may wait for the lock."""

    budget_seconds: float
    lock_wait_seconds: float
    started: float

    @property
    def remaining_seconds(self) -> float:
        return self.budget_seconds - (time.monotonic() - self.started)

    def check(self, phase: str) -> None:
        if self.remaining_seconds <= 0:
            raise RunOverBudget(
                f"the run used up its time budget of {self.budget_seconds:g} s while {phase}; "
                "nothing was written"
            )


def run_deadline_start(*, manual: bool) -> RunDeadline:
    """A deadline from now: manual runs answer an HTTP client, the others a django-q2 worker."""
    if manual:
        return RunDeadline(
            budget_seconds=settings.SYNTHETICS_MANUAL_RUN_BUDGET_SECONDS,
            lock_wait_seconds=settings.SYNTHETICS_MANUAL_LOCK_WAIT_SECONDS,
            started=time.monotonic(),
        )
    budget = settings.SYNTHETICS_RUN_BUDGET_SECONDS
    # Half the budget for the wait, so a run that got the lock late still has time to finish.
    return RunDeadline(
        budget_seconds=budget, lock_wait_seconds=budget / 2, started=time.monotonic()
    )


def _busy(deadline: RunDeadline) -> GeneratorBusy:
    return GeneratorBusy(
        f"The generator is busy: another run held its lock for more than "
        f"{deadline.lock_wait_seconds:g} s. Try again in a few seconds.",
        retry_after=max(1, round(deadline.lock_wait_seconds)),
    )


def _sqlite_busy_timeout(milliseconds: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"PRAGMA busy_timeout = {int(milliseconds)}")


def is_database_locked(error: BaseException) -> bool:
    """SQLite's answer when its write lock did not come within the busy timeout."""
    return (
        connection.vendor == "sqlite"
        and isinstance(error, OperationalError)
        and ("locked" in str(error) or "busy" in str(error))
    )


def deadline_statement_bound(deadline: RunDeadline) -> None:
    """Before each write of a run: refuse when the budget is spent, else bound the next statement
    by what is left of it (PostgreSQL), so the run as a whole stays inside its budget."""
    deadline.check("writing")
    if connection.vendor == "postgresql":
        remaining_ms = max(1, int(deadline.remaining_seconds * 1000))
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT set_config('statement_timeout', %s, true)", [f"{remaining_ms}ms"]
            )


def is_statement_timeout(error: BaseException) -> bool:
    """PostgreSQL cancelled a statement of the run: its statement_timeout (the budget left) ran out."""
    return getattr(error.__cause__, "sqlstate", None) == QUERY_CANCELED


@contextmanager
def sqlite_write_wait(seconds: float) -> Iterator[None]:
    """On SQLite, wait at most `seconds` for the write lock in this block (else: no change).

    Outside a transaction only: inside one, the lock is already held or the wait already happened.
    """
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    connection.ensure_connection()
    _sqlite_busy_timeout(max(1, int(seconds * 1000)))
    try:
        yield
    finally:
        _sqlite_busy_timeout(SQLITE_BUSY_TIMEOUT_MS)


@contextmanager
def generator_transaction(
    *,
    deadline: RunDeadline,
    synchronous_commit: bool = True,
    shard: tuple[int, int] | None = None,
) -> Iterator[None]:
    """A transaction that holds the generator lock, waited for at most `deadline.lock_wait_seconds`.

    `shard` (shard, shards: a scheduled run split into shards): the generator lock shared, so the
    runs of other shards go on at the same time, and the shard's own lock, so two runs of one
    shard never do; and its split's mark (SPLIT_LOCK_CLASS), which runs of another split look for.
    Manual runs, backfills and cleanups hold the generator lock alone: they wait for the shards'
    runs in progress, and the shards' runs wait for them.

    Raises GeneratorBusy (nothing written) when the lock does not come in time. On PostgreSQL the
    rest of the transaction runs under a statement_timeout of the budget that is left.

    `synchronous_commit=False` (scheduled and backfill runs, in a transaction of their own):
    PostgreSQL commits without waiting for the WAL to reach the disk (`SET LOCAL synchronous_commit
    TO off`).
    A crash in the next fraction of a second may lose the run, but whole — its ledger row with its
    rows — so the next run covers its minutes again; nothing is ever half there. A manual run,
    whose answer a person or a cron reads, stays durable.
    """
    nested = connection.in_atomic_block
    # Inside a caller's transaction the run's timeouts would outlive its savepoint: keep the
    # caller's, to put back afterwards (after a rollback to the savepoint PostgreSQL does it).
    saved = _pg_timeouts() if nested and connection.vendor == "postgresql" else None
    with ExitStack() as stack:
        if connection.vendor == "sqlite" and not nested:
            try:
                with sqlite_write_wait(deadline.lock_wait_seconds):
                    stack.enter_context(transaction.atomic())  # BEGIN IMMEDIATE: the write lock
            except OperationalError as error:
                if is_database_locked(error):
                    raise _busy(deadline) from error
                raise
        else:
            stack.enter_context(transaction.atomic())
        generator_lock_acquire(deadline=deadline, shard=shard)
        if not synchronous_commit and not nested and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO off")
        yield
    if saved is not None:
        _pg_timeouts_set(saved)


_TIMEOUTS = ("lock_timeout", "statement_timeout")


def _pg_timeouts() -> tuple[str, ...]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f"current_setting('{name}')" for name in _TIMEOUTS))
        return tuple(cursor.fetchone())


def _pg_timeouts_set(values: tuple[str, ...]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT " + ", ".join(f"set_config('{name}', %s, true)" for name in _TIMEOUTS),
            list(values),
        )


def generator_lock_acquire(*, deadline: RunDeadline, shard: tuple[int, int] | None = None) -> None:
    """Hold the generator lock for this transaction (with `shard`: shared, and the shard's lock);
    call inside transaction.atomic()."""
    if not connection.in_atomic_block:
        raise RuntimeError("generator_lock_acquire() must run inside a transaction")
    if connection.vendor != "postgresql":
        return  # SQLite: BEGIN IMMEDIATE already holds the database's only write lock
    with connection.cursor() as cursor:
        wait_ms = max(1, int(deadline.lock_wait_seconds * 1000))
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{wait_ms}ms"])
        try:
            if shard is None:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [GENERATOR_LOCK_KEY])
            else:
                # The shard's lock, then the generator lock shared, both in the one wait.
                number, shards = shard
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(%s::integer, %s::integer), "
                    "pg_advisory_xact_lock_shared(%s::integer, %s::integer)",
                    [SHARD_LOCK_CLASS, number, SPLIT_LOCK_CLASS, shards],
                )

                waited = deadline.budget_seconds - deadline.remaining_seconds
                left_ms = max(1, int((deadline.lock_wait_seconds - waited) * 1000))
                cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{left_ms}ms"])
                cursor.execute("SELECT pg_advisory_xact_lock_shared(%s)", [GENERATOR_LOCK_KEY])

        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                raise _busy(deadline) from error
            raise
        remaining_ms = max(1, int(deadline.remaining_seconds * 1000))
        cursor.execute(
            "SELECT set_config('lock_timeout', '0', true), "
            "set_config('statement_timeout', %s, true)",
            [f"{remaining_ms}ms"],
        )


def other_split_running(*, shards: int) -> int | None:
    """The shard count of a run in progress split another way than into `shards` (PostgreSQL: its
    split's mark among the database's advisory locks; this run holds its own, taken before it
    looks, so of two runs of different splits at least one sees the other). None: none, or SQLite,
    where runs never overlap."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid = %s::bigint::oid AND objsubid = 2 AND objid <> %s::bigint::oid LIMIT 1",
            [SPLIT_LOCK_CLASS, shards],
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def generator_lock_hold() -> None:
    """Hold the generator lock for the rest of the caller's transaction, waited for as a manual
    run waits (GeneratorBusy after that): a change that a run in progress must not see half of
    (services.catalogue)."""
    if not connection.in_atomic_block:
        raise RuntimeError("generator_lock_hold() must run inside the transaction of the change")
    # A savepoint that takes the lock: released, it leaves the lock with the caller's transaction
    # (PostgreSQL's transaction-level advisory lock; SQLite's BEGIN IMMEDIATE already holds the
    # write lock) and puts the caller's timeouts back.
    with generator_transaction(deadline=run_deadline_start(manual=True)):
        pass
