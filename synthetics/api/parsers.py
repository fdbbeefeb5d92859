"""Request bodies are JSON, even when the client forgot the Content-Type header.

The seed's curl commands for toggle and settings send a JSON body without `Content-Type`, which curl
labels `application/x-www-form-urlencoded`; they must keep working, so such a body is read as JSON.
The OpenAPI schema lists application/json only (this parser is deliberately not a JSONParser
subclass, so drf-spectacular's parser whitelist leaves it out).
"""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, JSONParser


class FormLabelledJSONParser(BaseParser):
    media_type = "application/x-www-form-urlencoded"

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return JSONParser().parse(stream, "application/json", parser_context)
        except ParseError as error:
            raise ParseError(
                "The body must be a JSON object (send it with Content-Type: application/json)."
            ) from error
