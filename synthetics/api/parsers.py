"""How the API reads what a client sends: request bodies, and the text of each value in them, in a
query string, a path or (for `manage.py incidents`) a command line.

Bodies are JSON objects of bounded depth, even when the client forgot the Content-Type. The seed's
curl commands for toggle and settings send a JSON body without `Content-Type`, which curl labels
`application/x-www-form-urlencoded`; they must keep working, so such a body is read as JSON. The
OpenAPI schema lists application/json only (the form-labelled parser is deliberately not a
JSONParser subclass, so drf-spectacular's parser whitelist leaves it out). Every body the API takes
is a flat object: nesting deeper than MAX_JSON_DEPTH is refused with a 400 (Python's parser would
otherwise raise RecursionError on 100,000 levels, a 500).

Text is read by one reader per kind of value (the `*_read` functions below), which the serializers'
strict fields and the incidents command share, so both refuse the same text in the same words.
"""

from __future__ import annotations

import codecs
import math
import re
import unicodedata
from datetime import UTC, datetime

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.utils import json as drf_json

MAX_JSON_DEPTH = 32


class NestedTooDeep(ParseError):
    default_detail = f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep."


def _depth_check(value) -> None:
    """Refuse nesting deeper than MAX_JSON_DEPTH (iterative: deep input can't exhaust the stack)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise NestedTooDeep()
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)


class DuplicateKey(ValidationError):
    """A field given twice in a JSON body: a 400 naming the field."""

    def __init__(self, key: str) -> None:
        super().__init__({key: [f"{key!r} is given twice in the JSON body: give each field once."]})


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    """A JSON object whose keys are all different: {"minutes": 5, "minutes": 6} is refused, not
    read as its last value (the scenario files and the query strings refuse it too)."""
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(key)
        seen[key] = value
    return seen


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser (strict: no NaN or Infinity), with a clear 400 instead of a RecursionError
    for absurd nesting, and a field given twice refused."""

    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            decoded = codecs.getreader(encoding)(stream)
            data = drf_json.load(
                decoded, parse_constant=drf_json.strict_constant, object_pairs_hook=_unique_keys
            )
        except RecursionError:
            raise NestedTooDeep() from None
        except DuplicateKey:
            raise
        except ValueError as error:
            raise ParseError(f"JSON parse error - {error}") from error
        _depth_check(data)
        return data


class FormLabelledJSONParser(BaseParser):
    media_type = "application/x-www-form-urlencoded"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return BoundedJSONParser().parse(stream, "application/json", parser_context)
        except (NestedTooDeep, DuplicateKey):
            raise
        except ParseError as error:
            raise ParseError(
                "The body must be a JSON object (send it with Content-Type: application/json)."
            ) from error


# --- strict text: how a whole number, a number, a time, a slug and a label must be written ----------
#
# One reader per kind of value, shared by the serializers' strict fields (the API: JSON strings,
# query strings, paths) and by `manage.py incidents` (its arguments). Python is lenient where a
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
