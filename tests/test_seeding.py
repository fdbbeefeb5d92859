"""Seeding the pool: every account is make_profile of its number, whichever path writes it (COPY,
pipelined or not, on PostgreSQL; bulk inserts elsewhere); names held are stepped around; the
drawn population keeps its shares. Bounds derived from the distributions (Z = 4.89: one in a
million)."""

import math
from collections import Counter
from dataclasses import replace
from datetime import UTC, date, datetime

import pytest
from django.db import connection, transaction

from synthetics.engine import population
from synthetics.engine.population import (
    LOCALES,
    PERSONAS,
    ZONE_SHARES,
    make_profile,
    profiles_drawn,
    username_for,
)
from synthetics.errors import ApplicationError
from synthetics.models import SYNTHETIC_EMAIL_DOMAIN, SimUser, User
from synthetics.services import seeding, sim_users_seed

Z = 4.89
TODAY = date(2026, 1, 9)


def seeded_rows() -> dict[str, tuple]:
    """Each synthetic account and its sim user by content (no id, no wall-clock column)."""
    return {
        sim.user.username: (
            sim.user.email,
            sim.user.first_name,
            sim.user.last_name,
            sim.user.date_joined,
            sim.user.is_active,
            sim.user.is_staff,
            sim.user.is_superuser,
            sim.user.has_usable_password(),
            sim.user.last_login,
            sim.persona,
            sim.activity_weight,
            sim.timezone,
            sim.locale,
            sim.display_name,
            sim.signup_date,
            sim.settles_into,
            sim.joined_at,
            sim.churned_at,
            sim.account_key,
        )
        for sim in SimUser.objects.select_related("user").filter(user__is_synthetic=True)
    }


def expected_row(profile) -> tuple:
    return (
        profile.email,
        profile.first_name,
        profile.last_name,
        profile.signed_up_at,
        False,
        False,
        False,
        False,
        None,
        profile.persona,
        profile.activity_weight,
        profile.timezone,
        profile.locale,
        profile.display_name,
        profile.signup_date,
        profile.settles_into,
        None,
        None,
        "",
    )


def profile(index: int, seed: int = 5):
    return make_profile(index=index, seed=seed, today=TODAY, email_domain=SYNTHETIC_EMAIL_DOMAIN)


# --- profiles ------------------------------------------------------------------------------------


def test_a_profile_is_a_pure_function_of_seed_and_index():
    # given profiles drawn in one go (seeding's way) and one at a time (make_profile's, uncached)
    drawn = profiles_drawn([3, 1, 2], seed=11, today=TODAY, email_domain=SYNTHETIC_EMAIL_DOMAIN)
    make_profile.cache_clear()

    # then they are the same, in any order, and another seed or index draws another profile
    assert drawn == [profile(3, 11), profile(1, 11), profile(2, 11)]
    assert profile(1, 11) != profile(1, 12)
    # and a seeded sign-up is on its sign-up day (UTC) at a time that is never on the minute
    for index in range(1, 200):
        moment = profile(index).signed_up_at
        assert moment.date() == profile(index).signup_date and moment.tzinfo is not None
        assert moment.second or moment.microsecond


def test_names_are_faker_s_own_for_the_locale():
    from faker import Faker

    for locale, _, _ in LOCALES:
        # given Faker's own names for the locale, from its first_name() and last_name()
        faker = Faker(locale)
        faker.seed_instance(1)
        firsts = {faker.first_name() for _ in range(300)}
        lasts = {faker.last_name() for _ in range(300)}

        # then every one is among ours, and ours are Faker's
        first_names, last_names = population.locale_names(locale)
        assert firsts <= set(first_names.names), locale
        assert lasts <= set(last_names.names), locale
        assert len(set(first_names.names)) >= 40 and len(set(last_names.names)) >= 40
    # Faker's weights are kept where it has them (en_US: Aaron and Adam about alike, Mary common)
    first_names, _ = population.locale_names("en_US")
    assert first_names.sums is not None


