"""The permission matrix: who gets what on every endpoint, and a denied request changes nothing."""

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils.crypto import get_random_string
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import StaffUserFactory, UserFactory
from tests.helpers import database_state

pytestmark = pytest.mark.django_db
API = "/api/synthetics"

IN_A_MONTH = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:00Z")
ENDPOINTS = {
    "status": ("get", "status", None),
    "activity": ("get", "activity/24", None),
    "activity-range": ("get", "activity?hours=168", None),
    "sim-users": ("get", "sim-users", None),
    "insights": ("get", "insights", None),
    "toggle": ("post", "toggle", {"enabled": False}),
    "settings": ("post", "settings", {"sessions_per_min": 7}),
    "run-now": ("post", "run-now", {"target": 1}),
    "cleanup": ("post", "cleanup", {"older_than_hours": 1, "dry_run": False}),
    "incidents": ("get", "incidents", None),
    "incident-create": (
        "post",
        "incidents",
        {"starts_at": IN_A_MONTH, "minutes": 5, "label": "drill", "error_rate": 0.5},
    ),
}
READS = {"status", "activity", "activity-range", "sim-users", "insights", "incidents"}
CREATED = {"incident-create"}  # 201 when allowed


def _user(kind: str):
    if kind == "superuser":
        return StaffUserFactory()
    user = UserFactory()
    codename = {"viewer": "view_syntheticsettings", "changer": "change_syntheticsettings"}.get(kind)
    if codename:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


def _client(kind: str, auth: str) -> APIClient:
    """A client for `kind` of user authenticated by Bearer token, DRF Token or a session with CSRF."""
    client = APIClient(enforce_csrf_checks=True)
    if kind == "anonymous":
        return client
    user = _user(kind)
    if auth == "bearer":
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=user).key}")
    elif auth == "token":
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    else:
        client.force_login(user)
        if auth == "session":  # a browser page sends the CSRF cookie back as a header
            secret = get_random_string(32)
            client.cookies["csrftoken"] = secret
            client.credentials(HTTP_X_CSRFTOKEN=secret)
    return client


def _expected(kind: str, auth: str, endpoint: str) -> int:
    if kind == "anonymous":
        return 401
    if kind == "nobody":
        return 403
    if auth == "session-without-csrf" and endpoint not in READS:
        return 403
    if kind == "viewer" and endpoint not in READS:
        return 403
    return 201 if endpoint in CREATED else 200


MATRIX = [
    (kind, auth, endpoint)
    for kind, auths in [
        ("anonymous", ["none"]),
        ("nobody", ["bearer", "session"]),
        ("viewer", ["bearer", "token", "session"]),
        ("changer", ["bearer", "token", "session", "session-without-csrf"]),
        ("superuser", ["bearer", "session"]),
    ]
    for auth in auths
    for endpoint in ENDPOINTS
]


@pytest.mark.parametrize(("kind", "auth", "endpoint"), MATRIX)
def test_permission_matrix(sim_users, kind, auth, endpoint):
    # given
    client = _client(kind, auth)
    method, path, body = ENDPOINTS[endpoint]
    before = database_state()
    # when
    response = getattr(client, method)(f"{API}/{path}", body, format="json")
    # then
    expected = _expected(kind, auth, endpoint)
    assert response.status_code == expected, response.content
    assert response["Content-Type"].startswith("application/json")
    if expected not in (200, 201):
        assert response.json()["success"] is False
        assert database_state() == before, "a denied request changes nothing"
    if expected == 401:
        assert response["WWW-Authenticate"] == "Bearer"


def test_invalid_or_revoked_tokens_are_401(sim_users):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-real-token")
    assert client.get(f"{API}/status").status_code == 401
    user = StaffUserFactory()
    token = Token.objects.create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.key}")
    assert client.get(f"{API}/status").status_code == 200
    token.delete()
    assert client.get(f"{API}/status").status_code == 401


def test_inactive_user_token_is_refused(sim_users):
    user = StaffUserFactory(is_active=False)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=user).key}")
    assert client.get(f"{API}/status").status_code == 401


def test_a_failed_runs_traceback_is_for_readers_who_may_change(db, sim_users):
    from datetime import timedelta

    from django.contrib.auth.models import Permission
    from django.utils import timezone
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from synthetics.models import RunStatus, SyntheticRun
    from tests.factories import StaffUserFactory, UserFactory

    now = timezone.now()
    SyntheticRun.objects.create(
        trigger="scheduled",
        status=RunStatus.FAILED,
        started_at=now - timedelta(seconds=20),
        finished_at=now - timedelta(seconds=19),
        window_start=now - timedelta(minutes=1),
        window_end=now - timedelta(minutes=1),
        note="the run failed and was rolled back: connection refused",
        error='Traceback (most recent call last):\n  File "x", password=hunter2',
    )
    reader = UserFactory(is_staff=True)
    reader.user_permissions.add(Permission.objects.get(codename="view_syntheticsettings"))
    as_reader, as_steerer = APIClient(), APIClient()
    as_reader.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=reader)}")
    as_steerer.force_authenticate(StaffUserFactory())
    # when a reader and a steerer read status
    seen = as_reader.get("/api/synthetics/status")
    full = as_steerer.get("/api/synthetics/status")
    # then both see that it failed and its note; only the steerer sees its traceback
    assert seen.status_code == full.status_code == 200
    for body in (seen.json(), full.json()):
        assert body["last_run"]["status"] == "failed"
        assert body["last_run"]["note"].startswith("the run failed")
    assert "hunter2" not in seen.content.decode()
    assert (
        seen.json()["last_run"]["error"] == "The details are for users who may change Synthetics."
    )
    assert "hunter2" in full.json()["last_run"]["error"]
    # and the Studio page rendered for the reader does not carry it either, even without a note
    from django.test import Client

    SyntheticRun.objects.filter(status=RunStatus.FAILED).update(note="")
    browser = Client()
    browser.force_login(reader)
    page = browser.get("/studio/")
    assert page.status_code == 200 and "hunter2" not in page.content.decode()
    assert "hunter2" not in as_reader.get("/api/synthetics/status").content.decode()
