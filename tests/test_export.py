"""Export (issue 25): our rows of a table in a time range as CSV and NDJSON, from the API and from
`manage.py export_activity`. Both formats parse back to exactly the identity rule's rows in the
range (compared with the ORM), pages meet without a gap or a repeat even inside one timestamp, a
real row and a forged look-alike never leave, and every bad request is refused with the API's JSON
400 before anything is streamed."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import Count, F
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from synthetics.models import Journey, JourneySceneEvent, MindblockEvent, SyntheticRun
from synthetics.selectors import export
from synthetics.services import activity_backfill, sim_users_seed
from tests.factories import JourneySceneEventFactory, StaffUserFactory, UserFactory

pytestmark = pytest.mark.django_db
API = "/api/synthetics/export"

MODELS = {
    "scene_events": (JourneySceneEvent, "created_at"),
    "mindblock_events": (MindblockEvent, "created_at"),
    "journeys": (Journey, "started_at"),
}


# The history's end: a weekday's evening in Europe and afternoon in the Americas, on a clock of its
# own (ending at the wall clock, its row counts followed the hour the tests ran at: at 00:30 UTC the
# 40 users left some tables with under 3 pages of 37 rows).
HISTORY_END = datetime(2026, 3, 4, 19, 0, 17, tzinfo=UTC)


@pytest.fixture
def history(db, monkeypatch):
    """Two hours of history ending at a frozen now, a real row and a forged look-alike of ours in
    the middle of it; returns now."""
    now = HISTORY_END
    sim_users_seed(count=40, seed=7, today=now.date())
    monkeypatch.setattr(timezone, "now", lambda: now)
    activity_backfill(hours=2, now=now, seed=3)
    run = SyntheticRun.objects.filter(status="succeeded").order_by("window_end")[30]
    inside = run.window_end - timedelta(seconds=1)
    JourneySceneEventFactory(created_at=inside, event_payload={"planted": 1})
    # Tagged and naming a run that wrote rows then, but without its key: not ours.
    JourneySceneEventFactory(
        created_at=inside,
        event_payload={
            "synthetic": True,
            "run_id": run.id,
            "run_key": "kforged0000000000",
            "planted": 2,
        },
    )
    JourneySceneEventFactory(created_at=inside, event_payload={"synthetic": "true", "planted": 3})
    return now


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=StaffUserFactory())}")
    return client


def _iso(moment: datetime) -> str:
    """As the export writes a time: UTC, microseconds, Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _expected(table: str, since: datetime, until: datetime) -> list[dict]:
    """Our rows in the range as the ORM reads them, in the export's order, as JSON would hold them."""
    model, time = MODELS[table]
    rows = (
        model.objects.synthetic()
        .filter(**{f"{time}__gte": since, f"{time}__lt": until})
        .order_by(time, "pk")
        .values(*[field.attname for field in model._meta.concrete_fields])
    )
    return [
        {
            name: _iso(value)
            if isinstance(value, datetime)
            else str(value)
            if isinstance(value, uuid.UUID)
            else value
            for name, value in row.items()
        }
        for row in rows
    ]


def _as_csv_text(rows: list[dict]) -> list[dict]:
    """The expected rows as CSV cells: text, None empty, JSON as text to be parsed back."""

    def cell(value) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, dict | list):
            return value  # compared parsed
        return str(value)

    return [{name: cell(value) for name, value in row.items()} for row in rows]


def _parse(body: bytes, format: str, json_columns: set[str]) -> list[dict]:
    if format == "ndjson":
        return [json.loads(line) for line in body.decode().splitlines()]
    rows = list(csv.DictReader(io.StringIO(body.decode(), newline="")))
    for row in rows:
        for name in json_columns & set(row):
            row[name] = json.loads(row[name])
    return rows


