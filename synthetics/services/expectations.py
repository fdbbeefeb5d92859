"""Expected versus observed over the last hours (engine.expectations): the runs the ledger says
generated, what they should have written at the settings, the rhythm and the incidents, and what
they wrote. The last hour's verdict is kept in synthetic_fidelity by the worker after each
scheduled minute, for status and /metrics to read."""

from __future__ import annotations

import logging
from array import array
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings as django_settings
from django.db import transaction
from django.db.models import F, Q

from synthetics.engine.expectations import (
    MetricCheck,
    Observed,
    RunWindow,
    compare,
    expected_activity,
)
from synthetics.engine.incidents import Incidents
from synthetics.engine.picking import activity_now, mean_activity
from synthetics.engine.pool import Pool
from synthetics.engine.rhythm import PoolRhythm
from synthetics.engine.run import to_ms
from synthetics.engine.types import Catalogue, stand_ins
from synthetics.models import (
    RUN_COUNTS,
    RunStatus,
    RunTrigger,
    SyntheticFidelity,
    SyntheticRun,
)
from synthetics.selectors import run_inputs
from synthetics.selectors.run_inputs import RunInputs
from synthetics.services.planned import kept_session_profile

logger = logging.getLogger("synthetics")

MAX_HOURS = 168
# What the ledger records of the settings and seed each run used, in RunWindow's order: each run
# is judged with what was in force in its minute.
IN_FORCE = (
    "sessions_per_min",
    "max_per_run",
    "rhythm_strength",
    "abandon_rate",
    "error_rate",
    "seed",
)
LEVEL = 0.99
# Up to this many seeded users, each is weighed with their own lapse calendar at the window's
# middle; above it, each group of them at the calendar's mean factor (_pool_read). A group's mean
# stands in for its members' draws to within about sqrt(2.8 / n) of its weight for n members
# (the activity weights' log-normal spread, half the periods lapsed): 1.2 % at 20,000.
EXACT_MEMBERS = 20_000
# How long before a window an incident's edge or a gap in generation still shows in it: sessions
# started before then have all finished (the longest planned ones last about this long).
SETTLE = timedelta(minutes=90)


@dataclass(frozen=True, slots=True)
class ExpectationReport:
    hours: int
    since: datetime
    until: datetime
    level: float
    runs: int
    checks: list[MetricCheck]
    settling: str = ""  # why only sessions are judged, in words ("" when all are)

    @property
    def drifting(self) -> list[str]:
        return [check.metric for check in self.checks if check.verdict == "drifting"]

    @property
    def verdict(self) -> str:
        if self.drifting:
            return "drifting"
        if all(check.verdict == "too_few" for check in self.checks):
            return "unknown"
        return "ok"

    @property
    def fidelity(self) -> str:
        return self.verdict

    @property
    def summary(self) -> str:
        """The verdict in words, for the Studio and a person reading the JSON."""
        if not self.runs:
            return f"No scheduled or backfill run in the last {self.hours} h: nothing to compare."
        drifting = [check for check in self.checks if check.verdict == "drifting"]
        settling = f" Only sessions are judged: {self.settling}." if self.settling else ""
        if self.verdict == "unknown":
            return f"Too little generated in the last {self.hours} h to tell.{settling}"
        if not drifting:
            unknown = [c.metric for c in self.checks if c.verdict == "too_few"]
            which = "every metric judged" if unknown else "every metric"
            said = f" ({', '.join(unknown)}: too few to tell)" if unknown and not settling else ""
            return (
                f"On target: over the last {self.hours} h {which} is inside its "
                f"{self.level:.0%} band{said}.{settling}"
            )
        parts = [
            f"{c.metric} {c.observed:,.3g} against {c.low:,.3g}–{c.high:,.3g}" for c in drifting
        ]
        return f"Drifting over the last {self.hours} h: " + "; ".join(parts) + "." + settling


