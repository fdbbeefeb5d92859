"""Expected versus observed, on the simulated clock: the intervals hold a healthy generator at their
level over many seeded runs, and a sabotaged one is called drifting on the metric it breaks."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from synthetics.engine import GeneratorSettings
from synthetics.engine.behaviour import PLAIN_BEHAVIOUR
from synthetics.engine.expectations import (
    METRICS,
    Observed,
    RunWindow,
    capped_poisson_moments,
    compare,
    expected_activity,
)
from synthetics.engine.simulation import simulate_minutes
from synthetics.models import SyntheticRun, SyntheticSettings
from synthetics.selectors.metrics import metrics_text
from synthetics.selectors.status import status_summary
from synthetics.services import activity_backfill, settings_update, sim_users_seed
from synthetics.services.expectations import expectations_report, fidelity_refresh
from tests.factories import StaffUserFactory
from tests.helpers import T0, K, realistic_pool, shipped_catalogue
from tests.helpers import capped_poisson_moments as exact_moments

CATALOGUE = shipped_catalogue()
POOL = realistic_pool(3000)
WARMUP, MINUTES = 120, 60
HEALTHY = GeneratorSettings(
    sessions_per_min=10, max_per_run=40, error_rate=0.05, abandon_rate=0.15, rhythm_strength=0.0
)


def _personas() -> tuple[tuple[str, float], ...]:
    weights: Counter = Counter()
    for member in POOL:
        weights[member.persona] += member.activity_weight
    return tuple(sorted(weights.items()))


PERSONAS = _personas()
RUNS = [
    RunWindow(T0 + timedelta(minutes=WARMUP + index), T0 + timedelta(minutes=WARMUP + index + 1))
    for index in range(MINUTES)
]


def observe(settings: GeneratorSettings, seed: int) -> Observed:
    stats = simulate_minutes(
        settings=settings,
        catalogue=CATALOGUE,
        pool=POOL,
        start=T0,
        minutes=WARMUP + MINUTES,
        seed=seed,
        warmup=WARMUP,
    )
    return Observed(
        sessions=stats.sessions,
        scene_events=stats.scene_events,
        mindblock_events=stats.mindblock_events,
        completed=stats.outcomes["completed"],
        abandoned=stats.outcomes["abandoned"],
        errored=stats.outcomes["errored"],
        active_samples=tuple(stats.active_samples),
    )


def expected(settings: GeneratorSettings = HEALTHY, *, seed: int | None = None):
    """What RUNS should write at `settings`; with the `seed` they ran with, at its own rate factor
    and error spells (engine.behaviour), as the ledger's runs are judged."""
    runs = RUNS if seed is None else [replace(run, seed=seed) for run in RUNS]
    return expected_activity(settings=settings, catalogue=CATALOGUE, runs=runs, personas=PERSONAS)


def test_the_capped_poisson_moments_are_exact():
    for mean, cap in ((2.0, 5), (10.0, 12), (0.5, 1), (30.0, 1000)):
        exact_mean, exact_variance, _ = exact_moments(mean, cap)
        assert capped_poisson_moments(mean, cap) == pytest.approx((exact_mean, exact_variance))
    # past exp(-745)'s underflow: a cap 7 standard deviations above the mean trims nothing, and
    # a cap at the mean trims half the distribution (mean - E[min] = E[(N - m)+] ~ sqrt(m / 2 pi))
    assert capped_poisson_moments(800.0, 1000) == pytest.approx((800.0, 800.0), rel=1e-6)
    mean, variance = capped_poisson_moments(800.0, 800)
    assert mean == pytest.approx(800 - (800 / (2 * 3.141592653589793)) ** 0.5, abs=0.5)
    assert 0 < variance < 800


@pytest.mark.slow
def test_each_interval_misses_a_healthy_generator_at_its_level():
    # given 150 seeded hours of a healthy generator (after two hours that bring the journeys in
    # progress to a steady state: the longest sessions last over half an hour, and with a half
    # hour's warm-up the outcome shares spread 10 % wider than binomial), each compared with its
    # expectation at a per-metric level of 0.9: a family level
    # of 1 - 7 x 0.1 = 0.3 (compare() splits the family's level over the 7 metrics)
    seeds = 150
    misses: Counter = Counter()
    families = 0
    target = expected()
    squares: Counter = Counter()  # the standardised residuals' squares of the counts
    for seed in range(seeds):
        seen = observe(HEALTHY, seed)
        for metric, (mean, variance), observed in (
            ("sessions", target.sessions, seen.sessions),
            ("scene_events", target.scene_events, seen.scene_events),
            ("mindblock_events", target.mindblock_events, seen.mindblock_events),
        ):
            squares[metric] += (observed - mean) ** 2 / variance / seeds
        checks = compare(target, seen, level=1 - len(METRICS) * 0.1)
        misses.update(check.metric for check in checks if check.verdict == "drifting")
        assert all(check.verdict != "too_few" for check in checks)
        families += any(check.verdict == "drifting" for check in compare(target, seen, level=0.99))
    # then each metric's misses are Binomial(150, 0.1) if its interval is right: mean 15, standard
    # error sqrt(150 x 0.1 x 0.9) = 3.7, so within K = 4.89 of them (tests/helpers.py). The
    # approximations the module names (carry-over at the edges, lengths from 2,000 plans) may only
    # widen the spread a little: a variance off by half would put a metric near 30 misses.
    for metric in METRICS:
        assert abs(misses[metric] - 15) <= K * 3.7, (metric, misses)
    # and each count's variance is the one the interval uses: the mean square of its standardised
    # residuals is a chi-square over 150 (about normal), 1 with a standard error sqrt(2 / 150)
    for metric, mean_square in squares.items():
        assert abs(mean_square - 1) <= K * (2 / seeds) ** 0.5, (metric, mean_square)
    # and at the family level of 0.99 a healthy hour is called drifting in about 1 % of them:
    # Binomial(150, 0.01) has mean 1.5, and 8 or more has probability under 1e-4
    assert families <= 7, families


