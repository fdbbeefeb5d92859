"""The alert rules docs/operations.md gives, evaluated by Prometheus' own `promtool test rules`
against the series /metrics exports: the stall alert fires for a scheduler that does not run and
for nothing else (a failing generator fires only the failing alert, a fresh install neither), and
the failing alert fires on the fourth failure because the counters start at 0.

promtool comes with Debian's `prometheus` package (.ci/run installs it); where it is missing the
test is skipped with a message saying so."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "operations.md"
PROMTOOL = shutil.which("promtool")

pytestmark = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not found: install Debian's `prometheus` package to test the alert rules",
)


def documented_rules() -> str:
    """The rules.yml block of docs/operations.md, as a reader would copy it."""
    text = PAGE.read_text()
    block = re.search(r"```yaml\n# prometheus\.yml\n.*?\n(# rules\.yml\n.*?)```", text, re.S)
    assert block, "docs/operations.md lost its rules.yml block"
    return block.group(1)


def _series(name: str, labels: dict[str, str], values: str) -> dict:
    inner = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{inner}}}", "values": values}


def _status(current: str, minutes: int, *, then: str | None = None, after: int = 0) -> list[dict]:
    """synthetics_status for each status: 1 for `current` for `minutes`, then 1 for `then`."""
    names = ("starting", "running", "paused", "failing", "stalled", "clock_behind")
    series = []
    for name in names:
        first = "1" if name == current else "0"
        values = f"{first}x{minutes}"
        if then is not None:
            values += " " + ("1" if name == then else "0") + f"x{after}"
        series.append(_series("synthetics_status", {"status": name}, values))
    return series


def _failed_runs(values: str) -> dict:
    return _series("synthetics_runs_total", {"trigger": "scheduled", "status": "failed"}, values)


# The labels each alert carries (its series'), beside its name; its annotations come from the page.
LABELS = {
    "SyntheticsSchedulerStalled": {"status": "stalled"},
    "SyntheticsRunsFailing": {"trigger": "scheduled", "status": "failed"},
}


def _annotations(name: str) -> dict:
    groups = yaml.safe_load(documented_rules())["groups"]
    (rule,) = [rule for group in groups for rule in group["rules"] if rule.get("alert") == name]
    return rule.get("annotations", {})


def _case(series: list[dict], checks: list[tuple[str, str, bool]]) -> dict:
    alerts = []
    for at, name, fires in checks:
        expected = [{"exp_labels": LABELS[name], "exp_annotations": _annotations(name)}]
        alerts.append({"eval_time": at, "alertname": name, "exp_alerts": expected if fires else []})
    return {"interval": "1m", "input_series": series, "alert_rule_test": alerts}


def promtool_test(tmp_path: Path, cases: list[dict]) -> subprocess.CompletedProcess:
    (tmp_path / "rules.yml").write_text(documented_rules())
    tests = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": cases}
    (tmp_path / "tests.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    return subprocess.run(
        [PROMTOOL, "test", "rules", "tests.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_documented_rules_tell_a_dead_scheduler_from_a_failing_generator(tmp_path):
    # given the series /metrics exports in four situations, a minute apart
    cases = [
        # the cluster stopped: status goes stalled after 3 minutes, the alert fires 2 minutes later
        _case(
            _status("running", 3, then="stalled", after=10),
            [
                ("4m", "SyntheticsSchedulerStalled", False),
                ("7m", "SyntheticsSchedulerStalled", True),
            ],
        ),
        # every scheduled run failing, the scheduler alive: the failing alert only
        _case(
            [*_status("failing", 12), _failed_runs("0+1x12")],
            [
                ("3m", "SyntheticsRunsFailing", False),  # three failures: not yet
                ("4m", "SyntheticsRunsFailing", True),  # the fourth, counted from the 0 sample
                ("12m", "SyntheticsSchedulerStalled", False),
            ],
        ),
        # a fresh install: starting, then its first scheduled runs
        _case(
            [*_status("starting", 2, then="running", after=10), _failed_runs("0x12")],
            [
                ("12m", "SyntheticsSchedulerStalled", False),
                ("12m", "SyntheticsRunsFailing", False),
            ],
        ),
        # paused: no alarm however long
        _case(
            _status("paused", 30),
            [("30m", "SyntheticsSchedulerStalled", False)],
        ),
    ]
    # when promtool evaluates the documented rules over them
    result = promtool_test(tmp_path, cases)
    # then every expectation held
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_the_check_can_fail(tmp_path):
    # a wrong expectation (the stall alert on a failing generator) is reported as a failure, so
    # the test above cannot pass by promtool saying yes to anything
    cases = [
        _case(
            [*_status("failing", 12), _failed_runs("0+1x12")],
            [("12m", "SyntheticsSchedulerStalled", True)],
        )
    ]
    result = promtool_test(tmp_path, cases)
    assert result.returncode != 0
    assert "SyntheticsSchedulerStalled" in result.stdout + result.stderr
