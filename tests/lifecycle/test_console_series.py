"""The console's downsampled series routes over the real app on both databases: a dataset's tags and
an element's inference results (artifact, threshold, predictions)."""

from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient
from sqlalchemy import insert

from lifecycle.inference import InferenceResult

T0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)


def test_dataset_series_keeps_spikes_and_names_bad_tags(client: TestClient) -> None:
    n = 50_000
    t = np.arange(n)
    frame = pd.DataFrame({"time": pd.to_datetime(T0) + pd.to_timedelta(t, unit="s"), "P": np.sin(t / 900.0)})
    frame.loc[31_337, "P"] = 40.0
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    assert client.post("/api/v1/datasets", data={"name": "d"}, files={"file": ("d.parquet", buf.getvalue())}).status_code == 201
    body = client.get("/api/v1/datasets/d/series", params={"tag": "P", "buckets": 100}).json()
    s = body["series"]["P"]
    assert s["points_in"] == n and s["points_out"] <= 200
    assert max(v for v in s["values"] if v is not None) == 40.0
    assert s["times"][0] == T0.timestamp() and s["times"][-1] == T0.timestamp() + n - 1
    part = client.get("/api/v1/datasets/d/series", params={"tag": "P", "from": "2024-03-01T01:00:00Z",
                                                          "to": "2024-03-01T02:00:00Z"}).json()["series"]["P"]
    assert part["points_in"] == 3601
    bad = client.get("/api/v1/datasets/d/series", params={"tag": "Q"})
    assert bad.status_code == 422 and bad.json()["field"] == "tag"
    assert client.get("/api/v1/datasets/nope/series", params={"tag": "P"}).status_code == 404


def test_results_series_of_an_element(client: TestClient) -> None:
    assert client.post("/api/v1/models", json={"name": "m"}).status_code == 201
    assert client.post("/api/v1/models/m/elements", json={"name": "r", "kind": "rule", "inputs": ["P"],
                                                           "params": {"expression": "P > 1"}}).status_code == 201
    empty = client.get("/api/v1/models/m/results/series", params={"element": "r"}).json()
    assert empty["series"] == {} and empty["from"] is None
    n = 5000
    state = client.app.state.lifecycle
    with state.sessions.begin() as session:
        session.execute(insert(InferenceResult), [
            {"model": "m", "element": "r", "time": T0 + dt.timedelta(seconds=10 * i),
             "artifact": None if i == 7 else float(i == 4321), "threshold": 0.5, "anomalous": i == 4321,
             "counted": True, "predictions": {"P": float(i)}, "run": 1} for i in range(n)])
    body = client.get("/api/v1/models/m/results/series", params={"element": "r", "tag": "P", "buckets": 50}).json()
    art, thr, pred = body["series"]["artifact"], body["series"]["threshold"], body["series"]["predicted:P"]
    assert art["points_in"] == n - 1 and thr["points_in"] == n and pred["points_in"] == n
    assert max(v for v in art["values"] if v is not None) == 1.0
    assert art["times"][art["values"].index(1.0)] == T0.timestamp() + 43210
    assert set(v for v in thr["values"] if v is not None) == {0.5}
    assert pred["values"][0] == 0.0 and pred["values"][-1] == float(n - 1)
    assert body["from"] == "2024-03-01T00:00:00Z"
    bad = client.get("/api/v1/models/m/results/series", params={"element": "nope"})
    assert bad.status_code == 422 and bad.json()["field"] == "element"
