"""The one failure rule of the three run services, checked for each of them alike.

A refusal raises an ApplicationError before anything is written; any other failure is rolled back,
recorded in the ledger as a failed run and raised as RunFailed (GeneratorBusy when the lock did not
come); an interruption is recorded the same way and raised as itself.
"""

from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.utils import timezone

from synthetics.engine import minute as engine_minute
from synthetics.errors import ApplicationError, Conflict, GeneratorBusy, RunFailed
from synthetics.models import RunStatus, RunTrigger, SyntheticRun, SyntheticSettings
from synthetics.selectors.run_inputs import RunInputs
from synthetics.services import run_backfill_minute, run_failures, run_manual, run_scheduled
from tests.helpers import database_state

pytestmark = pytest.mark.django_db
MINUTE = timedelta(minutes=1)


def _scheduled(now):
    return run_scheduled(now=now)


def _manual(now):
    return run_manual(now=now, target=2)


def _backfill(now):
    return run_backfill_minute(minute_end=now, inputs=RunInputs.load())


SERVICES = [
    pytest.param(_scheduled, RunTrigger.SCHEDULED, id="scheduled"),
    pytest.param(_manual, RunTrigger.MANUAL, id="manual"),
    pytest.param(_backfill, RunTrigger.BACKFILL, id="backfill"),
]


def _a_minute_ago():
    return timezone.now() - MINUTE


@pytest.mark.parametrize(("service", "trigger"), SERVICES)
@pytest.mark.parametrize(
    "bad_now",
    [
        pytest.param(lambda: timezone.now() + timedelta(hours=1), id="future"),
        pytest.param(lambda: timezone.now().replace(tzinfo=None), id="naive"),
    ],
)
def test_a_refusal_raises_before_anything_is_written(sim_users, service, trigger, bad_now):
    before = database_state()
    with pytest.raises(ApplicationError):
        service(bad_now())
    assert database_state() == before


def test_a_manual_run_while_paused_is_a_conflict_and_writes_nothing(sim_users):
    SyntheticSettings.objects.filter(pk=1).update(enabled=False)
    before = database_state()
    with pytest.raises(Conflict, match="paused"):
        _manual(_a_minute_ago())
    assert database_state() == before


@pytest.mark.parametrize(("service", "trigger"), SERVICES)
def test_a_failure_is_rolled_back_recorded_and_raised(sim_users, monkeypatch, service, trigger):
    before = database_state()

    def broken_engine(**kwargs):
        raise RuntimeError("engine exploded (injected)")

    monkeypatch.setattr(engine_minute, "simulate_run", broken_engine)
    with pytest.raises(RunFailed, match="injected") as failure:
        service(_a_minute_ago())
    failed = SyntheticRun.objects.get()
    assert (failed.id, failed.trigger, failed.status) == (
        failure.value.run_id,
        trigger,
        RunStatus.FAILED,
    )
    assert "engine exploded (injected)" in failed.error
    # nothing but the failed ledger row was written
    failed.delete()
    assert database_state() == before


@pytest.mark.parametrize(("service", "trigger"), SERVICES)
def test_a_busy_generator_is_recorded_and_raised_as_a_failed_run(
    sim_users, monkeypatch, service, trigger
):
    @contextmanager
    def lock_never_comes(*, deadline, synchronous_commit=True, shard=None):
        raise GeneratorBusy("another run held the lock (injected)", retry_after=3)
        yield  # pragma: no cover

    monkeypatch.setattr(run_failures, "generator_transaction", lock_never_comes)
    with pytest.raises(GeneratorBusy) as busy:
        service(_a_minute_ago())
    assert isinstance(busy.value, RunFailed)
    assert busy.value.retry_after == 3
    failed = SyntheticRun.objects.get(id=busy.value.run_id)
    assert (failed.trigger, failed.status) == (trigger, RunStatus.FAILED)
    assert failed.note.startswith("generator busy")


@pytest.mark.parametrize(("service", "trigger"), SERVICES)
def test_an_interruption_is_recorded_and_raised_as_itself(sim_users, monkeypatch, service, trigger):
    def interrupted(**kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(engine_minute, "simulate_run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        service(_a_minute_ago())
    failed = SyntheticRun.objects.get()
    assert (failed.trigger, failed.status) == (trigger, RunStatus.FAILED)
    assert "Ctrl-C" in failed.note


def test_the_ledger_row_is_the_result_and_holds_the_settings_it_ran_with(sim_users):
    SyntheticSettings.objects.filter(pk=1).update(abandon_rate=0.3, error_rate=0.1)
    run = _manual(_a_minute_ago())
    stored = SyntheticRun.objects.get(id=run.id)
    assert (stored.abandon_rate, stored.error_rate, stored.target) == (0.3, 0.1, 2)
    assert stored.sessions_started == run.sessions_started == 2
    assert stored.finished_at is not None and stored.finished_at >= stored.started_at
