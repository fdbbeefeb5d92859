"""The Studio end to end in headless Chromium: log in, open it from the admin, watch, refresh, run, pause,
refuse, read the insights.

Uses Debian's chromium (/usr/bin/chromium) through Playwright's `executable_path`; screenshots at
desktop and phone width go to test-artifacts/ (ignored by git). Skips only where no browser is
installed; under CI a missing browser is a failure.
"""

import math
import os
import re
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone

from synthetics import views
from synthetics.models import SimUser, SyntheticSettings
from synthetics.services import activity_backfill, run_manual, run_scheduled, sim_users_seed
from tests.factories import StaffUserFactory

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PASSWORD = "studio-pass-1234"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.once,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(autouse=True)
def timer_held_off(monkeypatch):
    """Hold the Studio's timer off (an hour) so that every refresh a test sees is one it asked for."""
    monkeypatch.setattr(views, "REFRESH_SECONDS", 3600)


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


# --- refreshes: the page announces each finished one as a `studio:refreshed` event ------------------


def _record_refreshes(page) -> None:
    """Keep the detail of every `studio:refreshed` event, in order, from the start of each document."""
    page.add_init_script(
        "window.__refreshes = [];"
        "document.addEventListener('studio:refreshed', (event) => window.__refreshes.push(event.detail));"
    )


def _refreshes_seen(page) -> int:
    return page.evaluate("() => window.__refreshes.length")


def _refresh_number(page, index: int) -> dict:
    """Wait for the page's refresh event number `index` (from 0) and return its detail."""
    # A function, not an expression: Playwright evaluates an expression string with eval(), which
    # the page's CSP (no 'unsafe-eval') refuses.
    page.wait_for_function("(index) => window.__refreshes.length > index", arg=index)
    return page.evaluate("(index) => window.__refreshes[index]", index)


def _refreshed_by(page, trigger, *, reason: str) -> dict:
    """Do `trigger`, wait for the refresh event that follows, check what it says asked for it."""
    seen = _refreshes_seen(page)
    trigger()
    detail = _refresh_number(page, seen)
    assert detail["reason"] == reason, detail
    return detail


def _loaded(page) -> None:
    """Wait for the refresh the Studio makes as it loads."""
    detail = _refresh_number(page, 0)
    assert detail["reason"] == "load" and detail["ok"], detail
    assert page.locator("#refresh-state").inner_text().startswith("Refreshed")


def _refresh_button(page):
    return page.get_by_role("button", name="Refresh", exact=True)


def _focus_window(page) -> None:
    page.evaluate("() => window.dispatchEvent(new Event('focus'))")


def test_staff_user_watches_and_steers_the_studio(browser, live_server):
    # given a running generator and a staff account
    sim_users_seed(count=40, seed=21)
    run_scheduled()
    StaffUserFactory(username="studio", password=_hash(PASSWORD))
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    _record_refreshes(page)
    outside = _record_outside_requests(page, live_server)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # when the user logs in and opens the Studio from the admin index
    _log_in(page, live_server, "studio", "/admin/")
    page.get_by_role("link", name="Open the Synthetics Studio").click()
    page.wait_for_url("**/studio/")

    # then the numbers are there, and the page refreshes itself as it loads
    assert page.locator("#status-badge").inner_text().lower() == "running"
    assert _number(page, "#sim-users") == 40
    _loaded(page)
    assert page.locator("#chart-hour rect").count() >= 120  # two bars per minute
    page.screenshot(path=str(ARTIFACTS / "studio-desktop.png"), full_page=True)

    # when a run is made elsewhere (a script, say), the Refresh button shows it at once
    sessions_before = _number(page, "#sessions-24")
    runs_before = page.locator("#runs tr").count()
    run_manual(target=2)
    detail = _refreshed_by(page, _refresh_button(page).click, reason="button")
    assert detail["ok"], detail
    assert _number(page, "#sessions-24") == sessions_before + 2
    assert page.locator("#runs tr").count() == runs_before + 1
    assert page.locator("#runs tr").first.locator("td").nth(1).inner_text() == "manual"
    assert page.locator("#refresh-state").inner_text().startswith("Refreshed")
    # and a run of one shard of a split says which slice it ran
    run_scheduled(shard=1, shards=2)
    _refreshed_by(page, _refresh_button(page).click, reason="button")
    assert page.locator("#runs tr").first.locator("td").nth(1).inner_text() == (
        "scheduled (shard 1 of 2)"
    )

    # when "Run now" starts 3 sessions, activity rises after the refresh
    before = _number(page, "#scene-5")
    page.fill("#run-target", "3")
    _refreshed_by(page, page.get_by_role("button", name="Run now").click, reason="run-now")
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
    # and Refresh works from the keyboard
    _refresh_button(page).focus()
    _refreshed_by(page, lambda: page.keyboard.press("Enter"), reason="button")
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    _loaded(page)
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390 + 1, f"the page scrolls sideways at phone width ({width}px)"
    page.screenshot(path=str(ARTIFACTS / "studio-phone.png"), full_page=True)
    assert not errors, errors
    assert not outside, f"requests left the server: {outside}"
    context.close()


