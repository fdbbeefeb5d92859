"""Seeding the pool of simulated users and the staff account of a new install."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.db.models.functions import Length
from django.utils import timezone

from synthetics.engine.lifecycle import SignupAccounts
from synthetics.engine.population import make_profile, profile_for_existing, username_for
from synthetics.errors import ApplicationError, whole_number_required
from synthetics.models import SYNTHETIC_EMAIL_DOMAIN, SimUser, User
from synthetics.selectors import run_inputs
from synthetics.target.mapping import person_fields, target_in_force
from synthetics.target.writing import accounts_unclaimed, accounts_write

SEED_BATCH = 500
MAX_SIM_USERS = 1_000_000


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
    profiles: list, *, ids: list[tuple[int, int]] | None = None
) -> list[SimUser]:
    """Create the synthetic accounts (inactive, unusable password) and sim users of `profiles`, in
    the caller's transaction: two bulk inserts. `ids`: each profile's (user id, sim user id),
    reserved from the tables' sequences beforehand (a history simulated ahead of its writes:
    services.history); otherwise the database gives them. A run's sign-up is joined at its moment (the
    profile's joined_ms: the start of its first session), a seeded one is not (joined_at empty);
    the account's date_joined is either's simulated sign-up (Profile.signed_up_at), never the
    wall clock. In attach mode each also gets its account in the application's account table
    (and profile rows), made through the target file, its key kept on the sim user.
    """
    target = target_in_force()
    keys = [""] * len(profiles)
    names = [(p.username, p.email) for p in profiles]
    if target is not None:
        people = accounts_unclaimed(
            target,
            [
                person_fields(index=p.index, profile_or_user=p, joined_at=p.signed_up_at)
                for p in profiles
            ],
        )
        names = [(person["username"], person["email"]) for person in people]
        keys = accounts_write(target, people)
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
    `ids`). An id reserved and never written is a gap, as a rolled-back insert leaves."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')), "
            "nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
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
    """Create synthetic accounts and their sim_users until there are `count`; never deletes any."""
    whole_number_required("count", count, 0, MAX_SIM_USERS)
    today = today or timezone.now().date()
    existing = User.objects.filter(is_synthetic=True).count()
    # Skip every name already held, by a synthetic account or a real one: a real account that
    # happens to be called sim000001 is left alone, and seeding takes the next free name.
    taken = set(
        User.objects.filter(username__startswith=username_for(0)[:3]).values_list(
            "username", flat=True
        )
    )
    missing = max(0, count - existing)
    created = 0
    index = 0
    spread = run_inputs.behaviour_load().engagement_spread  # the scenario's (engine.behaviour)
    while created < missing:
        batch = []
        while len(batch) < min(SEED_BATCH, missing - created):
            index += 1
            if username_for(index) in taken:
                continue
            batch.append(
                make_profile(
                    index=index,
                    seed=seed,
                    today=today,
                    email_domain=SYNTHETIC_EMAIL_DOMAIN,
                    engagement_spread=spread,
                )
            )
        with transaction.atomic():
            sim_accounts_create(batch)
        created += len(batch)
        if progress:
            progress(len(batch))
    return SeedSummary(created=created, total=SimUser.objects.count())


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
