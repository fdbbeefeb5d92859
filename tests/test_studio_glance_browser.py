"""The Studio read at a glance, in headless Chromium at desktop and phone width: chart text of at least
12 px as rendered, axes with several ticks and gridlines and labels that never overlap, the range
picker (presets and a checked custom range), "no data yet" before the first session, the section
navigation, every form error at once by its label, the badge right after Pause and Resume, the dark
scheme, no sideways scroll on a phone, and the favicon.

One page load per viewport serves every check (the machine is slow). Uses the browser, the log-in
and the refresh helpers of tests/test_studio_browser.py; screenshots go to test-artifacts/ (ignored
by git).
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from synthetics.models import Incident, SimUser, SyntheticSettings
from synthetics.services import activity_backfill, run_scheduled, sim_users_seed
from tests import test_studio_browser
from tests.factories import StaffUserFactory
from tests.test_studio_browser import (
    ARTIFACTS,
    PASSWORD,
    _hash,
    _loaded,
    _log_in,
    _record_outside_requests,
    _record_refreshes,
    _refreshed_by,
    _refreshes_seen,
)

browser = test_studio_browser.browser
timer_held_off = test_studio_browser.timer_held_off

pytestmark = [
    pytest.mark.slow,
    pytest.mark.once,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

PLOTS = ("chart-hour", "chart-range", "chart-dau", "chart-days-active", "chart-retention")

# Every visible text of every SVG on the page: its font size as drawn (the computed size times the
# scale of the SVG's coordinates on the screen) and its box.
_TEXTS = """() => Array.from(document.querySelectorAll("svg text"))
    .filter((text) => text.getClientRects().length)
    .map((text) => {
        const matrix = text.getScreenCTM();
        const box = text.getBoundingClientRect();
        return {
            chart: text.ownerSVGElement.id,
            text: text.textContent,
            px: parseFloat(getComputedStyle(text).fontSize) * Math.hypot(matrix.a, matrix.b),
            xLabel: text.classList.contains("tick-x"),
            left: box.left, right: box.right,
        };
    })"""

_AXES = """(ids) => ids.map((id) => {
    const chart = document.getElementById(id);
    return {
        id: id,
        yTicks: chart.querySelectorAll(".tick-y").length,
        gridlines: chart.querySelectorAll("line.grid").length,
        viewBoxWidth: Number(chart.getAttribute("viewBox").split(" ")[2]),
        width: chart.getBoundingClientRect().width,
    };
})"""


def _check_chart_text(page, where: str) -> None:
    """Every chart text is at least 12 px on the screen; the x labels of a chart never overlap;
    every plot has several y ticks with gridlines, in coordinates of its own rendered width."""
    texts = page.evaluate(_TEXTS)
    assert len(texts) > 50, (where, len(texts))
    small = [text for text in texts if text["px"] < 12 - 1e-6]
    assert not small, (where, small[:5])
    for chart in {text["chart"] for text in texts}:
        labels = sorted(
            (t for t in texts if t["chart"] == chart and t["xLabel"]), key=lambda t: t["left"]
        )
        for before, after in zip(labels, labels[1:], strict=False):
            assert before["right"] <= after["left"], (where, chart, before, after)
    for axis in page.evaluate(_AXES, list(PLOTS)):
        assert axis["yTicks"] >= 3 and axis["gridlines"] >= 2, (where, axis)
        assert axis["viewBoxWidth"] <= axis["width"] < axis["viewBoxWidth"] + 1, (where, axis)


def _hold(page, path: str) -> list:
    """Hold every request to this API path unanswered until released (a slow server)."""
    held: list = []
    page.route(f"**/api/synthetics/{path}", lambda route: held.append(route))
    return held


def _release(page, path: str, held: list) -> None:
    for route in held:
        route.continue_()
    page.unroute(f"**/api/synthetics/{path}")


def _badge(page) -> str:
    return page.locator("#status-badge").inner_text().lower()


def test_the_studio_reads_at_a_glance_on_a_desktop_and_a_phone(browser, live_server):
    # given two hours of history, a scheduled run just made (running), users who signed up five
    # weeks before any session, and a staff account
    sim_users_seed(count=40, seed=31)
    monday = datetime.now(UTC).date() - timedelta(days=datetime.now(UTC).weekday())
    SimUser.objects.update(signup_date=monday - timedelta(weeks=5))
    activity_backfill(hours=2, now=timezone.now() - timedelta(minutes=2))
    run_scheduled()
    StaffUserFactory(username="glance", password=_hash(PASSWORD))
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="light")
    page = context.new_page()
    _record_refreshes(page)
    outside = _record_outside_requests(page, live_server)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)

    # when the user opens the Studio on a desktop
    _log_in(page, live_server, "glance", "/studio/")
    page.wait_for_url("**/studio/")
    _loaded(page)

    # then every chart's text is 12 px or more, with ticks, gridlines and no overlapping labels
    _check_chart_text(page, "desktop")
    # and the page and the admin name their icon, and /favicon.ico is answered with it
    assert page.locator("link[rel=icon]").get_attribute("href").endswith("favicon.svg")
    icon = page.request.get(f"{live_server.url}/favicon.ico")
    assert icon.ok and icon.url.endswith("/static/synthetics/favicon.svg"), (icon.status, icon.url)
    assert icon.headers["content-type"].startswith("image/svg+xml")

    # and the days and weeks before the first session say "no data yet", not 0
    assert page.locator("#chart-dau rect.no-data").count() == 1
    assert page.locator("#chart-dau text.no-data-label").text_content() == "no data yet"
    first = page.locator("#cohorts tr").nth(2)  # signed up five weeks ago: weeks 0-4 before it
    cells = first.locator("td")
    assert [cells.nth(week).inner_text() for week in range(5)] == ["—"] * 5
    assert cells.nth(0).get_attribute("title") == "no data yet"
    assert cells.nth(5).inner_text().endswith("%")

    # when the 7-day range is chosen, the range chart and the outcomes follow it, per hour
    _refreshed_by(page, page.locator("label[for=range-7d]").click, reason="range")
    assert page.locator("#chart-range-title").inner_text() == "Events per hour, last 7 days"
    assert page.locator("#outcomes-title").inner_text().endswith("last 7 days")
    assert page.locator("#chart-range rect.bar-scene").count() == 169
    # and 30 days: per day
    _refreshed_by(page, page.locator("label[for=range-30d]").click, reason="range")
    assert page.locator("#chart-range-title").inner_text() == "Events per day, last 30 days"
    assert page.locator("#chart-range rect.bar-scene").count() == 31
    _check_chart_text(page, "desktop, 30 days")

    # when a custom range of 100 days is asked for, both fields' rules are checked at once,
    # nothing is fetched, and the chart stays
    page.locator("label[for=range-custom]").click()
    now = datetime.now(UTC)
    page.fill("#range-from", f"{now - timedelta(days=100):%Y-%m-%dT%H:%M}")
    page.fill("#range-to", f"{now + timedelta(days=2):%Y-%m-%dT%H:%M}")
    seen = _refreshes_seen(page)
    page.get_by_role("button", name="Show range").click()
    assert "must not be after now" in page.locator("#range-error-until").inner_text()
    assert page.locator("#range-to").get_attribute("aria-invalid") == "true"
    page.fill("#range-to", "")
    page.get_by_role("button", name="Show range").click()
    assert "at most 90 days" in page.locator("#range-error-since").inner_text()
    assert page.locator("#range-from").get_attribute("aria-invalid") == "true"
    assert page.locator("#range-message").inner_text() == "Range not shown: check From."
    assert _refreshes_seen(page) == seen
    assert page.locator("#chart-range rect.bar-scene").count() == 31
    # and a custom range of two hours is drawn per minute, named by its bounds
    since, until = now - timedelta(hours=3), now - timedelta(hours=1)
    page.fill("#range-from", f"{since:%Y-%m-%dT%H:%M}")
    page.fill("#range-to", f"{until:%Y-%m-%dT%H:%M}")
    _refreshed_by(page, page.get_by_role("button", name="Show range").click, reason="range")
    assert page.locator("#range-error-since").inner_text() == ""
    assert page.locator("#chart-range-title").inner_text() == (
        f"Events per minute, {since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M} UTC"
    )
    assert page.locator("#chart-range rect.bar-scene").count() == 121
    title = page.locator("#chart-range-title").inner_text()
    # and a range the server refuses (its clock decides what "now" is) is said by its field in the
    # label's words, and the chart stays on the last range it drew
    refusal = {
        "success": False,
        "error": "Invalid input: until: until must not be after now (2026-01-01T00:00:00+00:00).",
        "fields": {"until": ["until must not be after now (2026-01-01T00:00:00+00:00)."]},
    }

    def refused(url: str) -> bool:
        return "/api/synthetics/activity?since=" in url

    page.route(refused, lambda route: route.fulfill(status=400, json=refusal))
    page.fill("#range-to", f"{until - timedelta(minutes=30):%Y-%m-%dT%H:%M}")
    _refreshed_by(page, page.get_by_role("button", name="Show range").click, reason="range")
    assert page.locator("#range-error-until").inner_text() == (
        "To must not be after now (2026-01-01T00:00:00+00:00)."
    )
    assert page.locator("#range-message").inner_text() == "Range not shown: check To."
    assert page.locator("#chart-range-title").inner_text() == title
    page.unroute(refused)

    # when the Controls link of the navigation is followed, the controls are in view under it
    page.get_by_role("navigation", name="Sections of the Studio").get_by_role(
        "link", name="Controls"
    ).click()
    page.wait_for_function(
        "() => Math.abs(document.getElementById('controls').getBoundingClientRect().top - 64) < 40"
    )
    assert page.locator("nav.sections").bounding_box()["y"] == 0  # it stays at the top

    # when the incident form is sent with four faults the page can see, all are flagged at once,
    # by their labels, and nothing is sent
    posts.clear()
    page.fill("#incident-label", "")
    page.fill("#incident-in", "-1")
    page.fill("#incident-minutes", "0")
    page.fill("#incident-error_rate", "1.5")
    page.get_by_role("button", name="Schedule").click()
    assert page.locator("#incident-error-label").inner_text() == "Label must not be empty."
    assert page.locator("#incident-error-starts_at").inner_text().startswith("Starts in must be")
    assert page.locator("#incident-error-minutes").inner_text() == (
        "Lasts must be a whole number from 1 to 10080."
    )
    assert page.locator("#incident-error-error_rate").inner_text() == (
        "Error rate must be a number from 0 to 1."
    )
    for field in ("label", "in", "minutes", "error_rate"):
        assert page.locator(f"#incident-{field}").get_attribute("aria-invalid") == "true", field
    assert page.locator("#incident-message").inner_text() == (
        "Nothing scheduled: check Label, Starts in, Lasts and Error rate."
    )
    assert not posts, posts
    # and with two faults only the API finds, both come back at once, in the labels' words
    page.fill("#incident-label", "two faults")
    page.fill("#incident-in", "2")
    page.fill("#incident-minutes", "10")
    page.fill("#incident-error_rate", "0.9")
    page.fill("#incident-abandon_rate", "0.5")
    page.fill("#incident-scene", "nope")
    _refreshed_by(page, page.get_by_role("button", name="Schedule").click, reason="incident")
    assert (
        page.locator("#incident-error-error_rate")
        .inner_text()
        .startswith("Error rate + Abandon rate must be at most 1 under the incident")
    )
    assert "no scene of any template has the slug 'nope'" in (
        page.locator("#incident-error-scene").inner_text()
    )
    assert page.locator("#incident-error-label").inner_text() == ""
    assert page.locator("#incident-message").inner_text() == (
        "Nothing scheduled: check Error rate and Scene slug."
    )
    assert "_rate" not in page.locator("#incident-form").inner_text()
    assert not Incident.objects.exists()

    # when Pause and then Resume are clicked while the refreshes are held up (a slow server), the
    # badge follows each at once, from the controls' own answers
    run_scheduled()  # (a scheduled run of the last 3 minutes: running once resumed)
    held = _hold(page, "insights")
    refreshes = _refreshes_seen(page)
    page.get_by_role("button", name="Pause").click()
    page.wait_for_function("() => document.getElementById('status-badge').textContent === 'paused'")
    page.get_by_role("button", name="Resume").click()
    page.wait_for_function(
        "() => document.getElementById('status-badge').textContent === 'running'"
    )
    assert _refreshes_seen(page) == refreshes  # no refresh has finished: the answers drew it
    assert SyntheticSettings.objects.get().enabled is True
    assert page.get_by_role("button", name="Pause").is_visible()
    _release(page, "insights", held)
    page.wait_for_function(f"() => window.__refreshes.length > {refreshes}")
    assert _badge(page) == "running"
    page.screenshot(path=str(ARTIFACTS / "studio-glance-desktop.png"), full_page=True)

    # when the same account opens it on a phone that prefers the dark scheme
    phone = browser.new_context(
        viewport={"width": 390, "height": 844},
        color_scheme="dark",
        storage_state=context.storage_state(),
        is_mobile=True,
        has_touch=True,
    )
    small = phone.new_page()
    _record_refreshes(small)
    small.on("pageerror", lambda error: errors.append(str(error)))
    small.goto(f"{live_server.url}/studio/")
    _loaded(small)

    # then nothing scrolls sideways, chart text is still 12 px or more, and the tables are cards
    width = small.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    _check_chart_text(small, "phone")
    assert (
        small.evaluate("() => getComputedStyle(document.querySelector('#runs td')).display")
        == "grid"
    )
    # and the scheme is dark, with light text, and the charts take their colours from it
    colours = small.evaluate(
        """() => ({
            page: getComputedStyle(document.documentElement).backgroundColor,
            panel: getComputedStyle(document.querySelector(".card")).backgroundColor,
            text: getComputedStyle(document.body).color,
            bar: getComputedStyle(document.querySelector("#chart-hour rect.bar-scene")).fill,
            tick: getComputedStyle(document.querySelector("#chart-hour .tick")).fill,
        })"""
    )
    assert _luminance(colours["page"]) < 0.05 and _luminance(colours["panel"]) < 0.05, colours
    assert _luminance(colours["text"]) > 0.7, colours
    assert _contrast(colours["text"], colours["panel"]) >= 7, colours
    assert _contrast(colours["tick"], colours["panel"]) >= 4.5, colours
    assert colours["bar"] == "rgb(111, 157, 255)", colours  # --scene of the dark scheme
    small.screenshot(path=str(ARTIFACTS / "studio-glance-phone-dark.png"), full_page=True)
    assert not errors, errors
    assert not outside, f"requests left the server: {outside}"
    phone.close()
    context.close()


def _luminance(colour: str) -> float:
    """WCAG's relative luminance of an rgb(...) colour."""
    channels = [int(part) / 255 for part in colour[colour.index("(") + 1 : -1].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(one: str, other: str) -> float:
    high, low = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (high + 0.05) / (low + 0.05)
