"""Security: who may open what, CSRF on every write, stored XSS, tokens kept out of the logs, the
deploy check of the production profile, no secret in the repository, and the security headers.

The browser half of the XSS and CSP checks lives in test_studio_browser.py; it plants the same
payloads with `plant_xss_payloads` from here.
"""

import io
import logging
import os
import re
import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path, PurePosixPath
from urllib.parse import urlencode

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.utils import timezone
from django.utils.crypto import get_random_string
from django.utils.html import escape
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from synthetics.models import JourneyTemplate, SyntheticRun, SyntheticSettings
from synthetics.services import activity_backfill
from tests.factories import (
    JourneyFactory,
    JourneySceneEventFactory,
    JourneyTemplateFactory,
    MindblockEventFactory,
    MindblockTypeFactory,
    SceneFactory,
    SimUserFactory,
    StaffUserFactory,
    SyntheticRunFactory,
    SyntheticUserFactory,
    UserFactory,
)
from tests.helpers import database_state

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parent.parent
API = "/api/synthetics"
SETTINGS_PAGE = "/admin/synthetics/syntheticsettings/1/change/"
TOGGLE = "/admin/synthetics/syntheticsettings/1/toggle/"
RUN_NOW = "/admin/synthetics/syntheticsettings/1/run-now/"


def _account(kind: str):
    """A user of `kind`: [non]staff, optionally with the view or change permission; or a superuser."""
    if kind == "superuser":
        return StaffUserFactory()
    user = UserFactory(is_staff=kind.startswith("staff"))
    codename = {"viewer": "view_syntheticsettings", "changer": "change_syntheticsettings"}.get(
        kind.rpartition("-")[2]
    )
    if codename:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return user


# --- 1. the permission matrix of the pages ---------------------------------------------------------

LOGIN = "log in"  # 302 to /admin/login/?next=<the page>
DONE = "done"  # 302 back to the settings page, with the change made

PAGES = {  # name: (method, path[, form])
    "studio": ("get", "/studio/"),
    "docs": ("get", "/api/docs/"),
    "schema": ("get", "/api/schema/"),
    "admin": ("get", "/admin/"),
    "settings": ("get", SETTINGS_PAGE),
    "toggle": ("post", TOGGLE, {"enabled": "false"}),  # the target state: pause
    "run-now": ("post", RUN_NOW, {"target": "1"}),
    "runs": ("get", "/admin/synthetics/syntheticrun/"),
    "scene-events": ("get", "/admin/synthetics/journeysceneevent/"),
    "mindblock-events": ("get", "/admin/synthetics/mindblockevent/"),
    "journeys": ("get", "/admin/synthetics/journey/"),
    "sim-users": ("get", "/admin/synthetics/simuser/"),
    "templates": ("get", "/admin/synthetics/journeytemplate/"),
}
LISTS = {"runs", "scene-events", "mindblock-events", "journeys", "sim-users", "templates"}

# The Studio, the docs and the schema follow the one rule: reading needs the view permission. The
# Studio and the docs are pages (anonymous: the log-in page; no permission: 403); the schema is API
# (anonymous or a wrong token: 401). A bearer token does not log a browser page in.
# Everything under /admin/ is Django's: not staff -> the log-in page (Django's admin_view); staff
# without the model's view or change permission -> 403 (Django's ModelAdmin), so the lists of runs,
# events, journeys, sim users and templates are 403 for a staff user holding only the settings'
# permissions. The settings page's toggle and run-now buttons are writes: the change permission,
# else 403 ("PermissionDenied on refusal, never a silent redirect").
COLUMNS = ("studio", "docs", "schema", "admin", "settings", "toggle", "run-now", "lists")
EXPECTED = {
    "anonymous":       (LOGIN, LOGIN, 401, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN),
    "wrong-token":     (LOGIN, LOGIN, 401, None,  None,  None,  None,  None),
    "nonstaff":        (403,   403,   403, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN),
    "nonstaff-viewer": (200,   200,   200, LOGIN, LOGIN, LOGIN, LOGIN, LOGIN),
    "staff":           (403,   403,   403, 200,   403,   403,   403,   403),
    "staff-viewer":    (200,   200,   200, 200,   200,   403,   403,   403),
    "staff-changer":   (200,   200,   200, 200,   200,   DONE,  DONE,  403),
    "superuser":       (200,   200,   200, 200,   200,   DONE,  DONE,  200),
}  # fmt: skip