def _get(client: APIClient, **params):
    return client.get(API, params)


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("format", ["csv", "ndjson"])
@pytest.mark.parametrize("table", list(MODELS))
def test_both_formats_parse_back_to_exactly_our_rows_in_the_range(
    history, api, monkeypatch, table, format
):
    # given pages of 37 rows (every table's export spans several), read in batches of 5 on
    # PostgreSQL, and a range inside the history
    monkeypatch.setattr(export, "EXPORT_PAGE_SIZE", 37)
    monkeypatch.setattr(export, "STREAM_BATCH", 5)
    since, until = history - timedelta(minutes=100), history - timedelta(minutes=10)
    expected = _expected(table, since, until)
    assert len(expected) > 3 * 37
    # when
    response = _get(api, format=format, table=table, since=_iso(since), until=_iso(until))
    # then
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == export.EXPORT_CONTENT_TYPES[format]
    assert response["Content-Disposition"] == (
        f'attachment; filename="{table}_{since:%Y%m%dT%H%M%SZ}_{until:%Y%m%dT%H%M%SZ}.{format}"'
    )
    json_columns = {"event_payload", "plan"}
    rows = _parse(_body(response), format, json_columns)
    assert rows == (expected if format == "ndjson" else _as_csv_text(expected))
    assert list(rows[0]) == [c.column for c in MODELS[table][0]._meta.concrete_fields]


def test_a_real_row_and_forged_look_alikes_never_leave(history, api):
    # given the three rows planted in the history that are not ours (one merely claims a run)
    planted = set(
        JourneySceneEvent.objects.filter(event_payload__has_key="planted").values_list(
            "id", flat=True
        )
    )
    assert len(planted) == 3
    assert not JourneySceneEvent.objects.synthetic().filter(id__in=planted).exists()
    # when the whole history is exported in both formats
    since, until = history - timedelta(hours=3), history + timedelta(minutes=1)
    exported = set()
    for format in ("csv", "ndjson"):
        body = _body(
            _get(api, format=format, table="scene_events", since=_iso(since), until=_iso(until))
        )
        ids = {int(row["id"]) for row in _parse(body, format, {"event_payload"})}
        exported.add(frozenset(ids))
        # then
        assert not ids & planted
    assert exported == {
        frozenset(JourneySceneEvent.objects.synthetic().values_list("id", flat=True))
    }


@pytest.mark.parametrize("page_size", [3, 4, 1000])
@pytest.mark.parametrize("format", ["csv", "ndjson"])
def test_pages_meet_inside_one_timestamp_without_a_gap_or_a_repeat(
    history, api, monkeypatch, format, page_size
):
    # given one run's scene events all moved to its last instant (still inside its span, so ours),
    # many more of them than a small page holds, and the range starting a minute before it: the
    # first page's window ends at that instant (a page of 1,000 ends there short, the next starts
    # there)
    busiest = (
        JourneySceneEvent.objects.synthetic()
        .values("event_payload__run_id")
        .annotate(rows=Count("id"))
        .order_by("-rows")[0]
    )
    run = SyntheticRun.objects.get(id=busiest["event_payload__run_id"])
    JourneySceneEvent.objects.filter(event_payload__run_id=run.id).update(created_at=run.window_end)
    tied = set(
        JourneySceneEvent.objects.synthetic()
        .filter(created_at=run.window_end)
        .values_list("id", flat=True)
    )
    monkeypatch.setattr(export, "EXPORT_PAGE_SIZE", page_size)
    monkeypatch.setattr(export, "EXPORT_FIRST_WINDOW", timedelta(minutes=1))
    assert len(tied) > 3 * min(page_size, 4)
    since, until = run.window_end - timedelta(minutes=1), run.window_end + timedelta(minutes=5)
    # when
    body = _body(
        _get(api, format=format, table="scene_events", since=_iso(since), until=_iso(until))
    )
    # then every row once, in (time, id) order, the tied ones among them
    ids = [int(row["id"]) for row in _parse(body, format, {"event_payload"})]
    assert ids == [row["id"] for row in _expected("scene_events", since, until)]
    assert len(ids) == len(set(ids)) and tied <= set(ids)


