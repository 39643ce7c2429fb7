"""Control-plane latencies on a real local ZooKeeper with real processes:

- ADD → endpoint visible to a subscribed discovery client (p50/p95 over N deploys);
- instance death (SIGKILL of the service) → replacement registered (p50/p95);
- leader failover: SIGKILL of the leading controller → a standby applies the next request.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Result, percentile
from deploy_client.api import DeployClient
from maas.discovery import DiscoveryClient
from maas.local_zookeeper import ZooKeeperServer
from maas.retry import wait_until
from maas.zk import connect, read_config

REPO = Path(__file__).resolve().parents[1]
PAYLOAD = REPO / "tests" / "payloads" / "echo"


def _controller(quorum: str, run: Path, index: int) -> subprocess.Popen[bytes]:
    log = open(run / f"controller-{index}.log", "ab")
    return subprocess.Popen(
        [sys.executable, "-m", "maas.cli", "-zq", quorum, "--store-uri", f"file://{run / 'store'}",
         "--work-dir", str(run / "work"), "--reconcile-interval", "1", "--session-timeout", "4",
         "--log-level", "WARNING"],
        stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
    )


def run(deploys: int = 20) -> list[Result]:
    run_dir = Path(tempfile.mkdtemp(prefix="maas-bench-cp-"))
    zk = ZooKeeperServer(data_dir=run_dir / "zk")
    controllers: list[subprocess.Popen[bytes]] = []
    results: list[Result] = []
    try:
        zk.start()
        controllers.append(_controller(zk.address, run_dir, 0))
        watcher = connect(zk.address)
        store_uri = f"file://{run_dir / 'store'}"
        wait_until(lambda: read_config(watcher).store_uri == store_uri, timeout=30, what="config")
        discovery = DiscoveryClient(watcher, read_config(watcher).service_root)
        discovery.wait_ready()
        client = DeployClient(zk.address)
        client.upload(PAYLOAD, "/models/echo/1")

        add_latency = []
        for i in range(deploys):
            name = f"m{i}"
            t0 = time.perf_counter()
            client.submit("ADD", name, "1", path="/models/echo/1")
            discovery.wait_for(lambda d: bool(d.endpoints(name)), timeout=60, what=f"{name} endpoint")
            add_latency.append(time.perf_counter() - t0)
        results += [
            Result("control_plane", "ADD → endpoint visible p50", percentile(add_latency, 50) * 1000, "ms", f"n={deploys}"),
            Result("control_plane", "ADD → endpoint visible p95", percentile(add_latency, 95) * 1000, "ms", f"n={deploys}"),
        ]

        replace_latency = []
        for i in range(min(deploys, 10)):
            name = f"m{i}"
            (old,) = discovery.endpoints(name)
            pid = _listener_pid(old.port)
            t0 = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            discovery.wait_for(lambda d: [e.instance_id for e in d.endpoints(name)] not in ([], [old.instance_id]),
                               timeout=60, what=f"{name} replacement")
            replace_latency.append(time.perf_counter() - t0)
        results += [
            Result("control_plane", "instance death → replacement registered p50", percentile(replace_latency, 50) * 1000, "ms",
                   f"n={len(replace_latency)}"),
            Result("control_plane", "instance death → replacement registered p95", percentile(replace_latency, 95) * 1000, "ms",
                   f"n={len(replace_latency)}"),
        ]

        controllers.append(_controller(zk.address, run_dir, 1))
        time.sleep(2)  # the standby is up and waiting in the election
        controllers[0].send_signal(signal.SIGKILL)
        controllers[0].wait()
        t0 = time.perf_counter()
        client.submit("ADD", "after-failover", "1", path="/models/echo/1")
        discovery.wait_for(lambda d: bool(d.endpoints("after-failover")), timeout=120, what="post-failover endpoint")
        results.append(Result("control_plane", "leader SIGKILL → standby deploys next request", (time.perf_counter() - t0) * 1000,
                              "ms", "session timeout 4 s dominates"))

        for name in [f"m{i}" for i in range(deploys)] + ["after-failover"]:
            client.submit("SCALE", name, "1", num_instances=0, path="/models/echo/1")
        wait_until(lambda: not discovery.all(), timeout=120, what="every endpoint to go")
        discovery.close()
        client.close()
        watcher.stop()
        watcher.close()
    finally:
        for proc in controllers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=30)
        subprocess.run(["pkill", "-9", "-f", str(run_dir)], check=False)
        zk.cleanup()
        if os.environ.get("MAAS_BENCH_KEEP"):
            print(f"kept {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    return results


def _listener_pid(port: int) -> int:
    import psutil

    return next(c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port and c.status == "LISTEN")