def _expected(kind: str, page: str):
    return EXPECTED[kind][COLUMNS.index("lists" if page in LISTS else page)]


MATRIX = [(kind, page) for kind in EXPECTED for page in PAGES if _expected(kind, page) is not None]


def _page_client(kind: str) -> Client:
    if kind == "anonymous":
        return Client()
    if kind == "wrong-token":
        return Client(HTTP_AUTHORIZATION=f"Bearer {secrets.token_hex(20)}")
    client = Client()
    client.force_login(_account(kind))
    return client


@pytest.mark.parametrize(("kind", "page"), MATRIX)
def test_page_permission_matrix(sim_users, kind, page):
    # given
    client = _page_client(kind)
    method, path, *form = PAGES[page]
    expected = _expected(kind, page)
    before = database_state()
    # when
    response = getattr(client, method)(path, *form)
    # then
    seen = (response.status_code, response.get("Location"))
    if expected == LOGIN:
        assert response.status_code == 302, seen
        assert response["Location"].startswith(f"/admin/login/?next={path}"), seen
    elif expected == DONE:
        assert seen == (302, SETTINGS_PAGE)
        if page == "toggle":
            assert SyntheticSettings.objects.get().enabled is False
        else:
            assert SyntheticRun.objects.get(trigger="manual").sessions_started == 1
    else:
        assert response.status_code == expected, seen
    if expected == 401:
        assert response["WWW-Authenticate"] == "Bearer"
    if expected != DONE:
        assert database_state() == before, "a refused request changes nothing"


def test_admin_lists_need_each_models_own_permission(client):
    # Django's rule: staff see a model's list with that model's view (or change) permission only.
    staff = UserFactory(is_staff=True)
    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_syntheticrun", "view_simuser"])
    )
    client.force_login(staff)
    assert client.get(PAGES["runs"][1]).status_code == 200
    assert client.get(PAGES["sim-users"][1]).status_code == 200
    assert client.get(PAGES["journeys"][1]).status_code == 403
    assert client.get(PAGES["templates"][1]).status_code == 403
    assert client.get(SETTINGS_PAGE).status_code == 403


# --- 2. CSRF ---------------------------------------------------------------------------------------

API_WRITES = {
    "toggle": {"enabled": False},
    "settings": {"sessions_per_min": 7},
    "run-now": {"target": 1},
    "cleanup": {"older_than_hours": 1, "dry_run": False},
}


@pytest.mark.parametrize("endpoint", API_WRITES)
def test_session_writes_need_the_csrf_header(sim_users, endpoint):
    # given an operator's browser session holding the CSRF cookie (the Studio sets it), and
    # synthetic activity from two hours ago for cleanup to delete
    activity_backfill(hours=1, now=timezone.now() - timedelta(hours=2))
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(_account("nonstaff-changer"))
    assert client.get("/studio/").status_code == 200
    cookie = client.cookies["csrftoken"].value
    url, body = f"{API}/{endpoint}", API_WRITES[endpoint]
    before = database_state()
    # when the header is missing, or holds another token: refused, nothing written
    for headers in ({}, {"HTTP_X_CSRFTOKEN": get_random_string(32)}):
        response = client.post(url, body, format="json", **headers)
        assert response.status_code == 403, response.content
        assert "CSRF" in response.json()["error"]
        assert database_state() == before
    # then the same request with the cookie's token in the header goes through
    response = client.post(url, body, format="json", HTTP_X_CSRFTOKEN=cookie)
    assert 200 <= response.status_code < 300, response.content
    assert database_state() != before


