"""OpenAPI schema adjustments: the Bearer scheme, the named choice sets, and request bodies that refuse unknown fields."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "synthetics.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <token>`; create one with `manage.py api_token`.",
        }


# Choice sets named in the schema (settings SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]): fields
# named `status` carry three different sets.
FIDELITY_CHOICES = ["ok", "drifting", "unknown"]
GENERATOR_STATUS_CHOICES = ["running", "paused", "failing", "stalled", "clock_behind"]
CLEANUP_STATUS_CHOICES = ["running", "succeeded", "failed"]

# Request bodies that must name at least one field (a partial update of nothing is refused).
MIN_PROPERTIES = {"SettingsInputRequest": 1}


def close_request_bodies(result, generator, request, public):
    """Mark every request component `additionalProperties: false`, as the views enforce."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("InputRequest") and component.get("type") == "object":
            component["additionalProperties"] = False
            if name in MIN_PROPERTIES:
                component["minProperties"] = MIN_PROPERTIES[name]
    return result
