"""Streaming inference: bad lines are counted and reported while the stream goes on, micro-batches
do not change the result, and the pump example's evaluation week streamed as JSON lines gives the
incidents a historical run over the same data registers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from lifecycle import incidents, inference, jobs, models, notify
from lifecycle.elements.trained import Scores
from lifecycle.streaming import ModelStream
from tests.lifecycle.test_inference_maas import DETECTION, pump_train, queue, run_job

ENV = inference.ElementRun("env", "envelope", ["level"], [], 1, {}, {"observation_s": 120, "share": 1.0},
                           {"threshold": 1.0, "smoothing_halflife": 0.0, "despike": 1})


class LevelScorer:
    def score(self, frame: pd.DataFrame) -> Scores:
        x = frame["level"].to_numpy(dtype=np.float64)
        positions = np.flatnonzero(np.isfinite(x))
        return Scores(positions, x[positions], None, np.abs(x[positions])[:, None])


def line(i: int, level: float | None) -> str:
    return json.dumps({"time": f"2026-03-01T00:{i:02d}:00Z", "level": level})


def test_bad_lines_are_counted_and_reported_and_the_stream_goes_on() -> None:
    stream = ModelStream("m", [ENV], {"env": LevelScorer()}, step_s=60, batch=3)
    lines = [line(0, 0.0), "{not json", line(1, 5.0), json.dumps({"level": 5.0}), line(2, 5.0),
             json.dumps({"time": "2026-03-01T00:03:00Z", "level": "high"}), line(1, 5.0), "[1, 2]",
             json.dumps({"time": "yesterday", "level": 1}), "", line(3, 0.0), line(4, 0.0)]
    events = list(stream.run(lines))
    errors = [(e.line, e.field) for e in stream.report.errors]
    assert errors == [(2, None), (4, "time"), (6, "level"), (7, "time"), (8, None), (9, "time")]
    assert "not JSON" in stream.report.errors[0].reason and "not a number" in stream.report.errors[2].reason
    assert "not after" in stream.report.errors[3].reason
    assert [(e.kind, e.incident.start.minute) for e in events] == [("opened", 1), ("closed", 1)]
    assert stream.report.to_json() == {"lines": 12, "points": 5, "bad_lines": 6, "incidents": 1}


def test_the_batch_size_does_not_change_the_events() -> None:
    rng = np.random.default_rng(3)
    levels = np.where(rng.random(200) < 0.3, 2.0, 0.0)
    lines = [json.dumps({"time": 1772323200 + 60 * i, "level": float(v) if i % 17 else None})
             for i, v in enumerate(levels)]
    runs = []
    for batch in (1, 7, 500):
        stream = ModelStream("m", [ENV], {"env": LevelScorer()}, step_s=60, batch=batch)
        runs.append([e.to_json() for e in stream.run(lines)])
    assert runs[0] == runs[1] == runs[2] and len(runs[0]) > 4


def test_streaming_the_pump_data_gives_the_historical_incidents(tmp_path: Path) -> None:
    train = pump_train()
    definition = train.load_definition(max_epochs=3)
    for element in definition["elements"]:
        element["detection"] = dict(DETECTION)
    _, faults = train.write_data(tmp_path, 7)
    engine, store, datasets = train.build(tmp_path, faults, definition)
    assert train.train(engine, store, datasets, "pump7", quiet=True)["state"] == "done"
    start, end = train.telemetry.TRAIN_END, train.telemetry.START + pd.Timedelta(days=21)
    backend = inference.InProcessBackend(store)
    pool = jobs.WorkerPool(engine, handlers={"inference": inference.run_inference}, n=0,
                           services={"datasets": datasets, "store": store, "inference_backend": backend,
                                     "notifier": notify.Recorder()})
    assert run_job(engine, pool, queue(engine, train, datasets, start, end))["state"] == "done"
    with Session(engine) as session:
        historical = sorted((i.element, i.start, i.end, i.top_tag)
                            for i in incidents.query(session, incidents.Filter(), limit=1000))
        snap = inference._snapshot(session, "pump7")
        frame = datasets.read_grid(session, train.DATASET, start=start.to_pydatetime(), end=end.to_pydatetime())
        assert models.get(session, "pump7").status == "TRAINED"
    frame = frame[(frame.index >= start) & (frame.index < end)]
    lines = [json.dumps({"time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         **{k: (None if math.isnan(v) else v) for k, v in row.items()}})
             for t, row in zip(frame.index, frame.to_dict("records"))]
    scorers = backend.start("pump7", [e for e in snap.elements if e.kind != "rule"])
    try:
        stream = ModelStream("pump7", snap.elements, scorers, step_s=60, inference_markups=snap.inference_markups,
                             batch=500)
        events = list(stream.run(lines))
    finally:
        backend.stop("pump7")
    assert stream.report.errors == [] and stream.report.points == len(frame)
    opened = {(e.incident.element, e.incident.seq): e.incident for e in events if e.kind == "opened"}
    closed = {(e.incident.element, e.incident.seq): e.incident for e in events if e.kind == "closed"}
    streamed = sorted((i.element, i.start, closed[k].end if k in closed else None,
                       i.top_tags[0].tag if i.top_tags else None) for k, i in opened.items())
    assert len(historical) >= 10
    assert streamed == historical


def test_stream_sessions_keep_one_stream_per_model_up_to_the_cap() -> None:
    import pytest

    from lifecycle.errors import Conflict
    from lifecycle.streaming import StreamSessions

    sessions = StreamSessions(cap=2)
    made: list[str] = []

    def maker(name: str):  # type: ignore[no-untyped-def]
        def make(run: int) -> ModelStream:
            made.append(name)
            return ModelStream(name, [ENV], {"env": LevelScorer()}, step_s=60)
        return make

    a, new_a = sessions.open("a", maker("a"))
    again, new_again = sessions.open("a", maker("a"))
    assert new_a and not new_again and again is a and made == ["a"]
    sessions.open("b", maker("b"))
    with pytest.raises(Conflict, match="2 streams"):
        sessions.open("c", maker("c"))
    assert sessions.models() == ["a", "b"]
    assert sessions.close("a") is a and sessions.close("a") is None
    _, new_c = sessions.open("c", maker("c"))
    assert new_c and sessions.models() == ["b", "c"]
