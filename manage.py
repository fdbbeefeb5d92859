#!/usr/bin/env python
"""Django's command-line utility for the Synthetics project (installed, the same is `synthetics manage`)."""

import sys


def main() -> None:
    from synthetics_site.cli import manage

    manage(sys.argv)


if __name__ == "__main__":
    main()
