"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synthetics_site.settings")
application = get_asgi_application()

from synthetics.startup import web_process_ready  # noqa: E402  (after Django is set up)

web_process_ready()
