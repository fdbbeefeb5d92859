"""App configuration: the app's name, its system checks (the throttle setting, synthetics.E001; the
target file of attach mode, synthetics.E002) and, in attach mode, its own schema around `migrate`."""

from django.apps import AppConfig

# The tag of Synthetics' own system checks: the data commands run those and the models' checks only
# (synthetics.management.cli.SyntheticsCommand); `manage.py check` and the server run every check.
CHECK_TAG = "synthetics"


class SyntheticsConfig(AppConfig):
    name = "synthetics"
    verbose_name = "Synthetics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.core import checks
        from django.db.models.signals import post_migrate, pre_migrate

        from synthetics.target.own_schema import (
            schema_ensure,
            target_file_check,
            verification_views_ensure,
        )

        checks.register(throttle_rate_check, CHECK_TAG)
        checks.register(target_file_check, CHECK_TAG)
        pre_migrate.connect(schema_ensure, sender=self)
        post_migrate.connect(verification_views_ensure, sender=self)


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
