"""Little's law: what the pool can sustain, computed, checked against the engine, and said out loud."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from synthetics.engine.capacity import mean_journey_minutes, pool_capacity
from synthetics.engine.simulation import simulate_minutes
from tests.factories import StaffUserFactory

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def test_the_pool_holds_rate_times_mean_length_in_progress(
    engine_catalogue, engine_pool, default_settings
):
    # given a flat rate of 20 sessions a minute that the 3,000 users sustain easily
    settings = replace(default_settings, sessions_per_min=20, max_per_run=200, rhythm_strength=0)
    minutes = mean_journey_minutes(catalogue=engine_catalogue, settings=settings)
    capacity = pool_capacity(
        settings=settings,
        catalogue=engine_catalogue,
        active_users=len(engine_pool),
        peak_factor=1.0,
    )
    assert capacity.sustainable and capacity.warning() is None
    # when the engine runs 10 hours of it
    stats = simulate_minutes(
        settings=settings,
        catalogue=engine_catalogue,
        pool=engine_pool,
        start=T0,
        minutes=600,
        seed=11,
    )
    # then the mean length it planned is the one computed, and the journeys in progress average
    # rate x length. Bounds: sessions in progress form an M/G/inf queue (Poisson starts, at most
    # one per idle user of 3,000, which binds nowhere near 100 in progress), whose occupancy is
    # Poisson(λW) at each moment and whose time average over T minutes has variance about
    # λ·E[S²]/T; with E[S²] <= 3W² here (lognormal dwells), λ=20, W≈4.6, T=600: sd ≈ 1.6 on ≈ 92,
    # so 10 % is over 5 sd (and covers the first ~3W minutes of ramp-up, ~2 % of the average).
    # The finished journeys' mean length has a standard error of sd/sqrt(~12,000): 5 % is far out.
    assert stats.mean_duration_minutes == pytest.approx(minutes, rel=0.05)
    assert stats.mean_active == pytest.approx(20 * minutes, rel=0.10)
    assert capacity.in_progress_at_peak == pytest.approx(20 * minutes)


def test_a_rate_the_pool_cannot_sustain_is_trimmed_as_the_warning_says(
    engine_catalogue, engine_pool, default_settings
):
    # given 300 users asked for 200 sessions a minute (Little's law: ~1,100 needed)
    pool = engine_pool[:300]
    settings = replace(default_settings, sessions_per_min=200, max_per_run=200, rhythm_strength=0)
    capacity = pool_capacity(
        settings=settings, catalogue=engine_catalogue, active_users=len(pool), peak_factor=1.0
    )
    # then the warning says so, with the numbers
    warning = capacity.warning()
    assert not capacity.sustainable and warning
    assert "300 sim users are active" in warning and "Little's law" in warning
    startable = 300 / (capacity.mean_journey_minutes + 1)
    assert f"about {startable:,.0f} sessions a minute" in warning
    # and the engine indeed starts far fewer than asked, about as many as it says: once idle
    # users run out, each minute starts about as many as finish, N/(W+1) at most (30 % margin:
    # the minute's granularity and the spread of lengths move it either way)
    stats = simulate_minutes(
        settings=settings, catalogue=engine_catalogue, pool=pool, start=T0, minutes=120, seed=3
    )
    per_minute = stats.sessions / 120
    assert per_minute < 0.5 * 200
    assert per_minute == pytest.approx(startable, rel=0.30)


@pytest.mark.django_db
def test_settings_the_pool_cannot_sustain_are_saved_with_a_warning_that_gives_the_numbers(
    sim_users,
):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=StaffUserFactory())}")
    # a modest rate: no warning
    calm = client.post("/api/synthetics/settings", {"sessions_per_min": 2}, format="json")
    assert calm.status_code == 200 and "warnings" not in calm.json()
    # 40 sim users asked for 100 sessions a minute
    busy = client.post(
        "/api/synthetics/settings", {"sessions_per_min": 100, "max_per_run": 100}, format="json"
    )
    assert busy.status_code == 200
    assert busy.json()["settings"]["sessions_per_min"] == 100  # saved all the same
    (warning,) = busy.json()["warnings"]
    assert "40 sim users are active" in warning and "lower sessions_per_min" in warning
    # the insights say it too, with the numbers
    capacity = client.get("/api/synthetics/insights").json()["capacity"]
    assert capacity["sustainable"] is False and capacity["active_users"] == 40
    assert capacity["warning"] == warning
    assert math.isclose(
        capacity["needed_users"],
        capacity["peak_rate_per_min"] * (capacity["mean_journey_minutes"] + 1),
        rel_tol=1e-9,
    )


@pytest.mark.django_db
def test_the_admin_warns_when_saved_settings_are_more_than_the_pool_sustains(client, sim_users):
    client.force_login(StaffUserFactory())
    url = reverse("admin:synthetics_syntheticsettings_change", args=[1])
    form = client.get(url).context["adminform"].form
    data = {name: form.initial[name] for name in form.fields if form.initial.get(name) is not None}
    data.update(sessions_per_min=100, max_per_run=100, enabled="on")
    response = client.post(url, data, follow=True)
    shown = [str(message) for message in response.context["messages"]]
    assert any("cannot sustain" in message for message in shown), shown


@pytest.mark.django_db
def test_the_insights_answer_with_no_active_sim_user():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=StaffUserFactory())}")
    response = client.get("/api/synthetics/insights")
    assert response.status_code == 200
    capacity = response.json()["capacity"]
    assert capacity["active_users"] == 0 and capacity["utilization"] is None
    assert capacity["sustainable"] is False and "0 sim users are active" in capacity["warning"]
