"""Historical inference as a job, with the element backend swapped for one whose artifact is a tag
of the data: results per grid point and element, the inference indicator, incidents and their
production flag, a rerun replacing its interval, the guards, rights and audit of the routes, the
results' pages, and stopping. SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from lifecycle import inference, jobs, models, notify
from lifecycle.api.datasets import dataset_service
from lifecycle.elements.trained import Scores
from lifecycle.markups import Caller
from tests.lifecycle.conftest import ADMIN_TOKEN, auth_header
from tests.lifecycle.test_rights import user_with

N = 120
STEP = 60


class TagScorer:
    """An element whose point artifact is its first input tag (contributions: each input's value)."""

    def __init__(self, inputs: list[str]) -> None:
        self.inputs = inputs

    def score(self, frame: pd.DataFrame) -> Scores:
        x = frame.loc[:, self.inputs].to_numpy(dtype=np.float64)
        positions = np.flatnonzero(np.isfinite(x).all(axis=1))
        return Scores(positions, x[positions, 0], None, np.abs(x[positions]))


class FakeBackend:
    def __init__(self) -> None:
        self.started: list[tuple[str, list[str]]] = []
        self.stopped: list[str] = []

    def start(self, model: str, elements: Sequence[inference.ElementRun]) -> dict[str, inference.ElementScorer]:
        self.started.append((model, [e.name for e in elements]))
        return {e.name: TagScorer(e.inputs) for e in elements}

    def stop(self, model: str) -> None:
        self.stopped.append(model)


def telemetry() -> bytes:
    index = pd.date_range("2026-03-01", periods=N, freq=f"{STEP}s", tz="UTC")
    level = np.zeros(N)
    level[20:30] = 5.0  # a fault while running
    level[60:70] = 5.0  # one while stopped: outside the inference indicator
    running = np.ones(N)
    running[55:75] = 0.0
    frame = pd.DataFrame({"time": index.strftime("%Y-%m-%dT%H:%M:%SZ"), "level": level,
                          "noise": np.full(N, 0.5), "running": running})
    return frame.to_csv(index=False).encode()


def world(client: TestClient) -> dict[str, Any]:
    r = client.post("/api/v1/datasets", data={"name": "tele", "grid_step_s": str(STEP)},
                    files={"file": ("tele.csv", io.BytesIO(telemetry()))})
    assert r.status_code == 201, r.text
    assert client.post("/api/v1/markups", json={"name": "running", "condition": "running > 0.5"}).status_code == 201
    assert client.post("/api/v1/models", json={"name": "pump7", "inference_markups": ["running"]}).status_code == 201
    r = client.post("/api/v1/models/pump7/elements", json={
        "name": "env", "kind": "envelope", "inputs": ["level", "noise"],
        "params": {"smoothing_halflife": 0, "despike": 1},
        "training": {"dataset": "tele"},
        "detection": {"observation_s": 180, "share": 0.6, "default_status": "Decision pending"}})
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/models/pump7/elements", json={
        "name": "high", "kind": "rule", "inputs": ["level"], "params": {"expression": "level > 4"},
        "detection": {"observation_s": 120}})
    assert r.status_code == 201, r.text
    state = client.app.state.lifecycle  # type: ignore[attr-defined]
    with state.sessions.begin() as session:
        revision = models.element_of(models.get(session, "pump7"), "env").revision
        models.mark_element_trained(session, Caller("trainer"), "pump7", "env", revision=revision, artifact={
            "path": "/lifecycle/payloads/pump7/env/1", "sha256": "0" * 64, "training_number": 1, "threshold": 1.0,
            "dataset": "tele",
            "smoothing_halflife": 0.0, "despike": 1})
    assert client.get("/api/v1/models/pump7").json()["status"] == "TRAINED"
    backend, recorder = FakeBackend(), notify.Recorder()
    services = {"datasets": dataset_service(state), "inference_backend": backend, "notifier": recorder}
    state.extras["inference_services"] = services  # what the routes use when the app runs no workers
    pool = jobs.WorkerPool(state.engine, handlers={"inference": inference.run_inference}, n=0, services=services)
    return {"pool": pool, "backend": backend, "recorder": recorder, "state": state}


def run(client: TestClient, w: dict[str, Any], start: str = "2026-03-01T00:00:00Z",
        end: str = "2026-03-01T02:00:00Z", token: str | None = None) -> dict[str, Any]:
    r = client.post("/api/v1/models/pump7/inference", json={"mode": "historical", "dataset": "tele", "from": start,
                                                          "to": end},
                    headers=auth_header(token) if token else None)
    assert r.status_code == 202, r.text
    assert r.json()["kind"] == "inference" and r.json()["state"] == "queued"
    assert w["pool"].run_once() == r.json()["id"]
    job = client.get(f"/api/v1/jobs/{r.json()['id']}").json()
    assert job["state"] == "done", job
    return job  # type: ignore[no-any-return]


