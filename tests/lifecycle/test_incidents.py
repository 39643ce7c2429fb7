"""Incidents recorded from the detector's events, listed, filtered, paged, triaged (right
``incidents.edit``, audited), grouped, replaced by a rerun and exported; the administrator's
incident statuses. SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from fastapi.testclient import TestClient

from lifecycle import incidents
from lifecycle.detector import DetectionSettings, Detector, Point
from tests.lifecycle.conftest import auth_header
from tests.lifecycle.test_rights import user_with

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
STEP = 60.0


def series(pattern: str, tag: str, start: int = 0) -> list[Point]:
    return [Point(T0 + dt.timedelta(seconds=STEP * (start + k)), 2.0 if c == "x" else 0.1, 1.0,
                  {tag: 1.0, "other": 0.2}, {tag: 40.0 + k, "other": 1.0}) for k, c in enumerate(pattern)]


def record(client: TestClient, model: str, element: str, points: list[Point], *, production: bool = False,
           run: int = 1, source: str = "historical") -> None:
    d = Detector(DetectionSettings(threshold=1.0, observation_s=120, share=1.0, default_cause="wear"),
                 model=model, element=element, kind="forecaster", step_s=STEP, production=production)
    with client.app.state.lifecycle.sessions.begin() as session:  # type: ignore[attr-defined]
        for event in d.run(points):
            incidents.apply_event(session, event, source=source, run=run)


def listing(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/api/v1/incidents", params=params)
    assert r.status_code == 200, r.text
    return r.json()["incidents"]  # type: ignore[no-any-return]


def test_recorded_incidents_listed_and_filtered(client: TestClient) -> None:
    # e1: incidents at 2..5 (closed at 7: end 6) and 30..31 (open); e2 on another model, production
    record(client, "pump7", "e1", series("..xxxx.." + "." * 22 + "xx", "vibration"))
    record(client, "pump8", "e2", series("xx", "pressure", start=100), production=True, run=2)
    everything = listing(client)
    assert [(i["model"], i["element"]) for i in everything] == [("pump8", "e2"), ("pump7", "e1"), ("pump7", "e1")]
    first = everything[2]
    assert first["start"] == "2024-03-01T00:02:00Z" and first["end"] == "2024-03-01T00:06:00Z"
    assert first["registered_at"] == "2024-03-01T00:03:00Z"
    assert first["top_tags"][0]["tag"] == "vibration" and first["top_tags"][0]["value"] == 40.0 + 2
    assert first["status"] == "Under review" and first["cause"] == "wear" and first["production"] is False
    assert first["kind"] == "forecaster" and first["artifact"] == 2.0 and first["threshold"] == 1.0
    assert everything[1]["end"] is None

    assert len(listing(client, model="pump7")) == 2
    assert len(listing(client, element="e2")) == 1
    assert [i["model"] for i in listing(client, production="true")] == ["pump8"]
    assert len(listing(client, production="false")) == 2
    # [from, to) overlap: the closed one ends at 00:06, the open one started 00:30
    assert len(listing(client, model="pump7", **{"from": "2024-03-01T00:06:00Z", "to": "2024-03-01T00:29:00Z"})) == 0
    assert len(listing(client, model="pump7", **{"from": "2024-03-01T00:05:00Z", "to": "2024-03-01T00:31:00Z"})) == 2
    assert len(listing(client, model="pump7", **{"from": "2024-03-02T00:00:00Z"})) == 1  # still open
    r = client.get("/api/v1/incidents", params={"from": "2024-03-02T00:00:00Z", "to": "2024-03-01T00:00:00Z"})
    assert r.status_code == 422 and r.json()["field"] == "from"
    assert client.get("/api/v1/incidents/999").status_code == 404
    assert client.get(f"/api/v1/incidents/{first['id']}").json() == first


def test_pages_by_cursor(client: TestClient) -> None:
    record(client, "pump7", "e1", series(".xx." * 25, "vibration"))
    seen: list[int] = []
    cursor = None
    while True:
        r = client.get("/api/v1/incidents", params={"limit": 7, **({"cursor": cursor} if cursor else {})}).json()
        seen += [i["id"] for i in r["incidents"]]
        cursor = r["next"]
        if cursor is None:
            break
    assert len(seen) == 25 and seen == sorted(seen, reverse=True)


def test_triage_needs_its_right_and_is_audited(client: TestClient) -> None:
    record(client, "pump7", "e1", series("xx", "vibration"))
    [incident] = listing(client)
    path = f"/api/v1/incidents/{incident['id']}"
    reader = user_with(client, "reader", [])
    r = client.patch(path, json={"status": "Ignore"}, headers=auth_header(reader))
    assert r.status_code == 403 and "incidents.edit" in r.json()["error"]
    expert = user_with(client, "expert", ["incidents.edit"])
    r = client.patch(path, json={"status": "Decision pending", "cause": "bearing wear", "opinion": "replace it",
                                 "note": "see ticket 42"}, headers=auth_header(expert))
    assert r.status_code == 200, r.text
    assert {k: r.json()[k] for k in ("status", "cause", "opinion", "note", "updated_by")} == {
        "status": "Decision pending", "cause": "bearing wear", "opinion": "replace it", "note": "see ticket 42",
        "updated_by": "expert"}
    r = client.patch(path, json={"note": None}, headers=auth_header(expert))
    assert r.json()["note"] is None and r.json()["status"] == "Decision pending"
    r = client.patch(path, json={"status": "Solved by magic"}, headers=auth_header(expert))
    assert r.status_code == 422 and r.json()["field"] == "status"
    r = client.patch(path, json={"severity": 3}, headers=auth_header(expert))
    assert r.status_code == 422
    assert client.patch("/api/v1/incidents/999", json={}, headers=auth_header(expert)).status_code == 404
    entries = client.get("/api/v1/audit", params={"object": str(incident["id"]), "type": "incident"}).json()["entries"]
    assert [(e["actor"], e["outcome"], e["status_before"], e["status_after"]) for e in entries] == [
        ("reader", "refused", None, None),  # refused before the incident was read
        ("expert", "ok", "Under review", "Decision pending"),
        ("expert", "ok", "Decision pending", "Decision pending"),
        ("expert", "refused", "Decision pending", None),
        ("expert", "refused", None, None),  # the body was refused before the incident was read
    ]
    assert client.get(path).json()["status"] == "Decision pending"  # refused calls changed nothing


def test_statuses_defaults_and_administrator_additions(client: TestClient) -> None:
    names = [s["name"] for s in client.get("/api/v1/incident-statuses").json()["statuses"]]
    assert names == list(incidents.DEFAULT_STATUSES)
    expert = user_with(client, "expert", ["incidents.edit"])
    r = client.post("/api/v1/incident-statuses", json={"name": "Waiting for parts"}, headers=auth_header(expert))
    assert r.status_code == 403 and r.json()["right"] == "admin"
    r = client.post("/api/v1/incident-statuses", json={"name": "Waiting for parts"})
    assert r.status_code == 201 and r.json()["name"] == "Waiting for parts"
    assert client.post("/api/v1/incident-statuses", json={"name": "waiting FOR parts"}).status_code == 409
    assert client.post("/api/v1/incident-statuses", json={"name": ""}).status_code == 422
    record(client, "pump7", "e1", series("xx", "vibration"))
    [incident] = listing(client)
    r = client.patch(f"/api/v1/incidents/{incident['id']}", json={"status": "Waiting for parts"},
                     headers=auth_header(expert))
    assert r.status_code == 200 and r.json()["status"] == "Waiting for parts"
    assert [i["id"] for i in listing(client, status="Waiting for parts")] == [incident["id"]]
    r = client.delete("/api/v1/incident-statuses/Waiting for parts")
    assert r.status_code == 409 and "1 incident" in r.json()["error"]
    assert client.delete("/api/v1/incident-statuses/Ignore").status_code == 409
    client.patch(f"/api/v1/incidents/{incident['id']}", json={"status": "Problem closed"})
    assert client.delete("/api/v1/incident-statuses/Waiting for parts").status_code == 204
    assert client.delete("/api/v1/incident-statuses/Waiting for parts").status_code == 404
    actions = [e["action"] for e in client.get("/api/v1/audit", params={"type": "incident-status"}).json()["entries"]]
    assert actions.count("incident_statuses.create") == 4 and actions.count("incident_statuses.delete") == 4


def test_similar_incidents_are_grouped_within_the_gap(client: TestClient) -> None:
    gap_points = int(incidents.GROUP_GAP.total_seconds() // STEP)
    # three vibration incidents close together, one pressure one among them, one vibration much later
    record(client, "pump7", "e1", series("xx...xx...", "vibration"), run=1)
    record(client, "pump7", "e1", series("xx...", "pressure", start=20), run=2)
    record(client, "pump7", "e1", series("xx...", "vibration", start=40), run=3)
    record(client, "pump7", "e1", series("xx", "vibration", start=45 + gap_points + 10), run=4)
    record(client, "pump7", "e2", series("xx", "vibration", start=3), run=5)
    rows = sorted(listing(client), key=lambda i: i["id"])
    vib = [i for i in rows if i["element"] == "e1" and i["top_tags"][0]["tag"] == "vibration"]
    assert len(vib) == 4
    assert vib[0]["group"] == vib[1]["group"] == vib[2]["group"] == vib[0]["id"]
    assert vib[3]["group"] == vib[3]["id"]
    pressure = [i for i in rows if i["top_tags"][0]["tag"] == "pressure"]
    other_element = [i for i in rows if i["element"] == "e2"]
    assert pressure[0]["group"] == pressure[0]["id"] and other_element[0]["group"] == other_element[0]["id"]
    assert [i["id"] for i in listing(client, group=vib[0]["id"])] == [vib[2]["id"], vib[1]["id"], vib[0]["id"]]


def test_a_rerun_over_an_interval_replaces_its_incidents(client: TestClient) -> None:
    record(client, "pump7", "e1", series("xx...." * 4, "vibration"), run=1)
    record(client, "pump7", "e1", series("xx", "vibration"), source="streaming", run=9)
    record(client, "pump8", "e1", series("xx", "vibration"), run=2)
    with client.app.state.lifecycle.sessions.begin() as session:  # type: ignore[attr-defined]
        removed = incidents.delete_between(session, "pump7", T0 + dt.timedelta(minutes=6),
                                           T0 + dt.timedelta(minutes=18))
    assert removed == 2
    left = listing(client, model="pump7")
    assert sorted((i["source"], i["start"]) for i in left) == [
        ("historical", "2024-03-01T00:00:00Z"), ("historical", "2024-03-01T00:18:00Z"),
        ("streaming", "2024-03-01T00:00:00Z")]
    assert len(listing(client, model="pump8")) == 1


def test_export_csv_and_json(client: TestClient) -> None:
    record(client, "pump7", "e1", series("xx..xx", "vibration"))
    [newest, oldest] = listing(client)
    client.patch(f"/api/v1/incidents/{oldest['id']}", json={"note": "=HYPERLINK(\"x\")", "cause": "a, \"quoted\"\ncause"})
    r = client.get("/api/v1/incidents/export", params={"format": "csv", "model": "pump7"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="incidents.csv"' in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [int(row["id"]) for row in rows] == [newest["id"], oldest["id"]]
    assert rows[1]["cause"] == "a, \"quoted\"\ncause" and rows[1]["note"] == "'=HYPERLINK(\"x\")"
    assert rows[1]["top_tags"].startswith("vibration=40.0 (83.3%)")
    assert rows[1]["start"] == "2024-03-01T00:00:00Z" and rows[1]["production"] == "False"
    r = client.get("/api/v1/incidents/export", params={"format": "json"})
    assert r.headers["content-type"] == "application/json"
    assert [i["id"] for i in r.json()["incidents"]] == [newest["id"], oldest["id"]]
    assert r.json()["incidents"][1]["note"] == "=HYPERLINK(\"x\")"
    assert client.get("/api/v1/incidents/export", params={"format": "xml"}).status_code == 422
    assert client.get("/api/v1/incidents/export", params={"model": "nothing"}).text.count("\n") == 1
