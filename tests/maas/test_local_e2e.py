"""End to end on a real ZooKeeper with real processes: the controller, runners and a plain REST
payload (not the ONNX runtime), through the ``maas_deploy`` command."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Callable

import httpx
import pytest

from maas.errors import RequestFailed
from maas.request import RequestState
from maas.retry import wait_until
from tests.cluster import PAYLOADS, Cluster

pytestmark = [pytest.mark.zk, pytest.mark.e2e]


def test_add_call_kill_remove(cluster: Cluster) -> None:
    out = cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1.0", "-ni", "2", "-hmp", "/models/echo/1.0", "--wait")
    assert "done" in out.stdout

    regs = wait_until(lambda: (r := cluster.registrations("echo")) and len(r) == 2 and r, timeout=10, what="2 registrations")
    for instance_id, reg in regs.items():
        assert reg["id"] == instance_id and reg["name"] == "echo"
        assert reg["serviceType"] == "DYNAMIC" and reg["sslPort"] is None and reg["uriSpec"] is None
        assert reg["address"] == "127.0.0.1" and isinstance(reg["port"], int)
        payload = reg["payload"]
        assert payload["@class"] == "org.apache.metron.maas.config.ModelEndpoint"
        assert (payload["name"], payload["version"], payload["containerId"]) == ("echo", "1.0", instance_id)
        assert payload["endpoint"] == {"url": f"http://127.0.0.1:{reg['port']}", "functions": {"apply": "apply"}}
        assert isinstance(reg["registrationTimeUTC"], int)
        answer = httpx.get(payload["endpoint"]["url"] + "/apply", params={"host": "x"}).json()
        assert answer == {"host": "x", "instance": instance_id, "version": "1.0"}

    # Both instances were localized through the node cache: one verified copy of the payload.
    assert len([p for p in (cluster.work / "cache").iterdir() if not p.name.startswith(".")]) == 1

    listing = cluster.maas_deploy("-mo", "LIST").stdout.splitlines()
    assert listing[0] == "Model echo @ 1.0"
    assert sorted(line.strip() for line in listing[1:]) == sorted(r["payload"]["endpoint"]["url"] for r in regs.values())

    # SIGKILL one instance's service process: its registration goes away (and a new one replaces it).
    victim_id, victim = next(iter(regs.items()))
    pid = cluster.service_pid(victim["port"])
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: victim_id not in cluster.registrations("echo"), timeout=10, what="the dead instance's deregistration")
    wait_until(lambda: len(cluster.registrations("echo")) == 2, timeout=30, what="the replacement's registration")

    cluster.maas_deploy("-mo", "REMOVE", "-n", "echo", "-v", "1.0", "-ni", "2", "--wait")
    assert cluster.registrations("echo") == {}
    wait_until(lambda: not cluster.runner_processes(), timeout=10,
               what=f"no runner or service process left (still: {[p.info for p in cluster.runner_processes()]})")


def test_malformed_request_and_broken_payload_fail_but_queue_goes_on(cluster: Cluster) -> None:
    client = cluster.client
    # A malformed item straight into the queue, as a foreign producer might write it.
    from kazoo.recipe.queue import Queue

    Queue(client.client, client.layout.queue).put(b'{"name": "x", "requestId": "bad-1", "action": "EXPLODE"}')
    Queue(client.client, client.layout.queue).put(b"not json at all")
    # maas_deploy checks the payload contract before uploading anything...
    broken = cluster.deploy("noscript", "-mo", "ADD", "-n", "broken", "-v", "1", "-hmp", "/models/broken/1", "--wait", check=False)
    assert broken.returncode == 3 and "no *.sh" in broken.stderr and "nothing was uploaded" in broken.stderr
    assert not (cluster.store / "models" / "broken").exists()
    # ...and the controller checks it too, for payloads put in the store some other way.
    shutil.copytree(PAYLOADS / "noscript", cluster.store / "models" / "broken" / "1")
    with pytest.raises(RequestFailed, match=r"no \*\.sh"):
        client.wait(client.submit("ADD", "broken", "1", path="/models/broken/1"), timeout=30)
    good = cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "2", "-hmp", "/models/echo/2", "--wait")

    status = client.status("bad-1")
    assert status is not None and status.state is RequestState.FAILED
    assert "action" in (status.reason or "")
    assert "done" in good.stdout
    assert len(cluster.registrations("echo")) == 1
    # Every request has a terminal status, including the unparsable one (named after its queue item).
    ids = client.client.get_children(client.layout.requests)
    states = {i: client.status(i).state for i in ids}  # type: ignore[union-attr]
    assert all(s.terminal for s in states.values()), states
    assert len(ids) == 4
    cluster.maas_deploy("-mo", "REMOVE", "-n", "echo", "-v", "2", "--wait")


def test_deploy_the_example_from_an_hdfs_store(cluster_factory: Callable[..., Cluster], tmp_path: Path) -> None:
    from tests.webhdfs_server import WebHdfsServer

    payload = Path(__file__).resolve().parents[2] / "examples" / "dga" / "payload"
    with WebHdfsServer(tmp_path / "hdfs") as hdfs:
        # a store besides the configured one must be allowed (docs/security.md)
        cluster = cluster_factory("--allowed-store", f"hdfs://127.0.0.1:{hdfs.port}/user/maas")
        uri = f"hdfs://127.0.0.1:{hdfs.port}/user/maas/models/dga/3"
        out = cluster.maas_deploy("-mo", "ADD", "-n", "dga", "-v", "3", "-hmp", uri, "-lmp", str(payload), "--wait")
        assert "Uploaded" in out.stdout and "done" in out.stdout
        assert hdfs.local("/user/maas/models/dga/3/model.onnx").is_file()
        (reg,) = cluster.registrations("dga").values()
        answer = httpx.get(reg["payload"]["endpoint"]["url"] + "/apply", params={"host": "xjwqkzvbtpqmd.com"}).json()
        assert answer["is_malicious"] == "malicious"
        assert ("datanode", "GET", "OPEN") in hdfs.requests  # the runner localized it over WebHDFS
        cluster.maas_deploy("-mo", "REMOVE", "-n", "dga", "-v", "3", "--wait")
