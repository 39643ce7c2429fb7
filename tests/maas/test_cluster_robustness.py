"""End to end on a real ZooKeeper with real processes: what a production cluster meets — Metron's
own clients and config readers, poison requests, damaged desired state, queue items of several
producers, non-loopback addresses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import httpx
import pytest

from maas.request import RequestState
from maas.retry import wait_until
from tests.cluster import PAYLOADS, Cluster

pytestmark = [pytest.mark.zk, pytest.mark.e2e]

METRON_KEYS = {"queue", "queueConfig", "serviceRoot"}


def test_config_znode_holds_only_metrons_keys_and_the_leader_follows_changes(cluster: Cluster, tmp_path: Path) -> None:
    zk = cluster.client.client
    raw = json.loads(zk.get("/metron/maas/config")[0])
    assert set(raw) == METRON_KEYS  # what Metron's strict MaaSConfig reader accepts
    ext = json.loads(zk.get("/metron/maas/config.ext")[0])
    assert ext["storeUri"] == f"file://{cluster.store}"

    # A second controller with a different --store-uri refuses to start instead of disagreeing.
    other = cluster.start_controller("--store-uri", f"file://{tmp_path / 'elsewhere'}")
    assert other.wait(timeout=60) == 2
    assert "--write-config" in cluster.controller_log()

    # The running leader picks up a new store from the ext znode, without a restart.
    second = tmp_path / "store2"
    second.mkdir()
    from maas.store.file import FileStore

    FileStore(second).upload(PAYLOADS / "echo", "/models/echo/9")
    zk.set("/metron/maas/config.ext", json.dumps({**ext, "storeUri": f"file://{second}"}).encode())
    wait_until(lambda: "configuration changed" in cluster.controller_log(), timeout=20, what="the leader to notice")
    out = cluster.maas_deploy("-mo", "ADD", "-n", "echo", "-v", "9", "-hmp", "/models/echo/9", "--wait")
    assert "done" in out.stdout
    cluster.maas_deploy("-mo", "REMOVE", "-n", "echo", "-v", "9", "--wait")
