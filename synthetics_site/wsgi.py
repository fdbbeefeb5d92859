"""WSGI entry point for production servers."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synthetics_site.settings")
application = get_wsgi_application()

from synthetics.startup import web_process_ready  # noqa: E402  (after Django is set up)

web_process_ready()
