"""App configuration."""

from django.apps import AppConfig


class SyntheticsConfig(AppConfig):
    name = "synthetics"
    verbose_name = "Synthetics"
    default_auto_field = "django.db.models.BigAutoField"
