#!/usr/bin/env python
"""Django's command-line utility for the Synthetics project."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synthetics_site.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
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


if __name__ == "__main__":
    main()
