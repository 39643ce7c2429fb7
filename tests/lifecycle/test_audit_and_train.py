"""The audit trail queried by object, actor and time (with paging); the train route queueing a
job with its guards; /metrics. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

RULE: dict[str, Any] = {"name": "r1", "kind": "rule", "inputs": ["Pressure"], "params": {"expression": "Pressure > 10"}}
FORECASTER: dict[str, Any] = {"name": "f1", "kind": "forecaster", "inputs": ["Current"], "outputs": ["Pressure"],
                              "training": {"dataset": "pump"}}


def test_audit_by_object_actor_time_and_pages(client: TestClient) -> None:
    for name in ("a", "b", "c"):
        client.post("/api/v1/models", json={"name": name})
    client.post("/api/v1/models/a/elements", json=RULE)
    client.post("/api/v1/models/a/prepare")
    client.post("/api/v1/models/a/publish")
    everything = client.get("/api/v1/audit").json()["entries"]
    assert everything[0]["action"] == "users.bootstrap"
    creates = [e for e in everything if e["action"] == "models.create"]
    assert [e["object"] for e in creates] == ["a", "b", "c"]
    # [from, to): from the second create up to (not including) the third
    window = client.get("/api/v1/audit", params={"action": "models.create", "from": creates[1]["at"],
                                                  "to": creates[2]["at"]}).json()["entries"]
    assert [e["object"] for e in window] == ["b"]
    published = client.get("/api/v1/audit", params={"action": "models.publish", "from": everything[0]["at"]}).json()
    assert [(e["object"], e["actor"], e["status_after"]) for e in published["entries"]] == [("a", "admin", "PUBLISHED")]
    assert client.get("/api/v1/audit", params={"actor": "nobody"}).json()["entries"] == []
    by_object = client.get("/api/v1/audit", params={"object": "a", "type": "model"}).json()["entries"]
    assert [e["action"] for e in by_object] == ["models.create", "models.prepare", "models.publish"]
    element = client.get("/api/v1/audit", params={"object": "a/r1"}).json()["entries"]
    assert [(e["action"], e["object_type"], e["status_before"], e["status_after"]) for e in element] == [
        ("models.element.add", "element", "DRAFT", "TRAINED")]
    # pages
    first = client.get("/api/v1/audit", params={"limit": 2}).json()
    assert len(first["entries"]) == 2 and first["next"] == first["entries"][-1]["id"]
    second = client.get("/api/v1/audit", params={"limit": 2, "after": first["next"]}).json()
    assert second["entries"][0]["id"] > first["next"]
    r = client.get("/api/v1/audit", params={"from": "yesterday"})
    assert r.status_code == 422 and r.json()["field"] == "from"


def test_train_queues_a_job_with_the_guards(client: TestClient) -> None:
    client.post("/api/v1/models", json={"name": "rules"})
    client.post("/api/v1/models/rules/elements", json=RULE)
    r = client.post("/api/v1/models/rules/train")
    assert r.status_code == 409 and "pretrained" in r.json()["error"]

    client.post("/api/v1/models", json={"name": "m"})
    client.post("/api/v1/models/m/elements", json=RULE)
    client.post("/api/v1/models/m/elements", json={**FORECASTER, "training": {}})
    r = client.post("/api/v1/models/m/train")
    assert r.status_code == 422 and r.json()["field"] == "elements.f1.training.dataset"
    client.put("/api/v1/models/m/elements/f1", json={**FORECASTER, "name": None})
    r = client.post("/api/v1/models/m/train", json={"elements": ["r1"]})
    assert r.status_code == 422 and "pretrained" in r.json()["error"]
    r = client.post("/api/v1/models/m/train", json={"elements": ["ghost"]})
    assert r.status_code == 404
    r = client.post("/api/v1/models/m/train", json={})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["kind"] == "train" and job["state"] == "queued" and job["model"] == "m"
    assert job["params"]["elements"] == ["f1"] and job["created_by"] == "admin"
    assert client.get(f"/api/v1/jobs/{job['id']}").json()["state"] == "queued"
    trail = client.get("/api/v1/audit", params={"action": "models.train"}).json()["entries"]
    assert [(e["outcome"], e["object"]) for e in trail][-1] == ("ok", "m")
    assert client.get("/api/v1/models/m").json()["status"] == "DRAFT"


def test_metrics(client: TestClient) -> None:
    client.get("/api/v1/models")
    client.get("/api/v1/models", headers={"Authorization": ""})
    text = client.get("/metrics").text
    assert 'lifecycle_http_requests_total{method="GET",route="/api/v1/models",status="200"} 1.0' in text
    assert 'route="/api/v1/models",status="401"} 1.0' in text
    assert "lifecycle_http_request_seconds_bucket" in text
