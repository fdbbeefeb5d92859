"""Shared pieces of the management commands: argument types and a progress bar."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

from django.utils.dateparse import parse_datetime


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value

    return parse


def aware_datetime(text: str) -> datetime:
    try:
        value = parse_datetime(text)
    except ValueError:
        value = None
    if value is None:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 date and time such as 2026-01-09T19:15:00Z, got {text!r}"
        )
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no time zone: add Z or an offset such as +00:00"
        )
    return value


@contextmanager
def progress_bar(*, total: int, unit: str, description: str) -> Iterator[Callable[[int], None]]:
    """Yield an `advance(n)` callable drawing a bar on stderr (hidden when stderr is not a terminal)."""
    from tqdm import tqdm

    with tqdm(
        total=total, unit=unit, desc=description, file=sys.stderr, disable=None, dynamic_ncols=True
    ) as bar:
        yield bar.update
