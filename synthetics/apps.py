"""App configuration."""

from django.apps import AppConfig


class SyntheticsConfig(AppConfig):
    name = "synthetics"
    verbose_name = "Synthetics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from synthetics.api import schema  # noqa: F401  registers the OpenAPI Bearer scheme
