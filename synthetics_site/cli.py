"""The `synthetics` command of an installed Synthetics (docs/install.md): `synthetics start` does what
`make run` does, with its data in the user's data directory, and `synthetics manage …` is manage.py.

The steps are the management commands themselves, called in-process; this module only chooses where
the data lives (before Django reads its settings) and turns their failures into one line each.
"""

from __future__ import annotations

import argparse
import errno
import io
import os
import socket
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from synthetics_site.locations import user_data_dir

SETTINGS_MODULE = "synthetics_site.settings"
# The defaults of `make run` and of bootstrap's own options.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_SIM_USERS = 3000
DEFAULT_HISTORY_HOURS = 24


def manage(argv: Sequence[str]) -> None:
    """Run a management command as manage.py does: argv[0] is the program's name, then the command."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(list(argv))
        # Flush inside the try, so a reader that left early (`| head -1`) is noticed here.
        sys.stdout.flush()
    except ImproperlyConfigured as error:
        # A setting the environment got wrong (attach mode on SQLite, a schema name, ...): the one
        # line that says what to set, as CommandError prints, not a traceback through Django.
        sys.stderr.write(f"ImproperlyConfigured: {error}\n")
        sys.exit(1)
    except BrokenPipeError:
        # The reader of stdout went away: stop quietly, as the Python docs recommend ("Note on
        # SIGPIPE"), and point stdout at devnull so the flush at exit cannot fail again. Not
        # SIG_DFL for SIGPIPE: that would also kill the process on any socket's EPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


def data_dir_choose() -> Path:
    """Point the settings at the user's data directory unless the environment already chose one.

    SYNTHETICS_LOCAL_DIR (the SQLite database and the generated secret key) defaults to
    user_data_dir(), and STATIC_ROOT (the collected static files) to its staticfiles/ folder. Set in
    os.environ, so the web server and the scheduler started by `serve` read the same ones.
    """
    local_dir = os.environ.get("SYNTHETICS_LOCAL_DIR") or str(user_data_dir())
    os.environ["SYNTHETICS_LOCAL_DIR"] = local_dir
    os.environ["STATIC_ROOT"] = os.environ.get("STATIC_ROOT") or str(Path(local_dir, "staticfiles"))
    return Path(local_dir)


def version() -> str:
    try:
        return metadata.version("synthetics")
    except metadata.PackageNotFoundError:  # a clone run without installing it
        return "unknown (not installed)"


def _whole_number(*, high: int | None = None):
    """An argparse type: digits 0-9 only (argparse names the option in its message)."""

    def parse(text: str) -> int:
        if not text.isascii() or not text.isdigit() or len(text) > 12:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}")
        if high is not None and not 1 <= int(text) <= high:
            raise argparse.ArgumentTypeError(f"must be from 1 to {high}, got {text}")
        return int(text)

    return parse


def address_free_check(host: str, port: int) -> str | None:
    """Return why the server could not listen on host:port (a port in use, an unknown host or an
    address of another machine), or None."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        return f"cannot listen on {host}:{port}: unknown host ({error.strerror})"
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As gunicorn binds: SO_REUSEADDR, so a port in TIME_WAIT after a restart is not "taken".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            advice = "choose another --port" if error.errno == errno.EADDRINUSE else "check --host"
            return f"cannot listen on {host}:{port}: {error.strerror} ({advice})"
    return None


