"""Inference: historical and streaming throughput of the pump model through MaaS, against the
same elements run in process through onnxruntime (the limit), and how fast a fault becomes a
notification.

Starts a local ZooKeeper and a MaaS controller, trains the pump example (``examples/pump``, a
few epochs: the speed of inference does not depend on how well it trained) into the
controller's store, then over the evaluation week (10 080 one-minute grid points):

- historical inference as the ``inference`` job: through MaaS (deploy, wait for the endpoints,
  gateway micro-batches, removal) and in process — grid points/s of the whole job;
- streaming (the week as JSON lines into :class:`lifecycle.streaming.ModelStream`) through MaaS
  with 1 and 3 instances per element, micro-batched (500 lines per batch) and unbatched (one
  line per batch, on the first 600 lines), and in process — telemetry points/s;
- from the first grid point of a cavitation fault to its incident's notification: the
  detector's delay in data time (the observation interval and share it waits for), and the
  processing latency of the line that registers it, streamed one line at a time through MaaS.
"""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

from bench.common import Result

REPO = Path(__file__).resolve().parents[1]
PUMP = REPO / "examples" / "pump"
SCENARIO = "inference"
DETECTION = {"observation_s": 1800, "share": 0.5, "suppression_s": 3600}


def _result(metric: str, value: float, unit: str, note: str = "") -> Result:
    return Result(SCENARIO, metric, float(value), unit, note, {})


def _train_module() -> Any:
    spec = importlib.util.spec_from_file_location("pump_train", PUMP / "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pump_train"] = module
    spec.loader.exec_module(module)
    return module


