"""Management commands: idempotency, clear refusals with a non-zero exit, one-line summaries."""

import json
import math
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from synthetics.engine.run import window_rate_factor
from synthetics.models import JourneySceneEvent, RunStatus, RunTrigger, SimUser, SyntheticRun, User
from synthetics.selectors import run_inputs
from synthetics.selectors.ledger import run_totals, synthetic_event_counts
from tests.factories import SyntheticUserFactory
from tests.helpers import assert_near, assert_outcome_shares, capped_poisson_moments

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.django_db


def run(*args, **options) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


# --- seed_sim_users ---------------------------------------------------------------------------------


def test_seed_sim_users_creates_3000_and_is_idempotent():
    # when seeding twice with the defaults
    first = run("seed_sim_users")
    second = run("seed_sim_users")
    # then there are exactly 3000, and the summaries say what happened
    assert last_line(first) == "seed_sim_users: created 3000 sim users; 3000 in total."
    assert last_line(second) == "seed_sim_users: created 0 sim users; 3000 in total."
    assert SimUser.objects.count() == 3000
    assert User.objects.filter(is_synthetic=True).count() == 3000


def test_seeded_accounts_cannot_log_in_and_look_real():
    run("seed_sim_users", count=300, seed=1)
    users = list(User.objects.filter(is_synthetic=True).select_related("sim_profile"))
    assert all(not u.is_active and not u.has_usable_password() for u in users)
    assert all(u.email.endswith("@synthetics.invalid") for u in users)
    profiles = [u.sim_profile for u in users]
    # Two profiles share a name with probability about 4e-6 with Faker's name lists (ja_JP's are the
    # shortest), so 300 expect 0.2 shared pairs. Every locale has a share of at least 4 % and
    # every persona 8 %: one is missing from 300 draws with probability under 0.96^300 = 5e-6.
    assert len({p.display_name for p in profiles}) > 280, "realistic, varied names"
    assert len({p.timezone for p in profiles}) >= 8
    assert len({p.locale for p in profiles}) >= 8
    assert {p.persona for p in profiles} == {"devoted", "regular", "casual", "newcomer", "drifting"}
    assert all(p.signup_date <= timezone.now().date() for p in profiles)
    assert all(p.activity_weight > 0 for p in profiles)


def test_seed_is_deterministic_for_a_seed():
    run("seed_sim_users", count=50, seed=5)
    first = list(SimUser.objects.order_by("user__username").values_list(
        "user__username", "display_name", "persona", "timezone", "locale", "activity_weight"
    ))  # fmt: skip
    User.objects.filter(is_synthetic=True).delete()
    run("seed_sim_users", count=50, seed=5)
    second = list(SimUser.objects.order_by("user__username").values_list(
        "user__username", "display_name", "persona", "timezone", "locale", "activity_weight"
    ))  # fmt: skip
    assert first == second


def test_seed_tops_up_to_the_count():
    run("seed_sim_users", count=10)
    assert last_line(run("seed_sim_users", count=25)).startswith("seed_sim_users: created 15 ")
    assert SimUser.objects.count() == 25


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--count", "-5"], "must be from 0 to 1000000"),
        (["--count", "lots"], "expected a whole number"),
        (["--count", "2000000"], "must be from 0 to 1000000"),
        (["--seed", "-1"], "must be from 0"),
    ],
)
def test_seed_refuses_bad_input_and_creates_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("seed_sim_users", *args)
    assert not User.objects.exists()


# --- backfill_sim_users -----------------------------------------------------------------------------


def test_backfill_sim_users_registers_orphans_once():
    # given synthetic accounts created before sim_users existed
    orphans = SyntheticUserFactory.create_batch(3, first_name="Ada", last_name="Lovelace")
    seeded = run("seed_sim_users", count=5)  # tops synthetic accounts up to 5: 2 more
    assert last_line(seeded) == "seed_sim_users: created 2 sim users; 2 in total."
    # when the backfill runs twice
    first = run("backfill_sim_users")
    second = run("backfill_sim_users")
    # then each orphan got exactly one profile
    assert last_line(first) == "backfill_sim_users: added 3 sim users; 5 in total."
    assert last_line(second) == "backfill_sim_users: added 0 sim users; 5 in total."
    for user in orphans:
        assert SimUser.objects.get(user=user).display_name == "Ada Lovelace"


def test_backfill_sim_users_leaves_real_accounts_alone():
    from tests.factories import UserFactory

    UserFactory.create_batch(2)
    assert last_line(run("backfill_sim_users")).startswith("backfill_sim_users: added 0 ")


# --- run_synthetics ---------------------------------------------------------------------------------


