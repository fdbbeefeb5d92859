"""OpenAPI schema adjustments: request bodies refuse unknown fields, and the schema says so."""


def close_request_bodies(result, generator, request, public):
    """Mark every request component `additionalProperties: false`, as the views enforce."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("InputRequest") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result
