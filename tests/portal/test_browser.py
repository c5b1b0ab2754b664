"""The portal in a real browser (the system's Chromium through Playwright, one browser and one
server for the module): sign in with the code from the outbox, screenshots at desktop and
390 px width under test-artifacts/portal/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.portal.live import last_code, serve
from tests.services.conftest import register  # noqa: F401 - fixture

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "portal"

if not os.path.exists(CHROMIUM) and not os.environ.get("HPMS_TEST_REQUIRE_BROWSER"):
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def site():
    with serve() as served:
        yield served


@pytest.mark.parametrize("backend", ["sqlite"])
def test_sign_in_in_a_browser_at_desktop_and_phone_width(browser, site, settings, register):  # noqa: F811
    pat = register(first_name="Pat", last_name="Doe", dob="1984-03-09", email="pat.doe@example.org")
    site.settings = settings
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        for name, width in (("desktop", 1280), ("phone", 390)):
            page = browser.new_page(viewport={"width": width, "height": 900})
            page.goto(site.url + "/")
            page.get_by_label("Email address or mobile number").fill("pat.doe@example.org")
            page.get_by_label("Date of birth").fill("1984-03-09")
            page.screenshot(path=str(ARTIFACTS / f"signin-{name}.png"), full_page=True)
            page.get_by_role("button", name="Send me a code").click()
            page.wait_for_url("**/code")
            page.get_by_label("Sign-in code").fill(last_code(settings, pat.id))
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/home")
            assert page.locator("h1").inner_text() == "Hello, Pat Doe"
            assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
            page.screenshot(path=str(ARTIFACTS / f"home-{name}.png"), full_page=True)
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url(site.url + "/")
            page.close()
    finally:
        site.settings = None
    assert (ARTIFACTS / "home-phone.png").stat().st_size > 0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_register_in_a_browser_with_a_card_photo(browser, site, settings, tmp_path):
    from tests.services.helpers import query

    card = tmp_path / "card.png"
    card.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    site.settings = settings
    try:
        page = browser.new_page(viewport={"width": 390, "height": 900})
        page.goto(site.url + "/")
        page.get_by_role("link", name="Register here").click()
        page.wait_for_url("**/register")
        page.get_by_label("First name").fill("Jamie")
        page.get_by_label("Last name").fill("Lane")
        page.get_by_label("Date of birth").fill("1991-04-05")
        page.get_by_label("Email address").fill("jamie.lane@example.org")
        page.get_by_label("Member id").fill("XZ-12345")
        page.get_by_label("Insurance company").fill("Acme Health")
        page.get_by_label("Photo of the card, front").set_input_files(str(card))
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(ARTIFACTS / "register-phone.png"), full_page=True)
        page.get_by_role("button", name="Send").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Thank you"
        page.close()
    finally:
        site.settings = None
    assert [r["side"] for r in query(settings, "SELECT side FROM intake_upload")] == ["front"]
