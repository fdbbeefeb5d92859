"""The simulated population: personas, locales and the profile of each synthetic account."""

from __future__ import annotations

import math
import random
import struct
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, lru_cache
from hashlib import blake2b
from itertools import accumulate, chain, count

from synthetics.engine.behaviour import DEFAULT_BEHAVIOUR
from synthetics.engine.rhythm import country_of, local_factor, strengthened, zone_of
from synthetics.engine.sampling import exponential, lognormal, weighted_choice
from synthetics.engine.types import PoolMember, RhythmProfile


@dataclass(frozen=True, slots=True)
class Persona:
    slug: str
    share: float  # of the population
    activity_weight: float  # relative chance of being picked for a session
    mindblock_multiplier: float  # scales each scene's mindblock rate
    description: str


PERSONAS: tuple[Persona, ...] = (
    Persona("devoted", 0.12, 4.0, 0.7, "daily user who finishes what they start"),
    Persona("regular", 0.33, 2.0, 1.0, "comes back several times a week"),
    Persona("casual", 0.35, 1.0, 1.1, "drops in now and then"),
    Persona("newcomer", 0.12, 1.5, 1.4, "signed up recently, still finding their way"),
    Persona("drifting", 0.08, 0.3, 1.3, "rarely seen any more"),
)
PERSONA_BY_SLUG = {persona.slug: persona for persona in PERSONAS}

# (Faker locale, share of the population, time zones people of that locale live in)
LOCALES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    (
        "en_US",
        0.34,
        ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"),
    ),
    ("en_GB", 0.10, ("Europe/London",)),
    ("de_DE", 0.10, ("Europe/Berlin",)),
    ("fr_FR", 0.08, ("Europe/Paris",)),
    ("es_ES", 0.07, ("Europe/Madrid",)),
    ("pt_BR", 0.08, ("America/Sao_Paulo",)),
    ("it_IT", 0.05, ("Europe/Rome",)),
    ("nl_NL", 0.04, ("Europe/Amsterdam",)),
    ("ja_JP", 0.05, ("Asia/Tokyo",)),
    ("en_AU", 0.04, ("Australia/Sydney", "Australia/Melbourne")),
    ("en_IN", 0.05, ("Asia/Kolkata",)),
)

# Where people of a locale with several zones live: shares of the population (US: Eastern 47 %,
# Central 29 %, Mountain 7 %, Pacific 17 %, from the 2020 census by state; Australia: Sydney and
# Melbourne about alike). A zone not listed here has its locale's share alone.
ZONE_SHARES: dict[str, float] = {
    "America/New_York": 0.47,
    "America/Chicago": 0.29,
    "America/Denver": 0.07,
    "America/Los_Angeles": 0.17,
    "Australia/Sydney": 0.51,
    "Australia/Melbourne": 0.49,
}

# Every place people live: (locale, time zone, share of the population).
PLACES: tuple[tuple[str, str, float], ...] = tuple(
    (locale, zone, share * ZONE_SHARES.get(zone, 1.0))
    for locale, share, zones in LOCALES
    for zone in zones
)


# The running sums of the shares, for the draws every profile makes (cumulative_choice: the same
# pick as weighted_choice, without summing the shares again each time).
PERSONA_SUMS = tuple(accumulate(p.share for p in PERSONAS))
LOCALE_SUMS = tuple(accumulate(entry[1] for entry in LOCALES))
ZONE_SUMS = {
    zones: tuple(accumulate(ZONE_SHARES.get(zone, 1.0) for zone in zones))
    for _, _, zones in LOCALES
}
SETTLED_PERSONAS = tuple(p for p in PERSONAS if p.slug != "newcomer")
SETTLED_SUMS = tuple(accumulate(p.share for p in SETTLED_PERSONAS))


def cumulative_choice(rng, items: Sequence, sums: Sequence[float]):
    """weighted_choice with the running sums of the weights given: the same item for the same draw."""
    return items[bisect_right(sums, rng.random() * sums[-1], 0, len(items) - 1)]


def signup_place(
    rng: random.Random, *, moment: datetime, profile: RhythmProfile | None, strength: float
) -> tuple[str, str]:
    """Where a sign-up at `moment` lives, (locale, zone): a place by its share of the population
    times `profile`'s weight (a normalised rhythm, the newcomers') at that moment on its clock, at
    `strength`: people sign up when they are awake, so a sign-up at 03:00 UTC is rarely European."""
    weights = [
        share
        * (
            1.0
            if profile is None
            else strengthened(
                local_factor(profile, zone=zone, country=country_of(locale), moment=moment),
                strength,
            )
        )
        for locale, zone, share in PLACES
    ]
    locale, zone, _ = weighted_choice(rng, PLACES, weights)
    return locale, zone