def test_every_row_leaves_once_whatever_the_windows_guess(history, monkeypatch):
    # given our scene events of two hours, and an hour of them moved to a day earlier (a long
    # gap with nothing between), a range of thirty days
    early = history - timedelta(hours=1)
    moved = JourneySceneEvent.objects.filter(created_at__lt=early)
    day = timedelta(days=1)
    SyntheticRun.objects.filter(window_end__lt=early).update(  # the rule dates rows by their run
        window_start=F("window_start") - day,
        window_end=F("window_end") - day,
        events_from=F("events_from") - day,
    )
    moved.update(created_at=F("created_at") - day)
    since, until = history - timedelta(days=30), history + timedelta(minutes=1)
    expected = [row["id"] for row in _expected("scene_events", since, until)]
    # (two hours end at the wall clock: about 500 rows at the quietest hour, 2,000 at the busiest)
    assert len(expected) > 300
    statements = []
    query = export._Pages.query
    monkeypatch.setattr(export._Pages, "query", lambda pages: statements.append(1) or query(pages))
    for first_window, page_size in [
        (timedelta(milliseconds=1), 50),
        (timedelta(minutes=1), 50),
        (timedelta(days=31), 50),  # the whole range: the first page fills, the rest follow it
        (timedelta(minutes=1), 7),
    ]:
        monkeypatch.setattr(export, "EXPORT_FIRST_WINDOW", first_window)
        statements.clear()
        request = export.export_request(
            table="scene_events", format="ndjson", since=since, until=until, now=history
        )
        # when
        body = b"".join(export.export_chunks(request, page_size=page_size))
        # then every row once, in order, in not many more statements than pages (the empty
        # windows of the gap and of the thirty days grow fourfold)
        assert [row["id"] for row in _parse(body, "ndjson", set())] == expected
        assert len(statements) < 2.5 * len(expected) / page_size + 60, (first_window, page_size)


@pytest.mark.postgres
@pytest.mark.parametrize("format", ["csv", "ndjson"])
@pytest.mark.parametrize("table", list(MODELS))
def test_postgresql_copies_the_bytes_the_python_path_writes(history, table, format):
    # given pages of 3 rows over the whole history, an event table's with its busiest run's rows
    # all tied in the run's last instant (more than a page)
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("compares PostgreSQL's COPY with the Python path on the same rows")
    model, _ = MODELS[table]
    if table != "journeys":
        busiest = (
            model.objects.synthetic()
            .values("event_payload__run_id")
            .annotate(rows=Count("pk"))
            .order_by("-rows")[0]
        )
        run = SyntheticRun.objects.get(id=busiest["event_payload__run_id"])
        tied = model.objects.filter(event_payload__run_id=run.id)
        assert tied.update(created_at=run.window_end) > 3
    request = export.export_request(
        table=table, format=format, since=history - timedelta(hours=3), now=history
    )
    source = export._source(table)
    # when
    copied = b"".join(export.export_chunks(request, page_size=3))
    # then it is byte for byte what the Python path (SQLite's, and PostgreSQL's NDJSON before
    # COPY) writes from the rows read through the ORM, with CSV's header
    written = b"".join(chunk for chunk, _ in export._written_pages(source, request, 3))
    header = (
        export._csv_line([column.name for column in source.columns]) if format == "csv" else b""
    )
    assert copied == header + written
    assert written.count(b"\n") == _expected_count(table, request) > 20 * 3


def _expected_count(table: str, request: export.ExportRequest) -> int:
    model, time = MODELS[table]
    return (
        model.objects.synthetic()
        .filter(**{f"{time}__gte": request.since, f"{time}__lt": request.until})
        .count()
    )


def test_an_export_abandoned_mid_page_leaves_the_connection_usable(history, monkeypatch):
    # given an export read in batches of 5 within pages of 300 (a client that goes away), inside
    # the test's transaction, its first page's window the whole history (a full page: two hours
    # that end at the wall clock hold about 500 rows at the quietest hour)
    monkeypatch.setattr(export, "EXPORT_PAGE_SIZE", 300)
    monkeypatch.setattr(export, "EXPORT_FIRST_WINDOW", timedelta(hours=4))
    monkeypatch.setattr(export, "STREAM_BATCH", 5)
    request = export.export_request(
        table="scene_events", format="ndjson", since=history - timedelta(hours=3), now=history
    )
    from django.db import connection

    postgresql = connection.vendor == "postgresql"
    chunks = export.export_chunks(request)
    first = [next(chunks) for _ in range(3 if postgresql else 1)]
    # when it is closed in the middle of its first page
    chunks.close()
    # then the connection answers the next query, and what was sent was whole rows (a batch a
    # chunk on PostgreSQL, a page on SQLite)
    assert JourneySceneEvent.objects.synthetic().count() > 300
    lines = b"".join(first).decode().splitlines()
    assert len(lines) == (3 * 5 if postgresql else 300)
    assert all(json.loads(line)["id"] for line in lines)