def expectations_report(
    *, hours: int, now: datetime, inputs: RunInputs | None = None, keep: bool = False
) -> ExpectationReport:
    """Each metric over the runs whose window ended in (now - hours, now]: scheduled and backfill
    runs that generated; manual runs' sessions are not what the settings promise (not in
    `sessions`), but they write events, finish and stay in progress like the others. At the
    current settings: after a change, give it a window. `keep`: keep the pool read in this process
    (the worker, which keeps it for its runs anyway), or read it and let it go (a web process)."""
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
            "window_start", "window_end", "shards", *IN_FORCE, *RUN_COUNTS, "active_journeys"
        )
    )
    totals = [0] * 6
    active: dict[datetime, list[int]] = defaultdict(lambda: [0, 0, 1])  # sum, runs, shards
    runs = []
    for start, end, shards, *rest in rows:
        used, counts, in_progress = rest[: len(IN_FORCE)], rest[len(IN_FORCE) : -1], rest[-1]
        runs.append(RunWindow(start, end, shards, *used))
        totals = [total + count for total, count in zip(totals, counts, strict=True)]
        sample = active[end]
        sample[0] += in_progress
        sample[1] += 1
        sample[2] = shards
    manual = []
    for start, end, *rest in SyntheticRun.objects.filter(
        status=RunStatus.SUCCEEDED,
        trigger=RunTrigger.MANUAL,
        window_end__gt=since,
        window_end__lte=now,
    ).values_list("window_start", "window_end", *IN_FORCE, *RUN_COUNTS):
        used, (sessions, *counts) = rest[: len(IN_FORCE)], rest[len(IN_FORCE) :]
        manual.append((RunWindow(start, end, 1, *used), sessions))
        # what they wrote counts with the rest; their sessions are not the settings' promise
        totals = [totals[0], *(t + c for t, c in zip(totals[1:], counts, strict=True))]
    observed = Observed(
        *totals,
        # a minute every shard has run (the newest may still miss some of a split's shards)
        active_samples=tuple(
            active[end][0] for end in sorted(active) if active[end][1] >= active[end][2]
        ),
    )
    settings = run_inputs.generator_settings()
    catalogue, pool, rhythm = _pool_read(now, keep=keep, inputs=inputs)
    behaviour = catalogue.behaviour
    now_ms = to_ms(now - timedelta(hours=hours) / 2)
    pool = Pool.of(pool)
    personas: Counter = Counter()
    members: dict[str, array] = defaultdict(lambda: array("I"))  # each persona's positions
    for index, member in enumerate(pool):
        # lapsed periods and a sign-up's return thin who is picked (engine.picking): each member's
        # factor in the window's middle (a period lasts weeks; in a slice of a few hundred users the
        # lapsed ones are too few for the mean factor to stand in for them); a group's, the mean
        factor = (
            activity_now(behaviour, member, now_ms)
            if member.sim_user_id > 0
            else mean_activity(behaviour, member, now_ms)
        )
        personas[member.persona] += member.activity_weight * factor
        members[member.persona].append(index)
    # each persona's users with their own rhythm: who starts a session is picked by activity times
    # their rhythm at that hour (engine.expectations)
    persona_rhythms = [
        (persona, personas[persona], PoolRhythm(pool.select(group), catalogue.rhythms))
        for persona, group in sorted(members.items())
    ]
    specs = run_inputs.incidents_over(since - SETTLE, now)
    expected = expected_activity(
        settings=settings,
        catalogue=catalogue,
        runs=runs,
        rhythm=rhythm,
        personas=tuple(sorted(personas.items())),
        incidents=Incidents(specs, catalogue) if specs else None,
        manual=manual,
        persona_rhythms=persona_rhythms,
        # planned once for every process (services.planned): a new one reads them back
        profiles=kept_session_profile,
    )
    settling = _settling(specs, since=since, now=now)
    return ExpectationReport(
        hours=hours,
        since=since,
        until=now,
        level=LEVEL,
        runs=len(runs),
        checks=compare(expected, observed, level=LEVEL, settling=bool(settling)),
        settling=settling,
    )


def _settling(specs, *, since: datetime, now: datetime) -> str:
    """Why what finishes and what is in progress do not follow the rates of the window yet, or "":
    an incident began or ended, or generation stopped (paused, failed, the scheduler down and a
    run catching up), within SETTLE before the window or inside it."""
    from synthetics.engine.run import to_ms

    edge_from, edge_to = to_ms(since - SETTLE), to_ms(now)
    for spec in specs:
        if any(edge_from < edge <= edge_to for edge in (spec.start_ms, spec.end_ms)):
            return f"incident {spec.id} ({spec.label!r}) began or ended within the last hours"
    stopped = (
        SyntheticRun.objects.filter(
            trigger=RunTrigger.SCHEDULED, window_end__gt=since - SETTLE, window_end__lte=now
        )
        .filter(
            Q(status=RunStatus.FAILED)
            | Q(status=RunStatus.SKIPPED, note="paused")
            | Q(status=RunStatus.SUCCEEDED, window_start__lt=F("window_end") - timedelta(minutes=1))
        )
        .exists()
    )
    if stopped:
        return "generation paused, failed or caught up on missed minutes within the last hours"
    return ""


def _pool_read(
    now: datetime, *, keep: bool, inputs: RunInputs | None
) -> tuple[Catalogue, Pool, PoolRhythm]:
    """The catalogue, the pool as the expectation weighs it, and the pool's rhythm.

    Each member (their own lapse calendar: run_inputs.sim_user_pool, or the pool the worker keeps)
    while the seeded users are at most EXACT_MEMBERS; above that, or in a worker that holds only
    a slice (a slice of heavy-tailed users by id carries a few power users that sway its zones and
    personas), the seeded users as their groups (run_inputs.pool_groups: a few hundred rows the
    database keeps) at the calendar's mean factor, and the sign-ups one by one."""
    if inputs is not None:
        return inputs.catalogue, inputs.pool, inputs.rhythm
    groups = run_inputs.pool_groups()
    seeded = [group for group in groups if not group.joined]
    shards = django_settings.SYNTHETICS_SHARDS
    if (keep and shards > 1) or sum(group.users for group in seeded) > EXACT_MEMBERS:
        catalogue = run_inputs.catalogue_load()
        pool = Pool.of(stand_ins(seeded)).changed(appended=run_inputs.sim_user_pool_joined())
        return catalogue, pool, PoolRhythm(pool, catalogue.rhythms)
    if keep:  # the worker's own pool, kept between its runs
        inputs = RunInputs.load()
        return inputs.catalogue, inputs.pool, inputs.rhythm
    catalogue = run_inputs.catalogue_load()  # a web process: read, use, let go
    pool = run_inputs.sim_user_pool()
    return catalogue, pool, PoolRhythm(pool, catalogue.rhythms)


def fidelity_refresh(*, now: datetime) -> SyntheticFidelity:
    """Compute the last hour's verdict and keep it (one row), in the worker after its run."""
    report = expectations_report(hours=1, now=now, keep=True)
    verdict = report.verdict
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
