"""Browser tests of the web console: a real ``maas_lifecycle serve`` process on a real database (SQLite
and PostgreSQL through ``db_url``), driven by Debian's headless Chromium through Playwright.

Nothing downloads a browser: Playwright launches ``/usr/bin/chromium`` (``executable_path``) with a
fresh user-data directory per test. Every page's console errors and uncaught exceptions are
collected and must be none. A failing test saves a screenshot of each of its pages to
``$MAAS_TEST_SCREENSHOTS`` (default ``<tmp>/maas-browser-screenshots``) and prints where.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest

from lifecycle.testing.service import ServiceProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ADMIN = "browser-admin-token-0123456789"
SCREENSHOTS = Path(os.environ.get("MAAS_TEST_SCREENSHOTS") or Path(tempfile.gettempdir()) / "maas-browser-screenshots")


class Service(ServiceProcess):
    """``maas_lifecycle serve`` in a process of its own, with an administrator token."""

    def __init__(self, db_url: str, data_dir: Path, *extra: str, workers: int = 1) -> None:
        super().__init__(db_url, data_dir, ADMIN, *extra, workers=workers)
        self.admin = self.client()

    def api(self, token: str) -> httpx.Client:
        return self.client(token)

    def user(self, name: str, rights: list[str]) -> str:
        """A user with one role of ``rights``; its token."""
        r = self.admin.post("/roles", json={"name": f"role-{name}", "rights": rights})
        assert r.status_code == 201, r.text
        r = self.admin.post("/users", json={"name": name, "roles": [f"role-{name}"]})
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def stop(self, grace: float = 20) -> None:
        self.admin.close()
        super().stop(grace)


@pytest.fixture
def make_service(db_url: str, tmp_path: Path) -> Iterator[Callable[..., Service]]:
    started: list[Service] = []

    def make(*extra: str, workers: int = 1) -> Service:
        s = Service(db_url, tmp_path / f"data{len(started)}", *extra, workers=workers)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def service(make_service: Callable[..., Service]) -> Service:
    return make_service()


@dataclass
class Browser:
    """Pages of one Chromium whose console errors are collected."""

    context: Any
    errors: list[str] = field(default_factory=list)
    pages: list[Any] = field(default_factory=list)

    def page(self) -> Any:
        page = self.context.new_page()
        page.set_default_timeout(20_000)
        page.on("console", lambda m: self.errors.append(f"{page.url}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: uncaught {exc}"))
        self.pages.append(page)
        return page

    def signed_in(self, service: Service, token: str, page: Any | None = None) -> Any:
        """A page signed in to ``service`` with ``token`` through the sign-in form, on the models list."""
        page = page or self.page()
        page.goto(service.url + "/")
        page.fill("#token", token)
        page.click("#signin-form button[type=submit]")
        page.wait_for_selector("#user-name")
        page.wait_for_selector("h1:text-is('Models')")
        return page


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def browser(request: pytest.FixtureRequest, make_service: Callable[..., Service], tmp_path: Path) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 800})
        b = Browser(context)
        try:
            yield b
        finally:
            failed = any(getattr(getattr(request.node, f"report_{w}", None), "failed", False) for w in ("setup", "call"))
            if failed:
                SCREENSHOTS.mkdir(parents=True, exist_ok=True)
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
                for i, page in enumerate(b.pages):
                    try:
                        path = SCREENSHOTS / f"{name}-{i}.png"
                        page.screenshot(path=str(path), full_page=True)
                        print(f"screenshot of {page.url}: {path}")
                    except Exception as exc:  # a crashed page has no screenshot; say so and go on
                        print(f"no screenshot of page {i}: {exc}")
                for log in sorted(tmp_path.glob("data*/serve.log")):
                    print(f"{log}:\n" + log.read_text(errors="replace")[-4000:])
            context.close()
        if not failed:
            assert b.errors == [], "console errors:\n" + "\n".join(b.errors)
