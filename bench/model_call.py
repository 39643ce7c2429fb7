"""The model call path, side by side on the DGA model, one run, same hosts:

- in-process onnxruntime (the limit): ``InferenceSession.run`` on one row;
- raw HTTP to our model_server (``GET /apply?host=…``, keep-alive httpx client);
- ``MAAS_MODEL_APPLY`` through a Stellar expression: discovery cache + gateway + HTTP (result
  cache disabled, so every call reaches the model).

Single-caller p50/p99 and calls/s at 1 and 8 concurrent callers. The instance is deployed for
real (local ZooKeeper, controller, maas_deploy). The KServe comparison lives in
``bench/model_server.py``.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import httpx
import numpy as np
import onnxruntime as ort

import stellar_like
from bench.common import Result, percentile
from deploy_client.api import DeployClient
from maas.discovery import DiscoveryClient
from maas.local_zookeeper import ZooKeeperServer
from maas.retry import wait_until
from maas.zk import connect, read_config
from enrichment.gateway import GatewaySettings, MaasGateway

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = REPO / "examples" / "dga" / "payload"
EXPR = "MAP_GET('is_malicious', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), {'host': host}))"
SECONDS = 4.0


def _hosts(n: int = 2000) -> list[str]:
    rng = random.Random(3)
    letters = "abcdefghijklmnopqrstuvwxyz"
    return [("www." if i % 3 else "") + "".join(rng.choice(letters) for _ in range(rng.randint(5, 14))) + ".com"
            for i in range(n)]


def _measure(call: Callable[[str], object], hosts: list[str], callers: int) -> tuple[list[float], float]:
    """Latencies of single calls, and calls/s over SECONDS with ``callers`` threads."""
    lat = []
    if callers == 1:
        for h in hosts[:500]:
            t0 = time.perf_counter()
            call(h)
            lat.append(time.perf_counter() - t0)
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
    return lat, total / (time.perf_counter() - t0)


def run() -> list[Result]:
    results: list[Result] = []
    if not (PAYLOAD / "model.onnx").exists():
        raise SystemExit("examples/dga/payload/model.onnx is missing: run `make model`")
    hosts = _hosts()
    run_dir = Path(tempfile.mkdtemp(prefix="maas-bench-call-"))
    zk = ZooKeeperServer(data_dir=run_dir / "zk")
    controller: subprocess.Popen[bytes] | None = None
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
            client.wait(client.submit("ADD", "dga", "1.0", path="/models/dga/1.0"), timeout=120)
        discovery = DiscoveryClient(zkc, "/maas/service")
        discovery.wait_for(lambda d: bool(d.endpoints("dga")), timeout=30, what="dga endpoint")
        url = discovery.endpoints("dga")[0].url
        http = httpx.Client(limits=httpx.Limits(max_connections=16, max_keepalive_connections=16))

        def raw_http(h: str) -> object:
            return http.get(f"{url}/apply", params={"host": h}).json()

        gateway = MaasGateway(discovery, GatewaySettings(cache_size=0))
        ctx = stellar_like.Context(gateway=gateway)
        compiled = stellar_like.compile(EXPR)

        def maas_apply(h: str) -> object:
            return compiled.evaluate({"host": h}, ctx)

        assert maas_apply("xjwqkzvbtpqmd.com") == raw_http("xjwqkzvbtpqmd.com")["is_malicious"]
        rates: dict[tuple[str, int], float] = {}
        for label, fn in (("in-process onnxruntime", in_process), ("raw HTTP to model_server", raw_http),
                          ("MAAS_MODEL_APPLY (discovery + gateway)", maas_apply)):
            for callers in (1, 8):
                lat, rate = _measure(fn, hosts, callers)
                rates[(label, callers)] = rate
                if lat:
                    results.append(Result("model_call", f"{label}: p50", percentile(lat, 50) * 1e6, "µs"))
                    results.append(Result("model_call", f"{label}: p99", percentile(lat, 99) * 1e6, "µs"))
                results.append(Result("model_call", f"{label}: calls/s, {callers} caller(s)", rate, "1/s"))
        for callers in (1, 8):
            base = rates[("in-process onnxruntime", callers)]
            raw = rates[("raw HTTP to model_server", callers)]
            maas = rates[("MAAS_MODEL_APPLY (discovery + gateway)", callers)]
            results.append(Result("model_call", f"ratio raw HTTP / in-process, {callers} caller(s)", raw / base, "×"))
            results.append(Result("model_call", f"ratio MAAS_MODEL_APPLY / raw HTTP, {callers} caller(s)", maas / raw, "×"))
        gateway.close()
        http.close()
        discovery.close()
        with DeployClient(zk.address) as client:
            client.wait(client.submit("REMOVE", "dga", "1.0"), timeout=60)
        zkc.stop()
    finally:
        if controller is not None and controller.poll() is None:
            controller.send_signal(signal.SIGTERM)
            controller.wait(timeout=30)
        subprocess.run(["pkill", "-9", "-f", str(run_dir)], check=False)
        zk.cleanup()
        shutil.rmtree(run_dir, ignore_errors=True)
    return results
