"""Reading a scenario file (or another kind of document: DocumentKind, such as attach mode's target
file): bytes or text to plain values, refused as a whole (ScenarioUnreadable,
one line naming where) before it can cost more than its reading — more than SCENARIO_MAX_BYTES,
not UTF-8, a syntax error, nested deeper than SCENARIO_MAX_DEPTH, a list, map or text longer than
its place in the published schema takes. services.scenarios validates and imports what it reads.
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
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


# The limits of a scenario file (docs/behaviour.md, "Scenarios as files"): a real one is about 10 KB, with lists
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


@dataclass(frozen=True, slots=True)
class DocumentKind:
    """A kind of file read here, with its limits: a scenario, or an attach mode's target file."""

    name: str  # in the messages: "a scenario is one YAML document"
    schema: dict
    max_bytes: int
    max_depth: int
    max_items: int
    max_text: int
    unreadable: type[ApplicationError]  # what a refused file raises, with its one line


SCENARIO = DocumentKind(
    name="scenario",
    schema=SCHEMA,
    max_bytes=SCENARIO_MAX_BYTES,
    max_depth=SCENARIO_MAX_DEPTH,
    max_items=SCENARIO_MAX_ITEMS,
    max_text=SCENARIO_MAX_TEXT,
    unreadable=ScenarioUnreadable,
)


class _NotANumber(ValueError):
    """NaN or Infinity in JSON (YAML's .nan and .inf are caught with the other values)."""


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("a key is given twice")  # the YAML reader says which, and where
    return document


def scenario_loads(data: bytes | str) -> object:
    """The scenario in `data` (document_loads)."""
    return document_loads(data, SCENARIO)


def document_loads(data: bytes | str, kind: DocumentKind) -> object:
    """The document in `data`: the bytes of a file (UTF-8, a byte order mark skipped) or text;
    JSON, or YAML (a superset). A `kind.unreadable`, one line naming where, for a file larger than
    kind.max_bytes, another encoding, a syntax error, nesting deeper than kind.max_depth, a key
    given twice, a YAML alias, tag or key that is not text, or a NaN/Infinity."""
    text = _decoded(data, kind) if isinstance(data, bytes) else data.removeprefix("\ufeff")
    if len(text) > kind.max_bytes:
        raise kind.unreadable(_too_large(kind))

    def no_constant(name: str) -> object:
        raise _NotANumber(f"{name} is not a number a {kind.name} takes")

    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=no_constant)
    except _NotANumber as error:
        raise kind.unreadable(f"$: {error}") from None
    except (ValueError, RecursionError):
        pass  # not JSON, a key twice, or deeper than the JSON reader goes: the YAML reader says where
    return _yaml_loads(text, kind)


def _too_large(kind: DocumentKind) -> str:
    return f"$: the file is larger than a {kind.name} can be (at most {kind.max_bytes:,} bytes)"


# UTF-32's marks first: its little-endian one starts with UTF-16's
_BYTE_ORDER_MARKS = {
    codecs.BOM_UTF32_LE: "UTF-32",
    codecs.BOM_UTF32_BE: "UTF-32",
    codecs.BOM_UTF16_LE: "UTF-16",
    codecs.BOM_UTF16_BE: "UTF-16",
}