# When people sign up over their day, by local hour (a generic waking curve: seeded accounts' time
# of sign-up; a run's sign-ups follow the pool's own rhythm instead).
AWAKE_HOURS = (
    0.4, 0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 0.9, 1.2, 1.3, 1.3, 1.3,
    1.4, 1.3, 1.2, 1.2, 1.3, 1.4, 1.5, 1.7, 1.8, 1.6, 1.1, 0.7,
)  # fmt: skip
AWAKE_SUMS = tuple(accumulate(AWAKE_HOURS))

NEWCOMER_DAYS = 21  # a newcomer settles into their persona after three weeks (engine.lifecycle)
# A seeded account's age agrees with its persona: a newcomer signed up within the last NEWCOMER_DAYS
# (uniformly, and settles like a run's sign-up); any other persona is at least as old as a newcomer's
# first weeks plus its own minimum, and its age beyond that is exponential with the persona's mean
# (power users and lapsed users are the old accounts, casual ones the youngest), at most three years.
TENURE_DAYS: dict[str, tuple[int, float]] = {  # persona: (minimum age beyond NEWCOMER_DAYS, mean)
    "devoted": (30, 420.0),
    "regular": (0, 260.0),
    "casual": (0, 180.0),
    "drifting": (60, 360.0),
}
SIGNUP_MAX_DAYS = 3 * 365
# A user's activity is log-normal around the persona's weight with log-sd engagement_spread
# (engine.behaviour; scaled by exp(-spread^2 / 2), so the persona's mean weight stays its weight).
DEFAULT_ENGAGEMENT_SPREAD = DEFAULT_BEHAVIOUR.engagement_spread
WEIGHT_FLOOR = 0.0001  # the smallest activity weight (the column must be positive)


@dataclass(frozen=True, slots=True)
class Profile:
    index: int
    username: str
    email: str
    first_name: str
    last_name: str
    display_name: str
    persona: str
    activity_weight: float
    timezone: str
    locale: str
    signup_date: date
    settles_into: str = ""  # a newcomer's persona after NEWCOMER_DAYS; "" for a settled user
    joined_ms: int | None = None  # a sign-up's moment (epoch ms); None: seeded
    # a seeded account's time of sign-up on its local clock, seconds after midnight (awake_seconds)
    signup_seconds: float = 0.0

    @property
    def signed_up_at(self) -> datetime:
        """When the account was made: a sign-up's moment, or for a seeded account a time of its
        sign-up day (signup_seconds: an hour people are awake in its zone, any minute and second,
        never on the minute), the same for the same profile."""
        if self.joined_ms is not None:
            return datetime.fromtimestamp(self.joined_ms / 1000, UTC)
        local = datetime.combine(self.signup_date, time(), tzinfo=zone_of(self.timezone))
        moment = (local + timedelta(seconds=self.signup_seconds)).astimezone(UTC)
        # on the UTC day of signup_date, as a run's sign-up is: a seeded user starts no session
        # before the day after it (engine.picking), so none comes before this moment
        return moment + (self.signup_date - moment.date())

    def member(self, *, sim_user_id: int, user_id: int) -> PoolMember:
        """This profile in the pool, once its account exists with these ids."""
        return PoolMember(
            sim_user_id,
            user_id,
            self.persona,
            self.activity_weight,
            self.timezone,
            self.locale,
            self.signup_date,
            self.settles_into,
            self.joined_ms,
        )


def username_for(index: int) -> str:
    return f"sim{index:06d}"


def _rng_for(seed: int, key: str) -> random.Random:
    return random.Random(f"{seed}:profile:{key}")


_WORDS = struct.Struct("<16I").unpack
_WORD = 2.0**-32


class ProfileDraws:
    """The uniform draws of one seeded profile: a pure function of (seed, index), and cheap to
    start — BLAKE2b of "seed:index:block" cut into sixteen 32-bit numbers a block, as many blocks as
    are drawn (a profile draws eleven). A random.Random takes longer to seed (its 624-word state)
    than a profile takes to draw. Values are multiples of 2**-32 in [0, 1): fine enough for every
    draw a profile makes."""

    __slots__ = ("random",)

    def __init__(self, seed: int, index: int) -> None:
        key = f"{seed}:{index}:"
        self.random = chain(_block(key, 0), _blocks_after_first(key)).__next__


def _block(key: str, number: int) -> list[float]:
    digest = blake2b(f"{key}{number}".encode(), digest_size=64).digest()
    return [word * _WORD for word in _WORDS(digest)]


def _blocks_after_first(key: str) -> Iterator[float]:
    for number in count(1):
        yield from _block(key, number)


