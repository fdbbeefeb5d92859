"""End to end: a real `manage.py qcluster` against the PostgreSQL test database, with the real schedule.

The cluster is a subprocess with its own connections, so this test commits its data (transactional
database) and polls the ledger, bounded in time. The process group is stopped however the test ends.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection

from synthetics.models import JourneySceneEvent, RunStatus, RunTrigger, SyntheticRun
from synthetics.services import settings_update, sim_users_seed
from synthetics.tasks import schedule_ensure

ROOT = Path(__file__).resolve().parent.parent
WAIT_SECONDS = 150  # django-q2's scheduler looks every 30 s; a run then takes well under a second


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.slow
@pytest.mark.waits
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("broker", ["orm", "redis"])
def test_a_real_cluster_runs_the_schedule(postgres_only, broker, tmp_path):
    if broker == "redis" and not _redis_reachable():
        pytest.skip("Redis is not reachable at 127.0.0.1:6379")
    # given sim users, a rate that surely starts sessions in a minute, and the schedule due now
    sim_users_seed(count=50, seed=11)
    settings_update(sessions_per_min=60, max_per_run=5)
    schedule_ensure()
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(
        DATABASE_URL=_database_url(),
        Q_WORKERS="1",
        Q_CLUSTER_NAME=f"synthetics-test-{uuid.uuid4().hex[:8]}",  # a queue of its own
        SYNTHETICS_LOCAL_DIR=str(tmp_path),
    )
    if broker == "redis":
        env["REDIS_URL"] = "redis://127.0.0.1:6379/15"
    log = (tmp_path / "qcluster.log").open("w")
    # when a real cluster runs
    process = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        run = None
        while time.monotonic() < deadline and run is None:
            assert process.poll() is None, (tmp_path / "qcluster.log").read_text()
            run = SyntheticRun.objects.filter(
                trigger=RunTrigger.SCHEDULED, status=RunStatus.SUCCEEDED, sessions_started__gt=0
            ).first()
            time.sleep(1)
        # then a scheduled run lands in the ledger, and its events in the tables
        assert run is not None, (tmp_path / "qcluster.log").read_text()
        assert JourneySceneEvent.objects.filter(event_payload__run_id=run.id).count() == (
            run.scene_events_created
        )
        assert JourneySceneEvent.objects.synthetic().count() >= run.scene_events_created > 0
        assert "synthetics run id=" in (tmp_path / "qcluster.log").read_text()
    finally:
        _stop(process)
        log.close()
    assert process.returncode is not None
