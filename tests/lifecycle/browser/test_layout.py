"""The console at 1280×800 and on a narrow window (390×800): every page fits the window's width
(nothing wider than the viewport but the tables' own scroll areas) and its navigation stays usable."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.lifecycle.browser.conftest import ADMIN, Browser, Service

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
PAGES = ["#/models", "#/models/pump7", "#/jobs", "#/monitor", "#/incidents", "#/maas", "#/audit"]


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_fits_the_window(browser: Browser, service: Service, width: int, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("layout does not depend on the database")
    assert service.admin.post("/models", json={"name": "pump7", "asset": "plant1/pump7",
                                               "description": "a long description " * 8}).status_code == 201
    page = browser.page()
    page.set_viewport_size({"width": width, "height": 800})
    browser.signed_in(service, ADMIN, page)
    for fragment in PAGES:
        page.goto(f"{service.url}/{fragment}")
        expect(page.locator("main h1")).not_to_have_text("Loading…")
        page.wait_for_load_state("networkidle")
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{fragment} is {overflow}px wider than a {width}px window"
        assert page.locator("#nav").is_visible() and page.locator("#sign-out").is_visible()


def test_a_page_left_while_loading_never_replaces_the_next(browser: Browser, service: Service, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("page switching does not depend on the database")
    assert service.admin.post("/models", json={"name": "pump7"}).status_code == 201
    page = browser.signed_in(service, ADMIN)
    for _ in range(5):  # leave each page at once, while its requests are still out
        page.evaluate("location.hash = '#/models/pump7'; location.hash = '#/jobs'; location.hash = '#/audit'")
        expect(page.locator("main h1")).to_have_text("Audit trail")
        page.wait_for_load_state("networkidle")
        expect(page.locator("main h1")).to_have_text("Audit trail")
        assert page.locator("#audit-filters").count() == 1
