"""The `synthetics` command's own rules, in-process (synthetics_site.cli): where the data lives, and a
clear refusal of every bad option before anything is created. tests/test_install.py runs it for real
from an installed wheel."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from synthetics_site import cli
from synthetics_site.locations import running_from_checkout, user_data_dir

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("platform", "environ", "expected"),
    [
        ("linux", {}, "/home/ada/.local/share/synthetics"),
        ("linux", {"XDG_DATA_HOME": "/srv/data"}, "/srv/data/synthetics"),
        # The XDG spec: a relative path is invalid and is ignored.
        ("linux", {"XDG_DATA_HOME": "relative/data"}, "/home/ada/.local/share/synthetics"),
        ("linux", {"XDG_DATA_HOME": "  "}, "/home/ada/.local/share/synthetics"),
        ("darwin", {"XDG_DATA_HOME": "/srv/data"}, "/home/ada/Library/Application Support/synthetics"),
        ("win32", {"LOCALAPPDATA": "/c/Users/ada/AppData/Local"}, "/c/Users/ada/AppData/Local/synthetics"),
        ("win32", {}, "/home/ada/AppData/Local/synthetics"),
    ],
)  # fmt: skip
def test_user_data_dir_follows_the_platform(platform, environ, expected):
    assert user_data_dir(environ=environ, platform=platform, home=Path("/home/ada")) == Path(
        expected
    )


def test_a_checkout_is_told_from_an_installed_wheel(tmp_path):
    assert running_from_checkout(REPO)
    assert not running_from_checkout(tmp_path)


def test_the_data_dir_defaults_to_the_user_data_dir(monkeypatch, tmp_path):
    # given
    monkeypatch.delenv("SYNTHETICS_LOCAL_DIR", raising=False)
    monkeypatch.delenv("STATIC_ROOT", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))

    # when
    chosen = cli.data_dir_choose()

    # then
    assert chosen == tmp_path / "xdg" / "synthetics"
    assert os.environ["SYNTHETICS_LOCAL_DIR"] == str(chosen)
    assert os.environ["STATIC_ROOT"] == str(chosen / "staticfiles")
    assert not chosen.exists()  # created by the settings when a command runs, not before


def test_the_environment_chooses_the_data_dir_and_static_root(monkeypatch, tmp_path):
    # given
    monkeypatch.setenv("SYNTHETICS_LOCAL_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("STATIC_ROOT", str(tmp_path / "public"))

    # when
    chosen = cli.data_dir_choose()

    # then
    assert chosen == tmp_path / "mine"
    assert os.environ["STATIC_ROOT"] == str(tmp_path / "public")


def test_version_prints_the_installed_version(capsys):
    # when
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])

    # then
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"synthetics {cli.version()}"


def test_help_names_both_commands(capsys):
    # when
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])

    # then
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "start" in out and "manage" in out and "DATABASE_URL" in out


def test_no_command_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([])
    assert exit_.value.code == 2
    assert "required: COMMAND" in capsys.readouterr().err


def test_manage_hands_every_argument_to_django(monkeypatch, tmp_path, capsys):
    # given: main() sets both in os.environ; monkeypatch puts them back afterwards
    monkeypatch.setenv("SYNTHETICS_LOCAL_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("STATIC_ROOT", raising=False)

    # when
    cli.main(["manage", "help", "bootstrap"])

    # then
    out = capsys.readouterr().out
    assert "usage: synthetics manage bootstrap" in out
    assert "--history-hours" in out


@pytest.fixture
def no_steps(monkeypatch, tmp_path) -> list[tuple]:
    """The management commands `start` would call, recorded instead of run; and a data dir of its own."""
    monkeypatch.setenv("SYNTHETICS_LOCAL_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("STATIC_ROOT", raising=False)
    calls: list[tuple] = []
    monkeypatch.setattr(
        "django.core.management.call_command",
        lambda *args, **kwargs: calls.append((*args, kwargs)),
    )
    return calls


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--port", "0"], "argument --port: must be from 1 to 65535, got 0"),
        (["--port", "65536"], "argument --port: must be from 1 to 65535, got 65536"),
        (["--port", "http"], "argument --port: must be a whole number, got 'http'"),
        (["--port", "-1"], "argument --port: must be a whole number, got '-1'"),
        (["--sim-users", "1.5"], "argument --sim-users: must be a whole number, got '1.5'"),
        (["--history-hours", "²"], "argument --history-hours: must be a whole number, got '²'"),
        (["--colour", "red"], "unrecognized arguments: --colour red"),
    ],
)
def test_start_refuses_a_bad_option_before_any_step(no_steps, tmp_path, capsys, arguments, message):
    # when
    with pytest.raises(SystemExit) as exit_:
        cli.main(["start", *arguments])

    # then
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert no_steps == []
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--sim-users", "1000001"], "--sim-users must be from 0 to 1000000, got 1000001"),
        (["--history-hours", "8785"], "--history-hours must be from 0 to 8784, got 8785"),
    ],
)
def test_start_refuses_bootstrap_options_out_of_bounds(no_steps, capsys, arguments, message):
    # given
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    # when
    with pytest.raises(SystemExit) as exit_:
        cli.main(["start", "--port", str(port), *arguments])

    # then
    assert exit_.value.code == 1
    assert capsys.readouterr().err.strip() == f"synthetics start: {message}"
    assert no_steps == []


def test_start_refuses_a_port_in_use_before_any_step(no_steps, tmp_path, capsys):
    # given
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        # when
        with pytest.raises(SystemExit) as exit_:
            cli.main(["start", "--port", str(port)])

    # then
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith(f"synthetics start: cannot listen on 127.0.0.1:{port}: ")
    assert "choose another --port" in error
    assert no_steps == []
    assert not (tmp_path / "data").exists()


def test_start_refuses_an_address_of_another_machine(no_steps, capsys):
    # when: 192.0.2.1 is TEST-NET-1, an address no machine of ours has (no name look-up, no traffic)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["start", "--host", "192.0.2.1", "--port", "8000"])

    # then
    assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("synthetics start: cannot listen on 192.0.2.1:8000: ")
    assert error.strip().endswith("(check --host)")
    assert no_steps == []


def test_start_runs_make_runs_steps_in_order(no_steps, capsys):
    # given
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    # when
    cli.main(["start", "--port", str(port), "--sim-users", "10", "--history-hours", "0"])

    # then
    assert [call[0] for call in no_steps] == [
        "database_ensure",
        "migrate",
        "collectstatic",
        "bootstrap",
        "serve",
    ]
    bootstrap, serve = no_steps[3][-1], no_steps[4][-1]
    assert bootstrap == {
        "host": "127.0.0.1",
        "port": str(port),
        "sim_users": 10,
        "history_hours": 0,
    }
    assert serve == {"host": "127.0.0.1", "port": str(port), "no_scheduler": False}
    assert capsys.readouterr().out.startswith(f"synthetics {cli.version()}: data in ")
