"""The status machine of ML models through the API (docs/lifecycle.md): every action from every
status it allows succeeds with the table's target, every other one is 409 with the reason, and
each refusal is in the audit trail. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from lifecycle import models as svc
from lifecycle.markups import Caller
from lifecycle.status import BY_ACTION, FROZEN, TRANSITIONS, Status, check, derived_status
from lifecycle.errors import Conflict

RULE: dict[str, Any] = {"name": "r1", "kind": "rule", "inputs": ["Pressure"],
                        "params": {"expression": "Pressure > 10"}}
FORECASTER: dict[str, Any] = {"name": "f1", "kind": "forecaster", "inputs": ["Current"], "outputs": ["Pressure"],
                              "window": 3, "training": {"dataset": "pump-2024"}}


def make_model(client: TestClient, name: str, status: Status) -> dict[str, Any]:
    """A model brought to ``status`` through the API (NOT_ACTIVATED through an archive)."""
    if status is Status.NOT_ACTIVATED:
        make_model(client, name + "-src", Status.TRAINED)
        archive = client.get(f"/api/v1/models/{name}-src/export")
        assert archive.status_code == 200, archive.text
        r = client.post("/api/v1/models/import", files={"archive": ("m.tar.gz", archive.content)},
                        data={"name": name})
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "NOT_ACTIVATED"
        return r.json()
    r = client.post("/api/v1/models", json={"name": name, "asset": "plant1/pump7"})
    assert r.status_code == 201, r.text
    assert client.post(f"/api/v1/models/{name}/elements", json=RULE).status_code == 201
    if status is Status.DRAFT:
        r = client.post(f"/api/v1/models/{name}/elements", json=FORECASTER)
        assert r.status_code == 201, r.text
        assert r.json()["training_status"] == "not_trained"
    if status in (Status.READY_FOR_PUBLICATION, Status.PUBLISHED):
        assert client.post(f"/api/v1/models/{name}/prepare").status_code == 200
    if status is Status.PUBLISHED:
        assert client.post(f"/api/v1/models/{name}/publish").status_code == 200
    got = client.get(f"/api/v1/models/{name}").json()
    assert got["status"] == status.value, got
    return got


#: action → (method, path under the model, JSON body)
CALLS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "edit": ("PUT", "", {"description": "changed"}),
    "element.add": ("POST", "/elements", {**RULE, "name": "r2"}),
    "element.change": ("PUT", "/elements/r1", {**RULE, "name": None, "params": {"expression": "Pressure > 11"}}),
    "element.remove": ("DELETE", "/elements/r1", None),
    "prepare": ("POST", "/prepare", None),
    "publish": ("POST", "/publish", None),
    "activate": ("POST", "/activate", None),
    "clone": ("POST", "/clone", {"name": "copy"}),
    "template": ("POST", "/template", {"name": "copy"}),
    "delete": ("DELETE", "", None),
}


def expected_after(action: str, status: Status) -> Status | None:
    """The status the model (or the copy) has after an allowed call; None when it is gone."""
    if action == "delete":
        return None
    if action in ("clone", "template"):
        return Status.NOT_ACTIVATED if status is Status.NOT_ACTIVATED else (
            Status.DRAFT if status is Status.DRAFT else Status.TRAINED)
    target = BY_ACTION[action].target
    if isinstance(target, Status):
        return target
    if action == "element.remove" and status is Status.TRAINED:
        return Status.DRAFT  # its only element is gone: a model without elements is a DRAFT
    return status  # edits of these models keep their derived status (no trainable element changes)


@pytest.mark.parametrize("status", list(Status), ids=lambda s: s.value)
def test_every_action_from_every_status(client: TestClient, status: Status) -> None:
    """One model per action, each brought to ``status``, then the action called on it."""
    for n, action in enumerate(CALLS):
        name, copy_name = f"m{n}", f"copy{n}"
        row = BY_ACTION[action]
        make_model(client, name, status)
        method, suffix, body = CALLS[action]
        if body is not None and body.get("name") == "copy":
            body = {**body, "name": copy_name}
        if status is Status.NOT_ACTIVATED and action in ("element.add", "element.remove"):
            allowed = False  # an imported model cannot gain or lose elements (and is not editable anyway)
        else:
            allowed = status in row.sources
        if action == "prepare" and status is Status.DRAFT:
            allowed = False
        r = client.request(method, f"/api/v1/models/{name}{suffix}", json=body)
        if not allowed:
            assert r.status_code == 409, (action, status, r.text)
            error = r.json()["error"]
            assert error.startswith("cannot "), error
            if status in FROZEN:
                assert "frozen" in error
            entries = client.get("/api/v1/audit", params={"outcome": "refused"}).json()["entries"]
            assert entries[-1]["detail"]["status"] == 409, (action, entries)
            assert entries[-1]["status_before"] == status.value
            assert entries[-1]["action"] == f"models.{action}"
            assert entries[-1]["object"] in (name, f"{name}/r1")
            assert client.get(f"/api/v1/models/{name}").json()["status"] == status.value  # nothing changed
            continue
        assert r.status_code in (200, 201, 204), (action, status, r.text)
        after = expected_after(action, status)
        if action in ("clone", "template"):
            copy = client.get(f"/api/v1/models/{copy_name}").json()
            assert copy["status"] == after.value, (action, status, copy)
            assert copy["origin"] == action and copy["origin_source"] == name
        elif after is None:
            assert client.get(f"/api/v1/models/{name}").status_code == 404
        else:
            assert client.get(f"/api/v1/models/{name}").json()["status"] == after.value, (action, status)


def test_the_table_is_the_gate() -> None:
    for row in TRANSITIONS:
        for status in Status:
            if status in row.sources:
                assert check(row.action, status) is row
            else:
                with pytest.raises(Conflict) as err:
                    check(row.action, status)
                assert err.value.message.startswith("cannot ")
    assert derived_status([]) is Status.DRAFT
    assert derived_status([("rule", "trained")]) is Status.TRAINED
    assert derived_status([("rule", "trained"), ("forecaster", "not_trained")]) is Status.DRAFT


def test_rule_only_model_is_trained_and_a_forecaster_makes_it_draft(client: TestClient) -> None:
    client.post("/api/v1/models", json={"name": "m"})
    assert client.get("/api/v1/models/m").json()["status"] == "DRAFT"  # no element yet
    client.post("/api/v1/models/m/elements", json=RULE)
    assert client.get("/api/v1/models/m").json()["status"] == "TRAINED"
    client.post("/api/v1/models/m/elements", json=FORECASTER)
    m = client.get("/api/v1/models/m").json()
    assert m["status"] == "DRAFT" and m["revision"] == 3
    r = client.post("/api/v1/models/m/prepare")
    assert r.status_code == 409 and "'f1' not trained" in r.json()["error"]


def _train(client: TestClient, model: str, element: str) -> None:
    """What a finished training job records (lifecycle.training calls the same repository function)."""
    sessions = client.app.state.lifecycle.sessions  # type: ignore[attr-defined]
    with sessions.begin() as session:
        e = svc.element_of(svc.get(session, model), element)
        svc.mark_element_trained(session, Caller("trainer"), model, element, revision=e.revision,
                                 artifact={"path": f"/payloads/{model}/{element}", "sha256": "ab" * 32})


def test_changing_an_element_resets_it_and_the_model(client: TestClient) -> None:
    make_model(client, "m", Status.DRAFT)
    _train(client, "m", "f1")
    m = client.get("/api/v1/models/m").json()
    assert m["status"] == "TRAINED"
    assert [e["training_status"] for e in m["elements"]] == ["trained", "trained"]
    # detection settings do not touch what was learnt
    r = client.put("/api/v1/models/m/elements/f1", json={**FORECASTER, "detection": {"threshold": 2.5}})
    assert r.status_code == 200 and r.json()["training_status"] == "trained"
    # anything else does
    r = client.put("/api/v1/models/m/elements/f1", json={**FORECASTER, "window": 4})
    assert r.status_code == 200 and r.json()["training_status"] == "not_trained" and r.json()["artifact"] is None
    assert client.get("/api/v1/models/m").json()["status"] == "DRAFT"


def test_a_training_result_of_a_changed_element_is_dropped(client: TestClient) -> None:
    make_model(client, "m", Status.DRAFT)
    sessions = client.app.state.lifecycle.sessions  # type: ignore[attr-defined]
    with sessions.begin() as session:
        started = svc.element_of(svc.get(session, "m"), "f1").revision
    client.put("/api/v1/models/m/elements/f1", json={**FORECASTER, "window": 5})
    with sessions.begin() as session, pytest.raises(Conflict, match="changed during its training"):
        svc.mark_element_trained(session, Caller("trainer"), "m", "f1", revision=started, artifact={"sha256": "x"})
    assert client.get("/api/v1/models/m").json()["status"] == "DRAFT"


def test_prepare_freezes_with_a_digest_and_publish_records_who(client: TestClient) -> None:
    make_model(client, "m", Status.TRAINED)
    before = client.get("/api/v1/models/m").json()
    prepared = client.post("/api/v1/models/m/prepare").json()
    assert prepared["status"] == "READY_FOR_PUBLICATION" and prepared["prepared_by"] == "admin"
    assert prepared["sha256"] == before["definition_sha256"] and len(prepared["sha256"]) == 64
    published = client.post("/api/v1/models/m/publish").json()
    assert published["status"] == "PUBLISHED" and published["published_by"] == "admin"
    assert published["sha256"] == prepared["sha256"]
    trail = client.get("/api/v1/audit", params={"object": "m", "action": "models.publish"}).json()["entries"]
    assert [(e["actor"], e["status_before"], e["status_after"]) for e in trail] == [
        ("admin", "READY_FOR_PUBLICATION", "PUBLISHED")]


def test_the_digest_covers_the_definition_not_the_name(client: TestClient) -> None:
    make_model(client, "a", Status.TRAINED)
    make_model(client, "b", Status.TRAINED)
    a, b = client.get("/api/v1/models/a").json(), client.get("/api/v1/models/b").json()
    assert a["definition_sha256"] == b["definition_sha256"]
    client.put("/api/v1/models/b/elements/r1", json={**RULE, "params": {"expression": "Pressure > 12"}})
    assert client.get("/api/v1/models/b").json()["definition_sha256"] != a["definition_sha256"]


def test_clone_of_a_published_model_is_editable(client: TestClient) -> None:
    make_model(client, "m", Status.PUBLISHED)
    r = client.post("/api/v1/models/m/clone", json={"name": "m2"})
    assert r.status_code == 201
    clone = r.json()
    assert clone["status"] == "TRAINED" and clone["origin"] == "clone" and clone["sha256"] is None
    assert [e["name"] for e in clone["elements"]] == ["r1"]
    assert client.post("/api/v1/models/m2/elements", json=FORECASTER).status_code == 201
    assert client.get("/api/v1/models/m2").json()["status"] == "DRAFT"
    assert client.get("/api/v1/models/m").json()["status"] == "PUBLISHED"


def test_names_are_unique(client: TestClient) -> None:
    client.post("/api/v1/models", json={"name": "m"})
    r = client.post("/api/v1/models", json={"name": "m"})
    assert r.status_code == 409 and r.json()["field"] == "name"
    assert client.post("/api/v1/models/m/clone", json={"name": "m"}).status_code == 409
    client.post("/api/v1/models/m/elements", json=RULE)
    r = client.post("/api/v1/models/m/elements", json=RULE)
    assert r.status_code == 409 and "already" in r.json()["error"]


def test_four_eyes_rule(make_app: Any) -> None:
    from tests.lifecycle.conftest import ADMIN_TOKEN, auth_header

    with TestClient(make_app(four_eyes=True), headers=auth_header(ADMIN_TOKEN)) as c:
        c.post("/api/v1/roles", json={"name": "publisher", "rights": ["models.publish"]})
        token = c.post("/api/v1/users", json={"name": "pat", "roles": ["publisher"]}).json()["token"]
        make_model(c, "m", Status.READY_FOR_PUBLICATION)
        r = c.post("/api/v1/models/m/publish")
        assert r.status_code == 409 and "four-eyes" in r.json()["error"]
        r = c.post("/api/v1/models/m/publish", headers=auth_header(token))
        assert r.status_code == 200 and r.json()["published_by"] == "pat"


def test_the_docs_show_the_status_table() -> None:
    from pathlib import Path

    from lifecycle.status import table_markdown

    docs = (Path(__file__).resolve().parents[2] / "docs" / "lifecycle.md").read_text()
    assert table_markdown() in docs, "docs/lifecycle.md, Statuses: paste lifecycle.status.table_markdown()"


def test_the_revision_counts_real_changes(client: TestClient) -> None:
    client.post("/api/v1/models", json={"name": "m", "description": "d"})
    assert client.get("/api/v1/models/m").json()["revision"] == 1
    client.put("/api/v1/models/m", json={"description": "d"})
    assert client.get("/api/v1/models/m").json()["revision"] == 1
    client.put("/api/v1/models/m", json={"description": "e"})
    client.post("/api/v1/models/m/elements", json=RULE)
    client.put("/api/v1/models/m/elements/r1", json=RULE)  # the same definition
    m = client.get("/api/v1/models/m").json()
    assert m["revision"] == 3 and m["elements"][0]["revision"] == 1
    edits = client.get("/api/v1/audit", params={"object": "m", "action": "models.edit"}).json()["entries"]
    assert [e["detail"] for e in edits] == [{"changed": False}, None]