def all_points(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    out, cursor = [], None
    while True:
        page = client.get("/api/v1/models/pump7/results",
                          params={"limit": 50, **params, **({"cursor": cursor} if cursor else {})}).json()
        out += page["points"]
        cursor = page["next"]
        if cursor is None:
            return out


def test_historical_inference_registers_incidents_inside_the_indicator_only(client: TestClient) -> None:
    w = world(client)
    job = run(client, w)
    assert job["result"]["grid_points"] == N and job["result"]["indicator_points"] == N - 20
    assert job["result"]["incidents"] == 2
    assert w["backend"].started == [("pump7", ["env"])] and w["backend"].stopped == ["pump7"]

    found = client.get("/api/v1/incidents", params={"model": "pump7"}).json()["incidents"]
    by_element = {i["element"]: i for i in found}
    assert len(found) == 2 and set(by_element) == {"env", "high"}
    env = by_element["env"]
    # observation 3 points, share 0.6 → registered at the 2nd anomalous point; closed after 3 normal
    assert env["start"] == "2026-03-01T00:20:00Z" and env["registered_at"] == "2026-03-01T00:21:00Z"
    assert env["end"] == "2026-03-01T00:30:00Z"
    assert env["top_tags"][0]["tag"] == "level" and env["top_tags"][0]["value"] == 5.0
    assert env["status"] == "Decision pending" and env["production"] is False and env["kind"] == "envelope"
    assert by_element["high"]["start"] == "2026-03-01T00:20:00Z" and by_element["high"]["kind"] == "rule"
    assert [e.kind for e in w["recorder"].events].count("opened") == 2

    points = all_points(client)
    assert len(points) == 2 * N
    assert [p["time"] for p in points] == sorted(p["time"] for p in points)
    env_points = [p for p in points if p["element"] == "env"]
    assert sum(p["anomalous"] for p in env_points) == 10  # the fault while stopped is not counted
    stopped = [p for p in env_points if "01:00:00Z" <= p["time"][11:] < "01:10:00Z"]
    assert all(p["artifact"] == 5.0 and not p["counted"] and not p["anomalous"] for p in stopped)
    assert env_points[0]["threshold"] == 1.0 and env_points[0]["predictions"] == {}
    assert len(all_points(client, element="high", **{"from": "2026-03-01T00:10:00Z", "to": "2026-03-01T00:20:00Z"})) == 10
    assert client.get("/api/v1/models/pump7/results", params={"cursor": "nonsense"}).status_code == 422
    assert client.get("/api/v1/models/ghost/results").status_code == 404


def test_a_rerun_over_an_interval_replaces_its_results_and_incidents(client: TestClient) -> None:
    w = world(client)
    run(client, w)
    first = {i["id"] for i in client.get("/api/v1/incidents").json()["incidents"]}
    client.patch(f"/api/v1/incidents/{min(first)}", json={"note": "seen"})
    job = run(client, w, "2026-03-01T00:10:00Z", "2026-03-01T00:40:00Z")
    assert job["result"]["replaced"] == {"results": 2 * 30, "incidents": 2}
    again = client.get("/api/v1/incidents").json()["incidents"]
    assert len(again) == 2 and all(i["note"] is None for i in again)  # new rows, not the triaged ones
    assert {i["run"] for i in again} == {job["id"]}
    assert len(all_points(client)) == 2 * N  # outside the rerun's interval the first run's results stay


def test_a_published_model_registers_production_incidents(client: TestClient) -> None:
    w = world(client)
    assert client.post("/api/v1/models/pump7/prepare").status_code == 200
    assert client.post("/api/v1/models/pump7/publish").status_code == 200
    run(client, w)
    assert {i["production"] for i in client.get("/api/v1/incidents").json()["incidents"]} == {True}


def test_guards_rights_and_audit_of_the_routes(client: TestClient) -> None:
    w = world(client)
    body = {"mode": "historical", "dataset": "tele", "from": "2026-03-01T00:00:00Z", "to": "2026-03-01T02:00:00Z"}
    reader = user_with(client, "reader", [])
    r = client.post("/api/v1/models/pump7/inference", json=body, headers=auth_header(reader))
    assert r.status_code == 403 and r.json()["right"] == "models.infer"
    operator = user_with(client, "operator", ["models.infer"])
    assert client.post("/api/v1/models/pump7/inference", json={**body, "dataset": "nope"},
                       headers=auth_header(operator)).status_code == 404
    assert client.post("/api/v1/models/pump7/inference", json={**body, "to": body["from"]},
                       headers=auth_header(operator)).json()["field"] == "from"
    assert client.post("/api/v1/models/pump7/inference", json={**body, "mode": "sideways"},
                       headers=auth_header(operator)).status_code == 422
    assert client.post("/api/v1/models", json={"name": "draft"}).status_code == 201
    r = client.post("/api/v1/models/draft/inference", json=body, headers=auth_header(operator))
    assert r.status_code == 409 and "TRAINED or PUBLISHED" in r.json()["error"]
    run(client, w, token=operator)
    r = client.delete("/api/v1/models/pump7/inference", headers=auth_header(operator))
    assert r.status_code == 200 and r.json()["cancelled"] == []
    queued = client.post("/api/v1/models/pump7/inference", json=body, headers=auth_header(operator)).json()
    r = client.delete("/api/v1/models/pump7/inference", headers=auth_header(reader))
    assert r.status_code == 403
    r = client.delete("/api/v1/models/pump7/inference", headers=auth_header(operator))
    assert r.json()["cancelled"] == [queued["id"]]
    assert client.get(f"/api/v1/jobs/{queued['id']}").json()["state"] == "cancelled"
    entries = client.get("/api/v1/audit", params={"object": "pump7", "type": "model"}).json()["entries"]
    infer = [(e["action"], e["actor"], e["outcome"]) for e in entries if e["action"].startswith("models.infer")]
    assert infer == [("models.infer", "reader", "refused"), ("models.infer", "operator", "refused"),
                     ("models.infer", "operator", "refused"), ("models.infer", "operator", "refused"),
                     ("models.infer", "operator", "ok"), ("models.infer_stop", "operator", "ok"),
                     ("models.infer", "operator", "ok"), ("models.infer_stop", "reader", "refused"),
                     ("models.infer_stop", "operator", "ok")]


def test_element_points_are_pure_and_gaps_stay_gaps() -> None:
    run_ = inference.ElementRun("env", "envelope", ["a", "b"], [], 1, {}, {}, {"smoothing_halflife": 0, "despike": 1})
    index = pd.date_range("2026-03-01", periods=4, freq="60s", tz="UTC")
    frame = pd.DataFrame({"a": [0.0, 2.0, np.nan, 3.0], "b": [1.0, 1.0, 1.0, 1.0]}, index=index)
    scores = TagScorer(["a", "b"]).score(frame)
    points, rows = inference.element_points(run_, frame, scores, np.array([True, True, True, False]), 1.0)
    assert [p.time.minute for p in points] == [0, 1, 3]  # the point without data is not scored
    assert [r["anomalous"] for r in rows] == [False, True, False]  # the last is outside the indicator
    assert points[1].contributions == {"a": 2.0, "b": 1.0} and points[1].values == {"a": 2.0, "b": 1.0}
    assert inference.instance_name("pump 7", "env/1") == "lifecycle.pump_7.env_1"


def test_streaming_through_the_api_records_incidents_as_they_happen(client: TestClient) -> None:
    w = world(client)
    lines = telemetry().decode().splitlines()
    header, rows = lines[0].split(","), lines[1:]
    ndjson = [json.dumps({"time": r.split(",")[0], **{k: float(v) for k, v in zip(header[1:], r.split(",")[1:])}})
              for r in rows]
    operator = user_with(client, "operator", ["models.infer"])
    reader = user_with(client, "reader", [])
    r = client.post("/api/v1/models/pump7/stream", content="\n".join(ndjson[:5]), headers=auth_header(reader))
    assert r.status_code == 403
    r = client.post("/api/v1/models/pump7/inference", json={"mode": "streaming"}, headers=auth_header(operator))
    assert r.status_code == 201 and r.json()["step_s"] == STEP
    assert client.post("/api/v1/models/pump7/inference", json={"mode": "streaming"},
                       headers=auth_header(operator)).status_code == 409
    first = client.post("/api/v1/models/pump7/stream", content="\n".join(ndjson[:25] + ["{bad", '{"level": 1}']),
                        headers=auth_header(operator)).json()
    assert first["lines"] == 27 and first["points"] == 25 and first["bad_lines"] == 2
    assert [(e["line"], e["field"]) for e in first["errors"]] == [(26, None), (27, "time")]
    assert sorted(e["event"] for e in first["events"]) == ["opened", "opened"]
    live = client.get("/api/v1/incidents", params={"model": "pump7"}).json()["incidents"]
    assert {(i["source"], i["end"]) for i in live} == {("streaming", None)}  # open while the fault lasts
    rest = client.post("/api/v1/models/pump7/stream", content="\n".join(ndjson[25:]),
                       headers=auth_header(operator)).json()
    assert rest["total"] == {"lines": 27 + N - 25, "points": N, "bad_lines": 2, "incidents": 2}
    streamed = client.get("/api/v1/incidents", params={"model": "pump7"}).json()["incidents"]
    assert all(i["end"] is not None for i in streamed)
    # the same incidents as a historical run over the same data
    run(client, w)
    historical = client.get("/api/v1/incidents", params={"model": "pump7"}).json()["incidents"]
    key = lambda i: (i["element"], i["start"], i["end"], i["top_tags"][0]["tag"])  # noqa: E731
    assert sorted(map(key, [i for i in historical if i["source"] == "historical"])) == sorted(map(key, streamed))
    r = client.delete("/api/v1/models/pump7/inference", headers=auth_header(operator))
    assert r.json()["stream_ended"] is True
    assert "pump7.stream" in w["backend"].stopped
    assert client.delete("/api/v1/models/pump7/inference", headers=auth_header(operator)).json()["stream_ended"] is False


def test_maas_model_stream_prints_events_and_reports_refused_lines(client: TestClient, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from lifecycle.cli import client as cli_client
    from lifecycle.cli.api_client import ApiClient

    world(client)
    lines = telemetry().decode().splitlines()
    header = lines[0].split(",")
    ndjson = [json.dumps({"time": r.split(",")[0], **{k: float(v) for k, v in zip(header[1:], r.split(",")[1:])}})
              for r in lines[1:]]
    ndjson[3] = '{"time": "2026-03-01T00:03:00Z", "level": "high"}'
    ndjson[50] = "not json"
    source = tmp_path / "tele.jsonl"
    source.write_text("\n".join(ndjson) + "\n")
    api = ApiClient("http://testserver", ADMIN_TOKEN, transport=client._transport)  # the app in process
    monkeypatch.setattr(cli_client.Ctx, "api", property(lambda self: api))
    assert cli_client.run(["stream", "pump7", "--input", str(source), "--batch", "40", "--stop"]) == 0
    out, err = capsys.readouterr()
    assert """line 4: tag 'level': "high" is not a number [level]""" in err
    assert "line 51: not JSON" in err
    assert f"pump7: {N} lines, {N - 2} points, 2 refused, 2 incidents" in err
    events = [line.split()[0] for line in out.splitlines()]
    assert sorted(events) == ["closed", "closed", "opened", "opened"]
    assert "pump7/env start 2026-03-01T00:20:00Z" in out
    assert client.get("/api/v1/models/pump7/results").status_code == 200
    assert client.delete("/api/v1/models/pump7/inference").json()["stream_ended"] is False  # --stop ended it


def test_maas_model_stream_reads_telemetry_from_an_mqtt_topic(client: TestClient, mosquitto: Any,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import paho.mqtt.client as mqtt

    from lifecycle.cli import client as cli_client
    from lifecycle.cli.api_client import ApiClient

    mosquitto.start()
    world(client)
    lines = telemetry().decode().splitlines()
    header = lines[0].split(",")
    ndjson = [json.dumps({"time": r.split(",")[0], **{k: float(v) for k, v in zip(header[1:], r.split(",")[1:])}})
              for r in lines[1:]]
    ndjson.insert(10, "{oops")
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    publisher.connect(mosquitto.host, mosquitto.port)
    publisher.loop_start()
    # retained: the broker hands it to the stream's subscription whenever that starts
    publisher.publish("plant1/pump7/telemetry", "\n".join(ndjson), qos=1, retain=True).wait_for_publish(10)
    api = ApiClient("http://testserver", ADMIN_TOKEN, transport=client._transport)
    monkeypatch.setattr(cli_client.Ctx, "api", property(lambda self: api))
    try:
        code = cli_client.run(["stream", "pump7", "--mqtt", f"{mosquitto.host}:{mosquitto.port}", "--topic",
                               "plant1/pump7/telemetry", "--max-messages", "1", "--batch", "50", "--stop"])
    finally:
        publisher.publish("plant1/pump7/telemetry", b"", qos=1, retain=True).wait_for_publish(10)  # clear it
        publisher.loop_stop()
        publisher.disconnect()
    assert code == 0
    out, err = capsys.readouterr()
    assert "line 11: not JSON" in err and f"pump7: {N + 1} lines, {N} points, 1 refused, 2 incidents" in err
    assert sorted(line.split()[0] for line in out.splitlines()) == ["closed", "closed", "opened", "opened"]
