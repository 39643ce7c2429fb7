"""The HDFS store through the real ``hdfs`` client and the WebHDFS protocol (test server in
tests/webhdfs_server.py), plus the same checks against a real cluster when
``MAAS_TEST_WEBHDFS_URL`` names one (e.g. ``webhdfs://namenode:9870/tmp/maas-test``)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from maas.errors import PayloadError, StoreError
from maas.store import ModelStore, open_store
from maas.store.cache import PayloadCache
from tests.webhdfs_server import WebHdfsServer


def make_payload(root: Path) -> Path:
    (root / "lib").mkdir(parents=True)
    (root / "rest.sh").write_text("#!/bin/bash\necho serve\n")
    (root / "model.onnx").write_bytes(os.urandom(3 << 20))  # several WebHDFS chunks
    (root / "lib" / "signature.json").write_text('{"inputs": []}')
    return root


@pytest.fixture
def webhdfs(tmp_path: Path) -> Iterator[WebHdfsServer]:
    with WebHdfsServer(tmp_path / "hdfs", denied_prefix="/readonly") as server:
        yield server


@pytest.fixture(params=["test-server", "real-cluster"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ModelStore]:
    if request.param == "real-cluster":
        url = os.environ.get("MAAS_TEST_WEBHDFS_URL")
        if not url:
            pytest.skip("MAAS_TEST_WEBHDFS_URL names no WebHDFS endpoint")
        store = open_store(url.rstrip("/") + f"/maas-test-{uuid.uuid4().hex[:8]}")
        yield store
        store._delete("/")
        return
    with WebHdfsServer(tmp_path / "hdfs") as server:
        yield open_store(f"hdfs://127.0.0.1:{server.port}/user/maas/models")


def test_upload_list_download_verify(store: ModelStore, tmp_path: Path) -> None:
    src = make_payload(tmp_path / "src")
    result = store.upload(src, "/dga/1.0")
    assert result.changed
    assert store.list("/dga/1.0") == ["lib/signature.json", "model.onnx", "rest.sh"]
    assert store.upload(src, "/dga/1.0").changed is False  # identical: no-op
    dest = tmp_path / "dest"
    dest.mkdir()
    store.download("/dga/1.0", dest)
    for rel in ("rest.sh", "model.onnx", "lib/signature.json"):
        assert (dest / rel).read_bytes() == (src / rel).read_bytes()


def test_refuses_overwrite_unless_forced(store: ModelStore, tmp_path: Path) -> None:
    src = make_payload(tmp_path / "src")
    store.upload(src, "/dga/1.0")
    (src / "rest.sh").write_text("#!/bin/bash\necho v2\n")
    with pytest.raises(StoreError, match="immutable"):
        store.upload(src, "/dga/1.0")
    store.upload(src, "/dga/1.0", force=True)
    assert b"".join(store._read("/dga/1.0/rest.sh")).endswith(b"v2\n")
    assert store.list("/dga") == ["1.0/.maas-manifest.json", "1.0/lib/signature.json", "1.0/model.onnx", "1.0/rest.sh"]


def test_detects_corruption_and_refuses_traversal(webhdfs: WebHdfsServer, tmp_path: Path) -> None:
    store = open_store(f"webhdfs://127.0.0.1:{webhdfs.port}/models")
    src = make_payload(tmp_path / "src")
    store.upload(src, "/dga/1.0")
    stored = webhdfs.local("/models/dga/1.0/model.onnx")
    stored.write_bytes(b"\x00" + stored.read_bytes()[1:])  # one flipped byte on the "datanode"
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(PayloadError, match="model.onnx: checksum mismatch"):
        store.download("/dga/1.0", dest)
    with pytest.raises(StoreError, match="must not contain '..'"):
        store.list("/dga/../../etc")
    # The data really moved through the documented two-step, redirected protocol.
    assert ("namenode", "PUT", "CREATE") in webhdfs.requests and ("datanode", "PUT", "CREATE") in webhdfs.requests
    assert ("datanode", "GET", "OPEN") in webhdfs.requests


def test_errors_name_store_path_and_cause(webhdfs: WebHdfsServer, tmp_path: Path) -> None:
    store = open_store(f"hdfs://127.0.0.1:{webhdfs.port}")
    with pytest.raises(StoreError, match=r"hdfs://127.0.0.1:\d+: no payload at /missing"):
        store.list("/missing")
    with pytest.raises(StoreError, match="AccessControlException: Permission denied"):
        store.upload(make_payload(tmp_path / "src"), "/readonly/dga")
    down = open_store("hdfs://127.0.0.1:1/models")  # nothing listens there
    with pytest.raises(StoreError, match=r"hdfs://127.0.0.1:1/models: cannot stat /x: NameNode or DataNode unreachable"):
        down.exists("/x")


def test_node_cache_over_hdfs(webhdfs: WebHdfsServer, tmp_path: Path) -> None:
    store = open_store(f"hdfs://127.0.0.1:{webhdfs.port}/models")
    store.upload(make_payload(tmp_path / "src"), "/dga/1.0")
    cache = PayloadCache(tmp_path / "cache")
    webhdfs.requests.clear()
    for i in range(2):
        dest = tmp_path / f"w{i}"
        dest.mkdir()
        cache.localize(store, "/dga/1.0", dest)
    opens = [r for r in webhdfs.requests if r == ("datanode", "GET", "OPEN")]
    assert len(opens) == 2 + 3 + 1  # 2 manifest reads, 3 files once, 1 manifest read inside the fill


def test_a_failing_manifest_read_is_an_error_not_a_missing_manifest(webhdfs: WebHdfsServer, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    store = open_store(f"hdfs://127.0.0.1:{webhdfs.port}/models")
    store.upload(make_payload(tmp_path / "src"), "/dga/1.0")
    assert store.manifest("/dga/1.0") is not None
    webhdfs.local("/models/dga/1.0/.maas-manifest.json").unlink()
    assert store.manifest("/dga/1.0") is None  # FileNotFoundException: really no manifest
    original = store.client.read

    def timeout(path: str, **kwargs):  # type: ignore[no-untyped-def]
        if path.endswith(".maas-manifest.json"):
            raise requests.ReadTimeout("DataNode read timed out")
        return original(path, **kwargs)

    monkeypatch.setattr(store.client, "read", timeout)
    with pytest.raises(StoreError, match="unreachable"):
        store.manifest("/dga/1.0")
