"""The insights endpoint and its selectors: funnels observed beside implied, the rhythm and the cap's
trim, daily active users and weekly cohort retention."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db.models import Count
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from synthetics.models import Journey, JourneySceneEvent, SimUser, SyntheticSettings
from synthetics.selectors import insights
from synthetics.services import activity_backfill, run_manual
from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=StaffUserFactory())}")
    return client


def test_insights_answer_every_panel(api, sim_users):
    activity_backfill(hours=3)
    run_manual(target=2)  # today has sessions even just after midnight
    body = api.get("/api/synthetics/insights").json()
    assert {f["template"] for f in body["funnels"]} >= {"first-steps", "morning-checkin"}
    for funnel in body["funnels"]:
        implied = [step["implied"] for step in funnel["steps"]]
        assert implied[0] == 1 and implied == sorted(implied, reverse=True)
        if funnel["sessions"]:
            assert funnel["steps"][0]["observed"] == 1
    assert 0 <= body["rhythm"]["cap_trimmed_share"] < 1
    assert (
        body["rhythm"]["quietest_rate"] <= body["rhythm"]["rate_now"] <= body["rhythm"]["peak_rate"]
    )
    assert len(body["daily_active_users"]) == 30
    assert body["daily_active_users"][-1]["users"] > 0
    assert len(body["cohorts"]) == 8


def test_the_implied_funnel_follows_the_weights_and_rates():
    SyntheticSettings.objects.filter(pk=1).update(abandon_rate=0.2, error_rate=0.1)
    funnel = next(f for f in insights.funnels(now=timezone.now()) if f.template == "first-steps")
    # first-steps: drop-off weights 0.5, 3.0, 1.4, 1.0, 2.0 (total 7.9); errors 0.4, 2.0, 0.7, 1.0,
    # 2.4 (total 6.5): reaching the third scene means not stopping at the first two
    third = funnel.steps[2]
    assert third.implied == pytest.approx(1 - 0.2 * 3.5 / 7.9 - 0.1 * 2.4 / 6.5, abs=1e-4)


def test_the_cap_trims_more_when_it_is_tighter():
    loose = insights.rhythm_summary(now=timezone.now())
    SyntheticSettings.objects.filter(pk=1).update(max_per_run=2)
    tight = insights.rhythm_summary(now=timezone.now())
    assert tight.cap_trimmed_share > loose.cap_trimmed_share
    # with no sim users the pool has no rhythm: R is 1 everywhere and the cap's trim is that of a
    # flat Poisson(2) capped at 2: P(X > 2) mass, 1 - E[min(X, 2)] / 2
    assert loose.rate_now == 1.0
    assert tight.cap_trimmed_share == pytest.approx(1 - (2 - 2 * 0.1353352832 - 0.2706705664) / 2)


def test_cohort_retention_counts_each_cohort_by_its_sign_up_week(sim_users):
    now = datetime.now(UTC)
    monday = (now - timedelta(days=now.weekday())).date()
    SimUser.objects.update(signup_date=monday - timedelta(weeks=1))
    activity_backfill(hours=2, now=now)
    run_manual(target=3, now=now)  # this week has activity even just after Monday midnight
    table = insights.cohort_retention(now=now)
    last_week, this_week = table[-2], table[-1]
    assert last_week["cohort"] == monday - timedelta(weeks=1)
    assert last_week["users"] == 40 and this_week["users"] == 0
    # the manual run above started sessions this week (week 1 of last week's cohort)
    assert last_week["retention"][1] > 0
    assert this_week["retention"] == [None]


def test_a_time_zone_tzdata_does_not_know_is_refused_and_never_breaks_a_run(api, sim_users):
    from django.core.exceptions import ValidationError

    sim_user = SimUser.objects.first()
    sim_user.timezone = "../../etc/passwd"
    with pytest.raises(ValidationError, match="not a time zone"):
        sim_user.full_clean()
    # written around the model's validation (a raw update), it counts as UTC: runs and insights go on
    SimUser.objects.filter(pk=sim_user.pk).update(timezone='"><img src=x>')
    activity_backfill(hours=1)
    assert api.get("/api/synthetics/insights").status_code == 200


def test_funnels_count_only_sessions_that_had_time_to_finish(sim_users):
    now = timezone.now()
    activity_backfill(hours=3, now=now)
    for funnel in insights.funnels(now=now):
        for step in funnel.steps:
            # every session counted entered the first scene inside the window: no share above 1
            assert step.observed is None or 0 <= step.observed <= 1


def test_cohort_retention_counted_by_the_database_matches_a_count_of_the_journeys(sim_users):
    """The table is aggregated in SQL; recount it here from the journeys, user by user."""
    now = datetime.now(UTC)
    monday = (now - timedelta(days=now.weekday())).date()
    ids = list(SimUser.objects.order_by("id").values_list("id", flat=True))
    for offset, sim_user_id in enumerate(ids):  # four cohorts: 1 to 4 weeks before this one
        SimUser.objects.filter(id=sim_user_id).update(
            signup_date=monday - timedelta(weeks=offset % 4 + 1) + timedelta(days=offset % 7)
        )
    SyntheticSettings.objects.filter(pk=1).update(max_per_run=20)
    for weeks_back in (4, 3, 2, 1):
        run_manual(
            target=15,
            now=datetime.combine(monday, datetime.min.time(), UTC)
            - timedelta(weeks=weeks_back)
            + timedelta(days=2, hours=9),
        )
    run_manual(target=10, now=now)
    table = {row["cohort"]: row for row in insights.cohort_retention(now=now)}
    signup = dict(SimUser.objects.values_list("id", "signup_date"))
    sizes, active = {}, {}
    for day in signup.values():
        cohort = day - timedelta(days=day.weekday())
        sizes[cohort] = sizes.get(cohort, 0) + 1
    for sim_user_id, started_at in Journey.objects.values_list("sim_user_id", "started_at"):
        cohort = signup[sim_user_id] - timedelta(days=signup[sim_user_id].weekday())
        week = (started_at.date() - timedelta(days=started_at.weekday()) - cohort).days // 7
        if week >= 0:
            active.setdefault((cohort, week), set()).add(sim_user_id)
    assert len(sizes) == 4
    for cohort, size in sizes.items():
        row = table[cohort]
        assert row["users"] == size
        assert row["retention"] == [
            round(len(active.get((cohort, week), ())) / size, 4)
            for week in range(len(row["retention"]))
        ]
    assert sum(1 for row in table.values() for share in row["retention"] if share) >= 4


def test_status_counts_active_and_churned_sim_users_apart(api):
    from django.utils import timezone

    from synthetics.services import sim_users_seed

    sim_users_seed(count=10, seed=15)
    SimUser.objects.filter(id__in=SimUser.objects.values("id")[:3]).update(
        churned_at=timezone.now()
    )
    body = api.get("/api/synthetics/status").json()
    assert (body["sim_users"], body["sim_users_churned"]) == (7, 3)


def test_attach_modes_funnel_from_the_journeys_cursors_counts_what_the_events_count(sim_users):
    """Attach mode reads the scenes reached from our journeys' plans and cursors (the application's
    events need not name a journey or a scene); on the demo tables both readings agree."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("attach mode is PostgreSQL's")
    now = timezone.now()
    activity_backfill(hours=4, now=now)
    until, since = now - timedelta(minutes=30), now - timedelta(hours=3)
    from_journeys = insights._scenes_reached_from_journeys(since=since, until=until)
    from_events = dict(
        JourneySceneEvent.objects.synthetic()
        .filter(
            created_at__gt=since,
            journey__started_at__gt=since,
            journey__started_at__lte=until,
            event_type="scene_entered",
        )
        .values_list("scene_id")
        .annotate(n=Count("id"))
        .values_list("scene_id", "n")
    )
    assert from_events and from_journeys == from_events