def test_the_studio_shows_the_insights_and_saves_the_new_settings(browser, live_server):
    # given history: 40 sim users who signed up last week, a scheduled run and a manual one
    sim_users_seed(count=40, seed=28)
    monday = _monday(datetime.now(UTC).date())
    SimUser.objects.update(signup_date=monday - timedelta(weeks=1))
    # funnels count sessions that had an hour to finish: two hours of history ending an hour ago
    activity_backfill(hours=2, now=timezone.now() - timedelta(hours=1, minutes=5))
    run_scheduled()
    run_manual(target=5)
    StaffUserFactory(username="studio6", password=_hash(PASSWORD))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _record_refreshes(page)
    seen = _watch_for_injection(page)
    outside = _record_outside_requests(page, live_server)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    answers = _record_answers(page, "/api/synthetics/insights", "/api/synthetics/settings")

    # when the user opens the Studio
    _log_in(page, live_server, "studio6", "/studio/")
    page.wait_for_url("**/studio/")
    _loaded(page)
    insights = answers["/api/synthetics/insights"][-1].json()

    # then the rhythm box says, with the number the API gave, how much max_per_run trims
    trim = page.locator("#rhythm-trim").inner_text()
    match = re.fullmatch(
        r"At these settings max_per_run trims (less than )?(\d+\.\d) % of the next week's sessions\.",
        trim,
    )
    assert match, trim
    trimmed = 100 * insights["rhythm"]["cap_trimmed_share"]
    assert trimmed < 0.05 if match[1] else float(match[2]) == pytest.approx(trimmed, abs=0.05)
    assert page.locator("#rhythm-now").inner_text() == f"{insights['rhythm']['rate_now']:.2f}"

    # and the capacity line gives the numbers of the same answer; 40 users sustain the defaults
    capacity = insights["capacity"]
    assert capacity["sustainable"] and page.locator("#capacity-warning").is_hidden()
    assert page.locator("#capacity-line").inner_text() == (
        f"At the week's peak about {round(capacity['needed_users'])} of 40 active sim users are "
        f"in a session or about to start one (journeys of "
        f"{capacity['mean_journey_minutes']:.1f} minutes on average)."
    )

    # and each template with sessions has its funnel: a bar per scene reached, a marker per scene
    with_sessions = [funnel for funnel in insights["funnels"] if funnel["sessions"]]
    assert with_sessions, insights["funnels"]
    for funnel in with_sessions:
        panel = page.locator(f'#funnels figure[data-template="{funnel["template"]}"]')
        assert f"{funnel['sessions']} session" in panel.locator("figcaption").inner_text()
        steps = funnel["steps"]
        assert panel.locator(".bar-observed").count() == len(steps)
        assert panel.locator(".funnel-implied").count() == len(steps)
        label = panel.locator("svg").get_attribute("aria-label")
        for step in steps:
            said = f"{step['scene']}: observed {_percent(step['observed'])}, implied"
            assert said in label, (said, label)

    # and the daily active users chart has a bar per day with data, today's from the same answer,
    # and one "no data yet" gap for the days before the first session
    with_data = [day for day in insights["daily_active_users"] if day["users"] is not None]
    assert page.locator("#chart-dau rect.bar-users").count() == len(with_data)
    assert page.locator("#chart-dau rect.no-data").count() == (len(with_data) < 30)
    today = insights["daily_active_users"][-1]
    assert today["users"] > 0
    assert page.locator("#chart-dau rect title").last.text_content() == (
        f"{today['day'][5:]}: {today['users']} users"
    )

    # and the cohort table has a row per week, last week's cohort holding the 40, shaded by value
    rows = page.locator("#cohorts tr")
    assert rows.count() == 8
    last_week = rows.nth(6)
    assert last_week.locator("th").inner_text() == f"{monday - timedelta(weeks=1)} (40)"
    cells = last_week.locator("td")
    assert cells.count() == 8
    # (week 0 is last week: no data yet unless the history above reached back over Monday midnight)
    week_zero = insights["cohorts"][6]["retention"][0]
    if week_zero is None:
        assert cells.nth(0).inner_text() == "—"
        assert cells.nth(0).get_attribute("title") == "no data yet"
    else:
        assert cells.nth(0).inner_text() == _percent(week_zero)
        assert f"heat-{min(9, int(week_zero * 10))}" in cells.nth(0).get_attribute("class")
    week_one = insights["cohorts"][6]["retention"][1]
    assert week_one > 0
    assert cells.nth(1).inner_text() == _percent(week_one)
    assert f"heat-{min(9, int(week_one * 10))}" in cells.nth(1).get_attribute("class")
    assert all(cells.nth(week).inner_text() == "" for week in range(2, 8))
    assert all(cell.inner_text() == "" for cell in rows.nth(7).locator("td").all())

    # when sign-ups per day are set to 5 through the form, they are saved
    before = SyntheticSettings.objects.values().get()
    page.fill("#signups_per_day", "5")
    _refreshed_by(page, page.get_by_role("button", name="Save settings").click, reason="settings")
    assert page.locator("#control-message").inner_text() == "Settings saved."
    assert SyntheticSettings.objects.values().get() == {
        **before,
        "signups_per_day": 5,
        "updated_at": SyntheticSettings.objects.get().updated_at,
    }

    # when a rate the 40 users cannot sustain is saved, the warning with the numbers shows too,
    # in the message and, from the refresh that follows (the insights are recomputed after a
    # settings change), in the rhythm box
    page.fill("#sessions_per_min", "100")
    page.fill("#max_per_run", "100")
    _refreshed_by(page, page.get_by_role("button", name="Save settings").click, reason="settings")
    (warning,) = answers["/api/synthetics/settings"][-1].json()["warnings"]
    assert page.locator("#control-message").inner_text() == f"Settings saved. {warning}"
    assert page.locator("#capacity-warning").is_visible()
    assert page.locator("#capacity-warning").inner_text() == warning
    page.fill("#sessions_per_min", "2")
    page.fill("#max_per_run", "5")
    _refreshed_by(page, page.get_by_role("button", name="Save settings").click, reason="settings")
    assert page.locator("#control-message").inner_text() == "Settings saved."
    assert page.locator("#capacity-warning").is_hidden()

    # when a churn of 2 a month is sent, the API's message shows by the field, in the words of its
    # label, and nothing changes
    before = SyntheticSettings.objects.values().get()
    page.fill("#churn_per_month", "2")
    _refreshed_by(page, page.get_by_role("button", name="Save settings").click, reason="settings")
    refusal = answers["/api/synthetics/settings"][-1]
    assert refusal.status == 400
    message = " ".join(refusal.json()["fields"]["churn_per_month"])
    assert "churn_per_month must be between 0 and 1" in message
    assert page.locator("#error-churn_per_month").inner_text() == message.replace(
        "churn_per_month", "Churn per month"
    )
    assert page.locator("#control-message").inner_text() == (
        "Settings not saved: check Churn per month."
    )
    assert page.locator("#churn_per_month").get_attribute("aria-invalid") == "true"
    assert page.locator("#signups_per_day").get_attribute("aria-invalid") is None
    assert SyntheticSettings.objects.values().get() == before

    # and nothing broke the page, its policy, or left the server
    assert not errors, errors
    _assert_nothing_injected(page, seen, "/studio/")
    assert not outside, f"requests left the server: {outside}"


