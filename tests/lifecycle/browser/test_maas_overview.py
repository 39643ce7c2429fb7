"""The console's MaaS overview against a real ZooKeeper and controller: a deployed model's
instances appear, and one disappears from the page when its process is killed."""

from __future__ import annotations

import os
import signal
from typing import Callable

import pytest
from playwright.sync_api import expect

from tests.cluster import Cluster
from tests.lifecycle.browser.conftest import ADMIN, Browser, Service

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.zk]


def test_the_overview_shows_instances_and_a_killed_one_disappearing(
        browser: Browser, make_service: Callable[..., Service], cluster: Cluster, db_url: str) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the overview reads ZooKeeper only; one database is enough")
    cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1.0", "-ni", "2", "-hmp", "/models/echo/1.0", "--wait")
    service = make_service("-zq", cluster.quorum, workers=0)
    page = browser.signed_in(service, ADMIN)
    page.click("#nav a[href='#/maas']")
    row = page.locator("#maas-body tbody tr", has_text="echo")
    expect(row.locator("li")).to_have_count(2, timeout=30_000)
    cells = row.locator("td")
    assert cells.nth(1).text_content() == "1.0" and cells.nth(2).text_content() == "2"
    expect(cells.nth(4)).to_have_text("2", timeout=30_000)  # ready

    regs = cluster.registrations("echo")
    victim_id, victim = next(iter(regs.items()))
    assert page.locator(f"li[data-instance='{victim_id}']").count() == 1
    os.kill(cluster.service_pid(victim["port"]), signal.SIGKILL)
    # the page refreshes by itself: the killed instance's endpoint goes
    expect(page.locator(f"li[data-instance='{victim_id}']")).to_have_count(0, timeout=30_000)
    # the same model and version as maas_deploy -mo LIST prints
    assert "Model echo @ 1.0" in cluster.maas_deploy("-mo", "LIST").stdout