def test_admin_controls_need_the_csrf_token(sim_users):
    # given a superuser's session
    client = Client(enforce_csrf_checks=True)
    client.force_login(StaffUserFactory())
    token = str(client.get(SETTINGS_PAGE).context["csrf_token"])
    before = database_state()
    # when the settings page's forms are posted without their token: 403, nothing changed
    form = {"enabled": "on", "sessions_per_min": "9", "max_per_run": "5"}
    form |= {"error_rate": "0.05", "abandon_rate": "0.15"}
    for path, data in [
        (TOGGLE, {"enabled": "false"}),
        (RUN_NOW, {"target": "1"}),
        (SETTINGS_PAGE, form),
    ]:
        assert client.post(path, data).status_code == 403, path
    assert database_state() == before
    # then with it the toggle works
    response = client.post(TOGGLE, {"enabled": "false", "csrfmiddlewaretoken": token})
    assert (response.status_code, response["Location"]) == (302, SETTINGS_PAGE)
    assert SyntheticSettings.objects.get().enabled is False


# --- 3. stored XSS (server side; the browser side is in test_studio_browser.py) --------------------

SCRIPT = "<script>window.__xss=1</script>"
ATTRIBUTE = '"><img src=x onerror="window.__xss=1">'
JS_URL = "javascript:alert(1)"
BREAKOUT = "</script><script>window.__xss=1</script>"
PAYLOADS = (SCRIPT, ATTRIBUTE, JS_URL, BREAKOUT)
# persona holds 32 characters and locale 16: payloads that fit
PERSONA_PAYLOADS = (SCRIPT, '"><img src=x onerror=__xss=1>')
LOCALE_PAYLOAD = '"><svg onload=1>'
MARKUP_PAYLOADS = (SCRIPT, ATTRIBUTE, BREAKOUT, *PERSONA_PAYLOADS, LOCALE_PAYLOAD)
# What an unescaped payload leaves in a page (none of these survive HTML escaping).
RAW_MARKERS = ("<script>window.__xss", "<img src=x", 'onerror="window', "<svg onload")
JS_URL_IN_ATTRIBUTE = re.compile(
    r"""(?:href|src|action|formaction|xlink:href)\s*=\s*["']?\s*javascript:""", re.IGNORECASE
)


def _rotated(index: int, offset: int) -> str:
    return PAYLOADS[(index + offset) % len(PAYLOADS)]


