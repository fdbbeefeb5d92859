"""Reading a scenario file: bytes or text to plain values, refused as a whole (ScenarioUnreadable,
one line naming where) before it can cost more than its reading — more than SCENARIO_MAX_BYTES,
not UTF-8, a syntax error, nested deeper than SCENARIO_MAX_DEPTH, a list, map or text longer than
its place in the published schema takes. services.scenarios validates and imports what it reads.
"""

from __future__ import annotations

import codecs
import json
import re
from pathlib import Path

import yaml

from synthetics.errors import ApplicationError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "scenario.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())


def _largest(schema: object, keyword: str) -> int:
    """The largest value of `keyword` anywhere in `schema`."""
    if isinstance(schema, dict):
        return max([schema.get(keyword, 0), *(_largest(v, keyword) for v in schema.values())])
    if isinstance(schema, list):
        return max((_largest(value, keyword) for value in schema), default=0)
    return 0


# The limits of a scenario file (README, "Scenarios as files"): a real one is about 10 KB, with lists
# of a few dozen items nested 5 deep (the document, journeys, a journey, its scenes, a scene).
SCENARIO_MAX_BYTES = 1024 * 1024  # the admin's upload limit too
SCENARIO_MAX_DEPTH = 10
SCENARIO_MAX_ITEMS = _largest(SCHEMA, "maxItems")  # a list where the schema has none, or a map
SCENARIO_MAX_TEXT = _largest(SCHEMA, "maxLength")  # a text or a key anywhere
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # (PostgreSQL's text takes neither)


class ScenarioInvalid(ApplicationError):
    """A scenario that cannot be imported: `errors` holds one "path: message" per problem."""

    def __init__(self, errors: list[str]) -> None:
        shown = "\n".join(f"  {error}" for error in errors)
        count = f"{len(errors)} error{'' if len(errors) == 1 else 's'}"
        super().__init__(f"the scenario is not valid ({count}):\n{shown}")
        self.errors = errors


def path_of(parts) -> str:
    text = "$"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{shown(part, quoted=False)}"
    return text


def shown(value: object, *, quoted: bool = True, most: int = 80) -> str:
    """`value` for a message: its repr (or the text itself), cut short (a file may hold anything)."""
    text = repr(value) if quoted else str(value)
    return text if len(text) <= most else f"{text[: most - 1]}…"


# --- reading a file ----------------------------------------------------------------------------------
#
# A file is refused as a whole before it can cost much: more than SCENARIO_MAX_BYTES, not UTF-8,
# nested deeper than SCENARIO_MAX_DEPTH, a list longer than its place in the schema takes (its items
# would otherwise be validated one by one), a map or a text longer than any place takes. YAML is
# read event by event into plain values, without recursion, so that depth is counted while reading.


class ScenarioUnreadable(ScenarioInvalid):
    """A file refused as a whole (its size, encoding, syntax or nesting): one line, starting with
    the path where it went wrong ("$.mindblocks: 14,003 items; at most 500")."""

    def __init__(self, problem: str) -> None:
        ApplicationError.__init__(self, problem)
        self.errors = [problem]


class _NotANumber(ValueError):
    """NaN or Infinity in JSON (YAML's .nan and .inf are caught with the other values)."""


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("a key is given twice")  # the YAML reader says which, and where
    return document


def _no_constant(name: str) -> object:
    raise _NotANumber(f"{name} is not a number a scenario takes")


def scenario_loads(data: bytes | str) -> object:
    """The document in `data`: the bytes of a file (UTF-8, a byte order mark skipped) or text;
    JSON, or YAML (a superset). A ScenarioUnreadable, one line naming where, for a file larger than
    SCENARIO_MAX_BYTES, another encoding, a syntax error, nesting deeper than SCENARIO_MAX_DEPTH, a
    key given twice, a YAML alias, tag or key that is not text, or a NaN/Infinity."""
    text = _decoded(data) if isinstance(data, bytes) else data.removeprefix("\ufeff")
    if len(text) > SCENARIO_MAX_BYTES:
        raise ScenarioUnreadable(_too_large())
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)
    except _NotANumber as error:
        raise ScenarioUnreadable(f"$: {error}") from None
    except (ValueError, RecursionError):
        pass  # not JSON, a key twice, or deeper than the JSON reader goes: the YAML reader says where
    return _yaml_loads(text)


def _too_large() -> str:
    return f"$: the file is larger than a scenario can be (at most {SCENARIO_MAX_BYTES:,} bytes)"


# UTF-32's marks first: its little-endian one starts with UTF-16's
_BYTE_ORDER_MARKS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


