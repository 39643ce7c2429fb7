"""Bad input to the lifecycle API: 4xx naming the field (and a condition's position), the
service keeps serving, and nothing is half-written. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

RULE: dict[str, Any] = {"name": "r1", "kind": "rule", "inputs": ["Pressure"], "params": {"expression": "Pressure > 10"}}


@pytest.mark.parametrize("path", ["/api/v1/models", "/api/v1/markups", "/api/v1/roles", "/api/v1/users"])
def test_malformed_json_names_the_position(client: TestClient, path: str) -> None:
    r = client.post(path, content=b'{"name": "m",, }', headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {"error": r.json()["error"], "field": "body"} and "position 13" in r.json()["error"]


@pytest.mark.parametrize("path, body, field, words", [
    ("/api/v1/models", {"name": "m", "colour": "red"}, "colour", "unknown field"),
    ("/api/v1/models", {"name": "m" * 101}, "name", "at most 100 characters"),
    ("/api/v1/models", {"name": ""}, "name", "at least 1 character"),
    ("/api/v1/models", {"name": "bad/name"}, "name", "letters, digits"),
    ("/api/v1/models", {"name": "m", "description": "d" * 2001}, "description", "at most 2000"),
    ("/api/v1/models", {"name": "m", "inference_markups": ["nope"]}, "inference_markups[0]", "no markup 'nope'"),
    ("/api/v1/models", {}, "name", "Field required"),
    ("/api/v1/models", [1, 2], "body", "valid dictionary"),
    ("/api/v1/markups", {"name": "k", "condition": "Current > > 0.5"}, "condition", "line 1, column 11"),
    ("/api/v1/markups", {"name": "k", "intervals": [{"from": "2024-03-02T00:00:00Z", "to": "2024-03-01T00:00:00Z"}]},
     "intervals", ""),
    ("/api/v1/markups", {"name": "k" * 101}, "name", "at most 100"),
    ("/api/v1/roles", {"name": "r" * 31}, "name", "at most 30 characters"),
])
def test_bad_bodies_name_the_field(client: TestClient, path: str, body: Any, field: str, words: str) -> None:
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["field"].startswith(field), r.json()
    assert words in r.json()["error"]
    assert client.get(path).status_code == 200  # still serving
    listed = client.get(path).json()
    assert all(not v for k, v in listed.items() if k in ("models", "markups"))  # nothing written


@pytest.mark.parametrize("element, field, words", [
    ({**RULE, "params": {"expression": "Pressure >"}}, "params.expression", "line 1"),
    ({**RULE, "params": {"expression": "Flow > 1"}}, "params.expression", "'Flow'"),
    ({**RULE, "kind": "oracle"}, "kind", "unknown element kind"),
    ({**RULE, "inputs": ["Pressure", "Pressure"]}, "inputs[1]", "twice"),
    ({**RULE, "inputs": ["p" * 201]}, "inputs.0", "at most 200"),
    ({**RULE, "name": "e" * 101}, "name", "at most 100"),
    ({**RULE, "training": {"validation_split": 2}}, "training.validation_split", "less than or equal to 0.9"),
    ({**RULE, "training": {"from": "2024-03-02T00:00:00Z", "to": "2024-03-01T00:00:00Z"}}, "training", "before"),
    ({**RULE, "detection": {"share": 0}}, "detection.share", "greater than 0"),
    ({**RULE, "detection": {"threshold": "high"}}, "detection.threshold", "valid number"),
    ({**RULE, "training": {"markups": ["ghost"]}}, "training.markups[0]", "no markup 'ghost'"),
    ({"name": "f", "kind": "forecaster", "inputs": ["A"], "outputs": ["A"]}, "outputs[0]", "horizon"),
    ({"name": "f", "kind": "forecaster", "inputs": ["A"], "outputs": ["B"], "params": {"hidden_layers": [0]}},
     "params.hidden_layers[0]", "1 to 1024"),
])
def test_bad_elements_name_the_field_and_change_nothing(client: TestClient, element: dict[str, Any], field: str,
                                                        words: str) -> None:
    client.post("/api/v1/models", json={"name": "m"})
    before = client.get("/api/v1/models/m").json()
    r = client.post("/api/v1/models/m/elements", json=element)
    assert r.status_code == 422, r.text
    assert r.json()["field"] == field, r.json()
    assert words in r.json()["error"], r.json()
    after = client.get("/api/v1/models/m").json()
    assert after["revision"] == before["revision"] and after["elements"] == []
    entry = client.get("/api/v1/audit", params={"outcome": "refused"}).json()["entries"][-1]
    assert entry["action"] == "models.element.add" and entry["detail"]["status"] == 422


def test_a_failed_change_leaves_the_element_as_it_was(client: TestClient) -> None:
    client.post("/api/v1/models", json={"name": "m"})
    client.post("/api/v1/models/m/elements", json=RULE)
    r = client.put("/api/v1/models/m/elements/r1", json={**RULE, "params": {"expression": "((("}})
    assert r.status_code == 422
    e = client.get("/api/v1/models/m/elements/r1").json()
    assert e["params"]["expression"] == "Pressure > 10" and e["revision"] == 1


def test_unknown_objects_are_404_naming_them(client: TestClient) -> None:
    r = client.get("/api/v1/models/ghost")
    assert r.status_code == 404 and "ghost" in r.json()["error"]
    client.post("/api/v1/models", json={"name": "m"})
    r = client.put("/api/v1/models/m/elements/ghost", json={**RULE, "name": None})
    assert r.status_code == 404 and r.json()["field"] == "element"
    assert client.get("/api/v1/nothing-here").status_code == 404


def test_renaming_is_refused(client: TestClient) -> None:
    client.post("/api/v1/models", json={"name": "m"})
    r = client.put("/api/v1/models/m", json={"name": "other"})
    assert r.status_code == 422 and r.json()["field"] == "name" and "clone" in r.json()["error"]
