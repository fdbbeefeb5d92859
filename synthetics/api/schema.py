"""OpenAPI schema adjustments: the Bearer scheme, the named choice sets, and request bodies that refuse unknown fields."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from synthetics.selectors.status import GENERATOR_STATUSES


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
GENERATOR_STATUS_CHOICES = list(GENERATOR_STATUSES)
CLEANUP_STATUS_CHOICES = ["running", "succeeded", "failed"]

# Examples whose times must lie ahead of the reader (an incident may not start in the past): the
# operation, the example's name and its time field, set to a whole hour at least an hour ahead as the schema is made.
FUTURE_EXAMPLE_TIMES = {("synthetics_incident_create", "starts_at")}


def fresh_examples(result, generator, request, public):
    """Put a whole hour (UTC) at least an hour ahead into the examples' future times, so the documented example is
    accepted whenever the schema is read."""
    from datetime import UTC, datetime, timedelta

    ahead = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    text = ahead.isoformat().replace("+00:00", "Z")
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            for operation_id, field in FUTURE_EXAMPLE_TIMES:
                if operation.get("operationId") != operation_id:
                    continue
                for media in operation.get("requestBody", {}).get("content", {}).values():
                    for example in media.get("examples", {}).values():
                        if field in example.get("value", {}):
                            example["value"][field] = text
    return result


# Request bodies that must name at least one field (a partial update of nothing is refused).
MIN_PROPERTIES = {"SettingsInputRequest": 1}


def close_request_bodies(result, generator, request, public):
    """Mark every request component `additionalProperties: false`, as the views enforce, and the
    body of an operation that refuses an empty one required (drf-spectacular marks a body required
    only when one of its fields is)."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("InputRequest") and component.get("type") == "object":
            component["additionalProperties"] = False
            if name in MIN_PROPERTIES:
                component["minProperties"] = MIN_PROPERTIES[name]
    needs_a_field = {f"#/components/schemas/{name}" for name in MIN_PROPERTIES}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if body and any(
                media.get("schema", {}).get("$ref") in needs_a_field
                for media in body.get("content", {}).values()
            ):
                body["required"] = True
    return result
