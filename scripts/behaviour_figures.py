"""The figures an analyst checks first, from a simulated stretch of a shipped scenario.

    .venv/bin/python scripts/behaviour_figures.py scenarios/b2c-evening-peaks.yaml --days 28
    .venv/bin/python scripts/behaviour_figures.py scenarios/b2c-evening-peaks.yaml --engine

By default on PostgreSQL (BENCH_POSTGRES, default postgres://postgres@127.0.0.1:5432): in a
throwaway database (synth_figures_<pid>, migrated, dropped at the end) it imports the scenario,
seeds --users sim users and backfills --days days ending at a fixed moment (so the same seed gives
the same rows), through the same services as `scenario import`, `seed_sim_users` and
`backfill_activity`; then it reads the tables as an analyst would. `--engine`: the engine alone
(engine.simulation, one scheduled run a minute, no database), over a pool drawn as seeding draws it.

Printed: DAU/MAU and DAU/WAU, the days-active histogram (the power-user curve), the top third's
share of sessions, the share of the pool with no session, retention of the sign-ups by day since
sign-up, the coefficient of variation of a user's gaps, per-minute counts' variance / mean and
hourly autocorrelation, the outcome shares, the Gini of sessions per user; from the database also
the columns an analyst looks at: sign-up before the first event, last_login, sub-minute times,
sign-ups by local hour, onboarding once, seeded tenure by persona, time zones, time in scenes,
mindblock intensities, outcomes by persona, first session, local hours and previous outcome, and
errors per 10 minutes (variance / mean).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synthetics_site.settings")

DAY_MS = 86_400_000
END = datetime(2026, 11, 30, tzinfo=UTC)  # a Monday, 00:00 UTC: the stretch ends here


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass
class Activity:
    """What the figures are computed from, whichever way it was made."""

    start: datetime
    days: int
    starts: list[tuple[int, datetime]]  # (user, session start)
    alive: list[int]  # the users not churned at the end
    joined_ms: dict[int, int]  # a sign-up's moment, by user
    outcomes: Counter
    extra: dict = field(default_factory=dict)


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


def engine_activity(document: dict, *, days: int, users: int, seed: int) -> Activity:
    """The stretch simulated by the engine alone."""
    from synthetics.engine.population import _rng_for, _traits
    from synthetics.engine.simulation import simulate_minutes
    from synthetics.engine.types import PoolMember

    start = END - timedelta(days=days)
    settings, catalogue = _catalogue(document)
    pool = []
    for index in range(1, users + 1):
        traits = _traits(
            _rng_for(seed, str(index)), start.date(), catalogue.behaviour.engagement_spread
        )
        pool.append(
            PoolMember(
                index,
                index,
                traits["persona"],
                traits["activity_weight"],
                traits["timezone"],
                traits["locale"],
                traits["signup_date"],
                traits["settles_into"],
            )
        )
    stats = simulate_minutes(
        settings=settings,
        catalogue=catalogue,
        pool=pool,
        start=start,
        minutes=days * 24 * 60,
        seed=seed,
        keep_starts=True,
    )
    members = stats.members
    return Activity(
        start=start,
        days=days,
        starts=list(stats.starts),
        alive=[m.sim_user_id for m in members.values() if m.sim_user_id not in stats.churned],
        joined_ms={m.sim_user_id: m.joined_ms for m in members.values() if m.joined_ms},
        outcomes=Counter(stats.outcomes),
    )


def database_activity(document: dict, *, days: int, users: int, seed: int) -> Activity:
    """The stretch backfilled into a throwaway PostgreSQL database and read back from its tables."""
    import psycopg

    from bench.common import SERVER

    name = f"synth_figures_{os.getpid()}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = f"{SERVER}/{name}"
    os.environ["SYNTHETICS_LOCAL_DIR"] = f"/tmp/{name}"
    os.environ.pop("REDIS_URL", None)
    try:
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", "--noinput", verbosity=0)
        return _backfilled(document, days=days, users=users, seed=seed)
    finally:
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _backfilled(document: dict, *, days: int, users: int, seed: int) -> Activity:
    from django.db import connection

    from synthetics.management.cli import progress_bar
    from synthetics.services import activity_backfill, sim_users_seed
    from synthetics.services.scenarios import scenario_import

    start = END - timedelta(days=days)
    scenario_import(document, now=start)
    with progress_bar(total=users, unit="user", description="sim users") as advance:
        sim_users_seed(count=users, seed=seed, today=start.date(), progress=advance)
    tenure = _tenure(start)
    started = time.monotonic()
    with progress_bar(total=days * 24 * 60, unit="min", description="backfill") as advance:
        summary = activity_backfill(hours=days * 24, now=END, seed=seed, progress=advance)
    seconds = time.monotonic() - started
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute(
            "SELECT user_id, started_at FROM journeys WHERE is_synthetic ORDER BY started_at, id"
        )
        starts = cursor.fetchall()
        cursor.execute(
            "SELECT u.id FROM users u JOIN sim_users s ON s.user_id = u.id"
            " WHERE s.churned_at IS NULL"
        )
        alive = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT user_id, joined_at FROM sim_users WHERE joined_at IS NOT NULL")
        joined = {user: _ms(at) for user, at in cursor.fetchall()}
        cursor.execute(
            "SELECT status, count(*) FROM journeys WHERE is_synthetic AND status <> 'active'"
            " GROUP BY status"
        )
        outcomes = Counter(dict(cursor.fetchall()))
        extra = {"seeded tenure in days at seeding (median, least, most)": tenure}
        extra.update(_columns(cursor, start, _catalogue(document)[1].behaviour.onboarding))
    extra["backfill"] = (
        f"{summary.totals['sessions_started']:,} sessions, "
        f"{summary.totals['scene_events_created']:,} scene and "
        f"{summary.totals['mindblock_events_created']:,} mindblock events in {seconds:.0f} s"
    )
    return Activity(start, days, starts, alive, joined, outcomes, extra)


def _tenure(start: datetime) -> dict:
    """Seeded accounts' age in days at seeding, by persona: median, least, most."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT persona, count(*),
                      percentile_disc(0.5) WITHIN GROUP (ORDER BY %s::date - signup_date),
                      min(%s::date - signup_date), max(%s::date - signup_date)
                 FROM sim_users GROUP BY persona ORDER BY 3""",
            [start.date()] * 3,
        )
        return {
            persona: f"{n:,} users, {median}, {least}, {most}"
            for persona, n, median, least, most in cursor.fetchall()
        }


def _one(cursor, sql: str, *params):
    cursor.execute(sql, params)
    return cursor.fetchone()


def _columns(cursor, start: datetime, onboarding_slug: str) -> dict:
    """The account and event columns an analyst checks, read from the tables."""
    out: dict = {}
    accounts, before = _one(
        cursor,
        """SELECT count(*), count(*) FILTER (WHERE u.date_joined <= f.first)
             FROM users u JOIN (SELECT user_id, min(created_at) AS first
                                  FROM journey_scene_events GROUP BY user_id) f
               ON f.user_id = u.id
            WHERE u.is_synthetic""",
    )
    out["accounts_joined_before_their_first_event"] = f"{before:,} of {accounts:,}"
    active, matching = _one(
        cursor,
        """SELECT count(*), count(*) FILTER (WHERE u.last_login = j.latest)
             FROM users u JOIN (SELECT user_id, max(started_at) AS latest
                                  FROM journeys WHERE is_synthetic GROUP BY user_id) j
               ON j.user_id = u.id""",
    )
    out["last_login_is_the_latest_session"] = f"{matching:,} of {active:,}"
    shares = {}
    for label, sql in (
        ("journeys.started_at", "SELECT started_at FROM journeys"),
        ("scene events", "SELECT created_at FROM journey_scene_events"),
        ("users.date_joined", "SELECT date_joined FROM users WHERE is_synthetic"),
        ("sim_users.joined_at", "SELECT joined_at FROM sim_users WHERE joined_at IS NOT NULL"),
        ("sim_users.churned_at", "SELECT churned_at FROM sim_users WHERE churned_at IS NOT NULL"),
    ):
        total, whole = _one(
            cursor,
            f"SELECT count(*), count(*) FILTER (WHERE date_trunc('minute', t) = t)"
            f" FROM ({sql}) AS s(t)",
        )
        shares[label] = f"{whole / total:.4f} of {total:,}" if total else "none"
    out["share_on_the_whole_minute (1/60,000 if random to the ms)"] = shares
    # sign-ups by the local hour they signed up at, in four blocks
    cursor.execute(
        """SELECT extract(hour FROM joined_at AT TIME ZONE timezone)::int / 6, count(*)
             FROM sim_users WHERE joined_at IS NOT NULL GROUP BY 1 ORDER BY 1"""
    )
    blocks = dict(cursor.fetchall())
    total = sum(blocks.values()) or 1
    out["sign_ups_by_local_hour 00-06/06-12/12-18/18-24"] = " / ".join(
        f"{blocks.get(b, 0) / total:.2f}" for b in range(4)
    )
    # onboarding: who runs it, how often
    onboarding, by_signups, most = _one(
        cursor,
        """SELECT count(*), count(*) FILTER (WHERE s.joined_at IS NOT NULL),
                  coalesce(max(c.n), 0)
             FROM (SELECT j.sim_user_id, count(*) AS n FROM journeys j
                     JOIN journey_templates t ON t.id = j.template_id
                    WHERE t.slug = %s
                    GROUP BY j.sim_user_id) c
             JOIN sim_users s ON s.id = c.sim_user_id""",
        onboarding_slug,
    )
    first_sessions, onboarded_first = _one(
        cursor,
        """SELECT count(*), count(*) FILTER (WHERE j.started_at = s.joined_at)
             FROM sim_users s JOIN journeys j ON j.sim_user_id = s.id
            WHERE s.joined_at IS NOT NULL
              AND j.started_at = (SELECT min(started_at) FROM journeys
                                   WHERE sim_user_id = s.id)""",
    )
    out["onboarding"] = (
        f"run by {onboarding:,} users ({by_signups:,} of them sign-ups), at most {most} times "
        f"each; {onboarded_first:,} of {first_sessions:,} sign-ups' first sessions start at "
        "their sign-up"
    )
    cursor.execute(
        """SELECT timezone, count(*) FROM sim_users WHERE locale = 'en_US'
            GROUP BY timezone ORDER BY 2 DESC"""
    )
    zones = cursor.fetchall()
    total = sum(n for _, n in zones) or 1
    out["US time zones"] = ", ".join(f"{zone} {n / total:.2f}" for zone, n in zones)
    # time in a scene: from one scene_entered to the journey's next event
    cursor.execute(
        """SELECT slug, count(*), percentile_disc(0.5) WITHIN GROUP (ORDER BY v),
                  min(v), max(v), stddev(ln(v))
             FROM (SELECT sc.slug,
                          extract(epoch FROM lead(e.created_at) OVER w - e.created_at) AS v,
                          e.event_type
                     FROM journey_scene_events e JOIN scenes sc ON sc.id = e.scene_id
                   WINDOW w AS (PARTITION BY e.journey_id ORDER BY e.created_at, e.id)) d
            WHERE event_type = 'scene_entered' AND v > 0
            GROUP BY slug ORDER BY slug"""
    )
    out["time in scene (slug: visits, median s, min s, max / median, log-sd)"] = {
        slug: f"{n:,}, {median:.1f}, {least:.2f}, {most / median:.0f}, {spread:.2f}"
        for slug, n, median, least, most, spread in cursor.fetchall()
    }
    short, sessions = _one(
        cursor,
        """SELECT count(*) FILTER (WHERE ended_at - started_at < interval '30 seconds'), count(*)
             FROM journeys WHERE is_synthetic AND status <> 'active'""",
    )
    out["sessions under 30 s"] = f"{short / max(1, sessions):.3f}"
    out.update(_outcomes_by_segment(cursor))
    cursor.execute(
        """SELECT m.slug, (e.event_payload->>'intensity')::int, count(*)
             FROM mindblock_events e JOIN mindblock_types m ON m.id = e.mindblock_id
            GROUP BY 1, 2 ORDER BY 1, 2"""
    )
    intensities: dict[str, dict[int, int]] = defaultdict(dict)
    for slug, level, n in cursor.fetchall():
        intensities[slug][level] = n
    out["mindblock intensity 1..5 (shares)"] = {
        slug: " ".join(f"{counts.get(k, 0) / sum(counts.values()):.2f}" for k in range(1, 6))
        for slug, counts in intensities.items()
    }
    return out


def _outcomes_by_segment(cursor) -> dict:
    """Completed / abandoned / errored shares of the ended sessions by the persona they ran as
    (their first scene event's payload), first session or later, local 6-hour block and the
    user's previous outcome; and how errors cluster: errored sessions per 10 minutes, variance /
    mean (1 for errors spread at random)."""
    cursor.execute(
        """CREATE TEMP TABLE ended_sessions AS
           SELECT j.status, e.event_payload->>'persona' AS persona,
                  extract(hour FROM j.started_at AT TIME ZONE s.timezone)::int / 6 AS block,
                  j.started_at = s.joined_at AS first,
                  lag(j.status) OVER (PARTITION BY j.sim_user_id ORDER BY j.started_at, j.id)
                    AS previous,
                  j.ended_at
             FROM journeys j
             JOIN sim_users s ON s.id = j.sim_user_id
             JOIN journey_scene_events e
               ON e.journey_id = j.id AND e.event_type = 'scene_entered'
              AND e.event_payload->>'step' = '0'
            WHERE j.is_synthetic AND j.status <> 'active'"""
    )
    out: dict = {}
    blocks = ("00-06", "06-12", "12-18", "18-24")
    for title, key, name in (
        ("persona", "persona", str),
        ("first session or later", "CASE WHEN first THEN 'first' ELSE 'later' END", str),
        ("local hours", "block", lambda b: blocks[b]),
        ("previous outcome", "coalesce(previous, 'none')", str),
    ):
        cursor.execute(
            f"""SELECT {key}, count(*),
                       avg((status = 'completed')::int), avg((status = 'abandoned')::int),
                       avg((status = 'errored')::int)
                  FROM ended_sessions GROUP BY 1 ORDER BY 1"""
        )
        out[f"outcomes by {title} (sessions: completed / abandoned / errored)"] = {
            name(segment): f"{n:,}: {done:.3f} / {left:.3f} / {failed:.3f}"
            for segment, n, done, left, failed in cursor.fetchall()
        }
    cursor.execute(
        """SELECT coalesce(var_pop(n) / nullif(avg(n), 0), 0)
             FROM (SELECT slot, count(e.slot) AS n
                     FROM generate_series(
                            (SELECT floor(extract(epoch FROM min(ended_at)) / 600)::bigint
                               FROM ended_sessions),
                            (SELECT floor(extract(epoch FROM max(ended_at)) / 600)::bigint
                               FROM ended_sessions)) AS slot
                     LEFT JOIN (SELECT floor(extract(epoch FROM ended_at) / 600)::bigint AS slot
                                  FROM ended_sessions WHERE status = 'errored') e USING (slot)
                    GROUP BY slot) c"""
    )
    out["errored sessions per 10 minutes: variance / mean"] = round(cursor.fetchone()[0], 2)
    cursor.execute("DROP TABLE ended_sessions")
    return out


def figures(activity: Activity) -> dict:
    start, days = activity.start, activity.days
    day_of = lambda moment: int((moment - start) / timedelta(days=1))  # noqa: E731
    active_days: dict[int, set[int]] = defaultdict(set)
    per_user: Counter = Counter()
    per_minute: Counter = Counter()
    times: dict[int, list[datetime]] = defaultdict(list)
    for user, started in activity.starts:
        if started < start:
            continue
        active_days[user].add(day_of(started))
        per_user[user] += 1
        per_minute[int((started - start) / timedelta(minutes=1))] += 1
        times[user].append(started)
    window = range(max(0, days - 28), days)
    mau_users = {u for u, ds in active_days.items() if ds & set(window)}
    dau = [sum(1 for ds in active_days.values() if d in ds) for d in window]
    week = set(range(max(0, days - 7), days))
    wau_users = {u for u, ds in active_days.items() if ds & week}
    counts = sorted((per_user.get(u, 0) for u in activity.alive), reverse=True)
    histogram = Counter(len(active_days[u] & set(window)) for u in mau_users)
    # retention: of the sign-ups at least k + 1 days before the end, the share with a session on
    # day k after signing up ([k, k + 1) days after)
    end_ms = _ms(start) + days * DAY_MS
    retention = {}
    for k in (1, 7, 14, 30):
        cohort = [
            u for u, joined in activity.joined_ms.items() if joined + (k + 1) * DAY_MS <= end_ms
        ]
        if not cohort:
            continue
        back = sum(
            1
            for u in cohort
            if any(
                k * DAY_MS <= _ms(t) - activity.joined_ms[u] < (k + 1) * DAY_MS for t in times[u]
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
    finished = sum(activity.outcomes.values())
    return {
        "days": days,
        "pool_at_end": len(activity.alive),
        "sessions": sum(per_user.values()),
        "dau_over_mau": round(statistics.fmean(dau) / len(mau_users), 3),
        # the last week's mean DAU over its WAU (a weekend day alone would say little)
        "dau_over_wau": round(statistics.fmean(dau[-7:]) / len(wau_users), 3),
        "days_active_histogram": {d: histogram.get(d, 0) for d in range(1, len(window) + 1)},
        "top_third_share": round(sum(counts[: len(counts) // 3]) / max(1, sum(counts)), 3),
        "top_fifth_share": round(sum(counts[: len(counts) // 5]) / max(1, sum(counts)), 3),
        "gini_of_sessions_per_user": _gini(counts),
        "no_session_share": round(sum(1 for c in counts if c == 0) / max(1, len(counts)), 3),
        "retention": retention,
        "sign_ups": len(activity.joined_ms),
        "median_gap_cv": round(statistics.median(gaps), 2) if gaps else None,
        "minute_variance_over_mean": round(var / mean, 2),
        "hourly_lag1_autocorrelation": round(hour_lag, 2),
        "outcomes": {k: round(v / finished, 3) for k, v in sorted(activity.outcomes.items())},
        **activity.extra,
    }


def _gini(counts: list[int]) -> float:
    """The Gini coefficient of sessions per user (0: all alike; 1: one user has them all)."""
    ordered, total = sorted(counts), sum(counts)
    if not total:
        return 0.0
    n = len(ordered)
    weighted = sum((2 * i - n - 1) * c for i, c in enumerate(ordered, start=1))
    return round(weighted / (n * total), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", type=Path)
    parser.add_argument("--days", type=int, default=28, help="days simulated (default 28)")
    parser.add_argument("--users", type=int, default=3000, help="sim users seeded (default 3000)")
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument(
        "--engine", action="store_true", help="the engine alone, in memory (no database)"
    )
    args = parser.parse_args()
    if not 1 <= args.days <= 366 or not 1 <= args.users <= 1_000_000:
        parser.error("--days must be 1..366 and --users 1..1,000,000")
    import yaml

    document = yaml.safe_load(args.scenario.read_text())
    if args.engine:
        import django

        django.setup()
        activity = engine_activity(document, days=args.days, users=args.users, seed=args.seed)
    else:
        activity = database_activity(document, days=args.days, users=args.users, seed=args.seed)
    print(f"scenario: {document['name']} ({'engine' if args.engine else 'PostgreSQL'})")
    for key, value in figures(activity).items():
        if isinstance(value, dict) and key not in ("outcomes", "retention"):
            print(f"{key}:")
            for inner, text in value.items():
                print(f"  {inner}: {text}")
        else:
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
