"""Seeding the pool of simulated users and the staff account of a new install."""

from __future__ import annotations

import contextlib
import gc
import secrets
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from itertools import islice

import psycopg
from django.contrib.auth.hashers import make_password
from django.db import IntegrityError, connection, transaction
from django.db.models.functions import Length
from django.utils import timezone

from synthetics.engine.lifecycle import SignupAccounts
from synthetics.engine.population import (
    Profile,
    profile_for_existing,
    profiles_drawn,
    username_for,
)
from synthetics.errors import ApplicationError, whole_number_required
from synthetics.models import SYNTHETIC_EMAIL_DOMAIN, SimUser, User
from synthetics.selectors import run_inputs
from synthetics.services.maintenance import backend_exit_wait
from synthetics.services.run_failures import cyclic_gc_paused
from synthetics.services.writers import copy_data
from synthetics.target.mapping import Target, person_fields, target_in_force
from synthetics.target.writing import (
    AccountRows,
    KeysAhead,
    account_keys_ahead,
    account_keys_reserve,
    account_rows_ahead,
    accounts_unclaimed,
    accounts_write,
    lookups_accounts_add,
    stored_person_fields,
)

SEED_BATCH = 500  # accounts per transaction where they are inserted (SQLite)
# Accounts per transaction where they are COPYed (PostgreSQL): two batches in flight, a few MB of
# rows, however many are seeded.
COPY_BATCH = 10_000
MAX_SIM_USERS = 1_000_000
# While the writer thread COPYs, it takes the GIL back at every round trip: see history's pipeline.
PIPELINE_SWITCH_INTERVAL = 0.0005
GC_BATCHES = 32  # the pipeline's young-generation collections: one every so many batches

