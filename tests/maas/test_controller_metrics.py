"""The controller's ``/metrics`` and ``/healthz`` (``--metrics-port``), read as Prometheus and a
kubelet read them, from real controller processes: a leader and a standby."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from maas.clock import FakeClock
from maas.controller.service import Controller
from maas.local_zookeeper import free_port
from maas.retry import wait_until
from maas.settings import ServiceSettings
from maas.config import MaasConfig
from tests.cluster import REPO, Cluster

pytestmark = [pytest.mark.zk, pytest.mark.e2e]


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_leader_and_standby_metrics_and_health(cluster_factory: Callable[..., Cluster]) -> None:
    leader_port, standby_port = free_port(), free_port()
    cluster = cluster_factory("--metrics-port", str(leader_port))
    wait_until(lambda: value(scrape(leader_port), "maas_controller_leader") == 1.0, timeout=30,
               what="the first controller to lead")
    cluster.start_controller("--metrics-port", str(standby_port))
    wait_until(lambda: _answers(standby_port), timeout=30, what="the standby's metrics")

    cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1", "-ni", "2", "-hmp", "/models/echo/1", "--wait")
    failed = cluster.deploy("crash", "-mo", "ADD", "-n", "crash", "-v", "1", "-hmp", "/models/crash/1", "--wait",
                            "--no-rollback-on-failure", check=False)
    assert failed.returncode == 7

    samples = scrape(leader_port)
    assert value(samples, "maas_controller_leader") == 1.0
    assert value(samples, "maas_model_instances", model="echo", version="1", state="desired") == 2.0
    assert value(samples, "maas_model_instances", model="echo", version="1", state="running") == 2.0
    assert value(samples, "maas_model_instances", model="echo", version="1", state="ready") == 2.0
    assert value(samples, "maas_model_instances", model="crash", version="1", state="ready") == 0.0
    assert (value(samples, "maas_model_restarts_total", model="crash", version="1") or 0) >= 1
    assert value(samples, "maas_model_restarts_total", model="echo", version="1") == 0.0
    assert value(samples, "maas_controller_requests_total", state="accepted") == 2.0
    assert value(samples, "maas_controller_requests_total", state="done") == 1.0
    assert value(samples, "maas_controller_requests_total", state="failed") == 1.0
    assert (value(samples, "maas_controller_reconcile_passes_total", outcome="ok") or 0) > 0
    assert (value(samples, "maas_controller_reconcile_duration_seconds_count") or 0) > 0
    assert value(samples, "process_resident_memory_bytes") is not None

    standby = scrape(standby_port)
    assert value(standby, "maas_controller_leader") == 0.0
    assert not any(name == "maas_model_instances" for name, _ in standby)  # only the leader reports models

    health = httpx.get(f"http://127.0.0.1:{leader_port}/healthz")
    assert health.status_code == 200 and health.json()["leading"] is True
    assert health.json()["status"] == "ok" and "last_pass_age_seconds" in health.json()
    standby_health = httpx.get(f"http://127.0.0.1:{standby_port}/healthz")
    assert standby_health.status_code == 200 and standby_health.json()["leading"] is False
    assert httpx.get(f"http://127.0.0.1:{leader_port}/nope").status_code == 404

    # STATUS names the same leader, with the metrics address it published.
    status = cluster.maas_deploy("-mo", "STATUS")
    assert f"(pid {cluster.controllers[0].pid})" in status.stdout.splitlines()[0]
    assert status.stdout.splitlines()[0].endswith(f"; metrics at http://127.0.0.1:{leader_port}/metrics")

    cluster.maas_deploy("-mo", "REMOVE", "-n", "crash", "-v", "1", "--wait")
    wait_until(lambda: value(scrape(leader_port), "maas_model_instances", model="crash", version="1",
                             state="desired") is None, timeout=30, what="the removed model's series to go")
    cluster.maas_deploy("-mo", "REMOVE", "-n", "echo", "-v", "1", "-ni", "2", "--wait")


def test_a_metrics_port_in_use_is_reported_at_start(zk_quorum: str, tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "maas.cli", "-zq", zk_quorum, "--work-dir", str(tmp_path),
                                 "--metrics-port", str(port)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 2
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.stderr


class _FakeZk:
    def add_listener(self, _listener: object) -> None:
        pass


class _NoLauncher:
    pass


def test_healthz_fails_when_the_leader_stops_completing_passes(tmp_path: Path) -> None:
    clock = FakeClock()
    settings = ServiceSettings(zk_quorum="127.0.0.1:2181", work_dir=tmp_path, reconcile_interval=1.0)
    controller = Controller(_FakeZk(), MaasConfig(), _NoLauncher(), settings, clock=clock)  # type: ignore[arg-type]
    ok, detail = controller.health()
    assert not ok and "not running" in detail["reason"]
    controller._running = True
    assert controller.health()[0]  # a standby waiting for leadership is alive
    controller.leading.set()
    controller._last_pass_end = clock.monotonic()
    clock.advance(60)
    assert controller.health()[0]
    clock.advance(61)
    ok, detail = controller.health()
    assert not ok and "no reconcile pass completed for 121s" in detail["reason"]


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code in (200, 503)
    except httpx.HTTPError:
        return False