def parser_build() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synthetics",
        description=(
            "Realistic, clearly tagged synthetic user activity for a Django application's "
            "database. Data (the SQLite database, the secret key, collected static files) lives in "
            "$SYNTHETICS_LOCAL_DIR, else the user's data directory "
            f"({user_data_dir()}); DATABASE_URL=postgres://… uses PostgreSQL instead."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    start = commands.add_parser(
        "start",
        help="set up the database and serve the site with the every-minute generator",
        description=(
            "What `make run` does: create the database if missing, migrate, collect the static "
            "files, seed sim users, a day of history and a staff account on first run (the "
            "password is printed once), then serve the site (gunicorn) and the every-minute "
            "generator (a django-q2 cluster) in the foreground until Ctrl-C."
        ),
    )
    start.add_argument("--host", default=DEFAULT_HOST, help=f"default: {DEFAULT_HOST}")
    start.add_argument(
        "--port",
        type=_whole_number(high=65535),
        default=DEFAULT_PORT,
        help=f"default: {DEFAULT_PORT}",
    )
    start.add_argument(
        "--sim-users",
        type=_whole_number(),
        default=DEFAULT_SIM_USERS,
        help=f"sim users to seed on first run (default: {DEFAULT_SIM_USERS})",
    )
    start.add_argument(
        "--history-hours",
        type=_whole_number(),
        default=DEFAULT_HISTORY_HOURS,
        help=f"hours of history to generate on first run (default: {DEFAULT_HISTORY_HOURS})",
    )
    start.add_argument("--no-scheduler", action="store_true", help="serve the web only")
    manage_parser = commands.add_parser(
        "manage",
        help="run a management command, as manage.py (synthetics manage help lists them)",
        description="Run any management command: `synthetics manage <command> [options]`.",
        add_help=False,  # main() hands everything after `manage` to Django, --help included
    )
    manage_parser.add_argument("arguments", nargs=argparse.REMAINDER)
    return parser


def start_options_check(*, sim_users: int, history_hours: int) -> None:
    """Refuse bootstrap's options out of its own bounds before any step changes anything."""
    from django.core.management import CommandError

    from synthetics.services.history import MAX_BACKFILL_HOURS
    from synthetics.services.seeding import MAX_SIM_USERS

    if sim_users > MAX_SIM_USERS:
        raise CommandError(f"--sim-users must be from 0 to {MAX_SIM_USERS}, got {sim_users}")
    if history_hours > MAX_BACKFILL_HOURS:
        raise CommandError(
            f"--history-hours must be from 0 to {MAX_BACKFILL_HOURS}, got {history_hours}"
        )


def start(*, host: str, port: int, sim_users: int, history_hours: int, no_scheduler: bool) -> None:
    """Run `make run`'s steps in this process: database_ensure, migrate, collectstatic, bootstrap, serve."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS_MODULE)
    import django
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connections

    # One line at a time, also into a file or a pipe: the staff password and the URLs show up as
    # they are printed, not when the server stops.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    django.setup()
    start_options_check(sim_users=sim_users, history_hours=history_hours)
    database = settings.DATABASES["default"]
    where = (
        database["NAME"]
        if database["ENGINE"].endswith("sqlite3")
        else f"PostgreSQL database {database['NAME']!r} on {database.get('HOST') or 'localhost'}"
    )
    print(f"synthetics {version()}: data in {settings.LOCAL_DIR}, database {where}", flush=True)
    call_command("database_ensure")
    call_command("migrate", interactive=False)
    call_command("collectstatic", interactive=False, verbosity=0)
    call_command(
        "bootstrap",
        host=host,
        port=str(port),
        sim_users=sim_users,
        history_hours=history_hours,
    )
    # The server runs in child processes from here on: hold no connection for its lifetime.
    connections.close_all()
    call_command("serve", host=host, port=str(port), no_scheduler=no_scheduler)


def main(argv: Sequence[str] | None = None) -> None:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["manage"]:
        # Everything after `manage` is Django's, options included (argparse would take --help).
        data_dir_choose()
        manage(["synthetics manage", *arguments[1:]])
        return
    options = parser_build().parse_args(arguments)
    data_dir_choose()
    problem = address_free_check(options.host, options.port)
    if problem:
        sys.stderr.write(f"synthetics start: {problem}\n")
        sys.exit(2)
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import CommandError

    try:
        start(
            host=options.host,
            port=options.port,
            sim_users=options.sim_users,
            history_hours=options.history_hours,
            no_scheduler=options.no_scheduler,
        )
    except (CommandError, ImproperlyConfigured) as error:
        sys.stderr.write(f"synthetics start: {error}\n")
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C before serve took over the signal (during the setup steps)
        sys.stderr.write("synthetics start: interrupted.\n")
        sys.exit(130)


if __name__ == "__main__":
    main()