# The columns the COPY path writes (users' id reserved from its sequence, the sim users' left to
# theirs: nothing names a sim user yet).
USER_COLUMNS = (
    "id", "password", "last_login", "is_superuser", "username", "first_name", "last_name",
    "email", "is_staff", "is_active", "date_joined", "is_synthetic",
)  # fmt: skip
SIM_USER_COLUMNS = (
    "created_at", "updated_at", "user_id", "persona", "activity_weight", "timezone", "locale",
    "display_name", "signup_date", "settles_into", "joined_at", "account_key",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SeedSummary:
    created: int
    total: int


def _sim_user(
    user: User,
    profile,
    joined_at: datetime | None = None,
    account_key: str = "",
    sim_user_id: int | None = None,
) -> SimUser:
    return SimUser(
        id=sim_user_id,
        user=user,
        account_key=account_key,
        persona=profile.persona,
        activity_weight=profile.activity_weight,
        timezone=profile.timezone,
        locale=profile.locale,
        display_name=profile.display_name,
        signup_date=profile.signup_date,
        settles_into=profile.settles_into,
        joined_at=joined_at,
    )


def sim_accounts_create(
    profiles: list,
    *,
    ids: list[tuple[int, int]] | None = None,
    accounts: AttachedAccounts | None = None,
) -> list[SimUser]:
    """Create the synthetic accounts (inactive, unusable password) and sim users of `profiles`, in
    the caller's transaction: two bulk inserts. `ids`: each profile's (user id, sim user id),
    reserved from the tables' sequences beforehand (a history simulated ahead of its writes:
    services.history); otherwise the database gives them. A run's sign-up is joined at its moment (the
    profile's joined_ms: the start of its first session), a seeded one is not (joined_at empty);
    the account's date_joined is either's simulated sign-up (Profile.signed_up_at), never the
    wall clock. In attach mode each also gets its account in the application's account table
    (and profile rows), made through the target file, its key kept on the sim user; `accounts`:
    their names and keys settled ahead (attached_accounts_ahead), written as they are.
    """
    target = target_in_force()
    keys = [""] * len(profiles)
    names = [(p.username, p.email) for p in profiles]
    if target is not None:
        if accounts is None:
            people = accounts_unclaimed(target, _people(profiles))
            keys = accounts_write(target, people)
        else:
            people = accounts.people
            keys = accounts_write(target, people, keys=accounts.keys)
        names = [(person["username"], person["email"]) for person in people]
    unusable = make_password(None)
    ids = ids or [(None, None)] * len(profiles)
    users = User.objects.bulk_create(
        [
            User(
                id=user_id,
                username=username,
                email=email,
                first_name=p.first_name,
                last_name=p.last_name,
                password=unusable,
                is_active=False,
                is_synthetic=True,
                date_joined=p.signed_up_at,
            )
            for p, (username, email), (user_id, _) in zip(profiles, names, ids, strict=True)
        ]
    )
    return SimUser.objects.bulk_create(
        [
            _sim_user(user, p, _joined_at(p), key, sim_user_id)
            for user, p, key, (_, sim_user_id) in zip(users, profiles, keys, ids, strict=True)
        ]
    )


def _people(profiles: Sequence) -> list[dict]:
    """The fields the target file's templates read, of each profile (mapping.person_fields)."""
    return [
        person_fields(index=p.index, profile_or_user=p, joined_at=p.signed_up_at) for p in profiles
    ]


@dataclass(frozen=True, slots=True)
class AttachedAccounts:
    """Sign-ups' application accounts settled before they are written (attach mode, the history's
    pipeline): each one's fields with its name and address free in the account table
    (accounts_unclaimed), and its key (account_keys_reserve), in the profiles' order."""

    people: list[dict]
    keys: list[str]


def attached_accounts_ahead(
    target: Target, ahead: KeysAhead, profiles: Sequence, ids: Sequence[tuple[int, int]]
) -> AttachedAccounts:
    """The application accounts of sign-ups simulated ahead, settled now, before their write:
    their names stepped around any the account table holds, their keys drawn or reserved from its
    sequence; and the process's lookups told (user ids from `ids`), so the events of their first
    sessions are formatted with them. sim_accounts_create writes them as they are."""
    people = accounts_unclaimed(target, _people(profiles))
    keys = account_keys_reserve(target, ahead, people)
    lookups_accounts_add(
        target,
        [
            (
                user_id,
                key,
                stored_person_fields(
                    username=person["username"],
                    email=person["email"],
                    sim_user_id=sim_user_id,
                    first_name=p.first_name,
                    last_name=p.last_name,
                    profile=p,
                    joined_at=_joined_at(p),
                ),
            )
            for p, person, key, (user_id, sim_user_id) in zip(
                profiles, people, keys, ids, strict=True
            )
        ],
    )
    return AttachedAccounts(people, keys)


def _joined_at(profile) -> datetime | None:
    joined_ms = getattr(profile, "joined_ms", None)
    return None if joined_ms is None else datetime.fromtimestamp(joined_ms / 1000, UTC)


def next_sim_index() -> int:
    """The index after the highest sim account name in use (simNNNNNN, zero-padded to six digits,
    seven from sim1000000 on: the longest name first, then text order)."""
    last = (
        User.objects.filter(username__regex=r"^sim[0-9]{6,7}$")
        .order_by(Length("username").desc(), "-username")
        .values_list("username", flat=True)
        .first()
    )
    return int(last[3:]) + 1 if last else 1


def account_ids_reserve(count: int) -> list[tuple[int, int]]:
    """`count` pairs of (user id, sim user id) from the two tables' sequences (PostgreSQL), in
    ascending order, for sign-ups simulated before their accounts are written (sim_accounts_create
    `ids`). An id reserved and never written is a gap, as a rolled-back insert leaves. The
    sequences are looked up once (_user_ids_reserve says why)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH sequences AS MATERIALIZED (SELECT pg_get_serial_sequence(%s, 'id')::regclass "
            "AS users, pg_get_serial_sequence(%s, 'id')::regclass AS sim_users) "
            "SELECT nextval(users), nextval(sim_users) FROM sequences, generate_series(1, %s)",
            [User._meta.db_table, SimUser._meta.db_table, count],
        )
        rows = cursor.fetchall()
    return list(zip(sorted(row[0] for row in rows), sorted(row[1] for row in rows), strict=True))


# Where the generator's sign-ups get their accounts: the next sim account, under .invalid.
SIM_ACCOUNTS = SignupAccounts(next_index=next_sim_index, email_domain=SYNTHETIC_EMAIL_DOMAIN)


def sim_users_seed(
    *,
    count: int,
    seed: int,
    today: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> SeedSummary:
    """Create synthetic accounts and their sim_users until there are `count`; never deletes any.

    Account number i is make_profile(index=i), the numbers taken in order and any whose name
    (simNNNNNN) an account already holds, real or synthetic, skipped. One transaction a batch:
    a failure leaves the batches before it; `progress` hears of each batch as it commits.
    PostgreSQL: COPY, and outside a transaction pipelined — this thread draws and formats batch
    N+1 while a writer thread (its own connection) COPYs batch N. Elsewhere: bulk inserts.
    """
    whole_number_required("count", count, 0, MAX_SIM_USERS)
    today = today or timezone.now().date()
    existing = User.objects.filter(is_synthetic=True).count()
    missing = max(0, count - existing)
    spread = run_inputs.behaviour_load().engagement_spread  # the scenario's (engine.behaviour)
    copying = connection.vendor == "postgresql"
    size = COPY_BATCH if copying else SEED_BATCH
    indexes = _free_indexes(size)
    batches = (
        profiles_drawn(
            list(islice(indexes, min(size, missing - done))),
            seed=seed,
            today=today,
            email_domain=SYNTHETIC_EMAIL_DOMAIN,
            engagement_spread=spread,
        )
        for done in range(0, missing, size)
    )
    if not copying:
        for batch in batches:
            with _batch_refusals(batch), transaction.atomic():
                sim_accounts_create(batch)
            _progressed(progress, len(batch))
    elif connection.in_atomic_block:  # a caller's transaction: this connection's, in turn
        for batch in batches:
            _batch_commit(_batch_prepared(batch))
            _progressed(progress, len(batch))
    else:
        _batches_pipelined(batches, progress)
    return SeedSummary(created=missing, total=SimUser.objects.count())


def _progressed(progress: Callable[[int], None] | None, created: int) -> None:
    if progress:
        progress(created)


def _free_indexes(block: int) -> Iterator[int]:
    """Account numbers from 1 on whose name no account holds, read a block of `block` names at a
    time (an index range of the unique username index): the names taken stay out of memory."""
    start = 1
    while True:
        # a block's names are all as long (six digits below a million, seven up to ten million...),
        # so the block is one range of text between its first and last name
        end = min((start // block + 1) * block, 10 ** max(6, len(str(start))))
        taken = set(
            User.objects.filter(
                username__gte=username_for(start), username__lte=username_for(end - 1)
            ).values_list("username", flat=True)
        )
        for index in range(start, end):
            if username_for(index) not in taken:
                yield index
        start = end


@dataclass(slots=True)
class _SeedBatch:
    """One transaction's accounts, prepared in the seeding thread: formatted as COPY data (demo
    mode; attach mode where the account keys can be had ahead — drawn by Synthetics, or reserved
    from the application's sequence — with the application's rows built), or, where the
    application's database makes the keys some other way, its people ready to be written through
    the target first, in the writer's transaction."""

    profiles: list[Profile]
    users: bytes = b""
    sim_users: bytes = b""
    people: list[dict] | None = None
    accounts: AccountRows | None = None


