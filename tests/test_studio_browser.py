"""The Studio end to end in headless Chromium: log in, open it from the admin, watch, run, pause, refuse.

Uses Debian's chromium (/usr/bin/chromium) through Playwright's `executable_path`; screenshots at
desktop and phone width go to test-artifacts/ (ignored by git). Skips only where no browser is
installed; under CI a missing browser is a failure.
"""

import os
import shutil
from pathlib import Path

import pytest
from django.db import connections

from synthetics.models import SyntheticSettings
from synthetics.services import sim_users_seed, tick_run
from tests.factories import StaffUserFactory

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "studio-pass-1234"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def browser():
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"no browser at {CHROMIUM}: .ci/run installs Debian's chromium")
        pytest.skip(f"no browser at {CHROMIUM} (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the test's ORM calls are still sync.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
            ],
        )  # fmt: skip
        try:
            yield browser
        finally:
            browser.close()
            # Inside Playwright's context the ORM got connections of their own (Django keys them by
            # context); close them here, or the test database can't be dropped at the end.
            connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _number(page, selector: str) -> int:
    return int(page.locator(selector).inner_text().replace(",", ""))


def test_staff_user_watches_and_steers_the_studio(browser, live_server):
    # given a running generator and a staff account
    sim_users_seed(count=40, seed=21)
    tick_run(trigger="scheduled")
    StaffUserFactory(username="studio", password=_hash(PASSWORD))
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    outside = _record_outside_requests(page, live_server)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # when the user logs in and opens the Studio from the admin index
    _log_in(page, live_server, "studio", "/admin/")
    page.get_by_role("link", name="Open the Synthetics Studio").click()
    page.wait_for_url("**/studio/")

    # then the numbers are there, and the page refreshes itself
    assert page.locator("#status-badge").inner_text().lower() == "running"
    assert _number(page, "#sim-users") == 40
    page.wait_for_function(
        "() => document.getElementById('refresh-state').textContent.startsWith('Refreshed')"
    )
    assert page.locator("#chart-hour rect").count() >= 120  # two bars per minute
    page.screenshot(path=str(ARTIFACTS / "studio-desktop.png"), full_page=True)

    # when "Run now" starts 3 sessions, activity rises after the refresh
    before = _number(page, "#scene-5")
    page.fill("#run-target", "3")
    page.get_by_role("button", name="Run now").click()
    page.wait_for_function(
        "() => document.getElementById('control-message').textContent.startsWith('Started 3 sessions')"
    )
    page.wait_for_function(
        f"() => Number(document.getElementById('scene-5').textContent.replace(/,/g, '')) >= {before + 3}"
    )
    assert _number(page, "#active-journeys") >= 1

    # when paused, the status says so (and the database agrees)
    page.get_by_role("button", name="Pause").click()
    page.wait_for_function(
        "() => document.getElementById('status-badge').textContent.toLowerCase() === 'paused'"
    )
    assert SyntheticSettings.objects.get().enabled is False
    assert page.get_by_role("button", name="Resume").is_visible()

    # when an invalid rate is entered, the error is shown by the field and nothing changes
    before_settings = SyntheticSettings.objects.values().get()
    page.fill("#abandon_rate", "1.5")
    page.get_by_role("button", name="Save settings").click()
    page.wait_for_function("() => document.getElementById('error-abandon_rate').textContent !== ''")
    assert "between 0 and 1" in page.locator("#error-abandon_rate").inner_text()
    assert page.locator("#abandon_rate").get_attribute("aria-invalid") == "true"
    assert SyntheticSettings.objects.values().get() == before_settings

    # and every control has an accessible label; the page works at phone width
    for control in page.locator("main input:not([type=hidden]), main button").all():
        name = control.get_attribute("id")
        labelled = name and page.locator(f"label[for={name}]").count() == 1
        assert labelled or control.inner_text().strip(), f"unlabelled control {name}"
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_function(
        "() => document.getElementById('refresh-state').textContent.startsWith('Refreshed')"
    )
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page scrolls sideways at phone width ({width}px)"
    page.screenshot(path=str(ARTIFACTS / "studio-phone.png"), full_page=True)
    assert not errors, errors
    assert not outside, f"requests left the server: {outside}"
    context.close()


def test_a_failed_refresh_is_reported(browser, live_server):
    sim_users_seed(count=5, seed=22)
    StaffUserFactory(username="studio2", password=_hash(PASSWORD))
    page = browser.new_page()
    _log_in(page, live_server, "studio2", "/studio/")
    page.wait_for_url("**/studio/")
    page.route("**/api/synthetics/status", lambda route: route.fulfill(status=503, body="down"))
    page.evaluate("window.dispatchEvent(new Event('focus'))")
    page.wait_for_selector("#refresh-error:not([hidden])", timeout=15_000)
    assert "Refresh failed" in page.locator("#refresh-error").inner_text()


def _record_outside_requests(page, live_server) -> list[str]:
    """Collect every request the page sends anywhere but the live server (a CDN, say)."""
    outside: list[str] = []

    def record(request) -> None:
        if not request.url.startswith((live_server.url, "data:")):
            outside.append(request.url)

    page.on("request", record)
    return outside


