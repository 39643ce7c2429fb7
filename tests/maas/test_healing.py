"""Self-healing on real ZooKeeper and real processes: crash loops back off without blocking other
models, dead instances are replaced, runners re-register after their session expires."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Callable

import psutil
import pytest

from maas.retry import wait_until
from tests.cluster import Cluster

pytestmark = [pytest.mark.zk, pytest.mark.e2e]


@pytest.fixture
def cluster(cluster_factory: Callable[..., Cluster]) -> Cluster:
    return cluster_factory("--session-timeout", "3", "--restart-backoff-max", "4", "--probe-interval", "0.5")


def test_crash_looping_payload_backs_off_and_others_are_served(cluster: Cluster) -> None:
    crash = cluster.deploy("crash", "-mo", "ADD", "-n", "crash", "-v", "1", "-hmp", "/models/crash/1", "--wait",
                           "--no-rollback-on-failure", check=False)
    assert crash.returncode == 7
    assert "exited with code 3" in crash.stderr and "model file is corrupt" in crash.stderr
    # Meanwhile another model deploys normally.
    good = cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1", "-hmp", "/models/echo/1", "--wait")
    assert "done" in good.stdout
    wait_until(lambda: (s := cluster.status_of("crash")) is not None and s.restarts >= 3, timeout=30,
               what="several restarts of the crashing model")
    st = cluster.status_of("crash")
    assert st.desired == 1 and st.ready == 0 and "model file is corrupt" in (st.last_error or "")
    table = cluster.maas_deploy("-mo", "STATUS").stdout
    assert "crash" in table and "model file is corrupt" in table and "echo" in table
    # Where to read the failed instance's logs: its kept directory, bounded per model.
    logs = Path(st.last_logs or "")
    assert f"[logs: {logs}]" in table and logs.parent == cluster.work.resolve() / "exited" / "crash" / "1"
    assert "model file is corrupt" in (logs / "service.err.log").read_text()
    assert len(list(logs.parent.iterdir())) <= 5
    # Restarts are spaced out: over 4 s, a capped backoff of 1, 2, 4 s allows only a few starts.
    before = cluster.status_of("crash").restarts
    time.sleep(4)
    assert cluster.status_of("crash").restarts - before <= 3
    cluster.maas_deploy("-mo", "REMOVE", "-n", "crash", "-v", "1", "--wait")
    cluster.maas_deploy("-mo", "REMOVE", "-n", "echo", "-v", "1", "--wait")
    wait_until(lambda: not cluster.runner_processes(), timeout=15, what="no process left")


def test_killed_instance_is_replaced_and_old_registration_gone(cluster: Cluster) -> None:
    cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1", "-ni", "1", "-hmp", "/models/echo/1", "--wait")
    (old_id, old), = cluster.registrations("echo").items()
    pid = cluster.service_pid(old["port"])
    os.kill(pid, signal.SIGKILL)
    new = wait_until(lambda: (r := cluster.registrations("echo")) and old_id not in r and len(r) == 1 and r,
                     timeout=30, what="a replacement registration")
    (new_id, _), = new.items()
    assert new_id != old_id
    wait_until(lambda: cluster.status_of("echo").restarts == 1, timeout=10, what="the restart to be counted")
    cluster.maas_deploy("-mo", "REMOVE", "-n", "echo", "-v", "1", "--wait")


def test_runner_reregisters_after_session_expiry(cluster: Cluster) -> None:
    cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1", "-hmp", "/models/echo/1", "--wait")
    (instance_id, reg), = cluster.registrations("echo").items()
    runner = next(p for p in cluster.runner_processes() if "maas.runner" in " ".join(p.cmdline()))
    czxid = cluster.client.client.exists(f"/maas/service/echo/{instance_id}").czxid
    # Freeze the runner past its 3 s session timeout: ZooKeeper expires the session and drops
    # the ephemeral registration, as after a long GC pause or partition.
    runner.suspend()
    try:
        wait_until(lambda: instance_id not in cluster.registrations("echo"), timeout=20, what="the session to expire")
    finally:
        runner.resume()
    again = wait_until(lambda: cluster.registrations("echo").get(instance_id), timeout=20, what="re-registration")
    assert again["payload"]["endpoint"] == reg["payload"]["endpoint"]
    assert cluster.client.client.exists(f"/maas/service/echo/{instance_id}").czxid != czxid
    # Same instance, not a replacement.
    assert cluster.status_of("echo").restarts == 0
    cluster.maas_deploy("-mo", "REMOVE", "-n", "echo", "-v", "1", "--wait")


def test_hung_instance_fails_health_checks_and_is_replaced(cluster: Cluster) -> None:
    cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1", "-hmp", "/models/echo/1", "--wait")
    (old_id, old), = cluster.registrations("echo").items()
    service = psutil.Process(cluster.service_pid(old["port"]))
    service.suspend()  # alive but not answering: only the health checks can tell
    wait_until(lambda: old_id not in cluster.registrations("echo"), timeout=30, what="the hung instance's deregistration")
    new = wait_until(lambda: (r := cluster.registrations("echo")) and r, timeout=40, what="a healthy replacement")
    assert old_id not in new
    st = cluster.status_of("echo")
    assert st.restarts == 1 and "consecutive health checks" in (st.last_error or "")
    wait_until(lambda: not service.is_running(), timeout=20, what="the hung process to be killed")
    cluster.maas_deploy("-mo", "REMOVE", "-n", "echo", "-v", "1", "--wait")
