"""The console's monitoring chart over a dataset of 200 000 points (downsampled on the server) with
incidents as markers and zooming, and the incidents pages: filters, export, triage, audit view."""

from __future__ import annotations

import datetime as dt
import io
import re

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect

from lifecycle.db import make_engine
from lifecycle.incidents import Incident
from sqlalchemy.orm import Session
from tests.lifecycle.browser.conftest import ADMIN, Browser, Service

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
T0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
N = 200_000


def upload_dataset(service: Service, name: str, n: int) -> None:
    t = np.arange(n)
    frame = pd.DataFrame({"time": pd.to_datetime(T0) + pd.to_timedelta(t, unit="s"),
                          "Pressure": np.sin(t / 3000.0) * 5 + 5, "Motor current": np.cos(t / 7000.0)})
    frame.loc[150_000, "Pressure"] = 99.0  # a one-point spike the downsampled chart must keep
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    r = service.admin.post("/datasets", data={"name": name}, files={"file": ("data.parquet", buf.getvalue())},
                           timeout=120)
    assert r.status_code == 201, r.text


def add_incidents(service: Service, model: str) -> list[int]:
    """Incidents as the detector records them (rows of the service's database)."""
    engine = make_engine(service.db_url)
    ids = []
    with Session(engine) as session, session.begin():
        for seq, (a, b, element, production) in enumerate([(40_000, 41_000, "overpressure", False),
                                                           (150_000, 150_100, "overpressure", True),
                                                           (180_000, 180_500, "flow", False)]):
            row = Incident(model=model, element=element, kind="rule", start=T0 + dt.timedelta(seconds=a),
                           end=T0 + dt.timedelta(seconds=b), registered_at=T0 + dt.timedelta(seconds=a),
                           top_tags=[{"tag": "Pressure", "value": 12.5, "share": 0.8}], top_tag="Pressure",
                           artifact=1.0, threshold=0.5, status="Under review", production=production,
                           source="historical", run=1, seq=seq, group=None)
            session.add(row)
            session.flush()
            row.group = row.id
            ids.append(row.id)
    engine.dispose()
    return ids


def test_monitoring_chart_of_200k_points_with_incident_markers_and_zoom(browser: Browser, service: Service) -> None:
    upload_dataset(service, "pump-march", N)
    assert service.admin.post("/models", json={"name": "pump7"}).status_code == 201
    add_incidents(service, "pump7")
    page = browser.signed_in(service, ADMIN)
    page.goto(service.url + "/#/monitor?dataset=pump-march&model=pump7")
    status = page.locator("#monitor-status")
    expect(status).to_contain_text("400,000 points shown as", timeout=30_000)  # two tags
    expect(status).to_contain_text("3 incidents")
    assert page.locator("#monitor-chart canvas").count() == 1
    shown = int(re.search(r"shown as ([\d,]+)", status.text_content()).group(1).replace(",", ""))
    assert shown <= 2 * 2 * 4000 + 100
    # the spike survives downsampling (the y axis reaches it)
    series = service.admin.get("/datasets/pump-march/series", params={"tag": "Pressure", "buckets": 500}).json()
    assert max(v for v in series["series"]["Pressure"]["values"] if v is not None) == 99.0

    # drag across the middle fifth of the plot: the page asks the server for that range only
    over = page.locator("#monitor-chart .u-over").bounding_box()
    y = over["y"] + over["height"] / 2
    page.mouse.move(over["x"] + over["width"] * 0.4, y)
    page.mouse.down()
    page.mouse.move(over["x"] + over["width"] * 0.5, y, steps=5)
    page.mouse.move(over["x"] + over["width"] * 0.6, y, steps=5)
    page.mouse.up()
    expect(status).not_to_contain_text("400,000 points", timeout=20_000)
    zoomed = int(re.search(r"^.*?: ([\d,]+) points", status.text_content()).group(1).replace(",", ""))
    assert 2 * N * 0.1 < zoomed < 2 * N * 0.3
    page.click("#zoom-reset")
    expect(status).to_contain_text("400,000 points shown as")


def test_incidents_filter_triage_export_and_the_change_in_the_audit_view(browser: Browser, service: Service) -> None:
    assert service.admin.post("/models", json={"name": "pump7"}).status_code == 201
    ids = add_incidents(service, "pump7")
    engineer = service.user("erin", ["incidents.edit"])
    viewer = service.user("vic", [])

    page = browser.signed_in(service, viewer)
    page.goto(service.url + f"/#/incidents/{ids[0]}")
    page.wait_for_selector("h1:text-is('Incident #%d')" % ids[0])
    assert page.locator("#triage-form").count() == 0  # no right incidents.edit: no triage offered
    assert service.api(viewer).patch(f"/incidents/{ids[0]}", json={"status": "Ignore"}).status_code == 403
    page.click("#sign-out")
    page.wait_for_selector("#signin-form")

    browser.signed_in(service, engineer, page)
    page.click("#nav a[href='#/incidents']")
    expect(page.locator("tbody tr")).to_have_count(3)
    page.fill("#incident-filters input[name=element]", "overpressure")
    page.select_option("#incident-filters select[name=production]", "true")
    page.click("#incident-filters button[type=submit]")
    expect(page.locator("tbody tr")).to_have_count(1)
    assert "production" in page.locator("tbody tr").text_content()
    export = page.locator("a", has_text="Export CSV").get_attribute("href")
    assert export.startswith("/api/v1/incidents/export?") and "production=true" in export
    with page.expect_download() as dl:
        page.click("a:text('Export CSV')")
    lines = open(dl.value.path(), encoding="utf-8").read().strip().splitlines()
    assert len(lines) == 2 and str(ids[1]) in lines[1]

    page.click(f"a:text-is('#{ids[1]}')")
    page.wait_for_selector("#triage-form")
    assert "Pressure" in page.text_content("table")
    page.select_option("#triage-form select[name=status]", "Instructions issued")
    page.fill("#triage-form input[name=cause]", "bearing wear")
    page.fill("#triage-form textarea[name=note]", "replace the bearing next stop")
    page.click("#triage-form button[type=submit]")
    expect(page.locator("#incident-status")).to_have_text("Instructions issued")
    stored = service.admin.get(f"/incidents/{ids[1]}").json()
    assert (stored["status"], stored["cause"], stored["note"]) == ("Instructions issued", "bearing wear",
                                                                   "replace the bearing next stop")

    page.click("#nav a[href='#/audit']")
    page.fill("#audit-filters input[name=type]", "incident")
    page.fill("#audit-filters input[name=actor]", "erin")
    page.click("#audit-filters button[type=submit]")
    expect(page.locator("tbody tr")).to_have_count(1)
    row = page.locator("tbody tr").text_content()
    assert "incidents.triage" in row and "Under review → Instructions issued" in row
