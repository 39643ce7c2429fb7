"""The console over the service's own workers: historical inference of a rule model started from
the model's page, its artifact, threshold and incident markers on the monitoring page; training of
a forecaster with its loss per epoch on the job's and the model's pages."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect

from tests.lifecycle.browser.conftest import ADMIN, Browser, Service
from tests.lifecycle.browser.test_monitoring_incidents import T0

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def upload(service: Service, name: str, frame: pd.DataFrame) -> None:
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    r = service.admin.post("/datasets", data={"name": name, "grid_step_s": "10"},
                           files={"file": ("d.parquet", buf.getvalue())}, timeout=120)
    assert r.status_code == 201, r.text


def test_historical_inference_from_the_model_page_and_incident_markers(browser: Browser, service: Service) -> None:
    n = 20_000
    t = np.arange(n)
    pressure = 5 + np.sin(t / 500.0)
    pressure[8000:9000] = 15.0  # one overpressure episode
    upload(service, "week", pd.DataFrame({"time": pd.to_datetime(T0) + pd.to_timedelta(t * 10, unit="s"),
                                          "Pressure": pressure}))
    assert service.admin.post("/models", json={"name": "pump7"}).status_code == 201
    r = service.admin.post("/models/pump7/elements", json={"name": "overpressure", "kind": "rule", "inputs": ["Pressure"],
                                                          "params": {"expression": "Pressure > 10"}})
    assert r.status_code == 201, r.text

    page = browser.signed_in(service, ADMIN)
    page.goto(service.url + "/#/models/pump7")
    page.click("#action-infer")
    page.wait_for_selector("#job-state")
    expect(page.locator("#job-state")).to_have_text("done", timeout=120_000)
    incidents = service.admin.get("/incidents", params={"model": "pump7"}).json()["incidents"]
    assert incidents, "the overpressure episode registered no incident"

    page.goto(service.url + "/#/monitor?dataset=week&model=pump7&element=overpressure")
    expect(page.locator("#artifact-status")).to_contain_text("result points shown as", timeout=30_000)
    expect(page.locator("#monitor-status")).to_contain_text(f"{len(incidents)} incidents")
    assert page.locator("#artifact-chart canvas").count() == 1
    series = service.admin.get("/models/pump7/results/series",
                               params={"element": "overpressure", "buckets": 200}).json()["series"]
    assert max(v for v in series["artifact"]["values"] if v is not None) == 1.0
    assert series["artifact"]["points_in"] > 0 and series["threshold"]["points_in"] == series["artifact"]["points_in"]
    # the incident's page charts the artifact around it
    page.goto(service.url + f"/#/incidents/{incidents[0]['id']}")
    expect(page.locator("#incident-chart-status")).to_contain_text("result points", timeout=30_000)
    assert page.locator("#incident-chart canvas").count() == 1


def test_training_shows_live_progress_and_the_loss_chart_and_retraining_asks_first(
        browser: Browser, service: Service) -> None:
    n = 600
    i = np.arange(n)
    load = (i % 50) / 50.0
    upload(service, "march", pd.DataFrame({"time": pd.to_datetime(T0) + pd.to_timedelta(i * 10, unit="s"),
                                           "Flow": 40 + 4 * load, "Motor current": 12 + 1.5 * load,
                                           "Pressure": 1 + 0.2 * load + 0.001 * (i % 7)}))
    r = service.admin.post("/markups", json={"name": "normal", "intervals": [
        {"from": "2024-03-01T00:00:00Z", "to": "2024-03-01T01:00:00Z"}]})
    assert r.status_code == 201, r.text
    assert service.admin.post("/models", json={"name": "flowmodel"}).status_code == 201
    r = service.admin.post("/models/flowmodel/elements", json={
        "name": "pressure", "kind": "forecaster", "inputs": ["Flow", "Motor current"], "outputs": ["Pressure"],
        "window": 2, "training": {"dataset": "march", "markups": ["normal"], "max_epochs": 12, "patience": 50}})
    assert r.status_code == 201, r.text

    page = browser.signed_in(service, ADMIN)
    page.goto(service.url + "/#/models/flowmodel")
    page.click("#action-train")  # not trained yet: no confirmation
    page.wait_for_selector("#job-state")
    expect(page.locator("#job-state")).to_have_text("done", timeout=240_000)
    expect(page.locator("#job-loss canvas")).to_have_count(1)
    job = service.admin.get("/jobs", params={"model": "flowmodel"}).json()["jobs"][0]
    assert job["state"] == "done" and len(job["progress"]["losses"]) >= 2

    page.goto(service.url + "/#/models/flowmodel")
    expect(page.locator("#model-status")).to_have_text("TRAINED")
    expect(page.locator(".loss-chart[data-element='pressure'] canvas")).to_have_count(1)
    # retraining a trained element asks first; cancelling queues nothing
    page.click("#action-train")
    assert "Retrain the trained elements of flowmodel?" in page.text_content("#confirm-text")
    page.click("#confirm button[value=cancel]")
    assert len(service.admin.get("/jobs", params={"model": "flowmodel"}).json()["jobs"]) == 1