def run() -> Iterator[Result]:
    import pandas as pd
    from sqlalchemy.orm import Session

    from lifecycle import inference, jobs, notify
    from lifecycle.streaming import ModelStream
    from maas.config import DEFAULT_CONFIG_PATH
    from maas.local_zookeeper import ZooKeeperServer
    from maas.retry import wait_until
    from maas.zk import connect, read_config

    train = _train_module()
    run_dir = Path(tempfile.mkdtemp(prefix="maas-bench-inference-"))
    zk = ZooKeeperServer(data_dir=run_dir / "zk")
    controller = None
    try:
        zk.start()
        log = open(run_dir / "controller.log", "ab")
        controller = subprocess.Popen(
            [sys.executable, "-m", "maas.cli", "-zq", zk.address, "--store-uri", f"file://{run_dir / 'store'}",
             "--work-dir", str(run_dir / "work"), "--reconcile-interval", "0.5", "--log-level", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        watcher = connect(zk.address)
        wait_until(lambda: read_config(watcher).store_uri == f"file://{run_dir / 'store'}", timeout=30, what="config")
        watcher.stop()
        watcher.close()

        definition = train.load_definition(max_epochs=3)
        for element in definition["elements"]:
            element["detection"] = dict(DETECTION)
        _, faults = train.write_data(run_dir, 7)
        engine, store, datasets = train.build(run_dir, faults, definition)
        if train.train(engine, store, datasets, "pump7", quiet=True)["state"] != "done":
            raise RuntimeError("training the pump example failed")
        start, end = train.telemetry.TRAIN_END, train.telemetry.START + pd.Timedelta(days=21)

        def historical(backend: Any) -> tuple[float, dict[str, Any]]:
            pool = jobs.WorkerPool(engine, handlers={"inference": inference.run_inference}, n=0,
                                   services={"datasets": datasets, "store": store, "inference_backend": backend,
                                             "notifier": notify.Recorder()})
            with Session(engine) as session:
                job_id = inference.queue_historical(session, train.TRAINER, "pump7", train.DATASET,
                                                    start.to_pydatetime(), end.to_pydatetime(), datasets).id
                session.commit()
            t0 = time.perf_counter()
            pool.run_once()
            wall = time.perf_counter() - t0
            with Session(engine) as session:
                job = jobs.get(session, job_id).to_json()
            if job["state"] != "done":
                raise RuntimeError(f"inference failed: {job['error']}")
            return wall, job["result"]

        backends: list[Any] = []

        def maas(instances: int = 1) -> Any:
            backends.append(inference.MaasBackend(zk.address, DEFAULT_CONFIG_PATH, store, instances=instances))
            return backends[-1]

        maas_wall, result = historical(maas())
        local_wall, _ = historical(inference.InProcessBackend(store))
        points = result["grid_points"]
        yield _result("historical through MaaS (deploy, score, remove)", points / maas_wall, "grid points/s",
                      f"{points} points × 3 elements in {maas_wall:.1f} s, {result['incidents']} incidents")
        yield _result("historical in process (onnxruntime, the limit)", points / local_wall, "grid points/s",
                      f"{local_wall:.1f} s; MaaS at {local_wall / maas_wall:.2f} × the limit")

        with Session(engine) as session:
            snap = inference._snapshot(session, "pump7")
            frame = datasets.read_grid(session, train.DATASET, start=start.to_pydatetime(), end=end.to_pydatetime())
        frame = frame[(frame.index >= start) & (frame.index < end)]
        lines = [json.dumps({"time": t.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             **{k: (None if math.isnan(v) else v) for k, v in row.items()}})
                 for t, row in zip(frame.index, frame.to_dict("records"))]
        trained = [e for e in snap.elements if e.kind != "rule"]

        def stream(backend: Any, key: str, batch: int, n: int) -> tuple[float, ModelStream, list[Any]]:
            scorers = backend.start(key, trained)
            try:
                s = ModelStream("pump7", snap.elements, scorers, step_s=60,
                                inference_markups=snap.inference_markups, batch=batch)
                events, timings = [], []
                t0 = time.perf_counter()
                for i, text in enumerate(lines[:n], start=1):
                    t1 = time.perf_counter()
                    got = s.feed(i, text)
                    if got:
                        timings.append((time.perf_counter() - t1, got))
                    events.extend(got)
                events.extend(s.flush())
                return time.perf_counter() - t0, s, timings
            finally:
                backend.stop(key)

        rates: dict[str, float] = {}
        local = inference.InProcessBackend(store)
        wall, _, _ = stream(local, "pump7.bench", 500, len(lines))
        rates["local"] = len(lines) / wall
        for instances in (1, 3):
            backend = maas(instances)
            wall, _, _ = stream(backend, f"pump7.b{instances}", 500, len(lines))
            rates[f"batched{instances}"] = len(lines) / wall
            wall, _, _ = stream(backend, f"pump7.u{instances}", 1, 600)
            rates[f"unbatched{instances}"] = 600 / wall
        for instances in (1, 3):
            yield _result(f"streaming through MaaS, {instances} instance(s) per element, batches of 500",
                          rates[f"batched{instances}"], "points/s",
                          f"{rates[f'batched{instances}'] / rates['local']:.2f} × in process")
            yield _result(f"streaming through MaaS, {instances} instance(s) per element, unbatched",
                          rates[f"unbatched{instances}"], "points/s",
                          f"batching gives {rates[f'batched{instances}'] / rates[f'unbatched{instances}']:.1f} ×")
        yield _result("streaming in process, batches of 500", rates["local"], "points/s", "the limit")

        # fault → notification: streamed one line at a time from a little before the first cavitation
        cavitation = next(f for f in faults if f.kind == "cavitation" and f.start >= start)
        first = int(frame.index.get_indexer([cavitation.start])[0])
        lines_from = lines[first - 60:first + 240]
        backend = maas()
        scorers = backend.start("pump7.delay", trained)
        try:
            s = ModelStream("pump7", snap.elements, scorers, step_s=60, inference_markups=snap.inference_markups,
                            batch=1)
            latency, registered = None, None
            for i, text in enumerate(lines_from, start=1):
                t1 = time.perf_counter()
                got = [e for e in s.feed(i, text) if e.kind == "opened"]
                if got:
                    latency, registered = time.perf_counter() - t1, got[0].incident.registered_at
                    break
        finally:
            backend.stop("pump7.delay")
            for b in backends:
                b.close()
        if registered is not None and latency is not None:
            delay = (pd.Timestamp(registered) - cavitation.start).total_seconds()
            yield _result("cavitation: first faulty point → incident registered (data time)", delay / 60, "min",
                          f"observation {DETECTION['observation_s'] / 60:.0f} min × share {DETECTION['share']}")
            yield _result("… the registering line → its notification (processing, through MaaS)", latency * 1000, "ms",
                          "one line per batch")
    finally:
        if controller is not None and controller.poll() is None:
            controller.terminate()
            try:
                controller.wait(timeout=30)
            except subprocess.TimeoutExpired:
                controller.kill()
        zk.cleanup()
        import shutil

        shutil.rmtree(run_dir, ignore_errors=True)