def test_halved_sessions_are_drifting_on_sessions_and_events_not_on_shares():
    sabotaged = replace(HEALTHY, sessions_per_min=5)
    checks = {c.metric: c for c in compare(expected(), observe(sabotaged, 1), level=0.99)}
    for metric in ("sessions", "scene_events", "mindblock_events", "active_journeys"):
        assert checks[metric].verdict == "drifting", checks[metric]
        assert checks[metric].observed < checks[metric].low
    for metric in ("completed_share", "abandoned_share", "errored_share"):
        assert checks[metric].verdict == "ok", checks[metric]


def test_a_halved_error_rate_is_drifting_on_the_errored_share():
    # 0.2 expected, 0.1 written: over ~550 finished sessions the share's standard error is
    # sqrt(0.2 x 0.8 / 550) = 0.017, so 0.1 is six of them below
    promised = replace(HEALTHY, error_rate=0.2)
    sabotaged = replace(HEALTHY, error_rate=0.1)
    checks = {
        c.metric: c for c in compare(expected(promised, seed=2), observe(sabotaged, 2), level=0.99)
    }
    assert checks["errored_share"].verdict == "drifting"
    assert checks["errored_share"].observed < checks["errored_share"].low
    assert checks["sessions"].verdict == "ok"


def test_too_little_to_tell_is_said_so():
    checks = compare(expected(), Observed(0, 0, 0, 0, 0, 0, ()), level=0.99)
    assert {c.verdict for c in checks if c.metric.endswith("_share")} == {"too_few"}


# --- on the database: the ledger against the settings, the API, status and /metrics ---------------

THEN = datetime(2026, 1, 9, 19, 0, tzinfo=UTC)


@pytest.fixture
def history(db):
    """Two hours at 10 sessions a minute over 400 sim users, the rhythm on, a fixed seed and a fixed
    time: the same rows every run (so the verdicts below are facts, not draws)."""
    sim_users_seed(count=400, seed=5, today=THEN.date())
    settings_update(sessions_per_min=10, max_per_run=40)
    activity_backfill(hours=2, now=THEN, seed=9)


def test_a_healthy_history_is_on_target(history):
    report = expectations_report(hours=2, now=THEN)
    assert report.runs == 120 and report.verdict == "ok", report.checks
    assert report.summary.startswith("On target: over the last 2 h every metric is inside")
    sessions = next(c for c in report.checks if c.metric == "sessions")
    assert sessions.low < sessions.observed < sessions.high


def test_a_generator_writing_half_of_the_promise_is_drifting_on_sessions(history):
    # the runs say they ran at twice the rate they wrote at: as if the rate had been halved
    SyntheticRun.objects.update(sessions_per_min=20)
    report = expectations_report(hours=2, now=THEN)
    assert "sessions" in report.drifting and report.verdict == "drifting"
    assert not {"completed_share", "abandoned_share", "errored_share"} & set(report.drifting)
    assert report.summary.startswith("Drifting over the last 2 h: sessions ")


def test_a_change_of_settings_is_not_drift_each_minute_is_judged_with_its_own(history):
    # given two hours written at 10 a minute, when the rate is raised to 25 and the error rate
    # doubled just now (a routine change: it used to raise a false alert for up to an hour)
    settings_update(sessions_per_min=25, error_rate=0.1)
    report = expectations_report(hours=2, now=THEN)
    # then every minute is judged with the settings it ran with: on target
    assert report.verdict == "ok", report.checks
    sessions = next(c for c in report.checks if c.metric == "sessions")
    assert 0.85 < sessions.ratio < 1.15
    # and without the record (rows from before it was kept) they are judged with today's
    SyntheticRun.objects.update(sessions_per_min=None, error_rate=None)
    assert "sessions" in expectations_report(hours=2, now=THEN).drifting