def _batch_prepared(profiles: list[Profile]) -> _SeedBatch:
    """In this thread: the batch formatted, its users' ids reserved. Attach mode: the people's
    names made free in the application's account table first (a name a real account holds gets a
    suffix), and their rows built where their keys are ours; a name taken between this and the
    write makes the write refuse the batch (_batch_refusals)."""
    target = target_in_force()
    if target is None:
        names = [(p.username, p.email) for p in profiles]
        users, sim_users = _accounts_rendered(profiles, names, [""] * len(profiles))
        return _SeedBatch(profiles, users, sim_users)
    people = _attached_people(target, profiles)
    ahead = account_rows_ahead(target, people)
    if ahead is None:  # keys the database makes: reserved from its sequence where it has one
        way = account_keys_ahead(target)
        if way is None:
            return _SeedBatch(profiles, people=people)
        ahead = account_rows_ahead(target, people, account_keys_reserve(target, way, people))
    names = [(person["username"], person["email"]) for person in people]
    users, sim_users = _accounts_rendered(profiles, names, ahead.keys)
    return _SeedBatch(profiles, users, sim_users, people, ahead)


def _batch_commit(batch: _SeedBatch) -> None:
    """Write one batch in one transaction (in the pipeline: the writer thread's)."""
    with _batch_refusals(batch.profiles), transaction.atomic():
        if batch.people is not None:  # attach mode: the application's accounts first
            keys = accounts_write(target_in_force(), batch.people, batch.accounts)
            if not batch.users:  # their keys made by the application's database just now
                names = [(person["username"], person["email"]) for person in batch.people]
                batch = _SeedBatch(batch.profiles, *_accounts_rendered(batch.profiles, names, keys))
        copy_data(User._meta.db_table, USER_COLUMNS, batch.users)
        copy_data(SimUser._meta.db_table, SIM_USER_COLUMNS, batch.sim_users)


