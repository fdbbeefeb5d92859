"""The API's orjson renderer writes what DRF's JSONRenderer writes, for any data an answer holds."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from django.utils.translation import gettext_lazy
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.renderers import JSONRenderer

from synthetics.api.renderers import FastJSONRenderer

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.datetimes(
        min_value=datetime(1990, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=5, minutes=45))]),
    )
    | st.decimals(allow_nan=False, allow_infinity=False, places=4)
    | st.uuids()
)
data = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def both(value):
    return FastJSONRenderer().render(value), JSONRenderer().render(value)


@settings(max_examples=300, deadline=None)
@given(data)
def test_the_same_json_as_drf_for_any_answer(value):
    # then both parse to the same value, with the same escapes for U+2028 and U+2029 (DRF's, for
    # JavaScript) and no raw control characters: what a client reads is what DRF would have sent
    fast, drf = both(value)
    if value is None:  # no body at all, as DRF
        assert fast == drf == b""
        return
    assert json.loads(fast) == json.loads(drf)
    for separator in (b"\xe2\x80\xa8", b"\xe2\x80\xa9"):
        assert separator not in fast


def test_an_activity_like_answer_is_byte_for_byte_drfs():
    # given what the API answers: strings (DRF's fields have formatted the times), ints, floats
    point = {"bucket": "2026-12-06T08:00:00Z", "scene_events": 1234, "rate": 0.35}
    value = {"hours": 720, "series": [point] * 3, "note": "é ✓ \u2028", "ok": True, "x": None}
    fast, drf = both(value)
    # then the bytes are the same
    assert fast == drf


def test_what_orjson_does_not_write_falls_back_to_drf():
    # times (DRF writes UTC as Z), lazy strings, decimals, uuids, big integers
    moment = datetime(2026, 12, 6, 8, 0, 0, 123456, tzinfo=UTC)
    ident = uuid.UUID(int=7)
    value = {
        "at": moment,
        "label": gettext_lazy("Synthetic"),
        "money": Decimal("1.50"),
        "id": ident,
        "huge": 2**70,
    }
    fast, drf = both(value)
    assert json.loads(fast) == json.loads(drf)
    assert json.loads(fast)["at"] == "2026-12-06T08:00:00.123456Z"
    assert FastJSONRenderer().render({"at": moment}) == JSONRenderer().render({"at": moment})


def test_indented_answers_are_drfs_own():
    renderer = FastJSONRenderer()
    value = {"a": [1, 2]}
    assert renderer.render(value, "application/json; indent=2") == JSONRenderer().render(
        value, "application/json; indent=2"
    )
    assert renderer.render(None) == b""