def _profile_rng(seed: int, index: int) -> ProfileDraws:
    return ProfileDraws(seed, index)


@dataclass(frozen=True, slots=True)
class NameList:
    """Faker's names of one kind for one locale, and their weights where Faker gives them."""

    names: tuple[str, ...]
    sums: tuple[float, ...] | None  # running sums of the weights; None: all equally likely

    def pick(self, rng) -> str:
        """One name, by its weight: one draw of `rng`."""
        if self.sums is None:
            return self.names[min(int(rng.random() * len(self.names)), len(self.names) - 1)]
        return cumulative_choice(rng, self.names, self.sums)


@cache
def locale_names(locale: str) -> tuple[NameList, NameList]:
    """The first and the last names Faker's `first_name()` and `last_name()` give in `locale`, read
    once from the provider behind them: Faker's own lists, drawn from with a profile's own stream
    (seeding a Faker per profile cost more than the rest of the profile)."""
    from faker import Faker  # imported lazily: only seeding needs it

    faker = Faker(locale, providers=["faker.providers.person"])  # the names alone
    return (
        _name_list(faker.first_name.__self__, "first_names", "first_name_pairs"),
        _name_list(faker.last_name.__self__, "last_names", "last_name_pairs"),
    )


def _name_list(provider, plain: str, pairs: str) -> NameList:
    # ja_JP's names are (kanji, katakana, romaji) triples, its first_name() the first of a triple
    elements = getattr(provider, pairs, None)
    if elements is None:
        elements = getattr(provider, plain)
        pick = str
    else:
        pick = _first_of
    if hasattr(elements, "items"):  # Faker's weighted lists: an OrderedDict of name: weight
        return NameList(
            tuple(pick(name) for name in elements),
            tuple(accumulate(float(weight) for weight in elements.values())),
        )
    return NameList(tuple(pick(name) for name in elements), None)


def _first_of(triple) -> str:
    return triple[0]


def spread_weight(weight: float, rng: random.Random, spread: float) -> float:
    """`weight` times a mean-1 log-normal draw of log-sd `spread`, to 4 significant digits."""
    value = weight * lognormal(rng, -spread * spread / 2, spread)
    return max(float(f"{value:.4g}"), WEIGHT_FLOOR)


def _traits(rng: random.Random, today: date, spread: float, joined: date | None = None) -> dict:
    """A profile's drawn traits, as Profile's fields: persona, activity, locale, zone, sign-up
    date, and the persona a newcomer settles into. `joined`: an existing account's own sign-up
    date, kept, and the persona drawn among those whose tenure admits its age."""
    if joined is None:
        persona = cumulative_choice(rng, PERSONAS, PERSONA_SUMS)
    else:
        age = max(0, (today - joined).days)
        fits = [p for p in PERSONAS if minimum_tenure_days(p.slug) <= age < _tenure_end(p.slug)]
        persona = weighted_choice(rng, fits, [p.share for p in fits])
    activity = spread_weight(persona.activity_weight, rng, spread)
    locale, _, zones = cumulative_choice(rng, LOCALES, LOCALE_SUMS)
    timezone = cumulative_choice(rng, zones, ZONE_SUMS[zones])
    age_days = tenure_days(persona.slug, rng) if joined is None else (today - joined).days
    # a seeded newcomer, like a run's sign-up, settles into a persona after NEWCOMER_DAYS
    settles_into = settling_persona(rng).slug if persona.slug == "newcomer" else ""
    return {
        "persona": persona.slug,
        "settles_into": settles_into,
        "activity_weight": activity,
        "timezone": timezone,
        "locale": locale,
        "signup_date": today - timedelta(days=age_days),
    }


def minimum_tenure_days(persona: str) -> int:
    """The youngest a seeded account of `persona` is (0 for a newcomer)."""
    return NEWCOMER_DAYS + TENURE_DAYS[persona][0] if persona in TENURE_DAYS else 0


def _tenure_end(persona: str) -> float:
    return math.inf if persona in TENURE_DAYS else NEWCOMER_DAYS


def tenure_days(persona: str, rng: random.Random) -> int:
    """A seeded account's age in whole days, by persona (TENURE_DAYS); one draw of `rng`."""
    if persona not in TENURE_DAYS:  # a newcomer
        return min(int(rng.random() * NEWCOMER_DAYS), NEWCOMER_DAYS - 1)
    least, mean = TENURE_DAYS[persona]
    return min(NEWCOMER_DAYS + least + int(exponential(rng, mean)), SIGNUP_MAX_DAYS)


def settling_persona(rng: random.Random) -> Persona:
    """The persona a newcomer settles into, by the population's shares."""
    return cumulative_choice(rng, SETTLED_PERSONAS, SETTLED_SUMS)