def _log_in(page, live_server, username: str, next_path: str) -> None:
    page.goto(f"{live_server.url}/admin/login/?next={next_path}")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")


def _hash(password: str) -> str:
    from django.contrib.auth.hashers import make_password

    return make_password(password)


def test_swagger_ui_renders_offline(browser, live_server):
    StaffUserFactory(username="docs", password=_hash(PASSWORD))
    page = browser.new_page()
    outside = _record_outside_requests(page, live_server)
    _log_in(page, live_server, "docs", "/api/docs/")
    page.wait_for_selector(
        '.opblock-summary-path[data-path="/api/synthetics/run-now"]', timeout=20_000
    )
    assert page.locator(".opblock").count() >= 7
    assert not outside, f"requests left the server: {outside}"


# --- security: stored XSS never runs, and no page breaks its Content-Security-Policy ----------------


def _watch_for_injection(page) -> dict[str, list[str]]:
    """Record dialogs (dismissed) and Content-Security-Policy violations, from the console and
    from `securitypolicyviolation` events."""
    seen: dict[str, list[str]] = {"dialogs": [], "csp": []}

    def on_dialog(dialog) -> None:
        seen["dialogs"].append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def on_console(message) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            seen["csp"].append(message.text)

    page.on("dialog", on_dialog)
    page.on("console", on_console)
    page.add_init_script(
        "document.addEventListener('securitypolicyviolation', (event) => console.error("
        "'Content-Security-Policy violation: ' + event.violatedDirective + ' ' + event.blockedURI"
        "));"
    )
    return seen


def _wait_for_refresh(page) -> None:
    # A function, not an expression: Playwright evaluates an expression string with eval(), which
    # the page's CSP (no 'unsafe-eval') refuses.
    page.wait_for_function(
        "() => document.getElementById('refresh-state').textContent.startsWith('Refreshed')"
    )


def _assert_nothing_injected(page, seen, where: str) -> None:
    assert page.evaluate("typeof window.__xss") == "undefined", where
    assert page.evaluate("document.querySelectorAll('[onerror], [onload]').length") == 0, where
    assert not page.evaluate(
        "Array.from(document.scripts).some((script) => script.text.includes('__xss'))"
    ), where
    assert not seen["dialogs"], (where, seen["dialogs"])
    assert not seen["csp"], (where, seen["csp"])


def test_stored_xss_never_runs_in_the_studio_or_the_admin(browser, live_server):
    from tests.test_security import BREAKOUT, SCRIPT, plant_xss_payloads

    # given every admin-editable text holds a payload, the viewer's own name among them
    viewer, pages = plant_xss_payloads(password=_hash(PASSWORD))
    page = browser.new_page()
    seen = _watch_for_injection(page)

    # when the viewer opens the Studio and it refreshes itself through the API
    _log_in(page, live_server, viewer.username, "/studio/")
    page.wait_for_url("**/studio/")
    _wait_for_refresh(page)

    # then the payloads are shown as text (the status reason quotes the failed run's error) ...
    assert BREAKOUT in page.locator("#status-reason").inner_text()
    assert SCRIPT in page.locator("#runs").inner_text()
    assert SCRIPT in page.locator("header .who").inner_text()
    _assert_nothing_injected(page, seen, "/studio/")

    # ... and on every admin page that shows them, nothing runs either
    for path in pages:
        if path != "/studio/":
            response = page.goto(f"{live_server.url}{path}")
            assert response.status == 200, path
            _assert_nothing_injected(page, seen, path)


def test_pages_raise_no_content_security_policy_violation(browser, live_server):
    # given a running generator and a superuser
    sim_users_seed(count=5, seed=23)
    tick_run(trigger="scheduled")
    StaffUserFactory(username="csp", password=_hash(PASSWORD))
    page = browser.new_page()
    seen = _watch_for_injection(page)

    # when the Studio loads and refreshes
    _log_in(page, live_server, "csp", "/studio/")
    page.wait_for_url("**/studio/")
    _wait_for_refresh(page)
    # then the policy was sent and nothing broke it
    assert "script-src 'self'" in page.evaluate(
        "fetch(location.href).then((r) => r.headers.get('content-security-policy'))"
    )
    _assert_nothing_injected(page, seen, "/studio/")

    # and likewise the admin index, a change list, the settings page and the catalogue editor
    for path in [
        "/admin/",
        "/admin/synthetics/syntheticrun/",
        "/admin/synthetics/syntheticsettings/1/change/",
        "/admin/synthetics/journeytemplate/1/change/",
    ]:
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 200, path
        assert "content-security-policy" in response.headers, path
        _assert_nothing_injected(page, seen, path)

    # and the Swagger UI, which still renders under the policy
    response = page.goto(f"{live_server.url}/api/docs/")
    assert "content-security-policy" in response.headers
    page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
    assert page.locator(".swagger-ui").count() >= 1
    _assert_nothing_injected(page, seen, "/api/docs/")
