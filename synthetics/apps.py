"""App configuration: the app's name and its system check of the throttle setting (synthetics.E001)."""

from django.apps import AppConfig


class SyntheticsConfig(AppConfig):
    name = "synthetics"
    verbose_name = "Synthetics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks

        from synthetics.api import schema  # noqa: F401  registers the OpenAPI Bearer scheme

        checks.register(throttle_rate_check)


def throttle_rate_check(app_configs=None, **kwargs) -> list:
    """A mistyped SYNTHETICS_API_BURST_RATE stops `check`, `migrate` and the server at start."""
    from django.conf import settings
    from django.core import checks

    from synthetics.services.throttle import throttle_rate_parse

    try:
        throttle_rate_parse(settings.API_BURST_RATE)
    except ValueError as error:
        return [checks.Error(f"SYNTHETICS_API_BURST_RATE: {error}", id="synthetics.E001")]
    return []