@contextlib.contextmanager
def _batch_refusals(profiles: list[Profile]) -> Iterator[None]:
    """A batch the database refuses (a name taken since seeding read them: a unique violation, from
    Django or from psycopg's COPY) raises ApplicationError; the batches before it are kept."""
    try:
        yield
    except (IntegrityError, psycopg.IntegrityError) as error:
        raise ApplicationError(
            f"seeding stopped: the batch of {len(profiles)} sim users from "
            f"{profiles[0].username} was refused ({error}). The batches before it are kept; "
            f"another process may have taken a name meanwhile: run it again to go on."
        ) from error


def _attached_people(target: Target, profiles: list[Profile]) -> list[dict]:
    return accounts_unclaimed(target, _people(profiles))


def _accounts_rendered(
    profiles: Sequence[Profile], names: Sequence[tuple[str, str]], keys: Sequence[str]
) -> tuple[bytes, bytes]:
    """The users and sim_users rows of `profiles` as COPY text (USER_COLUMNS, SIM_USER_COLUMNS):
    the rows sim_accounts_create inserts, the users' ids reserved from their sequence now. Formatted
    here, not by psycopg's write_row: a third of the cost, with every value a str, int, float, date
    or datetime of known form."""
    user_ids = _user_ids_reserve(len(profiles))
    unusable = _copy_text(_unusable_password())
    written_at = timezone.now().isoformat()
    users = []
    sim_users = []
    text = _copy_text
    for user_id, p, (username, email), key in zip(user_ids, profiles, names, keys, strict=True):
        users.append(
            f"{user_id}\t{unusable}\t{NULL}\tf\t{text(username)}\t{text(p.first_name)}\t"
            f"{text(p.last_name)}\t{text(email)}\tf\tf\t{p.signed_up_at.isoformat()}\tt\n"
        )
        joined_at = _joined_at(p)
        sim_users.append(
            f"{written_at}\t{written_at}\t{user_id}\t{text(p.persona)}\t"
            f"{float(p.activity_weight)!r}\t{text(p.timezone)}\t{text(p.locale)}\t"
            f"{text(p.display_name)}\t{p.signup_date.isoformat()}\t{text(p.settles_into)}\t"
            f"{NULL if joined_at is None else joined_at.isoformat()}\t{text(key)}\n"
        )
    return "".join(users).encode(), "".join(sim_users).encode()


NULL = "\\N"
# COPY's text format: NULL as above; a backslash, and the tab, newline and carriage return that end
# a value or a row, escaped (https://www.postgresql.org/docs/current/sql-copy.html#id-1.9.3.55.9.2).
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    # a tab, newline or carriage return is not printable: most values are returned as they are
    if value.isprintable() and "\\" not in value:
        return value
    return value.translate(_COPY_ESCAPES)