def _record_answers(page, *paths: str) -> dict[str, list]:
    """Keep every response the page gets from each of these API paths, in order."""
    answers: dict[str, list] = {path: [] for path in paths}

    def record(response) -> None:
        for path in paths:
            if response.url.endswith(path):
                answers[path].append(response)

    page.on("response", record)
    return answers


def _percent(share: float | None) -> str:
    """A share as the Studio writes it, whole percent rounded half up (JavaScript's Math.round)."""
    return "no sessions" if share is None else f"{math.floor(100 * share + 0.5)} %"


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def test_a_failed_refresh_is_reported(browser, live_server):
    # given the Studio, loaded
    sim_users_seed(count=5, seed=22)
    StaffUserFactory(username="studio2", password=_hash(PASSWORD))
    page = browser.new_page()
    _record_refreshes(page)
    _log_in(page, live_server, "studio2", "/studio/")
    page.wait_for_url("**/studio/")
    _loaded(page)

    # when the API is down as the window gets the focus back
    page.route("**/api/synthetics/status", lambda route: route.fulfill(status=503, body="down"))
    detail = _refreshed_by(page, lambda: _focus_window(page), reason="focus")

    # then the page says so, and keeps the last numbers
    assert detail["ok"] is False and "503" in detail["error"], detail
    page.wait_for_selector("#refresh-error:not([hidden])")
    assert "Refresh failed" in page.locator("#refresh-error").inner_text()
    assert page.locator("#refresh-state").inner_text().startswith("Refreshed")

    # and once the API is back, the next refresh clears the message
    page.unroute("**/api/synthetics/status")
    assert _refreshed_by(page, _refresh_button(page).click, reason="button")["ok"]
    assert page.locator("#refresh-error").is_hidden()


