"""What a web process does once as it starts (synthetics_site.wsgi and .asgi), so that its first requests
do not: import every view with the REST framework behind them, and the holiday calendars the
rhythm reads (insights and expectations). About half a second, before the server takes requests."""

from __future__ import annotations

from django.urls import get_resolver

from synthetics.engine.rhythm import holidays_load


def web_process_ready() -> None:
    get_resolver().resolve("/api/synthetics/status")  # imports the URL conf and every view
    holidays_load()
