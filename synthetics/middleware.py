"""Request guards around every view: oversized API bodies, NUL bytes, admin filters that overflow.

A body larger than the API could ever need is answered 413 before anything reads it, and a NUL byte
in the query string (which PostgreSQL refuses in any text) is answered 400 instead of reaching a
query and failing there with a 500. An admin page whose query-string filters cannot be applied
(a year of 10**20 or 0, the month after 9999-12, a number beyond bigint) answers 400: Django checks
such values only when the query runs, and lets OverflowError, ValueError and DataError through as
a 500, in our admins and in django-q2's alike. API paths get the API's JSON error shape.
"""

from __future__ import annotations

from django.conf import settings
from django.db import DataError
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse

API_PREFIX = "/api/"
ADMIN_PREFIX = "/admin/"


def _is_api(request) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _refuse(request, status: int, message: str) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"success": False, "error": message}, status=status)
    if status == 400:
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class RequestGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _is_api(request):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return _refuse(request, 400, "The Content-Length header is not a number.")
            limit = settings.SYNTHETICS_API_MAX_BODY_BYTES
            if length > limit:
                return _refuse(
                    request,
                    413,
                    f"The body is {length:,} bytes; the API takes at most {limit:,} bytes.",
                )
        if "\x00" in request.path_info or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            return _refuse(request, 400, "The request contains a NUL byte.")
        return self.get_response(request)

    def process_exception(self, request, exception):
        if (
            request.method == "GET"
            and request.path_info.startswith(ADMIN_PREFIX)
            and request.GET
            and isinstance(exception, OverflowError | ValueError | DataError)
        ):
            return _refuse(request, 400, f"These filters cannot be applied: {exception}")
        return None