def test_the_range_is_since_inclusive_until_exclusive_and_defaults_to_the_last_24_hours(
    history, api
):
    # given a row of ours exactly at a bound
    first = JourneySceneEvent.objects.synthetic().order_by("created_at", "id").first()
    at = first.created_at
    # when / then: since takes it, until leaves it
    inclusive = _parse(
        _body(
            _get(
                api,
                format="ndjson",
                table="scene_events",
                since=_iso(at),
                until=_iso(at + timedelta(seconds=1)),
            )
        ),
        "ndjson",
        set(),
    )
    exclusive = _parse(
        _body(
            _get(
                api,
                format="ndjson",
                table="scene_events",
                since=_iso(at - timedelta(seconds=1)),
                until=_iso(at),
            )
        ),
        "ndjson",
        set(),
    )
    assert first.id in {row["id"] for row in inclusive}
    assert first.id not in {row["id"] for row in exclusive}
    # and without since and until: the 24 hours before now (the whole two-hour history)
    response = _get(api, format="csv", table="journeys")
    assert response["Content-Disposition"].endswith(
        f'{history - timedelta(hours=24):%Y%m%dT%H%M%SZ}_{history:%Y%m%dT%H%M%SZ}.csv"'
    )
    assert (
        len(_parse(_body(response), "csv", {"plan"}))
        == Journey.objects.synthetic().filter(started_at__lt=history).count()
    )


@pytest.mark.parametrize(
    "query",
    [
        {"until": "0001-01-01T00:00:00.001Z"},  # the default span reaches before the year 1
        {"since": "0001-01-01T00:00:00Z", "until": "9999-12-31T23:59:59.999999Z"},
        {"since": "9999-12-31T23:59:00Z", "until": "9999-12-31T23:59:59.999999Z"},
    ],
)
def test_a_range_at_the_ends_of_the_calendar_exports_without_an_error(history, api, query):
    response = api.get(API, {"table": "journeys", "format": "ndjson", **query})
    assert response.status_code == 200, response.content
    rows = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    whole = query.get("since", "").startswith("0001") and query["until"].startswith("9999")
    assert len(rows) == (Journey.objects.synthetic().count() if whole else 0)


def test_an_empty_range_gives_a_csv_header_and_an_empty_ndjson(db, api):
    # given no rows at all
    params = {
        "table": "mindblock_events",
        "since": "2020-01-01T00:00:00Z",
        "until": "2020-01-02T00:00:00+01:00",
    }
    # when
    csv_body = _body(_get(api, format="csv", **params))
    ndjson_body = _body(_get(api, format="ndjson", **params))
    # then
    assert (
        csv_body.decode() == ",".join(c.column for c in MindblockEvent._meta.concrete_fields) + "\n"
    )
    assert ndjson_body == b""


GOOD = {
    "format": "csv",
    "table": "scene_events",
    "since": "2026-01-09T00:00:00Z",
    "until": "2026-01-10T00:00:00Z",
}


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        (
            {**GOOD, "table": "events"},
            "table",
            "scene_events, mindblock_events, journeys, sessions",
        ),
        (
            {**GOOD, "table": "sessions"},
            "table",
            "the tables are: scene_events, mindblock_events, journeys.",
        ),
        ({**GOOD, "table": ""}, "table", "Must be one of"),
        ({k: v for k, v in GOOD.items() if k != "table"}, "table", "required"),
        ({**GOOD, "format": "xlsx"}, "format", "Must be one of: csv, ndjson"),
        ({**GOOD, "format": "json"}, "format", "Must be one of: csv, ndjson"),
        ({k: v for k, v in GOOD.items() if k != "format"}, "format", "required"),
        ({**GOOD, "since": "2026-01-09T00:00:00"}, "since", "with a time zone"),
        ({**GOOD, "until": "2026-01-10"}, "until", "with a time zone"),
        ({**GOOD, "since": "yesterday"}, "since", "ISO 8601"),
        ({**GOOD, "since": "2026-02-30T00:00:00Z"}, "since", "ISO 8601"),
        ({**GOOD, "since": GOOD["until"]}, "since", "must be before until"),
        ({**GOOD, "since": "2026-01-10T01:00:00+01:00"}, "since", "must be before until"),
        ({**GOOD, "since": "2026-01-11T00:00:00Z"}, "since", "must be before until"),
        ({**GOOD, "until": "2020-01-01T00:00:00Z"}, "since", "must be before until"),
        # the first and last instants a datetime holds (schemathesis found the first a 500)
        (
            {"table": "journeys", "format": "csv", "until": "0001-01-01T00:00:00Z"},
            "since",
            "must be before until",
        ),
        ({**GOOD, "until": "0001-01-01T00:30:00+01:00"}, "until", "ISO 8601"),  # UTC: year 0
        ({**GOOD, "since": "9999-12-31T23:30:00-01:00"}, "since", "ISO 8601"),  # UTC: year 10000
    ],
)
def test_every_bad_request_is_refused_with_a_json_400_and_nothing_streamed(
    api, query, field, words
):
    # when
    response = api.get(API, query)
    # then
    assert response.status_code == 400, response.content
    assert not response.streaming
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["success"] is False
    assert field in body["fields"]
    assert words in body["error"]


