"""The model call path, side by side on the DGA model, one run, same hosts:

- in-process onnxruntime (the limit): ``InferenceSession.run`` on one row;
- the raw-HTTP floor: a minimal keep-alive client (:class:`bench.transports.FloorClient`) sending
  ``GET /apply?host=…`` to our model_server;
- the same GET through each HTTP client the gateway could use: the gateway's keep-alive pool
  (:mod:`enrichment.httppool`), ``http.client``, ``urllib3``, ``httpx``; and the Open Inference
  Protocol's ``POST /v2/models/dga/infer`` through the pool (HTTP/2 is not offered: uvicorn speaks
  HTTP/1.1; the binary tensor extension saves nothing on one short string);
- ``MAAS_MODEL_APPLY`` through a Stellar expression: discovery cache + gateway + HTTP (result
  cache disabled, so every call reaches the model), over each of those clients;
- all of it against two instances deployed for real: ``dga`` as shipped, and ``dga_hop``, the
  same payload with ``--max-inline-ms 0`` — the server as it was before lone one-row requests ran
  on the event loop (every request hops to the runner thread and back).

"before" is the gateway over httpx against ``dga_hop`` (what a call cost before this path was
made lean), "after" the gateway as shipped against ``dga``. CPU per call (the caller's thread and the
model server's process, 1000 sequential calls: what a call costs on an idle machine, hardly moved
by other work), single-caller p50/p99 (1000 calls each,
the ways taking turns 50 calls at a time, so the machine's varying load falls on all alike), and calls/s
at 1 and 8 concurrent callers for the main rows. The instances are deployed for real (local ZooKeeper,
controller, maas_deploy). The KServe comparison lives in ``bench/model_server.py``.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable
from urllib.parse import urlencode

import numpy as np
import onnxruntime as ort
import psutil

import stellar_like
from bench.common import Result, percentile
from bench.enrichment import _kill_leftovers
from bench.transports import FloorClient, HttpClientTransport, HttpxTransport, Urllib3Transport
from deploy_client.api import DeployClient
from maas.discovery import DiscoveryClient
from maas.local_zookeeper import ZooKeeperServer
from maas.retry import wait_until
from maas.zk import connect, read_config
from enrichment.gateway import GatewaySettings, MaasGateway
from enrichment.httppool import HttpTransport, KeepAlivePool

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = REPO / "examples" / "dga" / "payload"
EXPR = "MAP_GET('is_malicious', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('{model}'), {{'host': host}}))"
SECONDS = 3.0
SCENARIO = "model_call"


def _hosts(n: int = 2000) -> list[str]:
    rng = random.Random(3)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [("www." if i % 3 else "") + "".join(rng.choice(letters) for _ in range(rng.randint(5, 14))) + ".com"
            for i in range(n)]


def _latencies(calls: dict[str, Callable[[str], object]], hosts: list[str], n: int = 1000,
               block: int = 50) -> dict[str, list[float]]:
    """Single-call latencies of every way, ``n`` each, the ways taking turns ``block`` calls at a
    time: each way runs warm (its connection, its server) and the machine's varying load (other
    work runs here) falls on all of them alike."""
    for call in calls.values():  # warm up: connections, the model's first calls
        for h in hosts[:50]:
            call(h)
    lat: dict[str, list[float]] = {label: [] for label in calls}
    for start in range(50, 50 + n, block):
        for label, call in calls.items():
            for h in hosts[start:start + block]:
                t0 = time.perf_counter()
                call(h)
                lat[label].append(time.perf_counter() - t0)
    return lat


def _cpu(call: Callable[[str], object], hosts: list[str], server: psutil.Process | None,
         n: int = 1000) -> tuple[float, float]:
    """CPU seconds per call: the caller's own (this thread) and the model server's (every thread of
    its process). Unlike latency, CPU time hardly depends on what else runs on the machine."""
    def server_cpu() -> float:
        if server is None:
            return 0.0
        times = server.cpu_times()
        return times.user + times.system

    s0, c0 = server_cpu(), time.thread_time()
    for h in hosts[:n]:
        call(h)
    c1, s1 = time.thread_time(), server_cpu()
    return (c1 - c0) / n, (s1 - s0) / n


def _server_process(url: str) -> psutil.Process:
    """The process listening at ``url``'s port."""
    port = int(url.rsplit(":", 1)[1].split("/", 1)[0])
    for conn in psutil.net_connections("tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return psutil.Process(conn.pid)
    raise RuntimeError(f"no process listens at {url}")


def _rate(call: Callable[[str], object], hosts: list[str], callers: int) -> float:
    """Calls/s over SECONDS with ``callers`` threads."""
    deadline = time.perf_counter() + SECONDS

    def worker(offset: int) -> int:
        n = 0
        while time.perf_counter() < deadline:
            call(hosts[(offset + n) % len(hosts)])
            n += 1
        return n

    t0 = time.perf_counter()
    with ThreadPoolExecutor(callers) as pool:
        total = sum(pool.map(worker, range(0, callers * 97, 97)))
    return total / (time.perf_counter() - t0)


def _hop_payload(run_dir: Path) -> Path:
    """The DGA payload with the server's event-loop shortcut off (``--max-inline-ms 0``)."""
    hop = run_dir / "dga_hop"
    shutil.copytree(PAYLOAD, hop)
    script = hop / "rest.sh"
    script.write_text(script.read_text().replace("exec ", "export MODEL_SERVER_MAX_INLINE_MS=0\nexec ", 1))
    return hop


def run() -> list[Result]:
    results: list[Result] = []
    if not (PAYLOAD / "model.onnx").exists():
        raise SystemExit("examples/dga/payload/model.onnx is missing: run `make model`")
    hosts = _hosts()
    run_dir = Path(tempfile.mkdtemp(prefix="maas-bench-call-"))
    zk = ZooKeeperServer(data_dir=run_dir / "zk")
    controller: subprocess.Popen[bytes] | None = None
    closers: list[Callable[[], object]] = []
    try:
        session = ort.InferenceSession(str(PAYLOAD / "model.onnx"), providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name

        def in_process(h: str) -> object:
            return session.run(None, {input_name: np.array([h], dtype=object)})

        zk.start()
        log = open(run_dir / "controller.log", "wb")
        controller = subprocess.Popen(
            [sys.executable, "-m", "maas.cli", "-zq", zk.address, "--store-uri", f"file://{run_dir / 'store'}",
             "--work-dir", str(run_dir / "work"), "--log-level", "WARNING"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
        zkc = connect(zk.address)
        wait_until(lambda: read_config(zkc).store_uri == f"file://{run_dir / 'store'}", timeout=30, what="config")
        with DeployClient(zk.address) as client:
            client.upload(PAYLOAD, "/models/dga/1.0")
            client.upload(_hop_payload(run_dir), "/models/dga_hop/1.0")
            for model in ("dga", "dga_hop"):
                client.wait(client.submit("ADD", model, "1.0", path=f"/models/{model}/1.0"), timeout=120)
        discovery = DiscoveryClient(zkc, "/maas/service")
        discovery.wait_for(lambda d: bool(d.endpoints("dga")) and bool(d.endpoints("dga_hop")), timeout=30,
                           what="the endpoints")
        urls = {model: discovery.endpoints(model)[0].url for model in ("dga", "dga_hop")}

        def floor(model: str) -> Callable[[str], object]:
            local = threading.local()

            def call(h: str) -> object:
                client = getattr(local, "client", None)
                if client is None:
                    client = local.client = FloorClient(urls[model])
                    closers.append(client.close)
                return json.loads(client.get("/apply?" + urlencode({"host": h})))
            return call

        transports: dict[str, Callable[[], HttpTransport]] = {
            "keep-alive pool": lambda: KeepAlivePool(max_connections=16),
            "http.client": HttpClientTransport,
            "urllib3": lambda: Urllib3Transport(max_connections=16),
            "httpx": lambda: HttpxTransport(max_connections=16),
        }

        def client_get(kind: str, model: str) -> Callable[[str], object]:
            transport = transports[kind]()
            closers.append(transport.close)
            return lambda h: json.loads(transport.request("GET", urls[model], "apply", query=urlencode({"host": h})).body)

        v2_pool = KeepAlivePool(max_connections=16)
        closers.append(v2_pool.close)

        def v2_infer(h: str) -> object:
            body = json.dumps({"inputs": [{"name": "host", "datatype": "BYTES", "shape": [1], "data": [h]}]})
            return json.loads(v2_pool.request("POST", urls["dga"], "v2/models/dga/infer", body=body.encode()).body)

        def maas_apply(kind: str, model: str) -> Callable[[str], object]:
            transport = transports[kind]()
            gateway = MaasGateway(discovery, GatewaySettings(cache_size=0), http=transport)
            closers.append(gateway.close)
            ctx = stellar_like.Context(gateway=gateway)
            compiled = stellar_like.compile(EXPR.format(model=model))
            return lambda h: compiled.evaluate({"host": h}, ctx)

        servers = {model: _server_process(url) for model, url in urls.items()}
        rows: list[tuple[str, Callable[[str], object], bool]] = [
            ("in-process onnxruntime", in_process, True),
            ("floor client, GET /apply (dga)", floor("dga"), True),
            ("floor client, GET /apply (dga_hop)", floor("dga_hop"), False),
        ]
        for kind in transports:
            rows.append((f"{kind}, GET /apply (dga)", client_get(kind, "dga"), False))
        rows.append(("keep-alive pool, POST /v2/models/dga/infer (JSON)", v2_infer, False))
        rows += [
            ("MAAS_MODEL_APPLY after: keep-alive pool, dga", maas_apply("keep-alive pool", "dga"), True),
            ("MAAS_MODEL_APPLY before: httpx, dga_hop", maas_apply("httpx", "dga_hop"), True),
            ("MAAS_MODEL_APPLY: keep-alive pool, dga_hop", maas_apply("keep-alive pool", "dga_hop"), False),
            ("MAAS_MODEL_APPLY: httpx, dga", maas_apply("httpx", "dga"), False),
            ("MAAS_MODEL_APPLY: http.client, dga", maas_apply("http.client", "dga"), False),
            ("MAAS_MODEL_APPLY: urllib3, dga", maas_apply("urllib3", "dga"), False),
        ]
        expected = json.loads(FloorClient(urls["dga"]).get("/apply?host=xjwqkzvbtpqmd.com"))["is_malicious"]
        for label, fn, _ in rows:
            if label.startswith("MAAS_MODEL_APPLY"):
                assert fn("xjwqkzvbtpqmd.com") == expected, label

        lat = _latencies({label: fn for label, fn, _ in rows}, hosts)
        p50 = {label: percentile(values, 50) * 1e6 for label, values in lat.items()}
        for label, _, _ in rows:
            results.append(Result(SCENARIO, f"{label}: p50", p50[label], "µs", f"n={len(lat[label])}, in turns of 50"))
            results.append(Result(SCENARIO, f"{label}: p99", percentile(lat[label], 99) * 1e6, "µs"))
        cpu_rows = {"in-process onnxruntime": None, "floor client, GET /apply (dga)": "dga",
                    "floor client, GET /apply (dga_hop)": "dga_hop", "keep-alive pool, GET /apply (dga)": "dga",
                    "http.client, GET /apply (dga)": "dga", "urllib3, GET /apply (dga)": "dga",
                    "httpx, GET /apply (dga)": "dga", "MAAS_MODEL_APPLY after: keep-alive pool, dga": "dga",
                    "MAAS_MODEL_APPLY before: httpx, dga_hop": "dga_hop"}
        cpu: dict[str, tuple[float, float]] = {}
        for label, fn, _ in rows:
            if label in cpu_rows:
                model = cpu_rows[label]
                cpu[label] = client_cpu, server_cpu = _cpu(fn, hosts, servers[model] if model else None)
                results.append(Result(SCENARIO, f"{label}: CPU per call, caller / server",
                                      client_cpu * 1e6, "µs", f"server {server_cpu * 1e6:.0f} µs"))
        rates: dict[tuple[str, int], float] = {}
        for callers in (1, 8):
            for label, fn, loaded in rows:
                if loaded:
                    rates[(label, callers)] = rate = _rate(fn, hosts, callers)
                    results.append(Result(SCENARIO, f"{label}: calls/s, {callers} caller(s)", rate, "1/s"))
        after, before = "MAAS_MODEL_APPLY after: keep-alive pool, dga", "MAAS_MODEL_APPLY before: httpx, dga_hop"
        floor_row = "floor client, GET /apply (dga)"
        results += [
            Result(SCENARIO, "p50 ratio MAAS_MODEL_APPLY before / after", p50[before] / p50[after], "×",
                   "target: after p50 <= 500 µs"),
            Result(SCENARIO, "p50 ratio MAAS_MODEL_APPLY after / floor client", p50[after] / p50[floor_row], "×"),
            Result(SCENARIO, "p50 ratio floor client / in-process", p50[floor_row] / p50["in-process onnxruntime"], "×"),
            Result(SCENARIO, "p50 server: hop / event loop (floor client)",
                   p50["floor client, GET /apply (dga_hop)"] / p50[floor_row], "×"),
            Result(SCENARIO, "CPU per call (caller + server), MAAS_MODEL_APPLY before / after",
                   sum(cpu[before]) / sum(cpu[after]), "×",
                   f"{sum(cpu[before]) * 1e6:.0f} / {sum(cpu[after]) * 1e6:.0f} µs"),
            Result(SCENARIO, "server CPU per call, hop / event loop (floor client)",
                   cpu["floor client, GET /apply (dga_hop)"][1] / cpu[floor_row][1], "×"),
        ]
        for callers in (1, 8):
            results.append(Result(SCENARIO, f"calls/s ratio MAAS_MODEL_APPLY after / before, {callers} caller(s)",
                                  rates[(after, callers)] / rates[(before, callers)], "×"))
            results.append(Result(SCENARIO, f"calls/s ratio MAAS_MODEL_APPLY after / floor, {callers} caller(s)",
                                  rates[(after, callers)] / rates[(floor_row, callers)], "×"))
        for close in closers:
            close()
        closers.clear()
        discovery.close()
        with DeployClient(zk.address) as client:
            for model in ("dga", "dga_hop"):
                client.wait(client.submit("REMOVE", model, "1.0"), timeout=60)
        zkc.stop()
    finally:
        for close in closers:
            close()
        if controller is not None and controller.poll() is None:
            controller.send_signal(signal.SIGTERM)
            controller.wait(timeout=30)
        _kill_leftovers(run_dir, spare={zk.proc.pid} if zk.proc is not None else set())
        zk.cleanup()
        shutil.rmtree(run_dir, ignore_errors=True)
    return results