def _decoded(data: bytes) -> str:
    if len(data) > SCENARIO_MAX_BYTES:
        raise ScenarioUnreadable(_too_large())
    for mark, encoding in _BYTE_ORDER_MARKS.items():
        if data.startswith(mark):
            raise ScenarioUnreadable(
                f"$: the file is {encoding} text (it starts with a {encoding} byte order mark), "
                "not UTF-8: save it as UTF-8"
            )
    data = data.removeprefix(codecs.BOM_UTF8)
    if (nul := data.find(b"\0")) >= 0:
        raise ScenarioUnreadable(
            f"$: not UTF-8 text: a NUL byte at {_byte_place(data, nul)} (UTF-16 or UTF-32 without "
            "a byte order mark, or not text at all): save it as UTF-8"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ScenarioUnreadable(
            f"$: not UTF-8 text: byte 0x{data[error.start]:02x} at "
            f"{_byte_place(data, error.start)} (latin-1 or Windows-1252?): save it as UTF-8"
        ) from None


def _byte_place(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    line_start = data.rfind(b"\n", 0, offset) + 1
    return f"line {line}, byte {offset - line_start + 1} of the line"


# libyaml's reader when PyYAML has it (ten times faster); the events are the same
_YAML_READER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_YAML_VALUES = {  # the tags a plain scalar resolves to that a scenario may hold
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:null",
    "tag:yaml.org,2002:timestamp",
}
_YAML_NUMBERS = {"tag:yaml.org,2002:float", "tag:yaml.org,2002:int"}
_LONGEST_NUMBER = 100  # characters: far more than any number of a scenario, far below int()'s limit
_NO_KEY = object()


class _YamlRefused(Exception):
    """A YAML document refused while it is read: the message names where."""


def _yaml_loads(text: str, reader_class=_YAML_READER) -> object:
    try:
        reader = reader_class(text)
    except UnicodeEncodeError:
        raise ScenarioUnreadable("$: not UTF-8 text: it holds half a surrogate pair") from None
    try:
        return _yaml_document(reader)
    except _YamlRefused as refused:
        raise ScenarioUnreadable(str(refused)) from None
    except yaml.MarkedYAMLError as error:
        if (
            error.problem == "exceeded maximum nesting depth"
            and reader_class is not yaml.SafeLoader
        ):
            # libyaml reads 1,000 levels ahead before it hands over the first: PyYAML's own reader
            # hands them over as it goes, and the eleventh is refused by its path
            return _yaml_loads(text, yaml.SafeLoader)
        what = "; ".join(part for part in (error.context, error.problem) if part)
        mark = error.problem_mark or error.context_mark
        if mark is not None:
            what += f" (line {mark.line + 1}, column {mark.column + 1})"
        raise ScenarioUnreadable(f"$: neither JSON nor YAML: {what}") from None
    except yaml.YAMLError as error:
        what = " ".join(str(error).split())
        raise ScenarioUnreadable(f"$: neither JSON nor YAML: {what}") from None
    finally:
        reader.dispose()


def _yaml_document(reader) -> object:
    """The one document of `reader`'s events as plain values, like yaml.safe_load but built here,
    without recursion: nesting is refused at the first level too deep, an alias (a few hundred
    bytes of them expand to gigabytes), a tag, a merge key, a key that is not text and a key given
    twice (YAML would keep the last one in silence) as soon as they are read."""
    document, documents = None, 0
    # one frame per open list or map: [the container, its place in its parent, a map's pending key]
    frames: list[list] = []

    def refused(event, problem: str, place=_NO_KEY) -> _YamlRefused:
        parts = [frame[1] for frame in frames[1:]]
        if place is not _NO_KEY:
            parts.append(place)
        mark = event.start_mark
        return _YamlRefused(
            f"{path_of(parts)}: {problem} (line {mark.line + 1}, column {mark.column + 1})"
        )

    while not reader.check_event(yaml.StreamEndEvent):
        event = reader.get_event()
        if isinstance(event, yaml.StreamStartEvent | yaml.DocumentEndEvent):
            continue
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise refused(event, "a scenario is one YAML document, this file holds more")
            continue
        if isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            frames.pop()
            continue
        if isinstance(event, yaml.AliasEvent):
            raise refused(event, "aliases (*name) are not allowed in a scenario")
        parent = frames[-1] if frames else None
        is_key = parent is not None and isinstance(parent[0], dict) and parent[2] is _NO_KEY
        if parent is None:
            place = None
        elif isinstance(parent[0], list):
            place = len(parent[0])
        else:
            place = _NO_KEY if is_key else parent[2]
        if event.tag not in (None, "!"):
            raise refused(event, f"tags ({event.tag}) are not allowed in a scenario", place)
        if isinstance(event, yaml.ScalarEvent):
            try:
                value = _yaml_scalar(reader, event)
            except _ScalarRefused as problem:
                raise refused(event, str(problem), place) from None
        elif is_key:
            raise refused(event, "a key must be text, not a list or a map")
        elif len(frames) >= SCENARIO_MAX_DEPTH:
            raise refused(event, f"nested deeper than {SCENARIO_MAX_DEPTH} levels", place)
        else:
            value = [] if isinstance(event, yaml.SequenceStartEvent) else {}
        if parent is None:
            document = value
        elif isinstance(parent[0], list):
            parent[0].append(value)
        elif is_key:
            if not isinstance(value, str):
                raise refused(event, f"a key must be text, not {shown(value)}")
            if value in parent[0]:
                raise refused(event, f"the key {shown(value)} is given twice")
            parent[2] = value
        else:
            parent[0][parent[2]] = value
            parent[2] = _NO_KEY
        if isinstance(value, list | dict):
            frames.append([value, place, _NO_KEY])
    return document


class _ScalarRefused(Exception):
    """A scalar no scenario takes: the message says why."""


def _yaml_scalar(reader, event) -> object:
    """A scalar as yaml.safe_load reads it: quoted ones are text, plain ones resolved by YAML's
    rules (true, 12, 1.5, null, 2026-01-09...)."""
    if not event.implicit[0]:
        return event.value
    tag = reader.resolve(yaml.ScalarNode, event.value, (True, False))
    if tag == "tag:yaml.org,2002:str":
        return event.value
    if tag == "tag:yaml.org,2002:merge":
        raise _ScalarRefused("merge keys (<<) are not allowed in a scenario")
    if tag not in _YAML_VALUES:
        raise _ScalarRefused(
            f"{shown(event.value)} is not a value a scenario takes (quote it for a text)"
        )
    if tag in _YAML_NUMBERS and len(event.value) > _LONGEST_NUMBER:
        raise _ScalarRefused(f"a number of {len(event.value):,} digits is not one a scenario takes")
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark)
    try:
        return reader.yaml_constructors[tag](reader, node)
    except (ValueError, OverflowError) as error:
        raise _ScalarRefused(
            f"{shown(event.value)} cannot be read ({error}; quote it for a text)"
        ) from None


def limit_problem(document: object) -> str | None:
    """The first place where `document` is nested deeper than SCENARIO_MAX_DEPTH, holds a list
    longer than its place in the schema takes, a map or a text longer than any place takes, a key
    that is not text or a character no database stores; None when there is none. Without
    recursion, and before the schema, whose validator would go through all of it first."""
    pending: list[tuple[object, dict, tuple]] = [(document, SCHEMA, ())]
    while pending:
        value, schema, where = pending.pop()
        if isinstance(value, str):
            if problem := _text_problem(value, schema):
                return f"{path_of(where)}: {problem}"
            continue
        if not isinstance(value, list | dict):
            continue
        if len(where) >= SCENARIO_MAX_DEPTH:
            return f"{path_of(where)}: nested deeper than {SCENARIO_MAX_DEPTH} levels"
        if isinstance(value, list):
            most = schema.get("maxItems", SCENARIO_MAX_ITEMS)
            if len(value) > most:
                return f"{path_of(where)}: {len(value):,} items; at most {most:,}"
            items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
            children = [(item, items, (*where, index)) for index, item in enumerate(value)]
        else:
            if len(value) > SCENARIO_MAX_ITEMS:
                return f"{path_of(where)}: {len(value):,} keys; at most {SCENARIO_MAX_ITEMS:,}"
            properties = schema.get("properties", {})
            children = []
            for key, item in value.items():
                if not isinstance(key, str):
                    return f"{path_of(where)}: a key must be text, not {shown(key)}"
                if problem := _text_problem(key, {}):
                    return f"{path_of(where)}: a key of {problem}"
                children.append((item, properties.get(key, {}), (*where, key)))
        pending.extend(reversed(children))  # (the first problem in the file's order)
    return None


def _text_problem(text: str, schema: dict) -> str | None:
    if len(text) > SCENARIO_MAX_TEXT:
        most = min(schema.get("maxLength", SCENARIO_MAX_TEXT), SCENARIO_MAX_TEXT)
        return f"{len(text):,} characters; at most {most:,}"
    if (found := _UNSTORABLE.search(text)) is not None:
        if found.group() == "\0":
            return "a NUL character (\\u0000), which no text of a scenario may hold"
        return f"half a surrogate pair (\\u{ord(found.group()):04x}), which is not a character"
    return None
