"""The allowedStores rule: a request may only take its payload from an allowed store, checked
before anything is read from a store (unit tests of the rule; a real controller refusing
requests whose payload would have left a marker file)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

import pytest
from kazoo.recipe.queue import Queue

from maas.config import MaasConfig
from maas.errors import ConfigError, StoreNotAllowed
from maas.request import RequestState
from maas.store.allowed import resolve_allowed
from tests.cluster import PAYLOADS, Cluster

STORE = "file:///var/lib/maas/store"


def test_a_plain_path_is_in_the_configured_store() -> None:
    assert resolve_allowed("/models/dga/1.0", STORE, []) == (STORE, "/models/dga/1.0")


def test_a_file_uri_inside_an_allowed_store_is_that_stores_payload(tmp_path: Path) -> None:
    (tmp_path / "store" / "models" / "dga").mkdir(parents=True)
    store = f"file://{tmp_path}/store"
    assert resolve_allowed(f"{store}/models/dga", store, []) == (store, "/models/dga")


@pytest.mark.parametrize("path, rule", [
    ("/models/../../etc", "contains '..'"),
    ("file:///var/lib/maas/store/../../../home/x", "contains '..'"),
    ("hdfs://nn:9870/maas/%2e%2e/etc", "contains '..'"),
    ("file:///tmp/evil", "not inside an allowed file:// store"),
    ("file:///var/lib/maas/store", "not inside an allowed file:// store"),  # the root is no payload
    ("file:///var/lib/maas/storehouse/x", "not inside an allowed file:// store"),
    ("webhdfs://attacker.example:9870/payload", "not an allowed store"),
    ("hdfs://nn:9870/elsewhere/x", "not an allowed store"),
    ("swebhdfs://nn:9870/maas/x", "not an allowed store"),
])
def test_refusals_name_the_rule(path: str, rule: str) -> None:
    with pytest.raises(StoreNotAllowed) as info:
        resolve_allowed(path, STORE, ["hdfs://nn:9870/maas"])
    assert rule in str(info.value)
    assert "allowedStores = file:///var/lib/maas/store, hdfs://nn:9870/maas" in str(info.value)


def test_an_allowed_hdfs_store_allows_its_paths_by_either_scheme() -> None:
    allowed = ["hdfs://nn:9870/maas"]
    assert resolve_allowed("hdfs://nn:9870/maas/dga/1", STORE, allowed) == ("hdfs://nn:9870", "/maas/dga/1")
    assert resolve_allowed("webhdfs://NN:9870/maas/dga/1", STORE, allowed)[1] == "/maas/dga/1"
    assert resolve_allowed("hdfs://other:1/x", STORE, ["hdfs://other:1"]) == ("hdfs://other:1", "/x")


def test_a_symlink_out_of_the_store_is_refused(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "outside").mkdir()
    (tmp_path / "store" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(StoreNotAllowed):
        resolve_allowed(f"file://{tmp_path}/store/link", f"file://{tmp_path}/store", [])


def test_the_config_key_lives_in_the_ext_znode_and_is_validated() -> None:
    config = MaasConfig.model_validate({"allowedStores": ["hdfs://nn:9870/maas"]})
    assert config.ext_dict()["allowedStores"] == ["hdfs://nn:9870/maas"]
    assert "allowedStores" not in config.metron_dict()
    with pytest.raises(ConfigError, match="allowedStores.*ftp"):
        MaasConfig.from_json(b'{"allowedStores": ["ftp://x/y"]}')


@pytest.mark.zk
@pytest.mark.e2e
def test_requests_outside_the_allowed_stores_fail_and_their_payload_never_runs(
        cluster_factory: Callable[..., Cluster], tmp_path: Path) -> None:
    from tests.webhdfs_server import WebHdfsServer

    extra = tmp_path / "extra"
    outside = tmp_path / "outside"
    for base in (extra / "models", outside):
        base.mkdir(parents=True)
        shutil.copytree(PAYLOADS / "marker", base / "marker")
    with WebHdfsServer(tmp_path / "hdfs") as hdfs:
        hdfs_uri = f"webhdfs://127.0.0.1:{hdfs.port}/models/marker"
        cluster = cluster_factory("--allowed-store", f"file://{extra}")
        client = cluster.client
        cases = {
            "outside": (f"file://{outside}/marker", "is not inside an allowed file:// store"),
            "climb": (f"file://{cluster.store}/../outside/marker", "contains '..'"),
            "foreign": (hdfs_uri, "is not an allowed store"),
            "allowed": (f"file://{extra}/models/marker", None),
        }
        queue = Queue(client.client, client.layout.queue)
        for name, (path, _rule) in cases.items():
            item = {"name": name, "version": "1", "numInstances": 1, "memory": 64, "action": "ADD", "path": path,
                    "requestId": f"req-{name}", "env": {"MARKER_FILE": str(tmp_path / f"{name}.marker")}}
            queue.put(json.dumps(item).encode())

        client.wait("req-allowed", timeout=60)
        assert (tmp_path / "allowed.marker").exists()  # the mechanism works: an allowed payload ran
        for name, (path, rule) in cases.items():
            if rule is None:
                continue
            status = client.status(f"req-{name}")
            assert status is not None and status.state is RequestState.FAILED, (name, status)
            assert rule in (status.reason or "") and "allowedStores" in (status.reason or ""), status.reason
            assert not (tmp_path / f"{name}.marker").exists()
            assert cluster.registrations(name) == {}
        assert hdfs.requests == []  # the foreign store was never contacted
        cluster.maas_deploy("-mo", "REMOVE", "-n", "allowed", "-v", "1", "--wait")


@pytest.mark.zk
@pytest.mark.e2e
def test_maas_deploy_refuses_to_upload_outside_the_allowed_stores(cluster: Cluster, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "echo"
    result = cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1", "-hmp", f"file://{target}", check=False)
    assert result.returncode == 2
    assert "is not inside an allowed file:// store" in result.stderr and "allowedStores" in result.stderr
    assert not target.exists()
    assert cluster.client.client.get_children(cluster.client.layout.queue) == []  # nothing was queued either
