"""Request guards in front of every view: oversized API bodies and NUL bytes.

A body larger than the API could ever need is answered 413 before anything reads it, and a NUL byte
in the query string (which PostgreSQL refuses in any text) is answered 400 instead of reaching a
query and failing there with a 500. API paths get the API's JSON error shape.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest, JsonResponse

API_PREFIX = "/api/"


def _is_api(request) -> bool:
    return request.path.startswith(API_PREFIX)


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
        if "\x00" in request.path or any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            return _refuse(request, 400, "The request contains a NUL byte.")
        return self.get_response(request)