def test_the_drawn_population_keeps_its_shares():
    # given 30,000 profiles
    count = 30_000
    drawn = profiles_drawn(
        range(1, count + 1), seed=3, today=TODAY, email_domain=SYNTHETIC_EMAIL_DOMAIN
    )

    def within(observed: int, share: float) -> bool:
        return abs(observed - count * share) <= Z * math.sqrt(count * share * (1 - share))

    # then personas, locales and zones come in their shares
    personas = Counter(p.persona for p in drawn)
    assert all(within(personas[p.slug], p.share) for p in PERSONAS), personas
    locales = Counter(p.locale for p in drawn)
    assert all(within(locales[locale], share) for locale, share, _ in LOCALES), locales
    zones = Counter(p.timezone for p in drawn)
    for _, share, places in LOCALES:
        for zone in places:
            assert within(zones[zone], share * ZONE_SHARES.get(zone, 1.0)), zone
    # and each persona's activity is log-normal around its weight: mean weight, log-sd spread
    spread = population.DEFAULT_ENGAGEMENT_SPREAD
    for persona in PERSONAS:
        logs = [math.log(p.activity_weight / persona.activity_weight) for p in drawn
                if p.persona == persona.slug]  # fmt: skip
        mean = sum(logs) / len(logs)
        assert abs(mean + spread * spread / 2) < Z * spread / math.sqrt(len(logs)) + 0.001
        sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / (len(logs) - 1))
        assert abs(sd - spread) < Z * spread / math.sqrt(2 * (len(logs) - 1)) + 0.001
    # and the time of day of sign-ups follows the waking curve: few at 03:00, many at 20:00
    hours = Counter(int(p.signup_seconds // 3600) for p in drawn)
    assert hours[3] * 10 < hours[20]


def test_profile_draws_are_uniform_and_go_on_past_a_block():
    draws = population.ProfileDraws(1, 1)
    values = [draws.random() for _ in range(40)]  # more than a block of sixteen
    assert all(0.0 <= value < 1.0 for value in values) and len(set(values)) == 40
    many = [population.ProfileDraws(1, index).random() for index in range(20_000)]
    mean = sum(many) / len(many)
    assert abs(mean - 0.5) < Z * math.sqrt(1 / 12 / len(many))


# --- the database --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seeded_accounts_are_the_profiles_of_their_numbers():
    # when 30 accounts are seeded (PostgreSQL: COPY in this test's transaction; else inserts)
    summary = sim_users_seed(count=30, seed=5, today=TODAY)

    # then account i is make_profile(i), with the account's fixed fields
    assert summary.created == 30 and summary.total == 30
    assert seeded_rows() == {username_for(i): expected_row(profile(i)) for i in range(1, 31)}
    assert all(user.check_password("") is False for user in User.objects.filter(is_synthetic=True))


@pytest.mark.django_db
def test_the_copy_path_writes_the_rows_the_inserts_write(postgres_only):
    # given the rows seeding COPYs
    sim_users_seed(count=25, seed=5, today=TODAY)
    copied = seeded_rows()
    users = list(User.objects.filter(is_synthetic=True).order_by("id").values_list("id", flat=True))

    # when the same profiles are inserted instead, as a run's sign-ups are
    SimUser.objects.all().delete()
    User.objects.filter(is_synthetic=True).delete()
    seeding.sim_accounts_create([profile(i) for i in range(1, 26)])

    # then the rows are the same, and the COPY numbered the accounts in order
    assert seeded_rows() == copied
    assert users == sorted(users) and len(set(users)) == 25


@pytest.mark.django_db
def test_seeding_steps_around_names_already_held_and_tops_up():
    # given real accounts holding two sim names, and 3 synthetic accounts seeded already
    User.objects.create(username=username_for(2), email="real@example.com")
    User.objects.create(username=username_for(5), email="real5@example.com")
    sim_users_seed(count=3, seed=5, today=TODAY)

    # when seeding up to 6
    progress = []
    summary = sim_users_seed(count=6, seed=5, today=TODAY, progress=progress.append)

    # then the free numbers are taken in order, each its own profile; the real accounts untouched
    assert summary.created == 3 and sum(progress) == 3
    assert set(seeded_rows()) == {username_for(i) for i in (1, 3, 4, 6, 7, 8)}
    assert seeded_rows()[username_for(7)] == expected_row(profile(7))
    real = User.objects.get(username=username_for(2))
    assert not real.is_synthetic and real.email == "real@example.com"
    assert not SimUser.objects.filter(user__is_synthetic=False).exists()


@pytest.mark.django_db
def test_names_are_read_a_block_at_a_time(monkeypatch):
    # given blocks of 4 names, and real accounts holding a whole block's names and more
    monkeypatch.setattr(seeding, "COPY_BATCH", 4)
    monkeypatch.setattr(seeding, "SEED_BATCH", 4)
    for index in (4, 5, 6, 7, 9):
        User.objects.create(username=username_for(index), email=f"{index}@example.com")

    # when seeding 7 accounts (batches of 4 and 3)
    progress = []
    sim_users_seed(count=7, seed=5, today=TODAY, progress=progress.append)

    # then they are the first seven free numbers
    assert progress == [4, 3]
    assert set(seeded_rows()) == {username_for(i) for i in (1, 2, 3, 8, 10, 11, 12)}


@pytest.mark.django_db
def test_a_refused_batch_raises_a_clear_error_and_keeps_the_batches_before_it(monkeypatch):
    # given batches of 3, and another process taking the fifth name once seeding has started
    monkeypatch.setattr(seeding, "COPY_BATCH", 3)
    monkeypatch.setattr(seeding, "SEED_BATCH", 3)
    prepared = seeding._batch_prepared if connection.vendor == "postgresql" else None
    create = seeding.sim_accounts_create
    calls = []

    def name_taken_meanwhile():
        if len(calls) == 1:
            with transaction.atomic():
                User.objects.create(username=username_for(5), email="late@example.com")
        calls.append(1)

    if prepared is not None:
        monkeypatch.setattr(
            seeding,
            "_batch_prepared",
            lambda profiles: (name_taken_meanwhile(), prepared(profiles))[1],
        )
    else:
        monkeypatch.setattr(
            seeding,
            "sim_accounts_create",
            lambda profiles: (name_taken_meanwhile(), create(profiles))[1],
        )

    # when seeding 9
    with pytest.raises(ApplicationError) as raised:
        sim_users_seed(count=9, seed=5, today=TODAY)

    # then the first batch is kept, the second refused, and the error says which and what to do
    assert set(seeded_rows()) == {username_for(i) for i in (1, 2, 3)}
    assert "from sim000004 was refused" in str(raised.value)
    assert "run it again" in str(raised.value)


@pytest.mark.django_db
def test_copy_text_escapes_what_would_end_a_value(postgres_only):
    # given a profile whose names hold a tab, a newline, a carriage return and a backslash
    odd = replace(profile(1), first_name="A\tB", last_name="C\\nD\n", display_name="E\rF\\")

    # when its account is COPYed
    seeding._batch_commit(seeding._batch_prepared([odd]))

    # then the values are the ones given
    user = User.objects.get(username=username_for(1))
    assert (user.first_name, user.last_name) == ("A\tB", "C\\nD\n")
    assert SimUser.objects.get(user=user).display_name == "E\rF\\"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_the_pipeline_writes_each_batch_in_its_own_transaction(postgres_only, monkeypatch):
    # given batches of 4 (outside any transaction: the writer thread COPYs on its own connection)
    monkeypatch.setattr(seeding, "COPY_BATCH", 4)
    threads = set()
    commit = seeding._batch_commit

    def commit_noting_the_thread(batch):
        import threading

        threads.add(threading.current_thread().name)
        commit(batch)

    monkeypatch.setattr(seeding, "_batch_commit", commit_noting_the_thread)

    # when 10 are seeded
    progress = []
    summary = sim_users_seed(count=10, seed=5, today=TODAY, progress=progress.append)

    # then each batch was committed by the writer thread and reported, and the rows are the profiles
    assert summary.created == 10 and progress == [4, 4, 2]
    assert all(name.startswith("synthetics-seed") for name in threads)
    assert seeded_rows() == {username_for(i): expected_row(profile(i)) for i in range(1, 11)}
    joined = list(SimUser.objects.values_list("user__date_joined", flat=True))
    assert all(moment.tzinfo is not None and moment < datetime.now(UTC) for moment in joined)
