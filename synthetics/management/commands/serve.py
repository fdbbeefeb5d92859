"""Run the web server (gunicorn) and the scheduler (django-q2 qcluster) together in the foreground."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import CommandError

from synthetics.management.cli import SyntheticsCommand, address_arguments

STOP_GRACE_SECONDS = 15


class Command(SyntheticsCommand):
    requires_system_checks = "__all__"  # it serves the pages: every check, as runserver
    help = (
        "Serve the site with gunicorn and run the every-minute generator with a django-q2 cluster, "
        "both in the foreground. Ctrl-C (or SIGTERM) stops both cleanly; if either dies, the other "
        "is stopped too and the command exits non-zero."
    )

    def add_arguments(self, parser):
        address_arguments(parser)
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument("--no-scheduler", action="store_true", help="serve the web only")

    def handle(self, *args, host, port, web_workers, no_scheduler, **options):
        python = sys.executable
        commands = {
            "web": [
                python, "-m", "gunicorn", "synthetics_site.wsgi:application",
                "--bind", f"{host}:{port}", "--workers", str(web_workers),
                "--access-logfile", "-", "--graceful-timeout", "10",
                # gunicorn 27's control socket is one path per user: a second server on the
                # machine would take it over, and stopping the first would delete it.
                "--no-control-socket",
            ],
        }  # fmt: skip
        if not no_scheduler:
            # `python -m django`, not manage.py: an installed wheel has no manage.py. The children
            # inherit the environment, so they read the same settings and data directory.
            commands["scheduler"] = [
                python, "-m", "django", "qcluster", "--settings", settings.SETTINGS_MODULE,
            ]  # fmt: skip
        processes: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(signum=None, frame=None):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, command in commands.items():
            # A new process group each: Ctrl-C reaches this command only, which stops them in order.
            processes[name] = subprocess.Popen(
                command, cwd=settings.BASE_DIR, start_new_session=True
            )
            self.stdout.write(f"serve: started {name} (pid {processes[name].pid})")
        failed = None
        while not stopping:
            for name, process in processes.items():
                if process.poll() is not None:
                    failed = f"{name} exited with status {process.returncode}"
                    stopping = True
            time.sleep(0.5)
        self.stdout.write(f"serve: stopping ({failed or 'interrupted'}) ...")
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for name, process in processes.items():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                self.stdout.write(f"serve: {name} did not stop in time and was killed")
        self.stdout.write("serve: stopped.")
        if failed:
            raise CommandError(failed)