@pytest.mark.parametrize("name", ["table", "format", "since", "until"])
def test_a_repeated_parameter_is_refused(api, name):
    response = api.get(f"{API}?{'&'.join(f'{k}={v}' for k, v in GOOD.items())}&{name}={GOOD[name]}")
    assert response.status_code == 400
    assert response.json()["fields"] == {name: ["Given more than once: give it once."]}


@pytest.mark.parametrize(("who", "status"), [("anonymous", 401), ("nobody", 403), ("viewer", 200)])
def test_reading_needs_the_view_permission(db, who, status):
    # given
    client = APIClient()
    if who != "anonymous":
        user = UserFactory()
        if who == "viewer":
            user.user_permissions.add(Permission.objects.get(codename="view_syntheticsettings"))
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=user).key}")
    # when
    response = client.get(API, GOOD)
    # then
    assert response.status_code == status
    if status != 200:
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["success"] is False
    else:
        assert _body(response).startswith(b"id,")


def test_the_command_writes_a_file_identical_to_the_api_answer(history, api, tmp_path):
    # given
    since, until = _iso(history - timedelta(minutes=90)), _iso(history)
    target = tmp_path / "scenes.csv"
    stderr = io.StringIO()
    # when
    call_command(
        "export_activity",
        "--table=scene_events",
        "--format=csv",
        f"--since={since}",
        f"--until={until}",
        f"--output={target}",
        stderr=stderr,
    )
    # then
    api_body = _body(_get(api, format="csv", table="scene_events", since=since, until=until))
    assert target.read_bytes() == api_body
    rows = api_body.count(b"\n") - 1
    assert rows > 100
    assert f"export_activity: {rows:,} rows of scene_events" in stderr.getvalue()
    assert list(tmp_path.iterdir()) == [target], "no partial file left beside it"


def test_the_command_writes_ndjson_to_stdout_and_its_summary_to_stderr(history, capsys):
    # given
    since, until = history - timedelta(hours=3), history
    # when
    call_command(
        "export_activity",
        "--table=journeys",
        "--format=ndjson",
        f"--since={_iso(since)}",
        f"--until={_iso(until)}",
    )
    # then
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows == _expected("journeys", since, until)
    assert (
        err.strip().splitlines()[-1].startswith(f"export_activity: {len(rows):,} rows of journeys")
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--table=sessions", "--format=csv"], "No table 'sessions'"),
        (["--table=scene_events", "--format=csv", "--since=2026-01-09T00:00:00"], "no time zone"),
        (
            [
                "--table=scene_events",
                "--format=csv",
                "--since=2026-01-09T00:00:00Z",
                "--until=2026-01-09T00:00:00Z",
            ],
            "must be before until",
        ),
        (["--table=events", "--format=csv"], "invalid choice"),
        (["--table=scene_events", "--format=xml"], "invalid choice"),
    ],
)
def test_the_command_refuses_bad_input_and_leaves_no_file(db, tmp_path, args, words):
    # given
    target = tmp_path / "out.csv"
    # when
    with pytest.raises(CommandError, match=words):
        call_command("export_activity", *args, f"--output={target}")
    # then
    assert list(tmp_path.iterdir()) == []


def test_a_failed_export_leaves_the_file_there_was_as_it_was(history, tmp_path, monkeypatch):
    # given a file already there and an export that fails after its first page
    target = tmp_path / "out.ndjson"
    target.write_text("before\n")
    monkeypatch.setattr(export, "EXPORT_PAGE_SIZE", 10)

    def failing(pages):
        def once(*args, **kwargs):
            chunks = pages(*args, **kwargs)
            yield next(chunks)
            raise RuntimeError("the database went away")

        return once

    for pages in ("_copied_pages", "_written_pages"):  # PostgreSQL's, SQLite's
        monkeypatch.setattr(export, pages, failing(getattr(export, pages)))
    # when
    with pytest.raises(RuntimeError):
        call_command(
            "export_activity", "--table=scene_events", "--format=ndjson", f"--output={target}"
        )
    # then
    assert target.read_text() == "before\n"
    assert list(tmp_path.iterdir()) == [target]


