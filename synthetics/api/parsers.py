"""Request bodies are JSON objects of bounded depth, even when the client forgot the Content-Type.

The seed's curl commands for toggle and settings send a JSON body without `Content-Type`, which curl
labels `application/x-www-form-urlencoded`; they must keep working, so such a body is read as JSON.
The OpenAPI schema lists application/json only (the form-labelled parser is deliberately not a
JSONParser subclass, so drf-spectacular's parser whitelist leaves it out).

Every body the API takes is a flat object: nesting deeper than MAX_JSON_DEPTH is refused with a 400
(Python's parser would otherwise raise RecursionError on 100,000 levels, a 500).
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, JSONParser

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


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, with a clear 400 instead of a RecursionError for absurd nesting."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise NestedTooDeep() from None
        _depth_check(data)
        return data


class FormLabelledJSONParser(BaseParser):
    media_type = "application/x-www-form-urlencoded"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return BoundedJSONParser().parse(stream, "application/json", parser_context)
        except NestedTooDeep:
            raise
        except ParseError as error:
            raise ParseError(
                "The body must be a JSON object (send it with Content-Type: application/json)."
            ) from error