def _decoded(data: bytes, kind: DocumentKind) -> str:
    if len(data) > kind.max_bytes:
        raise kind.unreadable(_too_large(kind))
    for mark, encoding in _BYTE_ORDER_MARKS.items():
        if data.startswith(mark):
            raise kind.unreadable(
                f"$: the file is {encoding} text (it starts with a {encoding} byte order mark), "
                "not UTF-8: save it as UTF-8"
            )
    data = data.removeprefix(codecs.BOM_UTF8)
    if (nul := data.find(b"\0")) >= 0:
        raise kind.unreadable(
            f"$: not UTF-8 text: a NUL byte at {_byte_place(data, nul)} (UTF-16 or UTF-32 without "
            "a byte order mark, or not text at all): save it as UTF-8"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise kind.unreadable(
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


def _yaml_loads(text: str, kind: DocumentKind, reader_class=_YAML_READER) -> object:
    try:
        reader = reader_class(text)
    except UnicodeEncodeError:
        raise kind.unreadable("$: not UTF-8 text: it holds half a surrogate pair") from None
    try:
        return _yaml_document(reader, kind)
    except _YamlRefused as refused:
        raise kind.unreadable(str(refused)) from None
    except yaml.MarkedYAMLError as error:
        if (
            error.problem == "exceeded maximum nesting depth"
            and reader_class is not yaml.SafeLoader
        ):
            # libyaml reads 1,000 levels ahead before it hands over the first: PyYAML's own reader
            # hands them over as it goes, and the eleventh is refused by its path
            return _yaml_loads(text, kind, yaml.SafeLoader)
        what = "; ".join(part for part in (error.context, error.problem) if part)
        mark = error.problem_mark or error.context_mark
        if mark is not None:
            what += f" (line {mark.line + 1}, column {mark.column + 1})"
        raise kind.unreadable(f"$: neither JSON nor YAML: {what}") from None
    except yaml.YAMLError as error:
        what = " ".join(str(error).split())
        raise kind.unreadable(f"$: neither JSON nor YAML: {what}") from None
    finally:
        reader.dispose()


def _yaml_document(reader, kind: DocumentKind) -> object:
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
                raise refused(event, f"a {kind.name} is one YAML document, this file holds more")
            continue
        if isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            frames.pop()
            continue
        if isinstance(event, yaml.AliasEvent):
            raise refused(event, f"aliases (*name) are not allowed in a {kind.name}")
        parent = frames[-1] if frames else None
        is_key = parent is not None and isinstance(parent[0], dict) and parent[2] is _NO_KEY
        if parent is None:
            place = None
        elif isinstance(parent[0], list):
            place = len(parent[0])
        else:
            place = _NO_KEY if is_key else parent[2]
        if event.tag not in (None, "!"):
            raise refused(event, f"tags ({event.tag}) are not allowed in a {kind.name}", place)
        if isinstance(event, yaml.ScalarEvent):
            try:
                value = _yaml_scalar(reader, event, kind)
            except _ScalarRefused as problem:
                raise refused(event, str(problem), place) from None
        elif is_key:
            raise refused(event, "a key must be text, not a list or a map")
        elif len(frames) >= kind.max_depth:
            raise refused(event, f"nested deeper than {kind.max_depth} levels", place)
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


def _yaml_scalar(reader, event, kind: DocumentKind) -> object:
    """A scalar as yaml.safe_load reads it: quoted ones are text, plain ones resolved by YAML's
    rules (true, 12, 1.5, null, 2026-01-09...)."""
    if not event.implicit[0]:
        return event.value
    tag = reader.resolve(yaml.ScalarNode, event.value, (True, False))
    if tag == "tag:yaml.org,2002:str":
        return event.value
    if tag == "tag:yaml.org,2002:merge":
        raise _ScalarRefused(f"merge keys (<<) are not allowed in a {kind.name}")
    if tag not in _YAML_VALUES:
        raise _ScalarRefused(
            f"{shown(event.value)} is not a value a {kind.name} takes (quote it for a text)"
        )
    if tag in _YAML_NUMBERS and len(event.value) > _LONGEST_NUMBER:
        raise _ScalarRefused(
            f"a number of {len(event.value):,} digits is not one a {kind.name} takes"
        )
    node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark)
    try:
        return reader.yaml_constructors[tag](reader, node)
    except (ValueError, OverflowError) as error:
        raise _ScalarRefused(
            f"{shown(event.value)} cannot be read ({error}; quote it for a text)"
        ) from None


def limit_problem(document: object, kind: DocumentKind | None = None) -> str | None:
    """The first place where `document` is nested deeper than SCENARIO_MAX_DEPTH, holds a list
    longer than its place in the schema takes, a map or a text longer than any place takes, a key
    that is not text or a character no database stores; None when there is none. Without
    recursion, and before the schema, whose validator would go through all of it first."""
    kind = kind or SCENARIO
    pending: list[tuple[object, dict, tuple]] = [(document, kind.schema, ())]
    while pending:
        value, schema, where = pending.pop()
        if isinstance(value, str):
            if problem := _text_problem(value, schema, kind):
                return f"{path_of(where)}: {problem}"
            continue
        if not isinstance(value, list | dict):
            continue
        if len(where) >= kind.max_depth:
            return f"{path_of(where)}: nested deeper than {kind.max_depth} levels"
        if isinstance(value, list):
            most = schema.get("maxItems", kind.max_items)
            if len(value) > most:
                return f"{path_of(where)}: {len(value):,} items; at most {most:,}"
            items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
            children = [(item, items, (*where, index)) for index, item in enumerate(value)]
        else:
            if len(value) > kind.max_items:
                return f"{path_of(where)}: {len(value):,} keys; at most {kind.max_items:,}"
            properties = schema.get("properties", {})
            children = []
            for key, item in value.items():
                if not isinstance(key, str):
                    return f"{path_of(where)}: a key must be text, not {shown(key)}"
                if problem := _text_problem(key, {}, kind):
                    return f"{path_of(where)}: a key of {problem}"
                children.append((item, properties.get(key, {}), (*where, key)))
        pending.extend(reversed(children))  # (the first problem in the file's order)
    return None


def _text_problem(text: str, schema: dict, kind: DocumentKind) -> str | None:
    if len(text) > kind.max_text:
        most = min(schema.get("maxLength", kind.max_text), kind.max_text)
        return f"{len(text):,} characters; at most {most:,}"
    if (found := _UNSTORABLE.search(text)) is not None:
        if found.group() == "\0":
            return f"a NUL character (\\u0000), which no text of a {kind.name} may hold"
        return f"half a surrogate pair (\\u{ord(found.group()):04x}), which is not a character"
    return None