# --- attach mode: the application's own tables, with their own columns ---------------------------

ATTACHED_APP = '''
CREATE SCHEMA export_app;
CREATE TABLE export_app.members (
    member_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    handle text NOT NULL UNIQUE,
    joined timestamptz NOT NULL
);
CREATE TABLE export_app.events (
    event_id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    member_id bigint NOT NULL REFERENCES export_app.members (member_id),
    happened timestamptz NOT NULL,
    what text NOT NULL,
    data jsonb NOT NULL DEFAULT '{}',
    score numeric(6, 2) DEFAULT 1.50,
    labels text[] NOT NULL DEFAULT '{a,"b c"}',
    "odd ""name""" boolean DEFAULT true
);
CREATE TABLE export_app.blocks (
    block_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    member_id bigint NOT NULL REFERENCES export_app.members (member_id),
    happened timestamptz NOT NULL,
    block text
);
CREATE TABLE export_app.visits (
    member_id bigint NOT NULL REFERENCES export_app.members (member_id),
    started timestamp without time zone NOT NULL,
    device text NOT NULL,
    props jsonb NOT NULL DEFAULT '{}'
);
'''
ATTACHED_TARGET = {
    "version": 1,
    "accounts": {
        "table": "export_app.members",
        "key": "member_id",
        "key_type": "bigint",
        "key_source": "database",
        "columns": {"handle": {"template": "{username}"}, "joined": {"sim_user": "joined_at"}},
    },
    "events": {
        "scene": {
            "table": "export_app.events",
            "account": "member_id",
            "time": "happened",
            "type": "what",
            "payload": "data",
            "columns": {},
        },
        "mindblock": {
            "table": "export_app.blocks",
            "account": "member_id",
            "time": "happened",
            "type": None,
            "payload": None,
            "mindblock": {"column": "block", "as": "slug"},
            "columns": {},
        },
        "session": {
            "table": "export_app.visits",
            "account": "member_id",
            "time": "started",
            "type": None,
            "payload": "props",
            "columns": {"device": {"constant": "synthetics"}},
        },
    },
}
ATTACHED_COLUMNS = {
    "scene_events": [
        "event_id",
        "member_id",
        "happened",
        "what",
        "data",
        "score",
        "labels",
        'odd "name"',
    ],
    "mindblock_events": ["block_id", "member_id", "happened", "block"],
    "sessions": ["member_id", "started", "device", "props"],
}


@pytest.fixture
def attached(db, settings, tmp_path, monkeypatch):
    """An application schema in the test's database, a target file mapping its three event tables
    (one with the tag in jsonb, one without, one without a primary key), an hour of history and
    real rows among it, a look-alike of ours too; returns now."""
    from django.db import connection

    from synthetics.models import SyntheticSettings
    from synthetics.services import sim_users_seed
    from synthetics.target.tables import target_reset
    from synthetics.target.writing import lookups_reset

    if connection.vendor != "postgresql":
        pytest.skip("attach mode is PostgreSQL's")
    with connection.cursor() as cursor:
        cursor.execute(ATTACHED_APP)
        cursor.execute(
            "INSERT INTO export_app.members (handle, joined) VALUES ('real-1', now()) "
            "RETURNING member_id"
        )
        (real_member,) = cursor.fetchone()
    path = tmp_path / "target.json"
    path.write_text(json.dumps(ATTACHED_TARGET))
    settings.SYNTHETICS_TARGET = str(path)
    target_reset()
    lookups_reset()
    sim_users_seed(count=30, seed=7)
    SyntheticSettings.objects.filter(pk=1).update(sessions_per_min=8, max_per_run=40)
    now = datetime(2026, 1, 9, 19, 0, tzinfo=UTC)
    monkeypatch.setattr(timezone, "now", lambda: now)
    activity_backfill(hours=1, now=now, seed=5)
    run = SyntheticRun.objects.filter(status="succeeded").order_by("window_end")[20]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO export_app.events (member_id, happened, what, data) VALUES "
            "(%s, %s, 'scene_entered', '{}'), (%s, %s, 'scene_entered', %s)",
            [
                real_member,
                run.window_end,
                real_member,
                run.window_end,
                json.dumps({"synthetic": True, "run_id": run.id, "run_key": "kforged"}),
            ],
        )
        cursor.execute(
            "INSERT INTO export_app.blocks (member_id, happened, block) VALUES (%s, %s, 'x')",
            [real_member, run.window_end],
        )
        cursor.execute(
            "INSERT INTO export_app.visits (member_id, started, device, props) VALUES "
            "(%s, %s, 'ios', '{\"synthetic\": true}')",
            [real_member, run.window_end.replace(tzinfo=None)],
        )
    yield {"now": now, "real_member": real_member}
    target_reset()
    lookups_reset()


