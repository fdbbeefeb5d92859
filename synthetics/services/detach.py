"""Taking everything Synthetics wrote back out of an attached application (`manage.py target
detach`): the generator is paused, then every event of ours goes from the application's event
tables (the identity rule, `EventQuerySet.synthetic()`, batch by batch), then the profile rows and
last the accounts of our sim users, then our own pool, journeys and ledger. A real row is never
selected: an event is ours by the rule, an account by the key our sim user keeps for it. Each
batch is its own transaction, so a detach stopped half-way resumes where it was."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection, transaction

from synthetics.errors import ApplicationError
from synthetics.models import (
    Journey,
    RowOrigin,
    SimUser,
    SyntheticRun,
    SyntheticRunHour,
    SyntheticSettings,
    User,
)
from synthetics.services.locks import generator_lock_hold
from synthetics.target.mapping import KEY_ARRAYS, Target, qualified, quoted, target_in_force
from synthetics.target.tables import event_models

DETACH_BATCH = 5_000


@dataclass
class Detached:
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, what: str, deleted: int) -> None:
        self.counts[what] = self.counts.get(what, 0) + deleted


def target_detach(*, progress: Callable[[str, int], None] | None = None) -> Detached:
    """Delete every row of ours from the attached application, accounts last, then our own state.
    The generator is paused first (and stays paused)."""
    target = target_in_force()
    if target is None:
        raise ApplicationError(
            "No target is attached (SYNTHETICS_TARGET is not set): nothing to detach."
        )
    with transaction.atomic():
        generator_lock_hold()  # a run in progress finishes first; none starts while we pause
        SyntheticSettings.objects.filter(pk=1).update(enabled=False)
    done = Detached()
    for kind, model in event_models().items():
        table = target.events[kind].table
        while deleted := _events_batch(model):
            done.add(table, deleted)
            if progress:
                progress(table, deleted)
    while deleted := _accounts_batch(target, done, progress):
        pass
    with transaction.atomic():
        generator_lock_hold()
        done.add("journeys", Journey.objects.filter(is_synthetic=True).delete()[0])
        done.add("synthetic_runs", SyntheticRun.objects.all().delete()[0])
        SyntheticRunHour.objects.all().delete()
        done.add("sim_users", SimUser.objects.all().delete()[0])
        # Origins of rows the application deleted itself (none of them is a row any more).
        RowOrigin.objects.all().delete()
        User.objects.filter(is_synthetic=True).delete()
    return done


@transaction.atomic
def _events_batch(model) -> int:
    """Delete up to DETACH_BATCH events of ours from one table (by their rows' addresses)."""
    from synthetics.services.cleanup import _delete_rows

    generator_lock_hold()
    deleted, _ = _delete_rows(model.objects.synthetic(), key="created_at", limit=DETACH_BATCH)
    return deleted


@transaction.atomic
def _accounts_batch(target: Target, done: Detached, progress) -> int:
    """The next DETACH_BATCH sim users' profile rows and accounts (in that order), then the sim
    users' own rows; 0 when none is left with an account."""
    generator_lock_hold()
    batch = list(
        SimUser.objects.exclude(account_key="")
        .order_by("pk")
        .values_list("pk", "account_key")[:DETACH_BATCH]
    )
    if not batch:
        return 0
    keys = [key for _, key in batch]
    accounts = target.accounts
    array = KEY_ARRAYS[accounts.key_type]
    tables = [(profile.table, profile.account) for profile in accounts.profiles]
    tables.append((accounts.table, accounts.key))
    with connection.cursor() as cursor:
        for table, column in tables:
            cursor.execute(
                f"DELETE FROM {qualified(table)} WHERE {quoted(column)} = ANY(%s::{array})",
                [keys],
            )
            done.add(table, cursor.rowcount)
            if progress:
                progress(table, cursor.rowcount)
    SimUser.objects.filter(pk__in=[pk for pk, _ in batch]).update(account_key="")
    return len(batch)