def plant_xss_payloads(*, password: str | None = None):
    """Put the payloads into every admin-editable text the Studio or the admin shows.

    Returns the viewing superuser (whose own username, names and e-mail hold payloads too) and
    {page path: the texts that page shows}, for checking that each is shown escaped.
    """
    account = {"password": password} if password else {}
    viewer = StaffUserFactory(
        username=f"{SCRIPT} admin",
        first_name=ATTRIBUTE,
        last_name=BREAKOUT,
        email=JS_URL,
        **account,
    )
    templates = [JourneyTemplateFactory(slug=PAYLOADS[i], name=_rotated(i, 1)) for i in range(4)]
    scenes = [
        SceneFactory(template=templates[0], position=i + 1, slug=PAYLOADS[i], name=_rotated(i, 1))
        for i in range(4)
    ]
    mindblocks = [MindblockTypeFactory(slug=PAYLOADS[i], name=_rotated(i, 1)) for i in range(4)]
    users = [
        UserFactory(
            username=PAYLOADS[i],
            first_name=_rotated(i, 1),
            last_name=_rotated(i, 2),
            email=_rotated(i, 3),
        )
        for i in range(4)
    ]
    sim_users = [
        SimUserFactory(
            user=SyntheticUserFactory(username=f"sim {PAYLOADS[i]}"),
            display_name=PAYLOADS[i],
            timezone=_rotated(i, 1),
            persona=PERSONA_PAYLOADS[i % 2],
            locale=LOCALE_PAYLOAD,
        )
        for i in range(4)
    ]
    now = timezone.now()
    runs = [
        SyntheticRunFactory(
            trigger="manual", note=PAYLOADS[i], started_at=now - timedelta(minutes=5 + i)
        )
        for i in range(4)
    ]
    # The newest scheduled run failed with exception text: the Studio's status reason quotes its
    # note (the error's message, as a failed run records it; the traceback is for those who may
    # change Synthetics).
    failed = SyntheticRunFactory(
        trigger="scheduled",
        status="failed",
        note=f"RuntimeError: {BREAKOUT}",
        error=f"Traceback (most recent call last):\nRuntimeError: {BREAKOUT}",
        started_at=now - timedelta(seconds=30),
    )
    journeys = [JourneyFactory(user=users[i], template=templates[i]) for i in range(4)]
    scene_events = [
        JourneySceneEventFactory(user=users[i], journey=journeys[i], scene=scenes[i])
        for i in range(4)
    ]
    mindblock_events = [
        MindblockEventFactory(
            user=users[i], journey=journeys[i], scene=scenes[i], mindblock=mindblocks[i]
        )
        for i in range(4)
    ]
    LogEntry.objects.create(
        user=viewer,
        content_type=ContentType.objects.get_for_model(JourneyTemplate),
        object_id=str(templates[0].pk),
        object_repr=SCRIPT,
        action_flag=CHANGE,
        change_message=ATTRIBUTE,
    )

    admin = "/admin/synthetics"
    pages = {
        "/studio/": [viewer.username, BREAKOUT, SCRIPT, ATTRIBUTE],
        "/admin/": [ATTRIBUTE, SCRIPT],  # "Welcome, <first name>" and the recent actions
        f"{admin}/journeytemplate/": PAYLOADS,
        f"{admin}/journeytemplate/{templates[0].pk}/change/": PAYLOADS,  # with its scenes
        # "Cannot delete": the template and the journeys that protect it
        f"{admin}/journeytemplate/{templates[0].pk}/delete/": [ATTRIBUTE],
        f"{admin}/journeytemplate/{templates[0].pk}/history/": [ATTRIBUTE],
        f"{admin}/mindblocktype/": PAYLOADS,
        f"{admin}/mindblocktype/{mindblocks[1].pk}/change/": PAYLOADS[1:3],
        f"{admin}/simuser/": [*PAYLOADS, *PERSONA_PAYLOADS, LOCALE_PAYLOAD],
        f"{admin}/simuser/?{urlencode({'q': SCRIPT})}": [SCRIPT],
        f"{admin}/simuser/{sim_users[3].pk}/change/": [BREAKOUT, SCRIPT, LOCALE_PAYLOAD],
        f"{admin}/user/": PAYLOADS,
        f"{admin}/user/{users[1].pk}/change/": PAYLOADS,
        f"{admin}/syntheticrun/": PAYLOADS,
        f"{admin}/syntheticrun/{runs[3].pk}/change/": [BREAKOUT],
        f"{admin}/syntheticrun/{failed.pk}/change/": [BREAKOUT],
        f"{admin}/journey/": PAYLOADS,
        f"{admin}/journey/{journeys[3].pk}/change/": [SCRIPT, BREAKOUT],
        f"{admin}/journeysceneevent/": PAYLOADS,
        f"{admin}/journeysceneevent/{scene_events[1].pk}/change/": [SCRIPT, ATTRIBUTE],
        f"{admin}/mindblockevent/": PAYLOADS,
        f"{admin}/mindblockevent/{mindblock_events[0].pk}/change/": [SCRIPT, ATTRIBUTE],
    }
    return viewer, pages


def assert_no_raw_payload(html: str, where: str) -> None:
    for payload in MARKUP_PAYLOADS:
        assert payload not in html, f"{where}: unescaped {payload!r}"
    for marker in RAW_MARKERS:
        assert marker not in html, f"{where}: unescaped {marker!r}"
    assert not JS_URL_IN_ATTRIBUTE.search(html), f"{where}: a javascript: URL in an attribute"


def test_stored_payloads_are_escaped_wherever_they_are_shown(client, settings):
    # given (the admin lists' time limit out of the way: this is about escaping, and a contended CI
    # machine once took the 3 s of a scene events list and got its 503)
    settings.SYNTHETICS_ADMIN_LIST_SECONDS = 120
    viewer, pages = plant_xss_payloads()
    client.force_login(viewer)
    for path, shown in pages.items():
        # when
        response = client.get(path)
        # then
        assert response.status_code == 200, path
        html = response.content.decode()
        assert_no_raw_payload(html, path)
        for text in shown:
            assert escape(text) in html, f"{path} does not show {text!r} (escaped)"


