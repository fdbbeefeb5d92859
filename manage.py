#!/usr/bin/env python
"""Django's command-line utility for the Synthetics project."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synthetics_site.settings")
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
        # Flush inside the try, so a reader that left early (`| head -1`) is noticed here.
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader of stdout went away: stop quietly, as the Python docs recommend ("Note on
        # SIGPIPE"), and point stdout at devnull so the flush at exit cannot fail again. Not
        # SIG_DFL for SIGPIPE: that would also kill the process on any socket's EPIPE.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


if __name__ == "__main__":
    main()
