"""The API's JSON, written by orjson: DRF's JSONRenderer spends most of a 30-day activity answer
(721 points) in the standard library's encoder."""

from __future__ import annotations

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_DRF = JSONEncoder()


def _default(value):
    """What orjson does not write itself, written as DRF writes it (its encoder's `default`)."""
    return _DRF.default(value)


class FastJSONRenderer(JSONRenderer):
    """The JSON DRF's JSONRenderer gives (same values, same compact form), encoded by orjson.

    Dates and times go through DRF's own conversion (passed through to `default`: DRF writes UTC as
    "Z"). What orjson refuses (integers beyond 64 bits, keys that are not
    strings) falls back to DRF's renderer, as do indented answers. U+2028 and U+2029 are escaped,
    as DRF does, for JavaScript. One difference: a float NaN or infinity is written as null where
    DRF would fail with a 500 (no answer holds one: every rate is validated finite).
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        renderer_context = renderer_context or {}
        if self.get_indent(accepted_media_type, renderer_context) is not None:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            body = orjson.dumps(data, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
        except (TypeError, orjson.JSONEncodeError):
            return super().render(data, accepted_media_type, renderer_context)
        return body.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
