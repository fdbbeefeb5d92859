"""Every API error is JSON with a human-readable message: {"success": false, "error": ..., "fields"?}."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from synthetics.errors import (
    ApplicationError,
    Conflict,
    DatabaseBusy,
    GeneratorBusy,
    NotFound,
    RunFailed,
)
from synthetics.services.locks import is_database_locked


class ConflictError(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the generator's state."
    default_code = "conflict"


class RunFailedError(exceptions.APIException):
    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    default_detail = "The run failed and was rolled back."
    default_code = "run_failed"


class Busy(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The generator is busy; try again in a few seconds."
    default_code = "busy"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.wait = retry_after


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list | tuple):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


def _fields(detail) -> dict[str, list[str]]:
    return {
        str(key): [_flatten(item) for item in (value if isinstance(value, list) else [value])]
        for key, value in detail.items()
    }


def exception_handler(exc, context):
    """Map refusals and failed runs to their status codes and render every error in one JSON shape.

    ApplicationError: 400, with every field it names (`extra["fields"]`, else `extra["field"]`)
    (Conflict: 409, NotFound: 404); GeneratorBusy: 503; any other RunFailed: 500 with its
    run_id; Django's ValidationError (the model's rules): 400 with a message per field.
    """
    run_id = None
    if isinstance(exc, GeneratorBusy):
        exc = Busy(str(exc), retry_after=exc.retry_after)
    elif isinstance(exc, RunFailed):
        # Rolled back and recorded in the ledger: say so, with the ledger row to look at.
        run_id = exc.run_id
        exc = RunFailedError(f"{exc} (run {exc.run_id} in the ledger).")
    elif isinstance(exc, Conflict):
        exc = ConflictError(exc.message)
    elif isinstance(exc, NotFound):
        exc = exceptions.NotFound(exc.message)
    elif isinstance(exc, ApplicationError):
        exc = exceptions.ValidationError(
            exc.extra.get("fields") or {exc.extra.get("field", "non_field_errors"): [exc.message]}
        )
    elif is_database_locked(exc):
        # SQLite's write lock did not come within its busy timeout: the same answer as a busy run.
        busy = DatabaseBusy(retry_after=5)
        exc = Busy(str(busy), retry_after=busy.retry_after)
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    body: dict = {"success": False}
    detail = response.data
    if isinstance(exc, exceptions.ValidationError) and isinstance(detail, dict):
        fields = _fields(detail)
        body["error"] = "Invalid input: " + "; ".join(
            f"{name}: {' '.join(messages)}" if name != "non_field_errors" else " ".join(messages)
            for name, messages in fields.items()
        )
        body["fields"] = fields
    elif isinstance(detail, dict) and "detail" in detail:
        body["error"] = str(detail["detail"])
    else:
        body["error"] = _flatten(detail)
    if run_id is not None:
        body["run_id"] = run_id
    headers = dict(response.items())
    if isinstance(exc, exceptions.Throttled | Busy) and exc.wait is not None:
        body["retry_after"] = max(1, round(exc.wait))
        headers["Retry-After"] = str(body["retry_after"])
    return Response(body, status=response.status_code, headers=headers)


def bad_request(request, exception=None):
    """JSON for API paths (413 for a body over Django's upload limit), Django's page elsewhere."""
    from django.core.exceptions import RequestDataTooBig

    if request.path_info.startswith("/api/"):
        if isinstance(exception, RequestDataTooBig):
            return JsonResponse({"success": False, "error": "The body is too large."}, status=413)
        return JsonResponse({"success": False, "error": "Bad request."}, status=400)
    from django.views.defaults import bad_request as django_bad_request

    return django_bad_request(request, exception)


def not_found(request, exception=None):
    """JSON 404 for API paths, Django's page elsewhere."""
    if request.path_info.startswith("/api/"):
        return JsonResponse(
            {"success": False, "error": f"No API endpoint at {request.path}."}, status=404
        )
    from django.views.defaults import page_not_found

    return page_not_found(request, exception)


def server_error(request):
    if request.path_info.startswith("/api/"):
        return JsonResponse({"success": False, "error": "Internal server error."}, status=500)
    from django.views.defaults import server_error as django_server_error

    return django_server_error(request)


# --- the shape in the OpenAPI schema --------------------------------------------------------------


class ErrorResponse(serializers.Serializer):
    success = serializers.BooleanField(default=False)
    error = serializers.CharField(help_text="What went wrong, for a person.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Per-field messages on a 400.",
    )
    retry_after = serializers.IntegerField(required=False, help_text="Seconds, on a 429 or 503.")
    run_id = serializers.IntegerField(required=False, help_text="The failed run, on a 500.")


_WHEN = {
    400: "Invalid input: a message per field.",
    401: "No or invalid credentials.",
    403: "Authenticated, but without the needed permission (or no CSRF token with a session).",
    404: "No such page, or no such incident.",
    409: "The generator's state refuses it now: generation is paused (send force: true to "
    "run anyway), there are no sim users, another cleanup job is still running, or an incident "
    "contradicts one it overlaps or is already over.",
    413: "The body is larger than the API takes.",
    429: "Too many calls; retry after the given number of seconds.",
    500: "The run failed and was rolled back; `run_id` names its row in the ledger.",
    503: "The generator is busy with another run; retry after the given number of seconds.",
}
READ_ERRORS = (401, 403)
WRITE_ERRORS = (400, 401, 403, 413)


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """The schema's responses for these error codes (for extend_schema's `responses`)."""
    return {code: OpenApiResponse(ErrorResponse, description=_WHEN[code]) for code in codes}