@pytest.mark.parametrize("query", [{"lang": BREAKOUT}, {"script": "", "lang": BREAKOUT}])
def test_docs_page_does_not_reflect_its_query(client, query):
    client.force_login(StaffUserFactory())
    response = client.get("/api/docs/", query)
    assert response.status_code == 200
    assert_no_raw_payload(response.content.decode(), f"/api/docs/?{urlencode(query)}")


# --- 4. tokens never logged ------------------------------------------------------------------------


class _Collector(logging.Handler):
    """Every record as the console would print it (with any traceback), plus its raw attributes."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.lines.append(repr(vars(record)))


@pytest.fixture
def every_log_line(caplog):
    """Capture all logging at DEBUG: every logger (also those that don't propagate) and the
    configured console handlers, whose output goes to a buffer here."""
    caplog.set_level(logging.DEBUG)  # first: caplog restores the root level it finds here
    collector, console = _Collector(), io.StringIO()
    loggers = [logging.getLogger(name) for name in ["", *list(logging.root.manager.loggerDict)]]
    levels = {logger: logger.level for logger in loggers}
    streams = {}
    for logger in loggers:
        for handler in logger.handlers:
            if type(handler) is logging.StreamHandler and handler not in streams:
                streams[handler] = handler.setStream(console)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(collector)
    try:
        yield lambda: "\n".join([*collector.lines, console.getvalue(), caplog.text])
    finally:
        for logger in loggers:
            logger.removeHandler(collector)
            logger.setLevel(levels[logger])
        for handler, stream in streams.items():
            if stream is not None:
                handler.setStream(stream)


def test_api_tokens_never_reach_the_logs(sim_users, settings, monkeypatch, every_log_line):
    # given tokens of a reader, an operator and an account without permission, and wrong ones
    settings.API_BURST_RATE = "1/min"
    reader, operator, nobody = (
        Token.objects.create(user=_account(kind)).key
        for kind in ("nonstaff-viewer", "nonstaff-changer", "nonstaff")
    )
    wrong, revoked = secrets.token_hex(20), Token.objects.create(user=UserFactory())
    revoked_key = revoked.key
    revoked.delete()
    calls = [
        ("Bearer", reader, "get", "status", None, 200),
        ("Token", reader, "get", "sim-users", None, 200),
        ("Bearer", wrong, "get", "status", None, 401),
        ("Token", wrong, "post", "toggle", {"enabled": False}, 401),
        ("Bearer", revoked_key, "get", "status", None, 401),
        ("Bearer", f"{wrong} {reader}", "get", "status", None, 401),
        ("Bearer", nobody, "get", "status", None, 403),
        ("Bearer", reader, "post", "toggle", {"enabled": False}, 403),
        ("Bearer", operator, "post", "settings", {"abandon_rate": 5}, 400),
        ("Bearer", operator, "get", "activity/0", None, 400),
        ("Bearer", operator, "post", "cleanup", {"older_than_hours": 1, "dry_run": True}, 200),
        ("Bearer", operator, "post", "cleanup", {"older_than_hours": 1, "dry_run": True}, 429),
    ]
    client = APIClient(raise_request_exception=False)
    # when each call is made
    for keyword, token, method, path, body, status in calls:
        client.credentials(HTTP_AUTHORIZATION=f"{keyword} {token}")
        response = getattr(client, method)(f"{API}/{path}", body, format="json")
        assert response.status_code == status, (keyword, path, response.content)
        assert token.encode() not in response.content

    # ... and one that fails inside the server (a 500 is logged with its traceback)
    def broken_summary(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("synthetics.api.status.status_summary", broken_summary)
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {reader}")
    assert client.get(f"{API}/status").status_code == 500
    logging.getLogger("synthetics.security-test").info("canary-7f3a")
    # then the capture saw the request log and the product's own (non-propagating) logger ...
    text = every_log_line()
    assert "Unauthorized: /api/synthetics/status" in text
    assert "Too Many Requests: /api/synthetics/cleanup" in text
    assert "RuntimeError: the database went away" in text
    assert "canary-7f3a" in text
    # ... and no token anywhere
    for token in (reader, operator, nobody, wrong, revoked_key):
        assert token not in text


def _environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """A clean environment: no DATABASE_URL, DEBUG or SECURE_* from the caller; SQLite under tmp."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {key: os.environ[key] for key in keep if key in os.environ}
    env |= {"SYNTHETICS_LOCAL_DIR": str(tmp_path), "SQLITE_PATH": str(tmp_path / "x.sqlite3")}
    return env | variables


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.once  # a subprocess on its own SQLite: the same on every database
def test_api_token_command_prints_the_token_on_stdout_only(tmp_path):
    # given a migrated database with one operator
    env = _environment(tmp_path)
    assert _manage(env, "migrate", "--noinput", "-v0").returncode == 0
    created = _manage(
        env | {"DJANGO_SUPERUSER_PASSWORD": get_random_string(24)},
        *("createsuperuser", "--noinput", "--username", "ops", "--email", "ops@example.com"),
    )
    assert created.returncode == 0, created.stderr
    # when a token is created, then rotated
    first = _manage(env, "api_token", "ops")
    rotated = _manage(env, "api_token", "ops", "--rotate", "-v3")
    refused = _manage(env, "api_token", "nobody", "--traceback")
    # then each token is printed once, on its own line of stdout, and never on stderr
    assert first.returncode == 0 and rotated.returncode == 0, (first.stderr, rotated.stderr)
    old, new = first.stdout.splitlines()[0], rotated.stdout.splitlines()[0]
    assert re.fullmatch(r"[0-9a-f]{40}", old) and re.fullmatch(r"[0-9a-f]{40}", new)
    assert old != new
    assert first.stdout.count(old) == 1 and rotated.stdout.count(new) == 1
    assert old not in rotated.stdout
    assert refused.returncode != 0 and "nobody" in refused.stderr
    for result in (first, rotated, refused):
        assert old not in result.stderr and new not in result.stderr


# --- 5. the deploy check of the production profile -------------------------------------------------


@pytest.mark.once  # a subprocess on its own SQLite: the same on every database
def test_production_profile_passes_the_deploy_check(tmp_path):
    env = _environment(
        tmp_path,
        SYNTHETICS_PRODUCTION="1",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="synthetics.example.com",
    )
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.once  # a subprocess on its own SQLite: the same on every database
def test_without_the_profile_the_deploy_check_warns(tmp_path):
    env = _environment(
        tmp_path, SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="synthetics.example.com"
    )
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr, warning


# --- 6. no secret in the repository ----------------------------------------------------------------

# Spelled in pieces so that this file never matches itself.
PEM_BLOCK = re.compile("-" * 5 + "BEGIN")
AWS_ACCESS_KEY = re.compile(r"AKIA[0-9A-Z]{16}")
# A string literal assigned to the key (Python, YAML, JSON), in any file.
SECRET_KEY_LITERAL = re.compile(
    r"""SECRET_KEY["']?\s*[:=]\s*[rRbBuUfF]{0,2}["'](?![$<])[^"'\n]{4,}["']"""
)
# A bare value (shell, .env, Makefile), in files that are not Python: in Python the same shape is a
# keyword argument taking a variable (`SECRET_KEY=settings.SECRET_KEY`).
SECRET_KEY_SHELL = re.compile(
    r"""^\s*(?:export\s+)?SECRET_KEY=(?![\s$<"'`]|\.\.\.)\S""", re.MULTILINE
)
HEX_TOKEN = re.compile(r"(?<![0-9A-Fa-f])[0-9a-f]{40}(?![0-9A-Fa-f])")


def _forbidden_path(path: str) -> bool:
    name = PurePosixPath(path).name
    return (
        name == ".env"
        or (name.startswith(".env.") and name not in {".env.example", ".env.sample"})
        or path.startswith(".local/")
        or "/.local/" in path
        or name.endswith((".sqlite3", ".sqlite", ".db", ".pem", ".key", ".p12"))
        or ".sqlite3-" in name
        or name in {"secret_key", "id_rsa", "id_ed25519"}
    )


def test_the_scanners_find_what_they_look_for():
    assert PEM_BLOCK.search("-" * 5 + "BEGIN OPENSSH PRIVATE KEY" + "-" * 5)
    assert AWS_ACCESS_KEY.search("key = " + "AKIA" + "Z7" * 8)
    key = "SECRET_" + "KEY"  # in pieces, so that this file never matches itself
    assert SECRET_KEY_LITERAL.search(key + " = 'django-insecure-abc123'")
    assert SECRET_KEY_SHELL.search("export " + key + "=hunter2hunter2")
    assert not SECRET_KEY_LITERAL.search(key + ' = os.environ.get("SECRET_KEY")')
    assert not SECRET_KEY_SHELL.search(key + "=$(openssl rand -hex 32)")
    assert not SECRET_KEY_SHELL.search(key + '="$(openssl rand -hex 32)"')
    assert HEX_TOKEN.search(f"token {secrets.token_hex(20)}\n")
    assert _forbidden_path(".env") and _forbidden_path(".local/secret_key")
    assert _forbidden_path("synthetics.sqlite3") and not _forbidden_path("synthetics/models.py")


def test_no_secret_is_tracked_by_git():
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    listing = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout
    paths = [path for path in listing.decode().split("\0") if path]
    assert "synthetics_site/settings.py" in paths
    found = [f"tracked: {path}" for path in paths if _forbidden_path(path)]
    for path in paths:
        file = REPO / path
        if not file.is_file():
            continue
        content = file.read_bytes()
        if b"\0" in content[:8192]:
            continue  # binary (a screenshot)
        text = content.decode("utf-8", errors="replace")
        checks = [PEM_BLOCK, AWS_ACCESS_KEY, SECRET_KEY_LITERAL]
        if not path.endswith(".py"):
            checks.append(SECRET_KEY_SHELL)
        if not path.startswith("tests/"):
            checks.append(HEX_TOKEN)
        for pattern in checks:
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{path}:{line}: {match.group(0)[:60]!r}")
    assert not found, "\n".join(found)


# --- 7. response headers ---------------------------------------------------------------------------

POLICY = {
    "default-src": {"'self'"},
    "script-src": {"'self'"},
    "style-src": {"'self'", "'unsafe-inline'"},
    "img-src": {"'self'", "data:"},
    "object-src": {"'none'"},
    "frame-ancestors": {"'none'"},
    "base-uri": {"'self'"},
    "form-action": {"'self'"},
}

HEADER_PAGES = [
    ("superuser", "/studio/", 200),
    ("superuser", "/admin/", 200),
    ("superuser", "/admin/synthetics/syntheticrun/", 200),
    ("superuser", SETTINGS_PAGE, 200),
    ("superuser", "/api/docs/", 200),
    ("superuser", "/api/docs/?script=", 200),
    ("superuser", "/api/schema/", 200),
    ("token", f"{API}/status", 200),
    ("token", f"{API}/sim-users", 200),
    ("anonymous", "/admin/login/", 200),
    ("anonymous", "/studio/", 302),
    ("anonymous", f"{API}/status", 401),
    ("anonymous", f"{API}/nowhere", 404),
    ("anonymous", "/nowhere/", 404),
]


@pytest.mark.parametrize(("who", "path", "status"), HEADER_PAGES)
def test_security_headers_on_every_surface(who, path, status):
    # given
    client = Client()
    user = StaffUserFactory()
    if who == "superuser":
        client.force_login(user)
    elif who == "token":
        client = Client(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=user).key}")
    # when
    response = client.get(path)
    # then
    assert response.status_code == status
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    directives = {}
    for directive in response["Content-Security-Policy"].split(";"):
        name, *values = directive.split()
        directives[name] = set(values)
    for name, values in POLICY.items():
        assert directives.get(name) == values, (name, directives.get(name))