def test_run_synthetics_with_target_prints_the_run_now_counts(sim_users):
    output = run("run_synthetics", "--target", "3", "--now", "2026-01-09T19:15:00Z")
    body = json.loads(output[: output.rindex("}") + 1])
    assert body["success"] is True
    assert body["sessions_created"] == 3
    assert body["settings"] == {"target": 3, "abandon_rate": 0.15, "error_rate": 0.05}
    assert body["timestamp"] == "2026-01-09T19:15:00.000Z"  # the run-now endpoint's format
    assert body["scene_events_created"] == JourneySceneEvent.objects.synthetic().count()
    assert last_line(output).startswith("run_synthetics: manual run ")


def test_run_synthetics_without_target_is_a_scheduled_run(sim_users):
    output = run("run_synthetics", "--now", "2026-01-09T19:15:00+00:00")
    assert " scheduled run " in last_line(output)
    assert SyntheticRun.objects.get().trigger == "scheduled"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "9"], r"from 1 to 5 \(max_per_run is 5\); got 9\."),
        (["--target", "0"], r"from 1 to 5 \(max_per_run is 5\); got 0\."),
        (["--target", "5000"], r"from 1 to 5 \(max_per_run is 5\); got 5000\."),
        (["--target", "x"], "expected a whole number"),
        (["--now", "yesterday"], "expected an ISO-8601"),
        (["--now", "2026-01-09T19:15:00"], "has no time zone"),
        (["--now", "2026-13-45T99:00:00Z"], "expected an ISO-8601"),
    ],
)
def test_run_synthetics_refuses_bad_input_and_writes_nothing(sim_users, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("run_synthetics", *args)
    assert not SyntheticRun.objects.exists()
    assert JourneySceneEvent.objects.synthetic().count() == 0


def test_run_synthetics_while_paused_needs_force(sim_users):
    from synthetics.services import settings_update

    settings_update(enabled=False)
    with pytest.raises(CommandError, match="paused"):
        call_command("run_synthetics", "--target", "2")
    assert not SyntheticRun.objects.exists()
    assert '"sessions_created": 2' in run("run_synthetics", "--target", "2", "--force")


# --- backfill_activity ------------------------------------------------------------------------------


@pytest.mark.slow
def test_backfill_activity_24_hours_then_the_seed_verification_holds():
    # given the README's setup: 3000 sim users, a day of history, then one run now
    run("seed_sim_users")
    output = run("backfill_activity", hours=24)
    run("run_synthetics")
    # then the summary reports a full day at the defaults ...
    assert last_line(output).startswith("backfill_activity: 1440 of 1440 minutes generated")
    since = timezone.now() - timedelta(hours=25)
    totals = run_totals(since=since)
    # ... with each run's sessions drawn from min(Poisson(sessions_per_min x its minutes x F),
    # max_per_run), independently, F the behaviour's rate factor of the run's seed and window
    # (engine.behaviour): the total has the sum of those means and variances ...
    settings = run_inputs.generator_settings()
    behaviour = run_inputs.behaviour_load()
    covered = mean = variance = 0.0
    for ledger_row in SyntheticRun.objects.filter(status=RunStatus.SUCCEEDED, window_end__gt=since):
        minutes = (ledger_row.window_end - ledger_row.window_start) / timedelta(minutes=1)
        factor = window_rate_factor(
            behaviour,
            seed=ledger_row.seed,
            start=ledger_row.window_start,
            end=ledger_row.window_end,
            strength=ledger_row.rhythm_strength,
        )
        moments = capped_poisson_moments(
            settings.sessions_per_min * minutes * factor, settings.max_per_run
        )
        covered, mean, variance = covered + minutes, mean + moments[0], variance + moments[1]
    assert covered >= 24 * 60
    assert_near(totals["sessions_started"], mean, math.sqrt(variance))
    # ... and binomial outcome counts with the configured rates
    assert_outcome_shares(
        outcomes={key: totals[key] for key in ("completed", "abandoned", "errored")},
        started=totals["sessions_started"],
        settings=settings,
    )
    # ... the ledger agrees with the tables ...
    counts = synthetic_event_counts(since=timezone.now() - timedelta(hours=25))
    assert counts["scene_events"] == totals["scene_events"]
    assert counts["mindblock_events"] == totals["mindblock_events"]
    # ... and the seed's verification SQL answers as the seed says (at least four generated minutes
    # lie in the last five: no session starts in them with probability e^-8, Poisson(2 x 4), and
    # the journeys in progress write steps too)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM sim_users")
        assert cursor.fetchone()[0] == 3000
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT COUNT(*) FROM journey_scene_events "
                "WHERE created_at > NOW() - INTERVAL '5 minutes' "
                "AND event_payload->>'synthetic' = 'true'"
            )
            assert cursor.fetchone()[0] > 0
    assert synthetic_event_counts(since=timezone.now() - timedelta(minutes=5))["scene_events"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "one of the arguments --hours --minutes is required"),
        (["--hours", "0"], "must be from 1 to 8784"),
        (["--hours", "1.5"], "expected a whole number"),
        (["--hours", "10000"], "must be from 1 to 8784"),
        (["--minutes", "0"], "must be from 1 to 527040"),
        (["--minutes", "527041"], "must be from 1 to 527040"),
        (["--hours", "1", "--minutes", "5"], "not allowed with argument --hours"),
    ],
)
def test_backfill_activity_refuses_bad_input(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("backfill_activity", *args)
    assert not SyntheticRun.objects.exists()


def test_backfill_activity_minutes_generates_that_many_minutes():
    # given a few sim users
    run("seed_sim_users", count=50)
    # when a history of minutes, not hours, is asked for
    output = run("backfill_activity", minutes=7)
    # then those minutes, each its own ledger row, end at the current minute
    assert last_line(output).startswith("backfill_activity: 7 of 7 minutes generated")
    backfilled = SyntheticRun.objects.filter(trigger=RunTrigger.BACKFILL)
    assert backfilled.count() == 7
    newest = backfilled.order_by("-window_end").first().window_end
    assert timezone.now() - newest < timedelta(minutes=1)


# --- from the shell ---------------------------------------------------------------------------------


def _manage(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["SYNTHETICS_LOCAL_DIR"] = str(tmp_path)  # a throwaway SQLite file, never the user's
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.once  # a subprocess on its own SQLite: the same on every database
@pytest.mark.parametrize(
    "command", ["seed_sim_users", "backfill_sim_users", "run_synthetics", "backfill_activity"]
)
def test_every_command_has_help(command, tmp_path):
    result = _manage(command, "--help", tmp_path=tmp_path)
    assert result.returncode == 0
    assert "usage:" in result.stdout


@pytest.mark.once  # a subprocess on its own SQLite: the same on every database
def test_bad_input_exits_non_zero_from_the_shell(tmp_path):
    result = _manage("backfill_activity", "--hours", "-3", tmp_path=tmp_path)
    assert result.returncode != 0
    assert "must be from 1 to 8784" in result.stderr


def test_bootstrap_prints_the_studio_first_among_the_urls(monkeypatch):
    # given an empty install, as `make run` finds it
    monkeypatch.setenv("SYNTHETICS_ADMIN_PASSWORD", "a-long-enough-password")
    # when bootstrap readies it for a server on another port
    output = run("bootstrap", "--sim-users", "3", "--history-hours", "0", "--port", "8123")
    # then the first address it gives is the Studio's, with the account to log in as
    urls = [line.split()[:2] for line in output.splitlines() if "http://" in line]
    assert urls[0] == ["Studio:", "http://127.0.0.1:8123/studio/"]
    assert "log in as 'admin'" in output


def test_progress_without_a_terminal_is_one_summary_line(monkeypatch):
    from synthetics.management import cli

    class Log(StringIO):  # a container's log: not a terminal
        def isatty(self) -> bool:
            return False

    class Terminal(StringIO):
        def isatty(self) -> bool:
            return True

    # given a command's progress over 120 minutes, no terminal attached
    log = Log()
    with cli.progress_bar(total=120, unit="min", description="backfill", stream=log) as advance:
        for _ in range(120):
            advance(1, rows=50)
    # then one line at the end, no bar and no carriage return
    (line,) = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert line.startswith("backfill: 120/120 mins in ")
    assert line.endswith("rows/s)") and ", 6,000 rows (" in line
    # and a long command also says where it is, a line a minute at most
    monkeypatch.setattr(cli, "PROGRESS_LINE_SECONDS", 0.0)
    log = Log()
    with cli.progress_bar(total=3, unit="row", description="cleanup", stream=log) as advance:
        for _ in range(3):
            advance(1)
    lines = log.getvalue().splitlines()
    assert [line.split(" in ")[0] for line in lines] == [
        "cleanup: 1/3 rows", "cleanup: 2/3 rows", "cleanup: 3/3 rows", "cleanup: 3/3 rows",
    ]  # fmt: skip
    assert lines[0].endswith(" so far") and not lines[-1].endswith(" so far")
    # on a terminal: the bar, and no summary line
    terminal = Terminal()
    with cli.progress_bar(total=3, unit="row", description="seed", stream=terminal) as advance:
        advance(3)
    assert "\r" in terminal.getvalue() and "3/3" in terminal.getvalue()
    assert not terminal.getvalue().rstrip().endswith("s)")