def _user_ids_reserve(count: int) -> list[int]:
    """`count` new account ids from the users' sequence (an id reserved and never written is a gap,
    as a rolled-back insert leaves). The sequence is looked up once, not once per id: in the
    select list pg_get_serial_sequence runs for every row (six times the cost of the nextval)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH users_sequence AS MATERIALIZED "
            "(SELECT pg_get_serial_sequence(%s, 'id')::regclass AS name) "
            "SELECT nextval(users_sequence.name) FROM users_sequence, generate_series(1, %s)",
            [User._meta.db_table, count],
        )
        return [row[0] for row in cursor.fetchall()]


@cache
def _unusable_password() -> str:
    """An unusable password (make_password(None)), made once a process: the same for every
    synthetic account, as it is for a batch of bulk inserts."""
    return make_password(None)


def _batches_pipelined(
    batches: Iterator[list[Profile]], progress: Callable[[int], None] | None
) -> None:
    """Draw and format batch N+1 in this thread while a writer thread (its own connection, one
    transaction a batch) COPYs batch N: Python and PostgreSQL each on a core."""
    writer_pid = None
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(PIPELINE_SWITCH_INTERVAL)
    try:
        with (
            cyclic_gc_paused(),
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="synthetics-seed") as writer,
        ):
            pending: tuple[Future, int] | None = None
            try:
                for number, profiles in enumerate(batches, start=1):
                    if number % GC_BATCHES == 0:
                        gc.collect(1)
                    batch = _batch_prepared(profiles)
                    if pending is not None:
                        future, size = pending
                        pending = None
                        future.result()
                        _progressed(progress, size)
                    pending = (writer.submit(_batch_commit, batch), len(profiles))
                if pending is not None:
                    future, size = pending
                    pending = None
                    future.result()
                    _progressed(progress, size)
            finally:
                if pending is not None:  # Ctrl-C or a failure: let the write in flight end whole
                    with contextlib.suppress(BaseException):
                        pending[0].result()
                writer_pid = writer.submit(_closed).result()
    finally:
        sys.setswitchinterval(switch_interval)
    if writer_pid is not None:
        backend_exit_wait(writer_pid)


def _closed() -> int | None:
    """Close this thread's connection; the process id of its backend (None: none was open)."""
    pid = connection.connection.info.backend_pid if connection.connection is not None else None
    connection.close()
    return pid


@transaction.atomic
def sim_users_backfill(*, seed: int, today: date | None = None) -> SeedSummary:
    """Give every synthetic account that lacks one a sim_users row (the seed's backfill step).
    Demo mode's: attached, a synthetic account is made with its sim user, through the target."""
    if target_in_force() is not None:
        raise ApplicationError(
            "backfill_sim_users is for demo mode: attached to an application, every sim user is "
            "made with its account (seed_sim_users)."
        )
    today = today or timezone.now().date()
    orphans = list(User.objects.filter(is_synthetic=True, sim_profile__isnull=True).order_by("id"))
    spread = run_inputs.behaviour_load().engagement_spread
    SimUser.objects.bulk_create(
        [
            _sim_user(
                user,
                profile_for_existing(
                    key=user.username,
                    name=user.get_full_name() or user.username,
                    seed=seed,
                    today=today,
                    engagement_spread=spread,
                    joined=min(timezone.localdate(user.date_joined, UTC), today)
                    if user.date_joined
                    else None,
                ),
            )
            for user in orphans
        ],
        batch_size=SEED_BATCH,
    )
    return SeedSummary(created=len(orphans), total=SimUser.objects.count())


@dataclass(frozen=True, slots=True)
class StaffAccount:
    username: str
    created: bool
    generated_password: str | None


@transaction.atomic
def staff_account_ensure(
    *, username: str, email: str = "", password: str | None = None
) -> StaffAccount:
    """Create a superuser named `username` unless one exists; generate a password when none is given."""
    if not username:
        raise ApplicationError("a staff username is required")
    if User.objects.filter(username=username).exists():
        return StaffAccount(username=username, created=False, generated_password=None)
    generated = None
    if not password:
        generated = password = secrets.token_urlsafe(12)
    User.objects.create_superuser(username=username, email=email, password=password)
    return StaffAccount(username=username, created=True, generated_password=generated)
