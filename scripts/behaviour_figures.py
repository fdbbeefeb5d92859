"""The figures an analyst checks first, from a simulated stretch of a shipped scenario.

    .venv/bin/python scripts/behaviour_figures.py scenarios/b2c-evening-peaks.yaml --days 28

Runs the engine alone (engine.simulation, one scheduled run a minute, no database) over a pool
drawn as `seed_sim_users` draws it, with the scenario's settings, catalogue and behaviour, and
prints: DAU/MAU and DAU/WAU, the days-active histogram (the power-user curve), the top third's
share of sessions, the share of the pool with no session, retention of the sign-ups by day since
sign-up, the coefficient of variation of a user's gaps, per-minute counts' variance / mean and
autocorrelation, and the outcome shares. The same seed gives the same figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synthetics_site.settings")


def _catalogue(document: dict):
    from synthetics.engine.behaviour import Behaviour
    from synthetics.engine.types import (
        Catalogue,
        GeneratorSettings,
        MindblockSpec,
        RhythmProfile,
        SceneSpec,
        TemplateSpec,
    )

    ids = iter(range(1, 10_000))
    templates = tuple(
        TemplateSpec(
            next(ids),
            journey["slug"],
            journey["popularity"] if journey.get("active", True) else 0.0,
            tuple(
                SceneSpec(
                    next(ids),
                    scene["slug"],
                    position,
                    scene["dwell_median_seconds"],
                    scene["mindblock_rate"],
                    scene.get("dropoff_weight", 1.0),
                    scene.get("error_weight", 1.0),
                )
                for position, scene in enumerate(journey["scenes"], start=1)
            ),
        )
        for journey in sorted(document["journeys"], key=lambda j: j["slug"])
    )
    mindblocks = tuple(
        MindblockSpec(next(ids), m["slug"], m["weight"])
        for m in sorted(document["mindblocks"], key=lambda m: m["slug"])
        if m.get("active", True) and m["weight"] > 0
    )
    rhythms = tuple(
        RhythmProfile(
            r["slug"], r["persona"], tuple(r["hourly"]), tuple(r["weekly"]), r["holiday_factor"]
        )  # fmt: skip
        for r in document["rhythms"]
    )
    behaviour = Behaviour.from_json(document.get("behaviour"))
    settings = GeneratorSettings(**document["settings"])
    return settings, Catalogue(templates, mindblocks, rhythms, behaviour)


def _pool(count: int, seed: int, today: date, spread: float):
    from synthetics.engine.population import _rng_for, _traits
    from synthetics.engine.types import PoolMember

    pool = []
    for index in range(1, count + 1):
        traits = _traits(_rng_for(seed, str(index)), today, spread)
        pool.append(
            PoolMember(
                index,
                index,
                traits["persona"],
                traits["activity_weight"],
                traits["timezone"],
                traits["locale"],
                traits["signup_date"],
            )
        )
    return pool


def figures(path: Path, *, days: int, users: int, seed: int, start: datetime) -> dict:
    import yaml

    from synthetics.engine.simulation import simulate_minutes

    document = yaml.safe_load(path.read_text())
    settings, catalogue = _catalogue(document)
    pool = _pool(users, seed, start.date(), catalogue.behaviour.engagement_spread)
    stats = simulate_minutes(
        settings=settings,
        catalogue=catalogue,
        pool=pool,
        start=start,
        minutes=days * 24 * 60,
        seed=seed,
        keep_starts=True,
    )
    day_of = lambda moment: int((moment - start) / timedelta(days=1))  # noqa: E731
    active_days: dict[int, set[int]] = defaultdict(set)
    per_user: Counter = Counter()
    per_minute: Counter = Counter()
    times: dict[int, list[datetime]] = defaultdict(list)
    for sim_user_id, started in stats.starts:
        active_days[sim_user_id].add(day_of(started))
        per_user[sim_user_id] += 1
        per_minute[int((started - start) / timedelta(minutes=1))] += 1
        times[sim_user_id].append(started)
    last = days - 1
    window = range(max(0, days - 28), days)
    mau_users = {u for u, ds in active_days.items() if ds & set(window)}
    dau = [sum(1 for ds in active_days.values() if d in ds) for d in window]
    week = set(range(max(0, last - 6), days))
    wau_users = {u for u, ds in active_days.items() if ds & week}
    members = stats.members
    alive = [m for m in members.values() if m.sim_user_id not in stats.churned]
    counts = sorted((per_user.get(m.sim_user_id, 0) for m in alive), reverse=True)
    histogram = Counter(len(active_days[u] & set(window)) for u in mau_users)
    # retention: of the sign-ups at least k + 1 days before the end, the share with a session on
    # day k after signing up ([k, k + 1) days after)
    end_ms = _ms(start) + days * DAY_MS
    signed_up = [m for m in members.values() if m.joined_ms is not None]
    retention = {}
    for k in (1, 7, 14, 30):
        cohort = [m for m in signed_up if m.joined_ms + (k + 1) * DAY_MS <= end_ms]
        if not cohort:
            continue
        back = sum(
            1
            for m in cohort
            if any(
                k * DAY_MS <= _ms(t) - m.joined_ms < (k + 1) * DAY_MS for t in times[m.sim_user_id]
            )
        )
        retention[f"D{k}"] = (round(back / len(cohort), 3), len(cohort))
    gaps = []
    for user_times in times.values():
        user_times.sort()
        g = [(b - a).total_seconds() for a, b in zip(user_times, user_times[1:], strict=False)]
        if len(g) >= 20:
            gaps.append(statistics.pstdev(g) / statistics.fmean(g))
    minutes = [per_minute.get(i, 0) for i in range(days * 24 * 60)]
    mean = statistics.fmean(minutes)
    var = statistics.pvariance(minutes)
    hours = [sum(minutes[h * 60 : (h + 1) * 60]) for h in range(days * 24)]
    hour_mean = statistics.fmean(hours)
    hour_lag = sum(
        (a - hour_mean) * (b - hour_mean) for a, b in zip(hours, hours[1:], strict=False)
    ) / (len(hours) * statistics.pvariance(hours))
    finished = sum(stats.outcomes.values())
    return {
        "scenario": document["name"],
        "days": days,
        "pool_at_end": len(alive),
        "sessions": stats.sessions,
        "dau_over_mau": round(statistics.fmean(dau) / len(mau_users), 3),
        # the last week's mean DAU over its WAU (a weekend day alone would say little)
        "dau_over_wau": round(statistics.fmean(dau[-7:]) / len(wau_users), 3),
        "days_active_histogram": {d: histogram.get(d, 0) for d in range(1, len(window) + 1)},
        "top_third_share": round(sum(counts[: len(counts) // 3]) / max(1, sum(counts)), 3),
        "no_session_share": round(sum(1 for c in counts if c == 0) / max(1, len(counts)), 3),
        "retention": retention,
        "sign_ups": len(signed_up),
        "median_gap_cv": round(statistics.median(gaps), 2) if gaps else None,
        "minute_variance_over_mean": round(var / mean, 2),
        "hourly_lag1_autocorrelation": round(hour_lag, 2),
        "outcomes": {k: round(v / finished, 3) for k, v in stats.outcomes.items()},
    }


DAY_MS = 86_400_000


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--days", type=int, default=28)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=20261207)
    args = parser.parse_args()
    import django

    django.setup()
    start = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
    result = figures(args.scenario, days=args.days, users=args.users, seed=args.seed, start=start)
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
