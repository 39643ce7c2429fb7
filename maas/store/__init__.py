"""Model stores: where payload directories live, addressed by URI.

A store maps *store paths* (absolute, ``/models/dga/1.0``) to payload directories. The
controller checks payloads there, the runner localizes them from there, and ``maas_deploy -lmp``
uploads them there.

:class:`ModelStore` holds the protocol that makes a store trustworthy, once for every backend:
uploads go to a temporary name with a sha256 manifest and are committed by one rename; a
(name, version) payload is immutable unless forced (an identical re-upload is a no-op);
downloads verify every checksum. Backends only provide a handful of primitives. ``file://`` is
the embedded default; other schemes register in :data:`_SCHEMES`.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator
from urllib.parse import urlsplit

from maas.errors import PayloadChanged, PayloadError, StoreError, StoreNotFound
from maas.store.manifest import MANIFEST_NAME, Manifest, check_relative, scan_directory

log = logging.getLogger(__name__)

#: Default limit on a payload's total size.
DEFAULT_MAX_PAYLOAD_BYTES = 4 << 30

Progress = Callable[[str, int, int], None]  # (relative path, bytes done, file size)


@dataclass(frozen=True)
class UploadResult:
    digest: str
    changed: bool  # False when the identical payload was already there


class ModelStore(ABC):
    """A store of payload directories."""

    uri: str
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES

    # -- primitives each backend provides (paths are normalized absolute store paths) ---------
    @abstractmethod
    def _walk(self, path: str) -> list[tuple[str, int]]:
        """(relative path, size) of every file below the directory ``path``; StoreError if absent."""

    @abstractmethod
    def _is_dir(self, path: str) -> bool: ...

    @abstractmethod
    def _read(self, path: str) -> Iterator[bytes]:
        """The file's content in chunks."""

    @abstractmethod
    def _write(self, path: str, chunks: Iterable[bytes]) -> None:
        """Create (or overwrite) a file, creating parent directories."""

    @abstractmethod
    def _rename(self, src: str, dst: str) -> None:
        """Rename a directory; StoreError if ``dst`` exists."""

    @abstractmethod
    def _delete(self, path: str) -> None:
        """Delete a file or directory tree; no error if absent."""

    # -- protocol ---------------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        return self._is_dir(normalize_path(path))

    def manifest(self, path: str) -> Manifest | None:
        """The payload's manifest; None for a payload put there by other tools (no manifest).
        Only the store's "not found" means that: any other failure (permission, timeout) is
        raised, never taken as a licence to download unverified."""
        path = normalize_path(path)
        if not self._is_dir(path):
            raise StoreNotFound(f"{self.uri}: no payload at {path}")
        try:
            data = b"".join(self._read(join(path, MANIFEST_NAME)))
        except StoreNotFound:
            return None
        return Manifest.from_json(data, source=f"{self.uri}{path}")

    def list(self, path: str) -> list[str]:
        """Relative paths of the payload's files, sorted."""
        path = normalize_path(path)
        manifest = self.manifest(path)
        if manifest is not None:
            return manifest.paths()
        return sorted(rel for rel, _ in self._walk(path) if rel != MANIFEST_NAME)

    def upload(self, local_dir: Path, path: str, *, force: bool = False, progress: Progress | None = None) -> UploadResult:
        """Upload the directory ``local_dir`` as the payload at ``path``, atomically."""
        path = normalize_path(path)
        if path == "/":
            raise StoreError(f"{self.uri}: refusing to upload onto the store root")
        manifest = scan_directory(Path(local_dir), max_bytes=self.max_payload_bytes)
        if self._is_dir(path):
            current = self.manifest(path)
            if current is not None and current.digest == manifest.digest:
                return UploadResult(manifest.digest, changed=False)
            if not force:
                raise PayloadChanged(
                    f"{self.uri}: a different payload is already at {path}; payloads are immutable "
                    "(upload under a new version, or force the replacement)"
                )
        parent, name = posixpath.split(path)
        tmp = join(parent, f".{name}.uploading-{uuid.uuid4().hex[:12]}")
        try:
            for entry in manifest.files:
                self._write(join(tmp, entry.path), _read_local(Path(local_dir) / entry.path, entry.path, entry.size, progress))
            self._write(join(tmp, MANIFEST_NAME), [manifest.to_json()])
            if self._is_dir(path):  # forced replacement
                old = join(parent, f".{name}.replaced-{uuid.uuid4().hex[:12]}")
                self._rename(path, old)
                try:
                    self._rename(tmp, path)
                except BaseException:
                    # Put the old payload back: a failed replacement leaves what was there.
                    try:
                        self._rename(old, path)
                    except StoreError as exc:
                        log.error("%s: the replaced payload is left at %s (restoring it failed: %s)",
                                  self.uri, old, exc)
                    raise
                self._delete(old)
            else:
                self._rename(tmp, path)
        except BaseException:
            self._delete(tmp)
            raise
        log.info("uploaded %s to %s%s (%d files, %d bytes)", local_dir, self.uri, path, len(manifest.files),
                 manifest.total_size)
        return UploadResult(manifest.digest, changed=True)

    def download(self, path: str, dest: Path) -> Manifest | None:
        """Copy the payload into the existing directory ``dest``, verifying every checksum."""
        path = normalize_path(path)
        manifest = self.manifest(path)
        if manifest is None:
            files = self._walk(path)
            total = sum(size for _rel, size in files)
            if total > self.max_payload_bytes:
                raise PayloadError(f"{self.uri}{path} ({total} bytes) is larger than the limit of "
                                   f"{self.max_payload_bytes} bytes")
            log.warning("%s%s has no manifest: downloading it unverified", self.uri, path)
            for rel, _size in files:
                self._download_file(join(path, check_relative(rel)), dest / rel, None)
            return None
        if manifest.total_size > self.max_payload_bytes:
            raise PayloadError(f"{self.uri}{path} is larger than the limit of {self.max_payload_bytes} bytes")
        for entry in manifest.files:
            self._download_file(join(path, entry.path), dest / entry.path, entry.sha256)
        return manifest

    def _download_file(self, src: str, target: Path, sha256: str | None) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with open(target, "wb") as fh:
            for chunk in self._read(src):
                digest.update(chunk)
                fh.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise PayloadError(
                f"{self.uri}{src}: checksum mismatch (manifest sha256 {sha256[:12]}…, got {digest.hexdigest()[:12]}…); "
                "the stored payload is corrupt"
            )


