"""The Studio's Incidents section end to end in headless Chromium: the table, the shading on the
charts, scheduling through the form, refusals shown by their field, cancelling, and what a viewer
without the change permission sees.

Uses the browser, the log-in and the refresh helpers of tests/test_studio_browser.py (Debian's
chromium through Playwright's `executable_path`); a screenshot of the section goes to
test-artifacts/ (ignored by git).
"""

from datetime import datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from synthetics.models import Incident
from synthetics.services import activity_backfill, sim_users_seed
from synthetics.services.incidents import incident_create
from synthetics.services.runs import floor_minute
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
)

# The Studio tests' fixtures, shared: Chromium, and its timer held off (autouse) so that every
# refresh a test sees is one it asked for.
browser = test_studio_browser.browser
timer_held_off = test_studio_browser.timer_held_off

pytestmark = [
    pytest.mark.slow,
    pytest.mark.once,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

MINUTE = timedelta(minutes=1)


def _ceil_minute(moment: datetime) -> datetime:
    floor = floor_minute(moment)
    return floor if floor == moment else floor + MINUTE


def _row(page, label: str):
    """The incidents table's row of the incident with this label (labels here are distinct)."""
    rows = page.locator("#incidents tr").filter(has=page.locator("td:first-child", has_text=label))
    assert rows.count() == 1, (label, page.locator("#incidents").inner_text())
    return rows.first


def _cells(row) -> list[str]:
    return [cell.inner_text() for cell in row.locator("td").all()]


def _bands_and_bars(page, chart: str) -> dict:
    """The chart's incident bands and scene bars (x, width, title), and whether every band comes
    before (is drawn behind) every bar."""
    return page.evaluate(
        """(chart) => {
            const svg = document.getElementById(chart);
            const shape = (rect) => ({
                x: Number(rect.getAttribute("x")),
                width: Number(rect.getAttribute("width")),
                title: rect.querySelector("title").textContent,
            });
            const all = Array.from(svg.querySelectorAll("rect"));
            const bands = all.filter((rect) => rect.classList.contains("incident-band"));
            const lastBand = Math.max(-1, ...bands.map((rect) => all.indexOf(rect)));
            const firstBar = all.findIndex((rect) => rect.classList.contains("bar-scene"));
            return {
                bands: bands.map(shape),
                bars: all.filter((rect) => rect.classList.contains("bar-scene")).map(shape),
                behind: firstBar > lastBand,
                viewBox: svg.getAttribute("viewBox"),
                width: svg.getBoundingClientRect().width,
                left: Number(svg.dataset.plotLeft),
                right: Number(svg.dataset.plotRight),
            };
        }""",
        chart,
    )


def _bar_x(bars: list[dict], bucket: datetime) -> float:
    """The x of the scene bar of the per-minute bucket starting at `bucket` (titled "HH:MM: ...")."""
    (x,) = [bar["x"] for bar in bars if bar["title"].startswith(f"{bucket:%H:%M}: ")]
    return x


def _record_incident_answers(page) -> list:
    answers: list = []
    page.on(
        "response",
        lambda response: (
            answers.append(response)
            if response.url.endswith("/api/synthetics/incidents")
            and response.request.method == "POST"
            else None
        ),
    )
    return answers


def test_staff_user_sees_schedules_and_cancels_incidents(browser, live_server):
    # given an hour of history with an incident that is over and one in progress
    sim_users_seed(count=40, seed=7)
    now = timezone.now()
    base = floor_minute(now)
    over = incident_create(
        label="past outage",
        starts_at=base - timedelta(minutes=40),
        minutes=10,
        error_rate=0.2,
        sessions_multiplier=2.0,
        now=now,
        allow_past=True,
    )
    ongoing = incident_create(
        label="slow breathing",
        starts_at=base - timedelta(minutes=5),
        minutes=30,
        abandon_rate=0.3,
        template="morning-checkin",
        scene="breathing",
        now=now,
    )
    activity_backfill(hours=1)
    StaffUserFactory(username="incidents", password=_hash(PASSWORD))
    ARTIFACTS.mkdir(exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _record_refreshes(page)
    outside = _record_outside_requests(page, live_server)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    answers = _record_incident_answers(page)

    # when the staff user opens the Studio
    _log_in(page, live_server, "incidents", "/studio/")
    page.wait_for_url("**/studio/")
    _loaded(page)

    # then the expected-versus-observed panel says in words how the last hour went, and draws a
    # band and a mark for each of the seven metrics (the answer of GET /expectations?hours=1)
    from synthetics.services.expectations import expectations_report

    report = expectations_report(hours=1, now=timezone.now())
    assert page.locator("#fidelity-summary").inner_text() == report.summary
    assert page.locator("#fidelity-chart rect.fidelity-band").count() == 7
    assert page.locator("#fidelity-chart rect.fidelity-observed").count() == sum(
        check.observed is not None for check in report.checks
    )

    # and the table lists both, newest start first, each in its state, with what it changes
    assert page.locator("#incidents tr").count() == 2
    assert _cells(_row(page, "past outage")) == [
        "past outage",
        "over",
        f"{over.starts_at:%Y-%m-%d %H:%M}",
        "10",
        "errors 0.2, sessions × 2",
        "every session",
        "",
    ]
    assert _cells(_row(page, "slow breathing")) == [
        "slow breathing",
        "in progress",
        f"{ongoing.starts_at:%Y-%m-%d %H:%M}",
        "30",
        "abandons 0.3",
        "morning-checkin, scene breathing",
        "Cancel",
    ]
    assert page.locator("#incidents tr").first.locator("td").first.inner_text() == "slow breathing"
    # (one over cannot be cancelled; one in progress can)
    assert _row(page, "past outage").locator("button").count() == 0
    assert _row(page, "slow breathing").get_by_role("button", name="Cancel").is_visible()

    # and the last hour's chart shades the one that is over behind the bars, from the bucket of its
    # first minute's run (start + 1 min) to that of the minute after its last (end + 1 min)
    hour = _bands_and_bars(page, "chart-hour")
    # (drawn in coordinates of its rendered width: one unit, one pixel)
    assert hour["viewBox"] == f"0 0 {int(hour['width'])} 220", hour["viewBox"]
    left, right = hour["left"], hour["right"]
    assert hour["behind"], hour["bands"]
    (band,) = [b for b in hour["bands"] if b["title"] == f"Incident {over.id}: past outage"]
    assert band["x"] >= left and band["x"] + band["width"] <= right, band
    assert band["x"] == pytest.approx(_bar_x(hour["bars"], over.starts_at + MINUTE))
    assert band["x"] + band["width"] == pytest.approx(_bar_x(hour["bars"], over.ends_at + MINUTE))
    # and the one in progress from its start to the chart's right edge
    (band,) = [b for b in hour["bands"] if b["title"] == f"Incident {ongoing.id}: slow breathing"]
    assert band["x"] == pytest.approx(_bar_x(hour["bars"], ongoing.starts_at + MINUTE))
    assert band["x"] + band["width"] == pytest.approx(right)
    # and the range chart (the last 24 hours) shades both too, inside it
    day = _bands_and_bars(page, "chart-range")
    assert day["behind"]
    assert sorted(b["title"] for b in day["bands"]) == sorted(
        [f"Incident {over.id}: past outage", f"Incident {ongoing.id}: slow breathing"]
    )
    assert all(
        b["x"] >= day["left"] and b["x"] + b["width"] <= day["right"] for b in day["bands"]
    ), day["bands"]

    # when an incident is scheduled through the form: 2 minutes from now, 10 minutes, half errors,
    # on one template
    page.fill("#incident-label", "checkout errors from the browser")
    page.fill("#incident-in", "2")
    page.fill("#incident-minutes", "10")
    page.fill("#incident-error_rate", "0.5")
    page.select_option("#incident-template", "focus-session")
    before = timezone.now()
    # (a double click: the button is disabled while the request is under way, so it schedules once)
    _refreshed_by(page, page.get_by_role("button", name="Schedule").dblclick, reason="incident")
    after = timezone.now()

    # then it is saved with those values, starting on the whole minute 2 minutes after the next
    assert answers[-1].status == 201
    created = Incident.objects.get(label="checkout errors from the browser")  # one, not two
    assert created.minutes == 10
    assert created.error_rate == 0.5
    assert created.abandon_rate is None and created.sessions_multiplier is None
    assert created.template.slug == "focus-session" and created.scene == ""
    assert created.cancelled_at is None and created.created_by == "incidents"
    assert _ceil_minute(before) + 2 * MINUTE <= created.starts_at
    assert created.starts_at <= _ceil_minute(after) + 2 * MINUTE
    assert created.ends_at == created.starts_at + 10 * MINUTE
    assert page.locator("#incident-message").inner_text() == (
        f"Incident {created.id} scheduled from {created.starts_at:%H:%M:%S} UTC."
    )
    # and the table shows it first, upcoming, with a Cancel button
    assert page.locator("#incidents tr").count() == 3
    first = page.locator("#incidents tr").first
    assert _cells(first) == [
        "checkout errors from the browser",
        "upcoming",
        f"{created.starts_at:%Y-%m-%d %H:%M}",
        "10",
        "errors 0.5",
        "focus-session",
        "Cancel",
    ]
    cancel = first.get_by_role("button", name="Cancel incident checkout errors from the browser")
    assert cancel.is_visible()
    # (not shaded on the last hour's chart: it starts after it)
    assert not [
        b
        for b in _bands_and_bars(page, "chart-hour")["bands"]
        if b["title"].startswith(f"Incident {created.id}:")
    ]

    # when errors and abandons of more than 1 together are sent, the API's message shows by the
    # field, in the labels' words, and nothing is written
    rows_before = list(Incident.objects.order_by("id").values())
    page.fill("#incident-label", "too many errors")
    page.fill("#incident-error_rate", "0.9")
    page.fill("#incident-abandon_rate", "0.2")
    _refreshed_by(page, page.get_by_role("button", name="Schedule").click, reason="incident")
    refusal = answers[-1]
    assert refusal.status == 400
    message = " ".join(refusal.json()["fields"]["error_rate"])
    assert "error_rate + abandon_rate must be at most 1" in message
    assert page.locator("#incident-error-error_rate").inner_text() == message.replace(
        "error_rate", "Error rate"
    ).replace("abandon_rate", "Abandon rate")
    assert page.locator("#incident-message").inner_text() == "Nothing scheduled: check Error rate."
    assert "message-error" in page.locator("#incident-message").get_attribute("class")
    assert list(Incident.objects.order_by("id").values()) == rows_before
    assert page.locator("#incidents tr").count() == 3

    # and likewise for a sessions multiplier limited to a scene; the earlier message is cleared
    page.fill("#incident-error_rate", "")
    page.fill("#incident-abandon_rate", "")
    page.fill("#incident-sessions_multiplier", "2")
    page.select_option("#incident-template", "writers-unblock")
    page.fill("#incident-scene", "freewrite")
    _refreshed_by(page, page.get_by_role("button", name="Schedule").click, reason="incident")
    refusal = answers[-1]
    assert refusal.status == 400
    message = " ".join(refusal.json()["fields"]["sessions_multiplier"])
    assert "cannot be limited to a scene" in message
    assert page.locator("#incident-error-sessions_multiplier").inner_text() == message
    assert page.locator("#incident-message").inner_text() == (
        "Nothing scheduled: check Sessions multiplier."
    )
    assert page.locator("#incident-error-error_rate").inner_text() == ""
    assert list(Incident.objects.order_by("id").values()) == rows_before

    # and one contradicting the scheduled incident is refused as a conflict, with the reason
    page.fill("#incident-sessions_multiplier", "")
    page.fill("#incident-scene", "")
    page.fill("#incident-error_rate", "0.1")
    page.select_option("#incident-template", "focus-session")
    _refreshed_by(page, page.get_by_role("button", name="Schedule").click, reason="incident")
    refusal = answers[-1]
    assert refusal.status == 409
    assert f"overlaps incident {created.id}" in refusal.json()["error"]
    assert page.locator("#incident-message").inner_text() == refusal.json()["error"]
    assert list(Incident.objects.order_by("id").values()) == rows_before

    # when the upcoming incident is cancelled
    _refreshed_by(page, cancel.click, reason="incident")

    # then its row says so and has no button any more; the database agrees
    created.refresh_from_db()
    assert created.cancelled_at is not None
    assert created.ends_at == created.starts_at  # cancelled before it began: never applies
    assert page.locator("#incident-message").inner_text() == f"Incident {created.id} cancelled."
    row = _row(page, "checkout errors from the browser")
    assert _cells(row)[1] == "cancelled"
    assert row.locator("button").count() == 0
    # (and the others are as they were)
    assert _cells(_row(page, "slow breathing"))[1] == "in progress"
    assert _row(page, "slow breathing").locator("button").count() == 1
    assert Incident.objects.get(pk=ongoing.pk).cancelled_at is None
    assert Incident.objects.count() == 3

    page.locator("section.incidents").screenshot(
        path=str(ARTIFACTS / "studio-incidents-desktop.png")
    )
    assert not errors, errors
    assert not outside, f"requests left the server: {outside}"


def test_a_viewer_sees_the_incidents_but_cannot_schedule_or_cancel(browser, live_server):
    # given an upcoming incident and one in progress, and a staff account with only the view
    # permission
    sim_users_seed(count=5, seed=8)
    now = timezone.now()
    base = floor_minute(now)
    upcoming = incident_create(
        label="evening surge",
        starts_at=base + 30 * MINUTE,
        minutes=20,
        sessions_multiplier=3.0,
        template="evening-reflection",
        now=now,
    )
    ongoing = incident_create(
        label="error storm", starts_at=base - 3 * MINUTE, minutes=15, error_rate=0.4, now=now
    )
    viewer = StaffUserFactory(username="watcher", password=_hash(PASSWORD), is_superuser=False)
    viewer.user_permissions.add(Permission.objects.get(codename="view_syntheticsettings"))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    _record_refreshes(page)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    # when the viewer opens the Studio
    _log_in(page, live_server, "watcher", "/studio/")
    page.wait_for_url("**/studio/")
    _loaded(page)

    # then both incidents are listed, in their states, with no Cancel button
    assert _cells(_row(page, "evening surge"))[:2] == ["evening surge", "upcoming"]
    assert _cells(_row(page, "error storm"))[:2] == ["error storm", "in progress"]
    assert page.locator("#incidents button").count() == 0
    # and the one in progress is shaded on the last hour's chart
    titles = [b["title"] for b in _bands_and_bars(page, "chart-hour")["bands"]]
    assert titles == [f"Incident {ongoing.id}: error storm"]

    # and every control of the form is disabled
    controls = page.locator("#incident-form input, #incident-form select, #incident-form button")
    assert controls.count() == 9
    for control in controls.all():
        assert control.is_disabled(), control.get_attribute("id")

    # and the API refuses a cancel sent by hand: nothing changes
    status = page.evaluate(
        """(id) => fetch(`/api/synthetics/incidents/${id}`, {
            method: "DELETE",
            credentials: "same-origin",
            headers: {
                "X-CSRFToken": document.querySelector("[name=csrfmiddlewaretoken]").value,
            },
        }).then((response) => response.status)""",
        upcoming.id,
    )
    assert status == 403
    assert Incident.objects.filter(cancelled_at__isnull=False).count() == 0
    assert not errors, errors
