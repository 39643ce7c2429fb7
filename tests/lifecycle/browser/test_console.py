"""The web console in a real headless Chromium against a real ``maas_lifecycle serve``: sign-in, a
model with a rule element, publication refused and allowed by rights, the audit view, incidents
and their triage, the monitoring chart over a large dataset with incident markers, training loss."""

from __future__ import annotations

import datetime as dt
import io
import re

import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect

from tests.lifecycle.browser.conftest import ADMIN, Browser, Service

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_sign_in_create_a_model_with_a_rule_element_and_sign_out(browser: Browser, service: Service) -> None:
    page = browser.signed_in(service, ADMIN)
    assert page.text_content("#user-name") == "admin"
    page.fill("#create-model input[name=name]", "pump7")
    page.fill("#create-model input[name=asset]", "plant1/pump7")
    page.click("#create-model button[type=submit]")
    page.wait_for_selector("h1:text-is('Model pump7')")
    assert page.text_content("#model-status") == "DRAFT"
    page.fill("#add-element input[name=name]", "overpressure")
    page.fill("#add-element input[name=inputs]", "Pressure")
    page.fill("#add-element input[name=expression]", "Pressure > 10")
    page.click("#add-element button[type=submit]")
    page.wait_for_selector("td:text-is('overpressure')")
    # a model of rules only is trained from the start
    expect(page.locator("#model-status")).to_have_text("TRAINED")
    stored = service.admin.get("/models/pump7").json()
    assert stored["asset"] == "plant1/pump7"
    assert [(e["name"], e["kind"], e["params"]["expression"]) for e in stored["elements"]] == [
        ("overpressure", "rule", "Pressure > 10")]
    # the models list shows it with its status and asset
    page.click("#nav a[href='#/models']")
    row = page.locator("tr", has_text="pump7")
    row.wait_for()
    assert "TRAINED" in row.text_content() and "plant1/pump7" in row.text_content()
    # the session cookie is HttpOnly: the page's script cannot read it
    assert "maas_session" not in page.evaluate("document.cookie")
    cookies = {c["name"]: c for c in browser.context.cookies()}
    assert cookies["maas_session"]["httpOnly"] and cookies["maas_session"]["sameSite"] == "Strict"
    page.click("#sign-out")
    page.wait_for_selector("#signin-form")
    page.reload()
    page.wait_for_selector("#signin-form")


def test_publish_is_refused_for_one_user_and_allowed_for_another_and_the_audit_view_shows_it(
        browser: Browser, service: Service) -> None:
    preparer = service.user("pat", ["models.create", "models.edit", "models.prepare", "models.train"])
    publisher = service.user("quinn", ["models.publish"])
    api = service.api(preparer)
    assert api.post("/models", json={"name": "m1", "asset": "a/b"}).status_code == 201
    assert api.post("/models/m1/elements", json={"name": "r", "kind": "rule", "inputs": ["P"],
                                                   "params": {"expression": "P > 1"}}).status_code == 201

    page = browser.signed_in(service, preparer)
    page.goto(service.url + "/#/models/m1")
    page.wait_for_selector("#action-prepare")
    page.click("#action-prepare")
    page.click("#confirm-ok")
    expect(page.locator("#model-status")).to_have_text("READY_FOR_PUBLICATION")
    # pat may not publish: the console does not offer it, and the server refuses it
    page.wait_for_selector("#model-actions")
    assert page.locator("#action-publish").count() == 0
    refused = api.post("/models/m1/publish")
    assert refused.status_code == 403 and refused.json()["right"] == "models.publish"
    page.click("#sign-out")
    page.wait_for_selector("#signin-form")

    browser.signed_in(service, publisher, page)
    page.goto(service.url + "/#/models/m1")
    page.click("#action-publish")
    assert "Publish m1?" in page.text_content("#confirm-text")
    page.click("#confirm-ok")
    expect(page.locator("#model-status")).to_have_text("PUBLISHED")
    assert service.admin.get("/models/m1").json()["published_by"] == "quinn"
    # the status history on the model's page comes from the audit trail
    page.wait_for_selector("td:text-is('models.publish')")

    page.goto(service.url + "/#/audit")
    page.fill("#audit-filters input[name=action]", "models.publish")
    page.click("#audit-filters button[type=submit]")
    expect(page).to_have_url(re.compile(r"action=models\.publish"))
    expect(page.locator("tbody tr")).to_have_count(2)  # the filtered table replaced the whole trail
    ok = page.locator("tbody tr", has_text="quinn")
    assert "READY_FOR_PUBLICATION → PUBLISHED" in ok.text_content() and "ok" in ok.text_content()
    no = page.locator("tbody tr", has_text="pat")
    assert "refused" in no.text_content()
