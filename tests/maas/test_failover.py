"""High availability on real ZooKeeper: a standby controller takes over from a SIGKILLed leader
mid-stream and adopts its instances; a ZooKeeper ensemble loses its leader during deployments.
In both cases every request is applied exactly once and ends with a terminal status."""

from __future__ import annotations

import random
import signal
import uuid
from pathlib import Path
from typing import Callable

import pytest

from maas.local_zookeeper import ZooKeeperEnsemble
from maas.request import RequestState
from maas.retry import wait_until
from tests.cluster import Cluster

pytestmark = [pytest.mark.zk, pytest.mark.e2e]

CONTROLLER_FLAGS = ("--session-timeout", "4", "--probe-interval", "1")


def registrations(cluster: Cluster) -> dict[str, set[str]]:
    """``name@version -> instance ids`` over every model."""
    zk = cluster.client.client
    names = zk.get_children("/maas/service") if zk.exists("/maas/service") else []
    out: dict[str, set[str]] = {}
    for name in names:
        for iid, reg in cluster.registrations(name).items():
            out.setdefault(f"{name}@{reg['payload']['version']}", set()).add(iid)
    return out


def random_requests(rng: random.Random, count: int) -> tuple[list[tuple[str, str, int]], dict[str, int]]:
    """A request stream over three models, and the instance counts it implies."""
    counts = {"a": 0, "b": 0, "c": 0}
    stream = []
    for _ in range(count):
        model = rng.choice(sorted(counts))
        action = rng.choice(["ADD", "ADD", "REMOVE", "SCALE"])
        n = rng.randint(0, 2) if action == "SCALE" else 1
        if action == "ADD" and counts[model] >= 3:
            action = "REMOVE"
        stream.append((action, model, n))
        if action == "ADD":
            counts[model] += n
        elif action == "SCALE":
            counts[model] = n
        elif counts[model] > 0:  # REMOVE of a model with no instances fails and changes nothing
            counts[model] = max(0, counts[model] - n)
    return stream, counts


def submit_all(cluster: Cluster, stream: list[tuple[str, str, int]]) -> list[str]:
    ids = []
    for action, model, n in stream:
        ids.append(cluster.client.submit(action, model, "1", num_instances=n, path="/models/echo/1",
                                         request_id=f"{model}-{uuid.uuid4().hex[:8]}"))
    return ids


def assert_converged(cluster: Cluster, ids: list[str], expected: dict[str, int], timeout: float = 120) -> None:
    client = cluster.client

    def statuses() -> dict[str, RequestState] | None:
        found = {rid: client.status(rid) for rid in ids}
        if all(s is not None and s.state.terminal for s in found.values()):
            return {rid: s.state for rid, s in found.items()}  # type: ignore[union-attr]
        return None

    final = wait_until(statuses, timeout=timeout, what="every request to reach a terminal status")
    assert set(final.values()) <= {RequestState.DONE, RequestState.FAILED}
    want = {f"{m}@1": n for m, n in expected.items() if n}
    wait_until(lambda: {k: len(v) for k, v in registrations(cluster).items() if v} == want, timeout=60,
               what=f"registrations {want} (have {registrations(cluster)})")
    # No duplicate and no orphan: exactly one runner and one service process per expected instance.
    wait_until(lambda: len(cluster.runner_processes()) == 2 * sum(expected.values()), timeout=30,
               what=f"{2 * sum(expected.values())} runner+service processes (have {len(cluster.runner_processes())})")
    assert len(client.client.get_children(client.layout.queue)) == 0


def test_standby_takes_over_from_killed_leader_and_adopts(cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory(*CONTROLLER_FLAGS)
    leader = cluster.controllers[0]
    standby = cluster.start_controller(*CONTROLLER_FLAGS)
    cluster.maas_deploy("-mo", "LIST")  # the CLI works against the pair
    cluster.client.upload(Path(__file__).parents[1] / "payloads" / "echo", "/models/echo/1")

    stream, expected = random_requests(random.Random(7), 50)
    ids = submit_all(cluster, stream[:25])
    # Let the leader get part-way, then kill it without warning.
    wait_until(lambda: sum(len(v) for v in registrations(cluster).values()) >= 2, timeout=60,
               what="the leader to have instances running")
    leader.send_signal(signal.SIGKILL)
    leader.wait()
    ids += submit_all(cluster, stream[25:])
    assert standby.poll() is None
    assert_converged(cluster, ids, expected)
    assert "adopted instance" in cluster.controller_log() or sum(expected.values()) == 0

    for model in ("a", "b", "c"):
        cluster.client.submit("SCALE", model, "1", num_instances=0, path="/models/echo/1")
    wait_until(lambda: not cluster.runner_processes(), timeout=60, what="every instance to stop")


def test_zookeeper_leader_killed_during_deployments(cluster_factory: Callable[..., Cluster]) -> None:
    ensemble = ZooKeeperEnsemble(3)
    ensemble.start()
    try:
        cluster = cluster_factory(*CONTROLLER_FLAGS, quorum=ensemble.quorum)
        cluster.client.upload(Path(__file__).parents[1] / "payloads" / "echo", "/models/echo/1")
        stream, expected = random_requests(random.Random(11), 20)
        ids = submit_all(cluster, stream[:10])
        ensemble.leader().kill()
        ids += submit_all(cluster, stream[10:])
        assert_converged(cluster, ids, expected)
        for model in ("a", "b", "c"):
            cluster.client.submit("SCALE", model, "1", num_instances=0, path="/models/echo/1")
        wait_until(lambda: not cluster.runner_processes(), timeout=60, what="every instance to stop")
        cluster.close()
    finally:
        ensemble.cleanup()