def test_the_power_user_curve_and_the_retention_curve_come_from_the_journeys(api, sim_users):
    # given two days of history with sign-ups, read back through the API
    SyntheticSettings.objects.filter(pk=1).update(signups_per_day=600, churn_per_month=0.0)
    now = timezone.now().replace(microsecond=0)
    activity_backfill(hours=48, now=now, seed=5)
    body = api.get("/api/synthetics/insights").json()
    engagement, curve = body["engagement"], body["retention_curve"]
    # the histogram counts every user active in the window once, on their number of active days
    active_days: dict[int, set] = {}
    for sim_user_id, started in Journey.objects.filter(is_synthetic=True).values_list(
        "sim_user_id", "started_at"
    ):
        active_days.setdefault(sim_user_id, set()).add(started.date())
    assert engagement["mau"] == len(active_days)
    assert sum(row["users"] for row in engagement["days_active"]) == engagement["mau"]
    for row in engagement["days_active"]:
        assert row["users"] == sum(1 for days in active_days.values() if len(days) == row["days"])
    assert 0 < engagement["dau_over_mau"] <= 1 and 0 < engagement["dau_over_wau"] <= 1
    # a sign-up is a session: every sign-up is active on its sign-up day
    signed_up = SimUser.objects.filter(joined_at__isnull=False).count()
    assert curve[0] == {"day": 0, "users": signed_up, "share": 1.0}
    assert curve[1]["users"] <= signed_up and curve[-1]["share"] is None  # day 30 not begun yet


def test_days_and_weeks_before_the_first_session_have_no_data_not_zero(sim_users):
    # given sign-ups five weeks ago and sessions only from three days ago on, with a quiet day
    now = datetime(2026, 3, 12, 15, 30, tzinfo=UTC)  # a Thursday
    monday = (now - timedelta(days=now.weekday())).date()
    SimUser.objects.update(signup_date=monday - timedelta(weeks=5))
    first_session = now - timedelta(days=3)  # Monday of this week
    run_manual(target=5, now=first_session)
    run_manual(target=5, now=now - timedelta(hours=1))

    # when the daily active users and the cohorts are read
    days = {row["day"]: row["users"] for row in insights.daily_active_users(now=now)}
    cohorts = {row["cohort"]: row for row in insights.cohort_retention(now=now)}

    # then the days before the first session are None, the quiet day after it 0, the others counted
    assert insights.first_activity_day() == first_session.date()
    assert all(users is None for day, users in days.items() if day < first_session.date())
    assert days[first_session.date()] > 0
    assert days[first_session.date() + timedelta(days=1)] == 0
    assert days[now.date()] > 0
    # and the cohort's weeks before the first session's week have no data; that week has a share
    cohort = cohorts[monday - timedelta(weeks=5)]
    assert cohort["users"] == 40
    assert cohort["retention"][:5] == [None] * 5
    assert cohort["retention"][5] > 0


def test_with_no_session_yet_every_day_and_week_is_no_data(api, sim_users):
    body = api.get("/api/synthetics/insights").json()
    assert [row["users"] for row in body["daily_active_users"]] == [None] * 30
    assert all(share is None for row in body["cohorts"] for share in row["retention"])
