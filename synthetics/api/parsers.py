"""How the API reads what a client sends: request bodies, and the text of each value in them, in a
query string, a path or (for `manage.py incidents`) a command line.

Bodies are JSON objects of bounded depth, even when the client forgot the Content-Type. The seed's
curl commands for toggle and settings send a JSON body without `Content-Type`, which curl labels
`application/x-www-form-urlencoded`; they must keep working, so such a body is read as JSON. The
OpenAPI schema lists application/json only (the form-labelled parser is deliberately not a
JSONParser subclass, so drf-spectacular's parser whitelist leaves it out). Every body the API takes
is a flat object: nesting deeper than MAX_JSON_DEPTH is refused with a 400 (Python's parser would
otherwise raise RecursionError on 100,000 levels, a 500).

The text of each value is read by synthetics.inputs, shared with the admin and the commands.
"""

from __future__ import annotations

import codecs

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
