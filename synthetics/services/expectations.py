"""Expected versus observed over the last hours (engine.expectations): the runs the ledger says
generated, what they should have written at the settings, the rhythm and the incidents, and what
they wrote. The last hour's verdict is kept in synthetic_fidelity by the worker after each
scheduled minute, for status and /metrics to read."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

from synthetics.engine.expectations import (
    MetricCheck,
    Observed,
    RunWindow,
    compare,
    expected_activity,
)
from synthetics.engine.incidents import Incidents
from synthetics.models import RunStatus, RunTrigger, SyntheticFidelity, SyntheticRun
from synthetics.selectors import run_inputs

logger = logging.getLogger("synthetics")

MAX_HOURS = 168
LEVEL = 0.99


@dataclass(frozen=True, slots=True)
class ExpectationReport:
    hours: int
    since: datetime
    until: datetime
    level: float
    runs: int
    checks: list[MetricCheck]

    @property
    def drifting(self) -> list[str]:
        return [check.metric for check in self.checks if check.verdict == "drifting"]

    @property
    def verdict(self) -> str:
        return "drifting" if self.drifting else "ok"

    @property
    def fidelity(self) -> str:
        return self.verdict

    @property
    def summary(self) -> str:
        """The verdict in words, for the Studio and a person reading the JSON."""
        if not self.runs:
            return f"No scheduled or backfill run in the last {self.hours} h: nothing to compare."
        drifting = [check for check in self.checks if check.verdict == "drifting"]
        if not drifting:
            unknown = [c.metric for c in self.checks if c.verdict == "too_few"]
            said = f" ({', '.join(unknown)}: too few to tell yet)" if unknown else ""
            return (
                f"On target: over the last {self.hours} h every metric is inside its "
                f"{self.level:.0%} band{said}."
            )
        parts = [
            f"{c.metric} {c.observed:,.3g} against {c.low:,.3g}–{c.high:,.3g}" for c in drifting
        ]
        return f"Drifting over the last {self.hours} h: " + "; ".join(parts) + "."


def expectations_report(*, hours: int, now: datetime, inputs=None) -> ExpectationReport:
    """Each metric over the runs whose window ended in (now - hours, now]: scheduled and backfill
    runs that generated (manual runs add sessions on request: they are not what the settings
    promise). At the current settings: after a change, give it a window."""
    since = now - timedelta(hours=hours)
    rows = list(
        SyntheticRun.objects.filter(
            status=RunStatus.SUCCEEDED,
            trigger__in=[RunTrigger.SCHEDULED, RunTrigger.BACKFILL],
            window_end__gt=since,
            window_end__lte=now,
        )
        .order_by("window_end")
        .values_list(
            "window_start",
            "window_end",
            "shards",
            "sessions_started",
            "scene_events_created",
            "mindblock_events_created",
            "journeys_completed",
            "journeys_abandoned",
            "journeys_errored",
            "active_journeys",
        )
    )
    totals = [0] * 6
    active: dict[datetime, int] = defaultdict(int)
    runs = []
    for start, end, shards, *counts, in_progress in rows:
        runs.append(RunWindow(start, end, shards))
        totals = [total + count for total, count in zip(totals, counts, strict=True)]
        active[end] += in_progress
    observed = Observed(*totals, active_samples=tuple(active[end] for end in sorted(active)))
    settings = run_inputs.generator_settings()
    if inputs is None:
        inputs = _inputs(now)
    personas: Counter = Counter()
    for member in inputs.pool:
        personas[member.persona] += member.activity_weight
    specs = run_inputs.incidents_over(since - timedelta(hours=1), now)
    expected = expected_activity(
        settings=settings,
        catalogue=inputs.catalogue,
        runs=runs,
        rhythm=inputs.rhythm,
        personas=tuple(sorted(personas.items())),
        incidents=Incidents(specs, inputs.catalogue) if specs else None,
    )
    return ExpectationReport(
        hours=hours,
        since=since,
        until=now,
        level=LEVEL,
        runs=len(runs),
        checks=compare(expected, observed, level=LEVEL),
    )


def _inputs(now: datetime):
    """The catalogue and the pool with its rhythm, as the worker keeps them between runs: split
    into shards, shard 0's slice (a slice by id, so its personas and rhythm are the pool's up to
    sampling; the worker that ran shard 0 holds it already, and never loads the whole pool)."""
    from django.conf import settings as django_settings

    from synthetics.services.runs import RunInputs, floor_minute

    shards = django_settings.SYNTHETICS_SHARDS
    if shards > 1:
        return RunInputs.load(shard=0, shards=shards, window_start=floor_minute(now))
    return RunInputs.load()


def fidelity_refresh(*, now: datetime) -> SyntheticFidelity:
    """Compute the last hour's verdict and keep it (one row), in the worker after its run."""
    report = expectations_report(hours=1, now=now)
    enough = any(check.verdict != "too_few" for check in report.checks)
    verdict = report.verdict if enough else "unknown"
    with transaction.atomic():
        row, _ = SyntheticFidelity.objects.select_for_update().get_or_create(pk=1)
        row.verdict = verdict
        row.metric = report.drifting[0] if report.drifting else ""
        row.hours = 1
        row.computed_at = now
        row.checks = [
            {
                "metric": check.metric,
                "expected": check.expected,
                "low": check.low,
                "high": check.high,
                "observed": check.observed,
                "verdict": check.verdict,
            }
            for check in report.checks
        ]
        row.save()
    return row
