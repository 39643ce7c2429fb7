"""The model store protocol (manifest, immutability, verification, safety) on the file store,
and the node cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from maas.errors import PayloadError, StoreError
from maas.store import open_store
from maas.store.cache import PayloadCache
from maas.store.file import FileStore
from maas.store.manifest import MANIFEST_NAME


def make_payload(root: Path, **files: bytes) -> Path:
    for rel, data in files.items():
        target = root / rel.replace("__", "/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store")


def test_upload_keeps_subdirectories_and_writes_a_manifest(store: FileStore, tmp_path: Path) -> None:
    src = make_payload(tmp_path / "src", **{"run.sh": b"echo", "sub__w.bin": b"\x00\x01"})
    result = store.upload(src, "/models/m/1")
    assert result.changed
    assert store.list("/models/m/1") == ["run.sh", "sub/w.bin"]
    manifest = store.manifest("/models/m/1")
    assert manifest is not None and manifest.digest == result.digest and manifest.total_size == 6
    # Nothing temporary is left next to the committed payload.
    assert sorted(p.name for p in (store.root / "models" / "m").iterdir()) == ["1"]


def test_payloads_are_immutable_unless_forced_and_identical_reupload_is_a_noop(store: FileStore, tmp_path: Path) -> None:
    src = make_payload(tmp_path / "src", **{"run.sh": b"v1"})
    first = store.upload(src, "/models/m/1")
    again = store.upload(src, "/models/m/1")
    assert not again.changed and again.digest == first.digest
    (src / "run.sh").write_bytes(b"v2")
    with pytest.raises(StoreError, match="immutable"):
        store.upload(src, "/models/m/1")
    assert b"".join(store._read("/models/m/1/run.sh")) == b"v1"
    forced = store.upload(src, "/models/m/1", force=True)
    assert forced.changed and b"".join(store._read("/models/m/1/run.sh")) == b"v2"


def test_download_verifies_checksums(store: FileStore, tmp_path: Path) -> None:
    src = make_payload(tmp_path / "src", **{"run.sh": b"echo", "model.onnx": b"weights" * 100})
    store.upload(src, "/models/m/1")
    dest = tmp_path / "dest"
    dest.mkdir()
    store.download("/models/m/1", dest)
    assert (dest / "model.onnx").read_bytes() == b"weights" * 100
    (store.root / "models" / "m" / "1" / "model.onnx").write_bytes(b"tampered")
    bad = tmp_path / "bad"
    bad.mkdir()
    with pytest.raises(PayloadError, match="model.onnx: checksum mismatch"):
        store.download("/models/m/1", bad)


def test_payload_without_manifest_still_downloads(store: FileStore, tmp_path: Path) -> None:
    # Put there by another tool (as Metron users do with `hdfs dfs -put`).
    make_payload(store.root / "legacy", **{"run.sh": b"echo"})
    assert store.manifest("/legacy") is None and store.list("/legacy") == ["run.sh"]
    dest = tmp_path / "dest"
    dest.mkdir()
    store.download("/legacy", dest)
    assert (dest / "run.sh").read_bytes() == b"echo"


def test_refuses_symlinks_leaving_the_payload_traversal_and_oversized_payloads(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "store")
    src = make_payload(tmp_path / "src", **{"run.sh": b"echo"})
    (tmp_path / "secret").write_text("s")
    os.symlink(tmp_path / "secret", src / "link")
    with pytest.raises(PayloadError, match="symlink pointing outside"):
        store.upload(src, "/m/1")
    (src / "link").unlink()
    os.symlink(src / "run.sh", src / "inner-link")  # inside: fine
    store.upload(src, "/m/1")
    for bad in ("/m/../../etc", "relative"):
        with pytest.raises(StoreError):
            store.list(bad)
    small = open_store(store.uri, max_payload_bytes=3)
    with pytest.raises(PayloadError, match="larger than the limit"):
        small.upload(src, "/m/2")
    # A manifest naming a path outside the payload is refused when read.
    (store.root / "m" / "1" / MANIFEST_NAME).write_text('{"version":1,"files":[{"path":"../x","size":1,"sha256":"a"}]}')
    with pytest.raises(PayloadError, match="escapes"):
        store.manifest("/m/1")


def test_store_errors_name_store_and_path(store: FileStore) -> None:
    with pytest.raises(StoreError, match=r"file://.*/store: no payload at /models/none"):
        store.list("/models/none")


def test_cache_downloads_once_per_content(store: FileStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_payload(tmp_path / "src", **{"run.sh": b"echo", "model.onnx": b"w" * 1000})
    store.upload(src, "/models/m/1")
    reads: list[str] = []
    original = FileStore._read

    def counting(self: FileStore, path: str):  # type: ignore[no-untyped-def]
        reads.append(path)
        return original(self, path)

    monkeypatch.setattr(FileStore, "_read", counting)
    cache = PayloadCache(tmp_path / "cache")
    for i in range(3):
        dest = tmp_path / f"work{i}"
        dest.mkdir()
        cache.localize(store, "/models/m/1", dest)
        assert (dest / "model.onnx").read_bytes() == b"w" * 1000
    data_reads = [r for r in reads if not r.endswith(MANIFEST_NAME)]
    assert sorted(data_reads) == ["/models/m/1/model.onnx", "/models/m/1/run.sh"]  # once, not three times
    # Instances get private copies: changing one does not touch the cache.
    (tmp_path / "work0" / "run.sh").write_bytes(b"changed")
    assert (tmp_path / "work1" / "run.sh").read_bytes() == b"echo"


def test_only_not_found_means_no_manifest(store: FileStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store.upload(make_payload(tmp_path / "src", **{"run.sh": b"echo"}), "/m/1")
    original = store._read

    def flaky(path: str):  # type: ignore[no-untyped-def]
        if path.endswith(MANIFEST_NAME):
            raise StoreError(f"{store.uri}: cannot read {path}: Permission denied")
        return original(path)

    monkeypatch.setattr(store, "_read", flaky)
    with pytest.raises(StoreError, match="Permission denied"):
        store.manifest("/m/1")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(StoreError, match="Permission denied"):  # never an unverified download
        store.download("/m/1", dest)
    assert list(dest.iterdir()) == []


def test_a_payload_without_manifest_honours_the_size_limit(store: FileStore, tmp_path: Path) -> None:
    make_payload(store.root / "legacy", **{"run.sh": b"echo", "big.bin": b"x" * 1000})
    small = open_store(store.uri, max_payload_bytes=100)
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(PayloadError, match="larger than the limit of 100 bytes"):
        small.download("/legacy", dest)
    assert list(dest.iterdir()) == []


def test_a_failed_forced_replacement_leaves_the_old_payload(store: FileStore, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store.upload(make_payload(tmp_path / "v1", **{"run.sh": b"v1"}), "/m/1")
    original = store._rename

    def second_rename_fails(src: str, dst: str) -> None:
        if ".uploading-" in src:
            raise StoreError(f"{store.uri}: cannot rename {src}: DataNode timed out")
        original(src, dst)

    monkeypatch.setattr(store, "_rename", second_rename_fails)
    with pytest.raises(StoreError, match="DataNode timed out"):
        store.upload(make_payload(tmp_path / "v2", **{"run.sh": b"v2"}), "/m/1", force=True)
    assert b"".join(store._read("/m/1/run.sh")) == b"v1"
    assert sorted(p.name for p in (store.root / "m").iterdir()) == ["1"]  # nothing left beside it


def test_cache_evicts_least_recently_used_payloads_by_total_size(store: FileStore, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        store.upload(make_payload(tmp_path / name, **{"run.sh": name.encode(), "model.onnx": b"w" * 1000}), f"/m/{name}")
    digests = {name: store.manifest(f"/m/{name}").digest for name in "abc"}  # type: ignore[union-attr]
    cache = PayloadCache(tmp_path / "cache", max_bytes=2100)  # room for two payloads

    def use(name: str, i: int) -> None:
        dest = tmp_path / f"w-{name}-{i}"
        dest.mkdir()
        cache.localize(store, f"/m/{name}", dest)
        assert (dest / "run.sh").read_bytes() == name.encode()

    use("a", 0)
    use("b", 0)
    os.utime(cache.root / digests["a"], (1, 1))  # a and b are in; a used long ago
    os.utime(cache.root / digests["b"], (2, 2))
    use("a", 1)  # a is used again: b is now the least recently used
    use("c", 0)
    assert sorted(p.name for p in cache.root.iterdir()) == sorted([digests["a"], digests["c"]])
    assert sum(p.stat().st_size for p in cache.root.rglob("*") if p.is_file()) <= 2100
    tiny = PayloadCache(tmp_path / "tiny", max_bytes=10)  # a payload larger than the cache: not cached
    dest = tmp_path / "w-tiny"
    dest.mkdir()
    tiny.localize(store, "/m/a", dest)
    assert (dest / "run.sh").read_bytes() == b"a" and not (tmp_path / "tiny").exists()
