"""Export: our rows of one table in a time range as a streamed CSV or NDJSON file."""

from __future__ import annotations

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema

from synthetics.api.errors import READ_ERRORS, error_responses
from synthetics.api.fields import QueryChoiceField, StrictDateTimeField, StrictQuerySerializer
from synthetics.api.permissions import SyntheticsView
from synthetics.api.renderers import FastJSONRenderer
from synthetics.inputs import DATETIME_TEXT
from synthetics.selectors.export import (
    EXPORT_DEFAULT_SPAN,
    EXPORT_FORMATS,
    EXPORT_TABLES,
    export_chunks,
    export_request,
)

_HOURS = int(EXPORT_DEFAULT_SPAN.total_seconds() // 3600)
_FILE = (
    "The file, streamed, with a Content-Disposition filename: CSV with a header row "
    "(format=csv), or one JSON object per line (format=ndjson)."
)


class ExportQuery(StrictQuerySerializer):
    format = QueryChoiceField(choices=list(EXPORT_FORMATS), help_text="The file's format.")
    table = QueryChoiceField(
        choices=list(EXPORT_TABLES),
        help_text="The table: sessions only where a target file maps a sessions table.",
    )
    since = StrictDateTimeField(required=False)
    until = StrictDateTimeField(required=False)


def _time_parameter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(
        name,
        {"type": "string", "format": "date-time", "pattern": f"^{DATETIME_TEXT.pattern}$"},
        OpenApiParameter.QUERY,
        required=False,
        description=description,
    )


class ExportView(SyntheticsView):
    def perform_content_negotiation(self, request, force=False):
        # `format` is this operation's own parameter (the file's format), which DRF would otherwise
        # read as its URL_FORMAT_OVERRIDE and answer 404 for "csv". The file is a streamed response
        # of its own type; every other answer (an error) is the API's JSON.
        renderer = FastJSONRenderer()
        return renderer, renderer.media_type

    @extend_schema(
        operation_id="synthetics_export",
        summary="Our rows of one table in a time range, as a streamed CSV or NDJSON file",
        description=(
            "Rows the generator wrote (the identity rule: never a real row), oldest first, ties "
            "by primary key, with the table's own columns. CSV has a header row and JSON columns "
            "as their JSON text; NDJSON is one object per line with JSON columns as JSON values. "
            "Times are ISO 8601 in UTC (Z). `since` is inclusive, `until` exclusive; `until` "
            f"defaults to now and `since` to {_HOURS} h before `until`."
        ),
        parameters=[
            OpenApiParameter(
                "format",
                str,
                OpenApiParameter.QUERY,
                required=True,
                enum=list(EXPORT_FORMATS),
                description="csv (text/csv) or ndjson (application/x-ndjson).",
            ),
            OpenApiParameter(
                "table",
                str,
                OpenApiParameter.QUERY,
                required=True,
                enum=list(EXPORT_TABLES),
                description="scene_events, mindblock_events, journeys, or sessions where a "
                "target file maps a sessions table (else 400).",
            ),
            _time_parameter(
                "since",
                f"Start, inclusive: ISO 8601 with a zone. Default: {_HOURS} h before until.",
            ),
            _time_parameter("until", "End, exclusive: ISO 8601 with a zone. Default: now."),
        ],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description=_FILE),
            (200, "application/x-ndjson"): OpenApiResponse(OpenApiTypes.STR, description=_FILE),
            **error_responses(400, *READ_ERRORS),
        },
    )
    def get(self, request):
        query = ExportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        export = export_request(**query.validated_data, now=timezone.now())
        response = StreamingHttpResponse(export_chunks(export), content_type=export.content_type)
        response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
        response["Cache-Control"] = "no-store"
        return response