@pytest.mark.slow
@pytest.mark.parametrize("table", list(ATTACHED_COLUMNS))
def test_attached_tables_export_their_own_columns_and_only_our_rows(
    attached, api, monkeypatch, table
):
    # given pages of a twelfth of the table's rows, at least 7 (a dozen pages a table: every page
    # of an attached table is its own statement through the identity rule, so pages of 7 made
    # this CI's slowest test) and the rule's rows as the ORM reads them
    from django.db import connection

    from synthetics.target.tables import event_models

    model = event_models()[export.EXPORT_TABLES[table]]
    ours = list(
        model.objects.synthetic().order_by("created_at", "pk").values_list("pk", "created_at")
    )
    assert len(ours) > 3 * 7
    monkeypatch.setattr(export, "EXPORT_PAGE_SIZE", max(7, len(ours) // 12))
    since, until = attached["now"] - timedelta(hours=2), attached["now"] + timedelta(minutes=1)
    # when
    bodies = {
        format: _body(_get(api, format=format, table=table, since=_iso(since), until=_iso(until)))
        for format in ("csv", "ndjson")
    }
    # then both formats hold the table's own columns and exactly our rows, in (time, key) order
    ndjson = _parse(bodies["ndjson"], "ndjson", set())
    csv_rows = list(csv.DictReader(io.StringIO(bodies["csv"].decode(), newline="")))
    assert [list(row) for row in (ndjson[0], csv_rows[0])] == [ATTACHED_COLUMNS[table]] * 2
    assert len(ndjson) == len(csv_rows) == len(ours)
    assert all(row["member_id"] != attached["real_member"] for row in ndjson)
    time_column = {
        "scene_events": "happened",
        "mindblock_events": "happened",
        "sessions": "started",
    }[table]
    if table == "sessions":  # a local time, as the application keeps it (no zone)
        assert [row[time_column] for row in ndjson] == [
            moment.replace(tzinfo=None).isoformat(timespec="microseconds") for _, moment in ours
        ]
        assert all(
            row["props"]["synthetic"] is True and row["device"] == "synthetics" for row in ndjson
        )
        return
    key = ATTACHED_COLUMNS[table][0]
    assert [str(row[key]) for row in ndjson] == [str(pk) for pk, _ in ours]
    assert [row[key] for row in csv_rows] == [str(pk) for pk, _ in ours]
    assert [row[time_column] for row in ndjson] == [_iso(moment) for _, moment in ours]
    if table == "scene_events":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT data FROM export_app.events WHERE event_id = ANY(%s) ORDER BY happened, event_id",
                [[pk for pk, _ in ours]],
            )
            assert [row["data"] for row in ndjson] == [
                json.loads(data) if isinstance(data, str) else data for (data,) in cursor.fetchall()
            ]
        assert {row["score"] for row in ndjson} == {1.5}
        assert {row["labels"] for row in ndjson} == {'{a,"b c"}'}
        assert {row['odd "name"'] for row in ndjson} == {True}
        assert {row['odd "name"'] for row in csv_rows} == {"true"}
        assert {row["score"] for row in csv_rows} == {"1.50"}


def _copied(source: export._Source, format: str, sql: str, params: list) -> bytes:
    """The rows of `sql` as the export's PostgreSQL path writes them: its COPY, its lines."""
    statement = (
        f"COPY ({export._copy_line_sql(source, format)(sql)}) TO STDOUT "
        f"({export._COPY_OPTIONS[format]})"
    )
    return b"".join(
        export._lines_bytes(lines, source, format) for lines in export._copied(statement, params)
    )


_TEXT = st.text(alphabet=st.sampled_from("ab ,\"\r\n;'é\t\\/\x01\x02\x1f\x7f\u2028😀"), max_size=8)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=6,
)
_NUMBER = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e+20", "-0.5", "0", "12.50"]),
)


