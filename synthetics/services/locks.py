"""The one-run-at-a-time rule: every generator run holds this lock for its whole transaction.

PostgreSQL: a transaction-scoped advisory lock, released at commit or rollback, so concurrent runs
(several workers, several machines) queue up behind each other. SQLite: the connection opens every
transaction with BEGIN IMMEDIATE (settings `transaction_mode`), which already takes the database's
single write lock, so nothing more is needed.
"""

from django.db import connection

# An arbitrary key reserved for the generator: "SYNTHETC" in ASCII, a positive signed 64-bit value.
GENERATOR_LOCK_KEY = 0x53594E5448455443


def generator_lock_acquire() -> None:
    """Block until this transaction holds the generator lock; call inside transaction.atomic()."""
    if not connection.in_atomic_block:
        raise RuntimeError("generator_lock_acquire() must run inside a transaction")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [GENERATOR_LOCK_KEY])
