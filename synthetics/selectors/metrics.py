"""What /metrics exports, in Prometheus' text format (prometheus-client): the monotonic counters of
every run (synthetic_counters), a few gauges read at scrape time from the ledger's indexes, the
settings row and the incidents. A handful of small statements per scrape, never a scan of an
event table."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime

from django.db.models import Sum
from django.utils import timezone
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest

from synthetics.models import (
    RUN_DURATION_BUCKETS,
    RUN_DURATION_COLUMNS,
    Incident,
    RunStatus,
    RunTrigger,
    SyntheticCounter,
    SyntheticFidelity,
    SyntheticRun,
)
from synthetics.selectors.status import GENERATOR_STATUSES, generator_status, status_scalars

_EVENT_TABLES = {"scene_events": "journey_scene_events", "mindblock_events": "mindblock_events"}
_OUTCOMES = {
    "journeys_completed": "completed",
    "journeys_abandoned": "abandoned",
    "journeys_errored": "errored",
}


def _counters() -> list[dict]:
    fields = (
        "runs",
        "sessions_started",
        *_EVENT_TABLES,
        *_OUTCOMES,
        "timed",
        "duration_seconds",
        *RUN_DURATION_COLUMNS,
    )
    return list(
        SyntheticCounter.objects.order_by()
        .values("trigger", "status")
        .annotate(**{field: Sum(field) for field in fields})
        .order_by("trigger", "status")
    )


# What a timed run (its duration histogram) can be, and every label set of the counters: exported
# from zero, so Prometheus sees a series' first increment (a series that appears at 1 has no
# earlier sample, and increase() misses that first run).
_TIMED_TRIGGERS = (RunTrigger.SCHEDULED, RunTrigger.MANUAL)


def seconds_since_last_scheduled_run(*, now: datetime) -> float:
    """Seconds since a scheduled run last finished, failed ones included (the scheduler ran: a
    failing generator is the failing alert's, not the stall alert's); +Inf when none ever did.
    Through the ledger's finished_at index."""
    finished = (
        SyntheticRun.objects.filter(trigger=RunTrigger.SCHEDULED, finished_at__isnull=False)
        .order_by("-finished_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    return math.inf if finished is None else max(0.0, (now - finished).total_seconds())


class SyntheticsCollector:
    """Read at every scrape (prometheus-client's custom collector protocol)."""

    def __init__(self, now: datetime | None = None) -> None:
        self._now = now

    def describe(self) -> list[Metric]:
        return []  # no describe-time queries: the registry is built per scrape

    def collect(self) -> Iterator[Metric]:
        now = self._now or timezone.now()
        counters = _counters()
        runs = CounterMetricFamily(
            "synthetics_runs", "Runs recorded in the ledger.", labels=["trigger", "status"]
        )
        sessions = CounterMetricFamily(
            "synthetics_sessions_started", "Sessions (journeys) runs started.", labels=["trigger"]
        )
        events = CounterMetricFamily(
            "synthetics_events_written", "Events runs wrote, by table.", labels=["table"]
        )
        journeys = CounterMetricFamily(
            "synthetics_journeys_finished", "Journeys that ended, by outcome.", labels=["outcome"]
        )
        duration = HistogramMetricFamily(
            "synthetics_run_duration_seconds",
            "Wall-clock seconds of scheduled and manual runs.",
            labels=["trigger"],
        )
        per_trigger: dict[str, dict[str, float]] = {
            trigger: {"sessions": 0} for trigger in RunTrigger.values
        }
        per_run = {
            (trigger, status): 0 for trigger in RunTrigger.values for status in RunStatus.values
        }
        per_table = dict.fromkeys(_EVENT_TABLES, 0)
        per_outcome = dict.fromkeys(_OUTCOMES, 0)
        timed: dict[str, list[float]] = {
            trigger: [0.0] * (2 + len(RUN_DURATION_COLUMNS)) for trigger in _TIMED_TRIGGERS
        }
        for row in counters:
            key = (row["trigger"], row["status"])
            per_run[key] = per_run.get(key, 0) + (row["runs"] or 0)
            totals = per_trigger.setdefault(row["trigger"], {"sessions": 0})
            totals["sessions"] += row["sessions_started"] or 0
            for key in per_table:
                per_table[key] += row[key] or 0
            for key in per_outcome:
                per_outcome[key] += row[key] or 0
            if row["timed"]:
                sums = timed.setdefault(row["trigger"], [0.0] * (2 + len(RUN_DURATION_COLUMNS)))
                sums[0] += row["timed"]
                sums[1] += row["duration_seconds"] or 0.0
                for index, column in enumerate(RUN_DURATION_COLUMNS):
                    sums[2 + index] += row[column] or 0
        for (trigger, status), count in sorted(per_run.items()):
            runs.add_metric([trigger, status], count)
        for trigger, totals in sorted(per_trigger.items()):
            sessions.add_metric([trigger], totals["sessions"])
        for key, table in _EVENT_TABLES.items():
            events.add_metric([table], per_table[key])
        for key, outcome in _OUTCOMES.items():
            journeys.add_metric([outcome], per_outcome[key])
        for trigger, sums in sorted(timed.items()):
            cumulative, buckets = 0.0, []
            for bound, count in zip(RUN_DURATION_BUCKETS, sums[2:], strict=True):
                cumulative += count
                buckets.append((repr(bound), cumulative))
            buckets.append(("+Inf", sums[0]))
            duration.add_metric([trigger], buckets, sum_value=sums[1])
        yield from (runs, sessions, events, journeys, duration)

        row = status_scalars()
        yield GaugeMetricFamily(
            "synthetics_enabled", "1 while generation is enabled, 0 while paused.", row.enabled
        )
        yield GaugeMetricFamily(
            "synthetics_active_journeys", "Journeys in progress.", row.active_journeys
        )
        yield GaugeMetricFamily(
            "synthetics_sim_users", "Active (not churned) sim users.", row.sim_users
        )
        yield GaugeMetricFamily(
            "synthetics_seconds_since_last_scheduled_run",
            "Seconds since a scheduled run last finished, failed or not (+Inf: never). It rises "
            "while the django-q2 cluster is down.",
            seconds_since_last_scheduled_run(now=now),
        )
        status = generator_status(row=row, now=now, covered=row.covered).status
        state = GaugeMetricFamily(
            "synthetics_status",
            "The generator's status (1 for the current one), as GET /api/synthetics/status says.",
            labels=["status"],
        )
        for name in GENERATOR_STATUSES:
            state.add_metric([name], 1.0 if name == status else 0.0)
        yield state
        in_progress = list(
            Incident.objects.filter(starts_at__lt=now, ends_at__gte=now, cancelled_at__isnull=True)
            .order_by("id")
            .values_list("id", "label")
        )
        incidents = GaugeMetricFamily(
            "synthetics_incident_in_progress",
            "1 for each incident in progress now, by id and label.",
            labels=["id", "label"],
        )
        for incident_id, label in in_progress:
            incidents.add_metric([str(incident_id), label], 1.0)
        yield incidents
        yield GaugeMetricFamily(
            "synthetics_incidents_in_progress", "Incidents in progress now.", len(in_progress)
        )
        fidelity = SyntheticFidelity.objects.filter(pk=1).first()
        verdict = fidelity.verdict if fidelity is not None else "unknown"
        state = GaugeMetricFamily(
            "synthetics_fidelity",
            "The last hour's expected versus observed (1 for the current verdict): ok, drifting, "
            "or unknown (not computed yet, too little to tell).",
            labels=["verdict"],
        )
        for name in ("ok", "drifting", "unknown"):
            state.add_metric([name], 1.0 if name == verdict else 0.0)
        yield state
        ratios = GaugeMetricFamily(
            "synthetics_expected_observed_ratio",
            "Observed / expected over the last hour, per metric (GET /api/synthetics/expectations).",
            labels=["metric"],
        )
        drifting = GaugeMetricFamily(
            "synthetics_metric_drifting",
            "1 when the metric's observed value is outside its interval over the last hour.",
            labels=["metric"],
        )
        for check in fidelity.checks if fidelity is not None else []:
            if check.get("observed") is not None and check.get("expected"):
                ratios.add_metric([check["metric"]], check["observed"] / check["expected"])
            drifting.add_metric([check["metric"]], 1.0 if check["verdict"] == "drifting" else 0.0)
        yield ratios
        yield drifting
        computed = fidelity.computed_at if fidelity is not None else None
        yield GaugeMetricFamily(
            "synthetics_fidelity_age_seconds",
            "Seconds since the worker last computed the fidelity (+Inf: never): the verdict is "
            "stale when this grows.",
            math.inf if computed is None else max(0.0, (now - computed).total_seconds()),
        )


def metrics_text(*, now: datetime | None = None) -> bytes:
    """The whole exposition, read now."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SyntheticsCollector(now))
    return generate_latest(registry)
