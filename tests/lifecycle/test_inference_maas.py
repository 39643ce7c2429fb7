"""End to end on real ZooKeeper, a real MaaS controller, real ``model_server`` processes and the
real database: the pump example is trained, its trained elements are deployed through the MaaS
queue and called through discovery and the gateway by a historical inference job over the
evaluation week; the incidents are on the injected faults and nowhere else; the instances are
gone after the run; the same run in process (onnxruntime) replaces them with the same incidents."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from lifecycle import incidents, inference, jobs, notify
from maas.config import DEFAULT_CONFIG_PATH
from maas.retry import wait_until
from tests.cluster import Cluster

REPO = Path(__file__).resolve().parents[2]
#: How long after a fault's first point its first incident may start, per kind: cavitation is
#: abrupt; bearing wear and sensor drift are slow ramps, invisible in their first hours.
DELAY = {"cavitation": pd.Timedelta(hours=1), "bearing_wear": pd.Timedelta(hours=12),
         "sensor_drift": pd.Timedelta(hours=12)}
DETECTION = {"observation_s": 1800, "share": 0.5, "suppression_s": 3600}


def pump_train() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pump_train", REPO / "examples" / "pump" / "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_job(engine: Any, pool: jobs.WorkerPool, job_id: int) -> dict[str, Any]:
    assert pool.run_once() == job_id
    with Session(engine) as session:
        return jobs.get(session, job_id).to_json()


def queue(engine: Any, train: ModuleType, datasets: Any, start: pd.Timestamp, end: pd.Timestamp) -> int:
    with Session(engine) as session:
        job = inference.queue_historical(session, train.TRAINER, "pump7", train.DATASET, start.to_pydatetime(),
                                         end.to_pydatetime(), datasets)
        job_id = job.id
        session.commit()
    return job_id


def found(engine: Any) -> list[tuple[str, dt.datetime, dt.datetime | None]]:
    with Session(engine) as session:
        return sorted((i.element, i.start, i.end) for i in incidents.query(session, incidents.Filter(), limit=1000))


def test_historical_inference_through_maas_registers_the_faults(cluster: Cluster) -> None:
    train = pump_train()
    work = cluster.tmp  # the lifecycle's store is the cluster's, so MaaS deploys the trained payloads
    definition = train.load_definition(max_epochs=3)
    for element in definition["elements"]:
        element["detection"] = dict(DETECTION)
    _, faults = train.write_data(work, 7)
    engine, store, datasets = train.build(work, faults, definition)
    assert store.uri == f"file://{cluster.store}"
    assert train.train(engine, store, datasets, "pump7", quiet=True)["state"] == "done"

    start = train.telemetry.TRAIN_END
    end = train.telemetry.START + pd.Timedelta(days=21)
    backend = inference.MaasBackend(cluster.quorum, DEFAULT_CONFIG_PATH, store)
    recorder = notify.Recorder()
    pool = jobs.WorkerPool(engine, handlers={"inference": inference.run_inference}, n=0,
                           services={"datasets": datasets, "store": store, "inference_backend": backend,
                                     "notifier": recorder})
    job = run_job(engine, pool, queue(engine, train, datasets, start, end))
    assert job["state"] == "done", job["error"]
    through_maas = found(engine)
    stats = backend.gateway_stats()
    assert stats["batches"] >= 2 and stats["batch_rows"] >= job["result"]["grid_points"] and stats["failures"] == 0

    evaluated = [f for f in faults if f.start >= start]
    for fault in evaluated:
        first = [s for _, s, _ in through_maas if fault.start <= s < fault.start + DELAY[fault.kind]]
        assert first, f"no incident within {DELAY[fault.kind]} of the {fault.kind} at {fault.start}"
    for element, s, _ in through_maas:  # nothing in clean periods
        assert any(f.start <= s < f.end for f in evaluated), f"{element} incident at {s} outside every fault"
    assert {e for e, _, _ in through_maas} == {"hydraulics", "operating-point", "suction-low"}
    assert [e.kind for e in recorder.events].count("opened") == len(through_maas)

    # the instances were deployed, called, then removed: no runner, no registration left
    names = [inference.instance_name("pump7", e) for e in ("hydraulics", "operating-point")]
    wait_until(lambda: not any(cluster.registrations(n) for n in names), timeout=60, what="registrations gone")
    wait_until(lambda: not cluster.runner_processes(), timeout=60, what="runners gone")

    # a rerun of the same interval in process replaces the results and incidents: the same ones
    pool.services["inference_backend"] = inference.InProcessBackend(store)
    again = run_job(engine, pool, queue(engine, train, datasets, start, end))
    assert again["state"] == "done", again["error"]
    assert again["result"]["replaced"]["incidents"] == len(through_maas)
    assert again["result"]["replaced"]["results"] == job["result"]["results"]
    assert found(engine) == through_maas
    backend.close()


def test_streaming_through_maas_survives_an_instance_killed_mid_stream(cluster: Cluster) -> None:
    import json
    import math
    import os
    import signal

    from lifecycle.streaming import ModelStream

    train = pump_train()
    work = cluster.tmp
    definition = train.load_definition(max_epochs=3)
    for element in definition["elements"]:
        element["detection"] = dict(DETECTION)
    _, faults = train.write_data(work, 7)
    engine, store, datasets = train.build(work, faults, definition)
    assert train.train(engine, store, datasets, "pump7", quiet=True)["state"] == "done"
    start = train.telemetry.TRAIN_END
    end = train.telemetry.START + pd.Timedelta(days=21)

    # the reference: a historical run in process
    pool = jobs.WorkerPool(engine, handlers={"inference": inference.run_inference}, n=0,
                           services={"datasets": datasets, "store": store, "notifier": notify.Recorder(),
                                     "inference_backend": inference.InProcessBackend(store)})
    assert run_job(engine, pool, queue(engine, train, datasets, start, end))["state"] == "done"
    historical = found(engine)

    with Session(engine) as session:
        snap = inference._snapshot(session, "pump7")
        frame = datasets.read_grid(session, train.DATASET, start=start.to_pydatetime(), end=end.to_pydatetime())
    frame = frame[(frame.index >= start) & (frame.index < end)]
    lines = [json.dumps({"time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         **{k: (None if math.isnan(v) else v) for k, v in row.items()}})
             for t, row in zip(frame.index, frame.to_dict("records"))]
    backend = inference.MaasBackend(cluster.quorum, DEFAULT_CONFIG_PATH, store)
    key = inference.stream_key("pump7")
    scorers = backend.start(key, [e for e in snap.elements if e.kind != "rule"])
    try:
        stream = ModelStream("pump7", snap.elements, scorers, step_s=60, inference_markups=snap.inference_markups,
                             batch=500)
        events = []
        victim_name = inference.instance_name(key, "hydraulics")
        for n, text in enumerate(lines, start=1):
            events.extend(stream.feed(n, text))
            if n == 3000:  # kill the forecaster's only instance between two batches
                [registration] = cluster.registrations(victim_name).values()
                os.kill(cluster.service_pid(registration["port"]), signal.SIGKILL)
        events.extend(stream.flush())
    finally:
        backend.stop(key)
        backend.close()
    # several instances per element: all of them are removed by stop
    two = inference.MaasBackend(cluster.quorum, DEFAULT_CONFIG_PATH, store, instances=2)
    try:
        two.start("pump7.two", [e for e in snap.elements if e.kind != "rule"])
        assert len(cluster.registrations(inference.instance_name("pump7.two", "operating-point"))) == 2
    finally:
        two.stop("pump7.two")
        two.close()
    wait_until(lambda: not cluster.registrations(inference.instance_name("pump7.two", "operating-point")),
               timeout=60, what="both instances' registrations gone")
    wait_until(lambda: not cluster.runner_processes(), timeout=60, what="every runner gone")
    assert scorers["hydraulics"].retried > 0  # points were sent again while the instance came back
    assert stream.report.errors == [] and stream.report.points == len(frame)
    opened = {(e.incident.element, e.incident.seq): e.incident for e in events if e.kind == "opened"}
    closed = {(e.incident.element, e.incident.seq): e.incident for e in events if e.kind == "closed"}
    streamed = sorted((i.element, i.start, closed[k].end if k in closed else None) for k, i in opened.items())
    assert streamed == historical  # no point lost: the same incidents
    wait_until(lambda: not cluster.registrations(victim_name), timeout=60, what="the stream's registrations gone")
