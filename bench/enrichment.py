"""Enrichment throughput: events/s through the pipeline with one model call per event.

A real local ZooKeeper, a controller and one instance of the DGA example model (model_server +
onnxruntime over HTTP; the echo payload when ``examples/dga/payload/model.onnx`` is not built).
The same events (distinct hosts, the result cache off, so every event costs a model call) go
through :class:`~enrichment.EnrichmentPipeline` — JSON lines in, enriched JSON lines
out, through the batcher — three ways:

- unbatched: one ``GET /apply`` per event (``--batch-size 1``, Metron's way);
- micro-batched: batches of 100 events, one ``POST /apply`` of 100 rows per batch (and of 1000);
- in-process onnxruntime (DGA model only): the same micro-batched pipeline with a gateway that
  calls :class:`model_server.runtime.ModelRuntime` directly — the ceiling without HTTP;
- the unbatched and micro-batched pipelines again with the gateway over ``httpx`` (its HTTP
  client before :class:`enrichment.httppool.KeepAlivePool`), side by side in the same rounds.

The unbatched and micro-batched runs alternate three times (the machine's load varies) and the
medians are reported. Discovery update latency is measured by the control_plane and scale
scenarios. Bounded to about a minute; every process started is stopped.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import statistics
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psutil

from bench.common import Result
from deploy_client.api import DeployClient
from maas.local_zookeeper import ZooKeeperServer
from maas.retry import wait_until
from maas.zk import connect, read_config
from enrichment import EnrichmentPipeline, Line, parse_config
from enrichment.service import connect_models
from enrichment.sources import batches
from stellar_like.gateway import ModelGateway
from enrichment.gateway import GatewaySettings, MaasGateway
from bench.transports import HttpxTransport

REPO = Path(__file__).resolve().parents[1]
DGA = REPO / "examples" / "dga" / "payload"
ECHO = REPO / "tests" / "payloads" / "echo"
SCENARIO = "enrichment"
BATCH = 100
ROUNDS = 3


def _config(model: str) -> Any:
    key = "is_malicious" if model == "dga" else "host"
    return parse_config({"enrichments": {
        "label": f"MAP_GET('{key}', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('{model}'), {{'host': host}}))"}})


def _lines(n: int, seed: int = 7) -> list[Line]:
    """Squid-like events with distinct hosts, legit-looking and DGA-looking."""
    rng = random.Random(seed)
    words = ["news", "mail", "shop", "cloud", "video", "bank", "travel", "games", "photo", "music"]
    lines = []
    for i in range(n):
        if i % 3 == 0:
            host = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(10, 18))) + ".com"
        else:
            host = f"www.{rng.choice(words)}{rng.choice(words)}{i}.org"
        event = {"timestamp": 1461576382642 + i, "ip_src_addr": "192.168.66.1", "method": "GET",
                 "url": f"http://{host}/index.html", "host": host}
        lines.append(Line(json.dumps(event), f"bench:{i}"))
    return lines


def _throughput(pipeline: EnrichmentPipeline, lines: Sequence[Line], batch_size: int,
                budget: float | None = None) -> tuple[float, list[str]]:
    """Events/s through ``pipeline`` (stopping after ``budget`` seconds), and the output lines."""
    out: list[str] = []
    errors: list[str] = []
    t0 = time.perf_counter()
    for batch in batches(iter(lines), batch_size, linger=0.05):
        for outcome in pipeline.process(batch):
            (out if outcome.ok else errors).append(outcome.text)
        if budget is not None and time.perf_counter() - t0 > budget:
            break
    elapsed = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} events failed, e.g. {errors[0]}")
    return len(out) / elapsed, out


class InProcessGateway:
    """A model gateway that runs the DGA model in this process: no HTTP, no discovery."""

    def __init__(self, payload: Path) -> None:
        from model_server.runtime import ModelRuntime

        self.runtime = ModelRuntime.load(payload / "model.onnx", payload / "signature.json")
        self.runtime.warm_up()

    def get_endpoint(self, name: str, version: str | None = None) -> dict[str, Any] | None:
        return {"name": name, "version": version or "1.0", "url": "inprocess:"}

    def apply(self, endpoint: dict[str, Any], function: str | None, args: dict[str, Any]) -> dict[str, Any] | None:
        return self.runtime.predict([args])[0]

    def apply_batch(self, endpoint: dict[str, Any], function: str | None,
                    rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any] | None]:
        return list(self.runtime.predict(list(rows)))


def _labels(out: list[str]) -> list[Any]:
    return [json.loads(text)["label"] for text in out]


def run(events: int = 20_000, unbatched_budget: float = 18.0) -> list[Result]:
    model = "dga" if (DGA / "model.onnx").exists() else "echo"
    payload = DGA if model == "dga" else ECHO
    run_dir = Path(tempfile.mkdtemp(prefix="maas-bench-enrich-"))
    zk = ZooKeeperServer(data_dir=run_dir / "zk")
    controller: subprocess.Popen[bytes] | None = None
    results: list[Result] = []
    connection = None
    try:
        zk.start()
        log = open(run_dir / "controller.log", "ab")
        controller = subprocess.Popen(
            [sys.executable, "-m", "maas.cli", "-zq", zk.address, "--store-uri", f"file://{run_dir / 'store'}",
             "--work-dir", str(run_dir / "work"), "--reconcile-interval", "0.5", "--log-level", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
        )
        log.close()
        watcher = connect(zk.address)
        wait_until(lambda: read_config(watcher).store_uri == f"file://{run_dir / 'store'}", timeout=30, what="config")
        watcher.stop()
        watcher.close()
        with DeployClient(zk.address) as client:
            client.upload(payload, f"/models/{model}/1.0")
            client.wait(client.submit("ADD", model, "1.0", num_instances=1, path=f"/models/{model}/1.0"), timeout=90)
        connection = connect_models(zk.address, settings=GatewaySettings(cache_size=0))
        connection.discovery.wait_for(lambda d: bool(d.endpoints(model)), timeout=30, what="the model endpoint")

        config = _config(model)
        lines = _lines(events)
        warm = EnrichmentPipeline(config, connection.gateway)
        _throughput(warm, _lines(500, seed=1), BATCH)  # connections, the model's first batches

        httpx_gateway = MaasGateway(connection.discovery, GatewaySettings(cache_size=0), http=HttpxTransport())
        _throughput(EnrichmentPipeline(config, httpx_gateway), _lines(500, seed=1), BATCH)

        # Alternate the ways (the machine's load varies) and keep the medians.
        unbatched_runs: list[float] = []
        batched_runs: list[float] = []
        httpx_unbatched_runs: list[float] = []
        httpx_batched_runs: list[float] = []
        batched_pipeline = EnrichmentPipeline(config, connection.gateway)
        for _ in range(ROUNDS):
            rate, out_u = _throughput(EnrichmentPipeline(config, connection.gateway, batch_calls=False), lines, 1,
                                      budget=unbatched_budget / ROUNDS)
            unbatched_runs.append(rate)
            rate, out_b = _throughput(batched_pipeline, lines, BATCH)
            batched_runs.append(rate)
            rate, _ = _throughput(EnrichmentPipeline(config, httpx_gateway, batch_calls=False), lines, 1,
                                  budget=unbatched_budget / ROUNDS)
            httpx_unbatched_runs.append(rate)
            rate, _ = _throughput(EnrichmentPipeline(config, httpx_gateway), lines, BATCH)
            httpx_batched_runs.append(rate)
        httpx_gateway.close()
        unbatched, batched = statistics.median(unbatched_runs), statistics.median(batched_runs)
        httpx_unbatched, httpx_batched = statistics.median(httpx_unbatched_runs), statistics.median(httpx_batched_runs)
        big, _ = _throughput(EnrichmentPipeline(config, connection.gateway), lines, 1000)
        same = _labels(out_u) == _labels(out_b)[:len(out_u)]
        where = f"{model} model over HTTP, 1 instance, cache off"
        spread = "runs " + ", ".join(f"{r:.0f}" for r in unbatched_runs)
        results += [
            Result(SCENARIO, "unbatched: one GET per event", unbatched, "ev/s",
                   f"{where}; median of {ROUNDS} ({spread})"),
            Result(SCENARIO, f"micro-batched: batches of {BATCH}, one POST per batch", batched, "ev/s",
                   f"{where}; median of {ROUNDS} (runs {', '.join(f'{r:.0f}' for r in batched_runs)}), "
                   f"{events} events in {batched_pipeline.stats.model_requests // ROUNDS} requests"),
            Result(SCENARIO, "micro-batched / unbatched", batched / unbatched, "x",
                   f"target >= 10; same labels event for event: {same}"),
            Result(SCENARIO, "micro-batched: batches of 1000", big, "ev/s", where),
            Result(SCENARIO, "gateway over httpx (before): unbatched", httpx_unbatched, "ev/s",
                   f"median of {ROUNDS} (runs {', '.join(f'{r:.0f}' for r in httpx_unbatched_runs)})"),
            Result(SCENARIO, f"gateway over httpx (before): micro-batched, batches of {BATCH}", httpx_batched, "ev/s",
                   f"median of {ROUNDS} (runs {', '.join(f'{r:.0f}' for r in httpx_batched_runs)})"),
            Result(SCENARIO, "unbatched: keep-alive pool / httpx", unbatched / httpx_unbatched, "x"),
            Result(SCENARIO, "micro-batched: keep-alive pool / httpx", batched / httpx_batched, "x",
                   "target >= 1"),
        ]
        if model == "dga":
            gateway: ModelGateway = InProcessGateway(DGA)
            inproc, out_i = _throughput(EnrichmentPipeline(config, gateway), lines, BATCH)
            results.append(Result(SCENARIO, f"in-process onnxruntime: batches of {BATCH}, no HTTP", inproc, "ev/s",
                                  f"n={len(out_i)}; same labels: {_labels(out_i) == _labels(out_b)}"))
            t0 = time.perf_counter()
            runtime = gateway.runtime  # type: ignore[attr-defined]
            rows = [{"host": json.loads(line.text)["host"]} for line in lines]
            for start in range(0, len(rows), BATCH):
                runtime.predict(rows[start:start + BATCH])
            results.append(Result(SCENARIO, f"onnxruntime alone: predict() on batches of {BATCH}",
                                  len(rows) / (time.perf_counter() - t0), "rows/s", "no pipeline, no HTTP"))
    finally:
        if connection is not None:
            connection.close()
        if controller is not None and controller.poll() is None:
            controller.send_signal(signal.SIGTERM)
            try:
                controller.wait(timeout=30)
            except subprocess.TimeoutExpired:
                controller.kill()
                controller.wait()
        _kill_leftovers(run_dir, spare={zk.proc.pid} if zk.proc is not None else set())
        zk.cleanup()
        if os.environ.get("MAAS_BENCH_KEEP"):
            print(f"kept {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    return results


def _kill_leftovers(run_dir: Path, spare: set[int]) -> None:
    """Runners and model services started under ``run_dir`` (a stopped controller leaves them)."""
    marker = str(run_dir)
    victims = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if proc.pid != os.getpid() and proc.pid not in spare and (marker in " ".join(proc.info["cmdline"] or [])
                                            or (proc.info["cwd"] or "").startswith(marker)):
                victims.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    for proc in victims:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(victims, timeout=10)
