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


def test_poison_request_then_a_valid_one(cluster: Cluster) -> None:
    bad = cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1", "-hmp", "hdfs://nn:abc/x", check=False)
    assert bad.returncode != 0 and "hdfs://nn:abc/x" in bad.stderr  # refused before it is even queued
    client = cluster.client
    from kazoo.recipe.queue import Queue

    # The same poison straight into the queue, as another producer might write it.
    Queue(client.client, client.layout.queue).put(
        b'{"name":"echo","version":"1","action":"ADD","path":"hdfs://nn:abc/x","requestId":"poison"}')
    good = cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1", "-hmp", "/models/echo/1", "--wait")
    assert "done" in good.stdout
    status = client.status("poison")
    assert status is not None and status.state is RequestState.FAILED and "malformed" in (status.reason or "")
    assert len(cluster.registrations("echo")) == 1
    cluster.maas_deploy("-mo", "REMOVE", "-n", "echo", "-v", "1", "--wait")


def test_garbage_desired_state_of_one_model_stops_nothing(cluster: Cluster) -> None:
    cluster.deploy("echo", "-mo", "ADD", "-n", "a", "-v", "1", "-hmp", "/models/echo/1", "--wait")
    cluster.maas_deploy("-mo", "ADD", "-n", "b", "-v", "1", "-hmp", "/models/echo/1", "--wait")
    before_a, before_b = set(cluster.registrations("a")), set(cluster.registrations("b"))
    zk = cluster.client.client
    zk.set(cluster.client.layout.model("a", "1"), b"\x00 not json")

    wait_until(lambda: (s := cluster.status_of("a")) and "quarantined" in (s.last_error or ""), timeout=20,
               what="a's status to say it is quarantined")
    failed = cluster.maas_deploy("-mo", "ADD", "-n", "a", "-v", "1", "-hmp", "/models/echo/1", "--wait", check=False)
    assert failed.returncode == 7 and "unreadable" in failed.stderr
    more_b = cluster.maas_deploy("-mo", "ADD", "-n", "b", "-v", "1", "-hmp", "/models/echo/1", "--wait")
    assert "done" in more_b.stdout  # the queue is alive
    assert set(cluster.registrations("a")) == before_a  # a's instance still runs, untouched
    assert before_b <= set(cluster.registrations("b")) and len(cluster.registrations("b")) == 2
    for reg in cluster.registrations("a").values():
        assert httpx.get(reg["payload"]["endpoint"]["url"] + "/apply", params={"host": "x"}).status_code == 200
    assert "quarantined" in cluster.controller_log()

    # A SCALE with the payload path is a full statement of the desired state: it repairs it.
    cluster.maas_deploy("-mo", "SCALE", "-n", "a", "-v", "1", "-ni", "0", "-hmp", "/models/echo/1", "--wait")
    cluster.maas_deploy("-mo", "REMOVE", "-n", "b", "-v", "1", "-ni", "2", "--wait")
    assert cluster.registrations("a") == {} and cluster.registrations("b") == {}


def test_metron_queue_item_is_applied_in_sequence_order_among_kazoo_items(cluster: Cluster) -> None:
    client = cluster.client
    client.upload(PAYLOADS / "echo", "/models/dga/1.0")  # only uploaded (ADD -ni 0 is refused): the items deploy it
    zk = client.client
    # Byte for byte what Metron's maas_deploy.sh writes (Jackson, Curator SimpleDistributedQueue).
    metron = b'{"name":"dga","version":"1.0","numInstances":1,"memory":512,"action":"ADD","path":"/models/dga/1.0"}'
    zk.ensure_path(client.layout.queue)  # as a producer does: the controller may not have made it yet
    txn = zk.transaction()  # written together, so the leader sees all three at once
    txn.create(f"{client.layout.queue}/entry-100-", json.dumps({
        "name": "dga", "version": "1.0", "numInstances": 3, "action": "SCALE", "path": "/models/dga/1.0",
        "requestId": "scale-3"}).encode(), sequence=True)
    txn.create(f"{client.layout.queue}/qn-", metron, sequence=True)
    txn.create(f"{client.layout.queue}/entry-100-", json.dumps({
        "name": "dga", "version": "1.0", "numInstances": 2, "action": "REMOVE", "requestId": "remove-2"}).encode(),
        sequence=True)
    results = txn.commit()
    assert not [r for r in results if isinstance(r, Exception)], results  # kazoo reports a failed one, never raises
    # In sequence order: SCALE to 3, Metron's ADD → 4, REMOVE 2 → 2. In name order Metron's item
    # (qn- sorts after entry-) would run last, with target 2.
    client.wait("remove-2", timeout=120)
    assert client.status("remove-2").target == 2  # type: ignore[union-attr]
    wait_until(lambda: len(cluster.registrations("dga")) == 2, timeout=60, what="2 instances")
    metron_status = [s for s in (client.status(i) for i in zk.get_children(client.layout.requests))
                     if s is not None and s.request_id.startswith("qn-")]
    assert len(metron_status) == 1 and metron_status[0].target == 4
    cluster.maas_deploy("-mo", "REMOVE", "-n", "dga", "-v", "1.0", "-ni", "2", "--wait")


def test_a_non_loopback_advertised_address_serves_the_unchanged_example(cluster_factory: Callable[..., Cluster]) -> None:
    cluster = cluster_factory("--advertise-host", "127.0.0.2")
    example = Path(__file__).resolve().parents[2] / "examples" / "dga" / "payload"
    out = cluster.maas_deploy("-mo", "ADD", "-n", "dga", "-v", "1.0", "-hmp", "/models/dga/1.0",
                              "-lmp", str(example), "--wait")
    assert "done" in out.stdout
    (reg,) = cluster.registrations("dga").values()
    url = reg["payload"]["endpoint"]["url"]
    assert reg["address"] == "127.0.0.2" and url.startswith("http://127.0.0.2:")
    answer = httpx.get(url + "/apply", params={"host": "xjwqkzvbtpqmd.com"}).json()
    assert answer["is_malicious"] == "malicious"
    cluster.maas_deploy("-mo", "REMOVE", "-n", "dga", "-v", "1.0", "--wait")