def test_the_studio_refreshes_when_the_user_comes_back(browser, live_server):
    # given the Studio, loaded
    sim_users_seed(count=40, seed=25)
    run_scheduled()
    StaffUserFactory(username="studio3", password=_hash(PASSWORD))
    page = browser.new_page()
    _record_refreshes(page)
    _log_in(page, live_server, "studio3", "/studio/")
    page.wait_for_url("**/studio/")
    _loaded(page)
    sessions_before = _number(page, "#sessions-24")

    # when a run is made elsewhere and the window gets the focus back, the new numbers show
    run_manual(target=1)
    assert _refreshed_by(page, lambda: _focus_window(page), reason="focus")["ok"]
    assert _number(page, "#sessions-24") == sessions_before + 1

    # and likewise when the tab is shown again
    run_manual(target=2)
    assert page.evaluate("() => document.visibilityState") == "visible"
    shown = "() => document.dispatchEvent(new Event('visibilitychange'))"
    assert _refreshed_by(page, lambda: page.evaluate(shown), reason="visible")["ok"]
    assert _number(page, "#sessions-24") == sessions_before + 3


def test_a_refresh_under_way_is_not_started_twice(browser, live_server):
    # given the Studio, loaded, and a count of the status requests it sends from now on
    sim_users_seed(count=5, seed=26)
    StaffUserFactory(username="studio4", password=_hash(PASSWORD))
    page = browser.new_page()
    _record_refreshes(page)
    _log_in(page, live_server, "studio4", "/studio/")
    page.wait_for_url("**/studio/")
    _loaded(page)
    status_requests: list[str] = []

    def count(request) -> None:
        if request.url.endswith("/api/synthetics/status"):
            status_requests.append(request.url)

    page.on("request", count)

    # when the button, the focus, the tab shown again and the button again all ask at once (in one
    # task, so the first refresh cannot have finished)
    ask_four_times = """() => {
        document.getElementById('refresh-now').click();
        window.dispatchEvent(new Event('focus'));
        document.dispatchEvent(new Event('visibilitychange'));
        document.getElementById('refresh-now').click();
    }"""
    _refreshed_by(page, lambda: page.evaluate(ask_four_times), reason="button")

    # then one refresh answered all four, and nothing was queued behind it
    assert len(status_requests) == 1, status_requests
    _refreshed_by(page, _refresh_button(page).click, reason="button")
    assert len(status_requests) == 2, status_requests
    assert _refreshes_seen(page) == 3  # the load, the four asks, the last click


