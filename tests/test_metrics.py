"""/metrics for Prometheus: monotonic counters kept with every run, gauges read at scrape time, a
bearer token or loopback only; and the JSON log format for log shippers."""

from __future__ import annotations

import json
import logging
import math
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Count, Sum
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from synthetics.models import RunStatus, SyntheticCounter, SyntheticRun
from synthetics.selectors.metrics import metrics_text
from synthetics.services import activity_backfill, run_manual, run_scheduled
from synthetics.services.cleanup import cleanup_synthetic
from synthetics.services.incidents import incident_create
from synthetics_site.settings import LOGGING, _log_format

pytestmark = pytest.mark.django_db


def scrape(text: bytes | str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of an exposition."""
    if isinstance(text, bytes):
        text = text.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def ledger_totals() -> dict[tuple[str, str], dict]:
    return {
        (row["trigger"], row["status"]): row
        for row in SyntheticRun.objects.order_by()
        .values("trigger", "status")
        .annotate(
            runs=Count("id"),
            sessions=Sum("sessions_started"),
            scene=Sum("scene_events_created"),
            mindblock=Sum("mindblock_events_created"),
        )
    }


def a_history(now):
    """Backfill, scheduled runs (one that generates, one with no new minute: skipped), a manual
    run and a failed one."""
    activity_backfill(hours=1, now=now - timedelta(minutes=5))
    run_scheduled(now=now)
    run_scheduled(now=now + timedelta(seconds=1))  # the same minute again: skipped
    run_manual(target=2, now=now)
    from unittest import mock

    from synthetics.errors import RunFailed

    with (
        mock.patch("synthetics.engine.minute.simulate_run", side_effect=RuntimeError("boom")),
        pytest.raises(RunFailed),
    ):
        run_manual(target=1, now=now)


def test_the_counters_move_with_every_run_and_equal_the_ledger(sim_users):
    now = timezone.now().replace(second=30, microsecond=0) - timedelta(minutes=1)
    a_history(now)
    ledger = ledger_totals()
    assert {key for key in ledger} >= {
        ("backfill", "succeeded"),
        ("scheduled", "succeeded"),
        ("scheduled", "skipped"),
        ("manual", "succeeded"),
        ("manual", "failed"),
    }
    samples = scrape(metrics_text())
    for (trigger, status), row in ledger.items():
        key = ("synthetics_runs_total", (("status", status), ("trigger", trigger)))
        assert samples[key] == row["runs"], key
    for trigger in ("backfill", "scheduled", "manual"):
        sessions = sum(row["sessions"] for (t, _), row in ledger.items() if t == trigger)
        assert samples["synthetics_sessions_started_total", (("trigger", trigger),)] == sessions
    scene = sum(row["scene"] for row in ledger.values())
    assert samples["synthetics_events_written_total", (("table", "journey_scene_events"),)] == scene
    # the duration histogram holds the scheduled and manual runs, not the backfill's minutes
    timed = sum(row["runs"] for (t, _), row in ledger.items() if t != "backfill")
    histogram = sum(
        samples["synthetics_run_duration_seconds_count", (("trigger", t),)]
        for t in ("scheduled", "manual")
    )
    assert histogram == timed
    inf = samples["synthetics_run_duration_seconds_bucket", (("le", "+Inf"), ("trigger", "manual"))]
    assert inf == samples["synthetics_run_duration_seconds_count", (("trigger", "manual"),)]


def test_cleanup_never_takes_a_counter_back(sim_users):
    now = timezone.now().replace(second=30, microsecond=0)
    activity_backfill(hours=3, now=now - timedelta(hours=2))
    before = list(SyntheticCounter.objects.values_list())
    result = cleanup_synthetic(older_than_hours=1, dry_run=False, now=now)
    assert sum(result.counts.values()) > 0
    assert SyntheticRun.objects.filter(status=RunStatus.SUCCEEDED).count() < 180
    assert list(SyntheticCounter.objects.values_list()) == before


def test_the_stalled_gauge_rises_while_no_scheduled_run_finishes(sim_users):
    key = ("synthetics_seconds_since_last_scheduled_run", ())
    assert scrape(metrics_text())[key] == math.inf  # never ran
    run_scheduled()
    finished = SyntheticRun.objects.get(trigger="scheduled").finished_at
    assert scrape(metrics_text(now=finished + timedelta(seconds=42)))[key] == pytest.approx(42)
    later = scrape(metrics_text(now=finished + timedelta(minutes=5)))
    assert later[key] == pytest.approx(300)
    assert later["synthetics_status", (("status", "stalled"),)] == 1.0
    assert later["synthetics_status", (("status", "running"),)] == 0.0


def test_every_counter_label_set_is_exported_from_zero_before_its_first_run():
    # given a fresh install: no run of any trigger yet
    samples = scrape(metrics_text())
    # then every counter's label sets are there at 0, so Prometheus has a sample before the first
    # increment (a series born at 1 hides that run from increase(): a failing-runs alert of "> 3
    # in 10 minutes" would need five failures the first time)
    for trigger in ("scheduled", "manual", "backfill"):
        for status in ("succeeded", "skipped", "failed"):
            key = ("synthetics_runs_total", (("status", status), ("trigger", trigger)))
            assert samples[key] == 0.0, key
        assert samples["synthetics_sessions_started_total", (("trigger", trigger),)] == 0.0
    for trigger in ("scheduled", "manual"):  # the timed runs' histogram, every bucket at 0
        buckets = [
            value
            for (name, labels), value in samples.items()
            if name == "synthetics_run_duration_seconds_bucket" and ("trigger", trigger) in labels
        ]
        assert len(buckets) > 5 and set(buckets) == {0.0}
        assert samples["synthetics_run_duration_seconds_count", (("trigger", trigger),)] == 0.0
    for outcome in ("completed", "abandoned", "errored"):
        assert samples["synthetics_journeys_finished_total", (("outcome", outcome),)] == 0.0
    for status in ("starting", "running", "paused", "failing", "stalled", "clock_behind"):
        assert ("synthetics_status", (("status", status),)) in samples


def test_a_failed_scheduled_run_is_a_scheduler_that_ran(sim_users, monkeypatch):
    # given a scheduled run that fails (the generator broken, the scheduler alive)
    from synthetics.engine import minute as engine_minute
    from synthetics.errors import RunFailed

    def broken(**kwargs):
        raise RuntimeError("generator broken")

    monkeypatch.setattr(engine_minute, "simulate_run", broken)
    with pytest.raises(RunFailed):
        run_scheduled()
    failed = SyntheticRun.objects.get(trigger="scheduled")
    assert failed.status == RunStatus.FAILED
    # then the stall gauge counts it (the stall alert is for a scheduler that does not run) and the
    # status says failing, not stalled
    samples = scrape(metrics_text(now=failed.finished_at + timedelta(seconds=20)))
    assert samples["synthetics_seconds_since_last_scheduled_run", ()] == pytest.approx(20)
    assert samples["synthetics_status", (("status", "failing"),)] == 1.0
    assert samples["synthetics_status", (("status", "stalled"),)] == 0.0
    assert samples["synthetics_runs_total", (("status", "failed"), ("trigger", "scheduled"))] == 1.0


def test_an_incident_in_progress_is_a_gauge(sim_users):
    now = timezone.now()
    start = now.replace(second=0, microsecond=0) - timedelta(minutes=2)
    incident = incident_create(
        starts_at=start, minutes=10, label="surge", sessions_multiplier=3.0, now=now
    )
    samples = scrape(metrics_text(now=now))
    assert samples["synthetics_incidents_in_progress", ()] == 1
    key = ("synthetics_incident_in_progress", (("id", str(incident.id)), ("label", "surge")))
    assert samples[key] == 1
    assert (
        scrape(metrics_text(now=now + timedelta(minutes=20)))[
            "synthetics_incidents_in_progress", ()
        ]
        == 0
    )


# --- access -----------------------------------------------------------------------------------------


def test_without_a_token_only_a_direct_request_from_loopback_reads_it(sim_users, settings):
    settings.SYNTHETICS_METRICS_TOKEN = ""
    client = Client()
    local = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert local.status_code == 200
    assert local["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"synthetics_runs_total" in local.content or b"# HELP synthetics_runs" in local.content
    assert client.get("/metrics", REMOTE_ADDR="::1").status_code == 200
    for refused in (
        {"REMOTE_ADDR": "10.0.0.8"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.9"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=203.0.113.9"},
    ):
        response = client.get("/metrics", **refused)
        assert response.status_code == 403, refused
        assert b"SYNTHETICS_METRICS_TOKEN" in response.content
    assert client.post("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 405


def test_with_a_token_only_its_bearer_reads_it_from_anywhere(sim_users, settings):
    settings.SYNTHETICS_METRICS_TOKEN = "s3cret-token"
    client = Client()
    for header in (None, "Bearer wrong", "Token s3cret-token", "Bearer"):
        extra = {"HTTP_AUTHORIZATION": header} if header else {}
        response = client.get("/metrics", REMOTE_ADDR="127.0.0.1", **extra)
        assert response.status_code == 401, header
        assert response["WWW-Authenticate"] == "Bearer"
    allowed = client.get(
        "/metrics", REMOTE_ADDR="10.0.0.8", HTTP_AUTHORIZATION="Bearer s3cret-token"
    )
    assert allowed.status_code == 200


# --- the JSON log format ----------------------------------------------------------------------------


def test_a_run_line_in_json_carries_its_fields(
    sim_users, caplog, django_capture_on_commit_callbacks
):
    from pythonjsonlogger.json import JsonFormatter

    config = dict(LOGGING["formatters"]["json"])
    config.pop("()")
    formatter = JsonFormatter(**config)
    logger = logging.getLogger("synthetics")  # it does not propagate to the root's handlers
    logger.addHandler(caplog.handler)
    try:
        with django_capture_on_commit_callbacks(execute=True):  # the line is logged on commit
            run = run_manual(target=2)
    finally:
        logger.removeHandler(caplog.handler)
    record = next(r for r in caplog.records if r.getMessage().startswith("synthetics run id="))
    line = json.loads(formatter.format(record))
    assert line["run_id"] == run.id and line["trigger"] == "manual"
    assert line["status"] == "succeeded" and line["sessions_started"] == 2
    assert line["level"] == "INFO" and line["logger"] == "synthetics"
    assert line["message"].startswith(f"synthetics run id={run.id} ")


def test_a_bad_log_format_stops_the_process_with_a_message():
    assert _log_format(" JSON ") == "json"
    assert _log_format("") == "plain"
    with pytest.raises(ImproperlyConfigured, match="plain or json, got 'xml'"):
        _log_format("xml")
