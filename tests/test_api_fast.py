"""The API's fast paths (synthetics/api/fast.py) write exactly what DRF's own walk over the declared
serializers writes: the same keys in the same order, the same values of the same types, for empty
data, None values and current time zones other than UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework import serializers

from synthetics.api.activity import ActivityPointOutput, ActivityPointsOutput, ActivityResponse
from synthetics.api.sim_users import SimUserOutput
from synthetics.api.status import RunOutput, StatusResponse
from synthetics.models import SimUser, SyntheticFidelity, SyntheticRun
from synthetics.selectors.activity import activity_series
from synthetics.selectors.sim_users import sim_user_list
from synthetics.selectors.status import status_summary
from synthetics.services import activity_backfill, run_manual, sim_users_seed
from tests.helpers import ledger_with_every_kind_of_run

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
# UTC by name and as datetime.UTC, a zone 5:45 ahead and one 3:30 behind
ZONES = ("UTC", pytest.param(UTC, id="datetime.UTC"), "Asia/Kathmandu", "America/St_Johns")


def drf_walk(field, value):
    """What DRF's generic walk writes (Serializer.to_representation, ListSerializer's loop) with no
    serializer's own to_representation anywhere down the nesting: each field's own conversion."""
    if isinstance(field, serializers.ListSerializer):
        return [drf_walk(field.child, item) for item in value]
    if isinstance(field, serializers.Serializer):
        body = {}
        for name, child in field.fields.items():
            if child.write_only:
                continue
            attribute = child.get_attribute(value)
            body[name] = None if attribute is None else drf_walk(child, attribute)
        return body
    return field.to_representation(value)


def typed(value):
    """A body as nested lists of (key, value) with each leaf's type: keys in order, 1 is not 1.0."""
    if isinstance(value, dict):
        return [(key, typed(item)) for key, item in value.items()]
    if isinstance(value, list):
        return [typed(item) for item in value]
    return (type(value).__name__, value)


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("can_change", [True, False])
def test_status_is_drfs_own_walk(zone, can_change):
    # given a status with no sim user and no run, and one over every kind of run with a fidelity
    # verdict naming a metric
    empty = status_summary(now=NOW)
    assert empty.last_run is None and not empty.recent_runs and empty.sim_users == 0
    sim_users_seed(count=40, seed=7)
    ledger_with_every_kind_of_run(NOW)
    SyntheticFidelity.objects.update_or_create(
        pk=1, defaults={"verdict": "drifting", "metric": "sessions"}
    )
    full = status_summary(now=NOW)
    assert full.last_run is not None and any(run.error for run in full.recent_runs)
    assert any(run.finished_at is None for run in full.recent_runs)
    assert full.fidelity["metric"] == "sessions"
    context = {"can_change": can_change}
    for summary in (empty, full):
        # when each is written in the current zone
        with timezone.override(zone):
            fast = StatusResponse(summary, context=context).data
            walked = drf_walk(StatusResponse(context=context), summary)
        # then the same JSON
        assert typed(fast) == typed(walked)
    assert fast["settings"] == full.settings.setting_values()
    assert "sessions" not in fast["activity"]["last_24_hours"]
    masked = [run["error"] for run in fast["recent_runs"] if run["status"] == "failed"]
    assert masked and all(("Traceback" in error) == can_change for error in masked)


@pytest.mark.parametrize("zone", ZONES)
def test_runs_are_drfs_own_walk(sim_users, zone):
    ledger_with_every_kind_of_run(NOW)
    runs = list(SyntheticRun.objects.all())
    assert {run.trigger for run in runs} == {"backfill", "scheduled", "manual"}
    for can_change in (True, False):
        context = {"can_change": can_change}
        with timezone.override(zone):
            for run in runs:
                assert typed(RunOutput(context=context).to_representation(run)) == typed(
                    drf_walk(RunOutput(context=context), run)
                )


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("hours", [3, 24])
def test_activity_is_drfs_own_walk(sim_users, zone, hours):
    # given no run at all (a series of zeros), then a few hours of history
    empty = activity_series(hours=hours, now=NOW)
    activity_backfill(hours=8, now=NOW - timedelta(minutes=7))
    full = activity_series(hours=hours, now=NOW)
    assert any(point["scene_events"] for point in full.series)
    for series in (empty, full):
        with timezone.override(zone):
            fast = ActivityResponse(series).data
            walked = drf_walk(ActivityResponse(), series)
        assert typed(fast) == typed(walked)
        assert "journeys_started" not in fast["totals"]
        assert "journeys_started" not in fast["series"][0]
    # and a series of no point at all
    assert ActivityPointOutput([], many=True).data == []


def test_activity_points_of_other_fields_are_written_by_drfs_own_loop(sim_users):
    # given a point serializer with one field fewer than the fast path writes
    class Fewer(ActivityPointOutput):
        journeys_errored = None

    activity_backfill(hours=3, now=NOW)
    series = activity_series(hours=3, now=NOW).series
    assert isinstance(Fewer(series, many=True), ActivityPointsOutput)
    # when it is written, then DRF's own loop writes it
    fast = Fewer(series, many=True).data
    assert "journeys_errored" not in fast[0]
    assert typed(fast) == typed(drf_walk(Fewer(many=True), series))


@pytest.mark.parametrize("zone", ZONES)
def test_sim_users_are_drfs_own_walk(sim_users, zone):
    # given users in an active journey and not, one churned, one with a name of odd characters
    run_manual(target=3, now=timezone.now())
    first = SimUser.objects.order_by("id").first()
    SimUser.objects.filter(pk=first.pk).update(
        churned_at=NOW, settles_into="regular", display_name="Zoë “Z” O’Neil\u2028"
    )
    users = list(sim_user_list())
    assert {user.in_active_journey for user in users} == {True, False}
    assert {user.churned_at is None for user in users} == {True, False}
    # when each is written in the current zone, then as DRF's walk writes it
    with timezone.override(zone):
        fast = SimUserOutput(users, many=True).data
        walked = drf_walk(SimUserOutput(many=True), users)
    assert typed(fast) == typed(walked)
    assert SimUserOutput([], many=True).data == []
