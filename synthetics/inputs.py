"""The strict readers of a value written as text, one per kind of value, shared by every way in: the
API's fields (api.fields), the admin's forms and the commands' arguments, so all three refuse the
same text in the same words. Each returns the value or raises ValueError saying what it must be.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, datetime

# One reader per kind of value, shared by the API's strict fields (JSON strings, query strings,
# paths), the admin's forms and the commands' arguments. Python is lenient where a
# client is sloppy: int() and float() take "２４", "٢٤", " 24", "+24" and "2_4"; fromisoformat()
# takes a week date, a space for the T, a trailing NUL and nanoseconds it drops. Each reader takes
# one spelling and refuses the rest with a ValueError whose message is the field's error. Nothing
# is trimmed: a value is taken as sent or refused.

WHOLE_NUMBER_TEXT = re.compile(r"0|[1-9][0-9]*")  # [0-9] is ASCII only (\d is not)
NUMBER_TEXT = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")  # JSON's grammar
DATETIME_TEXT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:Z|[-+](?:[01][0-9]|2[0-3]):[0-5][0-9])"  # an offset's minutes below 60 (-00:99 is no zone)
)
SLUG_TEXT = re.compile(r"[-a-zA-Z0-9_]+")  # Django's SlugField, ASCII
# Control characters (NUL, tab, newline, DEL, C1), lone surrogates, line and paragraph separators.
UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


def whole_number_read(text: str, *, low: int, high: int) -> int:
    """`text` as a whole number from low to high, written in the digits 0-9 without a sign, space,
    decimal point or leading zero."""
    if not isinstance(text, str) or not WHOLE_NUMBER_TEXT.fullmatch(text):
        raise ValueError(
            f"Must be a whole number from {low} to {high} written in the digits 0-9 (no sign, "
            f"space, decimal point or leading zero), got {text!r}."
        )
    if len(text) > len(str(high)) or not low <= int(text) <= high:
        raise ValueError(f"Must be from {low} to {high}, got {text}.")
    return int(text)


def number_read(text: str) -> float:
    """`text` as a finite number written as JSON writes one: 0.5, 5e-1, 2, -1."""
    if isinstance(text, str) and NUMBER_TEXT.fullmatch(text) and math.isfinite(float(text)):
        return float(text)
    raise ValueError(
        f"Must be a finite number written as JSON writes one (0.5, 5e-1), got {text!r}."
    )


def aware_datetime_read(text: str) -> datetime:
    """`text` in UTC: ISO 8601's YYYY-MM-DDTHH:MM[:SS[.ffffff]] and then Z or an offset ±HH:MM,
    which is required (a time without one is refused, not guessed)."""
    refused = ValueError(
        "Must be an ISO 8601 date and time with a time zone (Z or an offset such as -08:00), "
        f"such as 2026-12-06T14:00:00Z, got {text!r}."
    )
    if not isinstance(text, str) or not DATETIME_TEXT.fullmatch(text):
        raise refused
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except (ValueError, OverflowError):  # a 30th of February; UTC of 9999-12-31T23:59-01:00
        raise refused from None


def slug_read(text: str) -> str:
    """`text` when it is a slug: ASCII letters, digits, - and _, nothing around them."""
    if not isinstance(text, str) or not SLUG_TEXT.fullmatch(text):
        raise ValueError(
            f"Must be a slug: the letters a-z and A-Z, digits, - and _ only (no spaces), got {text!r}."
        )
    return text


def label_read(text: str) -> str:
    """`text` when it is printable text, not blank, with no space around it (stored as sent)."""
    unprintable = [c for c in text if unicodedata.category(c) in UNPRINTABLE_CATEGORIES]
    if unprintable:
        raise ValueError(
            f"Must not contain control characters or line breaks, got {unprintable[0]!r} in "
            f"{text!r}."
        )
    if not text.strip():
        raise ValueError("Must not be blank.")
    if text != text.strip():
        raise ValueError(
            f"Must not start or end with a space (it is stored as sent, never trimmed), got {text!r}."
        )
    return text
