"""The favicon: /favicon.ico redirects to the static SVG icon, which is served, and the admin's pages
name it in their head (the Studio's browser test checks the Studio's)."""

import pytest


@pytest.mark.django_db
def test_favicon_ico_redirects_to_the_svg_icon_that_is_served(client):
    # when a browser asks for the icon at the conventional place
    answer = client.get("/favicon.ico")

    # then it is sent on, for good, to the static SVG, which is there
    assert answer.status_code == 301
    assert answer["Location"] == "/static/synthetics/favicon.svg"
    icon = client.get(answer["Location"])
    assert icon.status_code == 200
    assert icon["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in b"".join(icon.streaming_content if icon.streaming else [icon.content])


@pytest.mark.django_db
def test_the_admin_pages_name_the_icon(client):
    page = client.get("/admin/login/")
    assert page.status_code == 200
    assert '<link rel="icon" href="/static/synthetics/favicon.svg" type="image/svg+xml">' in (
        page.content.decode()
    )
