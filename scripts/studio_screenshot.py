"""Take the documentation's screenshot of the Studio from a running instance (headless Debian
chromium), once its first refresh has drawn every chart.

    .venv/bin/python scripts/studio_screenshot.py --url http://127.0.0.1:8000 \
        --username admin --password ... --out docs/studio.png [--color-scheme dark]
"""

import argparse

from playwright.sync_api import sync_playwright

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--out", default="docs/studio.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--color-scheme", choices=["light", "dark"], default="light")
    args = parser.parse_args()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(
            viewport={"width": args.width, "height": 900}, color_scheme=args.color_scheme
        )
        page.goto(f"{args.url}/admin/login/?next=/studio/")
        page.fill("#id_username", args.username)
        page.fill("#id_password", args.password)
        page.click("input[type=submit]")
        page.wait_for_url("**/studio/")
        page.wait_for_function(
            # a function, not an expression: Playwright eval()s expressions, which the CSP refuses
            "() => document.getElementById('refresh-state').textContent.startsWith('Refreshed')"
        )
        page.screenshot(path=args.out, full_page=True)
        browser.close()
    print(f"studio_screenshot: wrote {args.out}")


if __name__ == "__main__":
    main()