def _read_local(full: Path, rel: str, size: int, progress: Progress | None) -> Iterator[bytes]:
    done = 0
    with open(full, "rb") as fh:
        while chunk := fh.read(1 << 20):
            done += len(chunk)
            if progress is not None:
                progress(rel, done, size)
            yield chunk
    if progress is not None and size == 0:
        progress(rel, 0, 0)


def join(base: str, rel: str) -> str:
    return base.rstrip("/") + "/" + rel


def normalize_path(path: str) -> str:
    """A store path in canonical form; refuses paths that climb out of the store."""
    if not path or not path.startswith("/"):
        raise StoreError(f"store path {path!r} must be absolute (start with '/')")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise StoreError(f"store path {path!r} must not contain '..'")
    return "/" + "/".join(parts) if parts else "/"


def uri_scheme(uri: str) -> str:
    return urlsplit(uri).scheme.lower()


def supported_schemes() -> list[str]:
    return sorted(_SCHEMES)


def check_store_uri(uri: str) -> str:
    """``uri`` if it can name a store (supported scheme, a readable host and port); else a
    :class:`StoreError` saying what is wrong with it. Cheap and offline: for validating input."""
    try:
        parts = urlsplit(uri)
        port = parts.port  # urllib parses the port lazily and raises ValueError for "nn:abc"
    except ValueError as exc:
        raise StoreError(f"store URI {uri!r} is malformed: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise StoreError(f"unsupported store URI {uri!r}; supported schemes: {', '.join(supported_schemes())}")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise StoreError(f"file store URI {uri!r} must not name a host")
    elif not parts.hostname:
        raise StoreError(f"store URI {uri!r} names no host")
    elif port == 0:
        raise StoreError(f"store URI {uri!r} has port 0")
    return uri


def open_store(uri: str, *, max_payload_bytes: int | None = None) -> ModelStore:
    """The store for ``uri``."""
    check_store_uri(uri)
    factory = _SCHEMES[uri_scheme(uri)]
    try:
        store = factory(uri)
    except ValueError as exc:  # whatever a backend's URI parsing refuses
        raise StoreError(f"store URI {uri!r} is malformed: {exc}") from exc
    if max_payload_bytes is not None:
        store.max_payload_bytes = max_payload_bytes
    return store


def split_uri(path_or_uri: str, default_store: str) -> tuple[str, str]:
    """``(store_uri, store_path)`` for ``-hmp``: a path in the default store or a full URI."""
    if "://" not in path_or_uri:
        return default_store, normalize_path(path_or_uri)
    from maas.store.file import FileStore

    check_store_uri(path_or_uri)
    if uri_scheme(path_or_uri) == "file":
        # A full file URI names a payload directory; its parent directory serves as the store.
        full = Path(urlsplit(path_or_uri).path)
        return FileStore.uri_for(full.parent), normalize_path("/" + full.name)
    parts = urlsplit(path_or_uri)
    return f"{parts.scheme}://{parts.netloc}", normalize_path(posixpath.normpath(parts.path or "/"))


def _file_store(uri: str) -> ModelStore:
    from maas.store.file import FileStore

    return FileStore.from_uri(uri)


def _hdfs_store(uri: str) -> ModelStore:
    from maas.store.hdfs import HdfsStore

    return HdfsStore(uri)


_SCHEMES: dict[str, Callable[[str], ModelStore]] = {
    "file": _file_store,
    "hdfs": _hdfs_store,
    "webhdfs": _hdfs_store,
    "swebhdfs": _hdfs_store,
}