def test_the_verdict_reaches_status_the_api_and_metrics(history, monkeypatch):
    from django.utils import timezone

    SyntheticRun.objects.update(sessions_per_min=20)  # the runs wrote half what they promised
    monkeypatch.setattr(timezone, "now", lambda: THEN)
    row = fidelity_refresh(now=THEN)
    assert row.verdict == "drifting" and row.metric == "sessions"
    assert status_summary(now=THEN).fidelity == {
        "status": "drifting",
        "metric": "sessions",
    }
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics_text(now=THEN).decode())
        for s in family.samples
    }
    assert samples["synthetics_fidelity", (("verdict", "drifting"),)] == 1.0
    assert samples["synthetics_metric_drifting", (("metric", "sessions"),)] == 1.0
    assert samples["synthetics_expected_observed_ratio", (("metric", "sessions"),)] < 0.7
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=StaffUserFactory())}")
    body = client.get("/api/synthetics/expectations?hours=2").json()
    assert body["fidelity"] == "drifting" and body["drifting"][0] == "sessions"
    assert [m["metric"] for m in body["metrics"]] == list(METRICS)
    assert client.get("/api/synthetics/status").json()["fidelity"]["status"] == "drifting"
    for bad in ("0", "169", "x", ""):
        assert client.get(f"/api/synthetics/expectations?hours={bad}").status_code == 400


def test_a_split_worker_computes_the_verdict_from_its_own_slice(history, settings):
    # split into 3 shards, the worker reads shard 0's slice (a third of the pool by id), never the
    # whole pool: the rhythm and personas of a slice by id are the pool's up to sampling
    settings.SYNTHETICS_SHARDS = 3
    row = fidelity_refresh(now=THEN)
    assert row.verdict == "ok", row.checks


def test_manual_runs_count_for_what_they_write_not_for_the_promise(history):
    from synthetics.services import run_manual

    for minute in (70, 95):
        run_manual(target=40, now=THEN - timedelta(minutes=minute))
    report = expectations_report(hours=2, now=THEN)
    assert report.verdict == "ok", report.checks


def test_an_incident_edge_in_the_window_leaves_only_sessions_judged(history):
    from synthetics.services.incidents import incident_create

    incident_create(
        starts_at=THEN - timedelta(minutes=30),
        minutes=10,
        label="spike",
        error_rate=0.5,
        allow_past=True,
        now=THEN,
    )
    report = expectations_report(hours=2, now=THEN)
    verdicts = {check.metric: check.verdict for check in report.checks}
    assert verdicts.pop("sessions") == "ok"
    assert set(verdicts.values()) == {"too_few"}, verdicts
    assert "incident" in report.settling and "Only sessions are judged" in report.summary


def test_with_nothing_expected_the_shares_are_not_judged():
    stopped = expected(replace(HEALTHY, sessions_per_min=0))
    checks = {c.metric: c for c in compare(stopped, observe(HEALTHY, 3), level=0.99)}
    assert {checks[f"{o}_share"].verdict for o in ("completed", "abandoned", "errored")} == {
        "too_few"
    }


@pytest.mark.slow
def test_personas_with_their_own_rhythm_are_mixed_by_the_hour(db):
    # given the B2C scenario (a default profile for evenings and weekends, the devoted persona with
    # its own mornings; personas report mindblocks at 0.7x to 1.4x) over a day at a fixed time
    from pathlib import Path

    from synthetics.services.scenarios import scenario_import, scenario_loads

    path = Path(__file__).resolve().parent.parent / "scenarios" / "b2c-evening-peaks.yaml"
    scenario_import(scenario_loads(path.read_text()), now=THEN)
    # with the seed's plain behaviour: bouts carry each hour's persona mix into the next (a return
    # comes about bout_minutes after its user's last session) and segments change how far each
    # persona's sessions go; both blur, by about a percent, the hour's mix this test measures
    SyntheticSettings.objects.update(behaviour=PLAIN_BEHAVIOUR.to_json())
    sim_users_seed(count=3000, seed=5, today=THEN.date())
    activity_backfill(hours=24, now=THEN, seed=9)
    # when the day is compared with its expectation, mixed by the hour and by activity alone
    from synthetics.services import expectations as service

    mixed = {c.metric: c for c in expectations_report(hours=24, now=THEN).checks}
    flat = service.expected_activity

    def by_activity_alone(**kwargs):
        return flat(**{**kwargs, "persona_rhythms": ()})

    service.expected_activity = by_activity_alone
    try:
        alone = {c.metric: c for c in expectations_report(hours=24, now=THEN).checks}
    finally:
        service.expected_activity = flat
    # then the mindblocks expected follow who starts sessions at each hour: inside their band and
    # nearer what was written than the mix by activity alone
    mindblock = mixed["mindblock_events"]
    assert mindblock.verdict == "ok", mindblock
    # (both are within a percent here: the count's own sd is about 1.5 %, so "nearer" holds to
    # that precision only)
    assert abs(mindblock.ratio - 1) < max(abs(alone["mindblock_events"].ratio - 1), 0.01), (
        mindblock,
        alone,
    )
