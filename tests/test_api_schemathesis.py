"""schemathesis against the API's OpenAPI schema: no 5xx, and no response that violates the schema.

The schema is the one /api/schema/ serves (a test below checks they are identical), generated once at
collection; every generated request is sent in-process to the WSGI application with a superuser's
Bearer token.
"""

import copy
import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient
from schemathesis.specs.openapi.checks import positive_data_acceptance

from synthetics.api.schema import fresh_examples
from synthetics_site.wsgi import application
from tests.factories import StaffUserFactory

# The API is the same code on both databases: CI runs this once, in its PostgreSQL pass.
pytestmark = pytest.mark.once

SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
schema = schemathesis.openapi.from_dict(SCHEMA)
schema.app = application


# Rules JSON Schema cannot state, so a schema-valid body may rightly get a 400: abandon_rate +
# error_rate <= 1 (across fields), target <= max_per_run (the current setting), and an incident's
# template and scene slugs that exist, its start on a whole minute and within the schedule's reach
# of now; an activity range's since before its until, until not after now, either hours or since,
# and at most 90 days; an export's since before its until, and its sessions table only where a
# target file maps one. Every other check runs on these operations too, and positive-data
# acceptance runs on all the others.
STATEFUL_RULES = {
    "/api/synthetics/activity",
    "/api/synthetics/settings",
    "/api/synthetics/run-now",
    "/api/synthetics/incidents",
    "/api/synthetics/export",
}


@pytest.fixture
def auth_headers(db, sim_users):
    # Requests go straight to the WSGI app, so keep Django from closing the test's connection at
    # the end of each request (its own test client does the same).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield {"Authorization": f"Bearer {Token.objects.create(user=StaffUserFactory()).key}"}
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.mark.slow
@schema.parametrize()
@settings(
    # Fixed examples by default so CI is repeatable; SCHEMATHESIS_EXPLORE=1 draws new ones each run.
    derandomize=not os.environ.get("SCHEMATHESIS_EXPLORE"),
    max_examples=int(os.environ.get("SCHEMATHESIS_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case, auth_headers):
    excluded = []
    if case.operation.path in STATEFUL_RULES:
        excluded.append(positive_data_acceptance)
    case.call_and_validate(headers=auth_headers, excluded_checks=excluded)


@pytest.mark.django_db
def test_the_tested_schema_is_the_served_one():
    client = APIClient()
    client.force_authenticate(StaffUserFactory())
    served = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    # the examples' future times are set as each schema is made (the next hours): the same in both
    # once made again at one moment, wherever an hour turned between the two
    tested = fresh_examples(copy.deepcopy(SCHEMA), None, None, True)
    assert fresh_examples(served, None, None, True) == tested