@pytest.mark.postgres
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(st.none(), _TEXT),
            st.one_of(st.none(), st.booleans()),
            st.one_of(st.none(), st.integers(-(2**40), 2**40)),
            st.one_of(st.none(), _JSON.map(json.dumps)),
            # json (not jsonb) keeps its text as written: whitespace, line breaks and all
            st.one_of(st.none(), _JSON.map(lambda value: json.dumps(value, indent=1))),
            st.one_of(st.none(), _NUMBER),
        ),
        min_size=1,
        max_size=5,
    ),
    by_address=st.booleans(),
)
@hypothesis_settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_postgresql_copies_the_lines_the_python_writers_make(rows, by_address):
    # given rows of text (commas, quotes, line breaks, backslashes, control characters, empty),
    # booleans, numbers, JSON (jsonb's text and json's own), decimal texts, NULLs among them, under
    # column names that need quoting in SQL and in JSON; keyed by a column or by a row address
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("the lines are PostgreSQL's own")
    columns = (
        export.ExportColumn("text", export.VALUE),
        export.ExportColumn('odd "flag"', export.BOOLEAN),
        export.ExportColumn("per%cent", export.VALUE),
        export.ExportColumn("it's", export.JSON),
        export.ExportColumn("verbatim", export.JSON),
        export.ExportColumn("amount", export.NUMBER),
    )
    selected = tuple(f"c{at}" for at in range(len(columns) + by_address))
    source = export._Source(
        queryset=None, time="t", key="k", columns=columns, selected=selected, time_at=0,
        key_at=len(columns) if by_address else 2, key_sql="tid" if by_address else "",
    )  # fmt: skip
    row_sql = "SELECT %s::text, %s::boolean, %s::bigint, %s::jsonb::text, %s::json::text, "
    row_sql += "%s::numeric::text" + (", '(0,1)'::tid" if by_address else "")
    sql = " UNION ALL ".join([row_sql] * len(rows))
    params = [value for row in rows for value in row]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        read = [row[: len(columns)] for row in cursor.fetchall()]
    # when PostgreSQL writes them as a page's lines
    copied = {format: _copied(source, format, sql, params) for format in ("csv", "ndjson")}
    # then NDJSON is byte for byte what orjson writes from the rows as read (the SQLite path's
    # writer, and PostgreSQL's before COPY)
    assert copied["ndjson"] == export._ndjson_writer(list(columns))(read)
    # and CSV reads back as the rows (NULL and an empty text both an empty field), each line the
    # csv module's own (its minimal quoting) but where a value holds a carriage return: the module
    # leaves that unquoted under a "\n" line end, which a reader takes for the end of a row
    written = copied["csv"].decode()
    texts = [
        ["" if v is None else {True: "true", False: "false"}[v] if isinstance(v, bool) else str(v)
         for v in row]
        for row in read
    ]  # fmt: skip
    assert list(csv.reader(io.StringIO(written, newline=""))) == texts
    if not any("\r" in (value or "") for row in read for value in row if isinstance(value, str)):
        assert copied["csv"] == export._csv_writer(list(columns))(read)


def test_pages_are_read_without_jit_compilation(postgres_only, history, monkeypatch):
    # a page walks an index for about a page of rows: compiling never pays for it, and a misjudged
    # estimate (an attached table without statistics) compiled every page for a second each
    seen = []
    copy_rows = export._copy_rows

    def watched(cursor, statement, params):
        cursor.execute("SHOW jit")
        seen.append(cursor.fetchone()[0])
        yield from copy_rows(cursor, statement, params)

    monkeypatch.setattr(export, "_copy_rows", watched)
    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        (before,) = cursor.fetchone()
    request = export.export_request(
        table="scene_events",
        format="csv",
        since=history - timedelta(hours=3),
        until=history,
        now=history,
    )
    assert b"".join(export.export_chunks(request, page_size=50)).count(b"\n") > 100
    assert seen and set(seen) == {"off"}
    with connection.cursor() as cursor:  # and the connection's own setting is as it was
        cursor.execute("SHOW jit")
        assert cursor.fetchone()[0] == before