def awake_seconds(rng) -> float:
    """A time of day people sign up at, seconds after local midnight to the millisecond (an hour
    by AWAKE_HOURS, any minute and second): two draws of `rng`."""
    hour = cumulative_choice(rng, range(24), AWAKE_SUMS)
    return hour * 3600 + int(rng.random() * 3600 * 1000) / 1000


# A profile is a pure function of its arguments: the last few thousand are kept (a frozen value),
# so the sign-ups of a run and a re-run of `seed_sim_users` the same day do not draw them again.
# Seeding many draws them with profiles_drawn, uncached.
@lru_cache(maxsize=4096)
def make_profile(
    *,
    index: int,
    seed: int,
    today: date,
    email_domain: str,
    engagement_spread: float = DEFAULT_ENGAGEMENT_SPREAD,
    place: tuple[str, str] | None = None,
) -> Profile:
    """The profile of synthetic account number `index`: the same for the same seed and index.
    `place`: (locale, zone) given instead of drawn (a sign-up's: engine.lifecycle), its name
    then from that locale."""
    return _drawn_profile(index, seed, today, f"@{email_domain}", engagement_spread, place)


def profiles_drawn(
    indexes: Sequence[int],
    *,
    seed: int,
    today: date,
    email_domain: str,
    engagement_spread: float = DEFAULT_ENGAGEMENT_SPREAD,
) -> list[Profile]:
    """make_profile of each of `indexes`, without its cache (seeding: a million, each once)."""
    at_domain = f"@{email_domain}"
    return [
        _drawn_profile(index, seed, today, at_domain, engagement_spread, None) for index in indexes
    ]


def _drawn_profile(
    index: int,
    seed: int,
    today: date,
    at_domain: str,
    engagement_spread: float,
    place: tuple[str, str] | None,
) -> Profile:
    # The order of the draws is the contract (tests/test_golden.py): the traits, the first and the
    # last name, the time of day of the sign-up.
    rng = _profile_rng(seed, index)
    traits = _traits(rng, today, engagement_spread)
    if place is not None:
        traits["locale"], traits["timezone"] = place
    first_names, last_names = locale_names(traits["locale"])
    first_name, last_name = first_names.pick(rng), last_names.pick(rng)
    username = username_for(index)
    return Profile(
        index=index,
        username=username,
        email=f"{username}{at_domain}",
        first_name=first_name[:150],
        last_name=last_name[:150],
        display_name=f"{first_name} {last_name}"[:150],
        signup_seconds=awake_seconds(rng),
        **traits,
    )


def profile_for_existing(
    *,
    key: str,
    name: str,
    seed: int,
    today: date,
    engagement_spread: float = DEFAULT_ENGAGEMENT_SPREAD,
    joined: date | None = None,
) -> Profile:
    """A profile for an existing synthetic account that lacks one: traits only, its name kept;
    `joined`, the account's own sign-up date, is kept and the persona fits that tenure."""
    rng = _rng_for(seed, f"existing:{key}")
    traits = _traits(rng, today, engagement_spread, joined)
    return Profile(
        index=-1,
        username=key,
        email="",
        first_name="",
        last_name="",
        display_name=name[:150],
        **traits,
    )


def make_newcomer(
    *,
    index: int,
    seed: int,
    signed_up: date,
    email_domain: str,
    engagement_spread: float = DEFAULT_ENGAGEMENT_SPREAD,
    joined_ms: int | None = None,
    place: tuple[str, str] | None = None,
) -> Profile:
    """A sim user who signs up on `signed_up`: persona "newcomer" with a newcomer's activity, and the
    persona (drawn by the population's shares) they settle into after their first weeks."""
    base = make_profile(
        index=index,
        seed=seed,
        today=signed_up,
        email_domain=email_domain,
        engagement_spread=engagement_spread,
        place=place,
    )
    rng = _rng_for(seed, f"newcomer:{index}")
    settled = settling_persona(rng)
    newcomer = PERSONA_BY_SLUG["newcomer"]
    return replace(
        base,
        persona=newcomer.slug,
        activity_weight=spread_weight(newcomer.activity_weight, rng, engagement_spread),
        signup_date=signed_up,
        settles_into=settled.slug,
        joined_ms=joined_ms,
    )


def settled_weight(*, activity_weight: float, into: str) -> float:
    """A newcomer's activity weight once settled: the same spread around the new persona's weight."""
    ratio = PERSONA_BY_SLUG[into].activity_weight / PERSONA_BY_SLUG["newcomer"].activity_weight
    return max(float(f"{activity_weight * ratio:.4g}"), WEIGHT_FLOOR)