def test_the_timer_counts_from_the_last_refresh(browser, live_server, monkeypatch):
    # given the Studio with its real period, on Playwright's clock, paused: time moves only when told
    monkeypatch.setattr(views, "REFRESH_SECONDS", 10)
    sim_users_seed(count=5, seed=27)
    StaffUserFactory(username="studio5", password=_hash(PASSWORD))
    page = browser.new_page()
    _record_refreshes(page)
    _log_in(page, live_server, "studio5", "/admin/")
    page.wait_for_url("**/admin/")
    start = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    page.clock.install(time=start)
    page.clock.pause_at(start + timedelta(seconds=1))
    page.goto(f"{live_server.url}/studio/")
    _loaded(page)  # at 12:00:01, so the timer is due at 12:00:11

    # when the user refreshes 5 s later
    page.clock.run_for(5_000)
    assert _refreshes_seen(page) == 1
    _refreshed_by(page, _refresh_button(page).click, reason="button")

    # then the timer starts again from that refresh: the next one is due at 12:00:16, not 12:00:11
    page.clock.run_for(10_000)
    detail = _refresh_number(page, 2)
    assert detail["reason"] == "timer", detail
    assert detail["startedAt"] == "2026-01-05T12:00:16.000Z", detail


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


def _assert_nothing_injected(page, seen, where: str) -> None:
    assert page.evaluate("typeof window.__xss") == "undefined", where
    assert page.evaluate("document.querySelectorAll('[onerror], [onload]').length") == 0, where
    assert not page.evaluate(
        "Array.from(document.scripts).some((script) => script.text.includes('__xss'))"
    ), where
    assert not seen["dialogs"], (where, seen["dialogs"])
    assert not seen["csp"], (where, seen["csp"])


def test_stored_xss_never_runs_in_the_studio_or_the_admin(browser, live_server):
    from tests.test_security import ATTRIBUTE, BREAKOUT, SCRIPT, plant_xss_payloads

    # given every admin-editable text holds a payload, the viewer's own name among them
    viewer, pages = plant_xss_payloads(password=_hash(PASSWORD))
    page = browser.new_page()
    _record_refreshes(page)
    seen = _watch_for_injection(page)

    # when the viewer opens the Studio and it refreshes itself through the API
    _log_in(page, live_server, viewer.username, "/studio/")
    page.wait_for_url("**/studio/")
    _loaded(page)

    # then the payloads are shown as text (the status reason quotes the failed run's note) ...
    assert BREAKOUT in page.locator("#status-reason").inner_text()
    assert SCRIPT in page.locator("#runs").inner_text()
    assert SCRIPT in page.locator("header .who").inner_text()
    # (a template's slug in its funnel's caption, a scene's in the funnel's text alternative)
    assert SCRIPT in page.locator("#funnels").inner_text()
    assert page.evaluate(
        "(payload) => Array.from(document.querySelectorAll('#funnels svg'))"
        ".some((chart) => chart.getAttribute('aria-label').includes(payload))",
        ATTRIBUTE,
    )
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
    run_scheduled()
    StaffUserFactory(username="csp", password=_hash(PASSWORD))
    page = browser.new_page()
    _record_refreshes(page)
    seen = _watch_for_injection(page)

    # when the Studio loads and refreshes
    _log_in(page, live_server, "csp", "/studio/")
    page.wait_for_url("**/studio/")
    _loaded(page)
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
