"""The HDFS model store, over WebHDFS with the ``hdfs`` package.

URIs: ``webhdfs://[user@]namenode:port[/root]`` (``swebhdfs://`` for HTTPS) names the NameNode's
WebHDFS HTTP address; ``hdfs://[user@]namenode[:port][/root]`` is accepted as the same thing
(the RPC protocol is not spoken here; the port defaults to WebHDFS's 9870). Store paths are
below ``root``. Clients: ``InsecureClient`` as ``user`` (default: ``$HADOOP_USER_NAME`` or
``maas``); ``TokenClient`` when ``$MAAS_HDFS_TOKEN`` holds a delegation token; Kerberos
(``KerberosClient``) when ``$MAAS_HDFS_KERBEROS=1`` and ``requests-kerberos`` is installed.
Client errors (RemoteException, connection refused, timeouts) become
:class:`~maas.errors.StoreError` naming the store, the path and the cause.
"""

from __future__ import annotations

import os
import posixpath
from typing import Any, Callable, Iterable, Iterator, TypeVar
from urllib.parse import unquote, urlsplit

import requests
from hdfs import Client, InsecureClient, TokenClient
from hdfs.util import HdfsError

from maas.errors import StoreError, StoreNotFound
from maas.store import ModelStore

T = TypeVar("T")
DEFAULT_WEBHDFS_PORT = 9870
CHUNK = 1 << 20


class HdfsStore(ModelStore):
    def __init__(self, uri: str, *, client: Client | None = None, timeout: float = 30.0) -> None:
        parts = urlsplit(uri)
        if parts.scheme not in ("hdfs", "webhdfs", "swebhdfs") or not parts.hostname:
            raise StoreError(f"{uri!r} is not an hdfs://, webhdfs:// or swebhdfs:// URI with a host")
        http = "https" if parts.scheme == "swebhdfs" else "http"
        port = parts.port or DEFAULT_WEBHDFS_PORT
        self.base = posixpath.normpath(unquote(parts.path) or "/")
        self.uri = f"{parts.scheme}://{parts.hostname}:{port}{'' if self.base == '/' else self.base}"
        self.client = client or _make_client(f"{http}://{parts.hostname}:{port}", parts.username, timeout)

    def _full(self, path: str) -> str:
        return posixpath.join(self.base, path.lstrip("/")) if self.base != "/" else path

    def _call(self, what: str, path: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except HdfsError as exc:
            raise self._hdfs_error(what, path, exc) from exc
        except requests.RequestException as exc:
            raise StoreError(f"{self.uri}: cannot {what} {path}: NameNode or DataNode unreachable ({type(exc).__name__})") from exc

    def _hdfs_error(self, what: str, path: str, exc: HdfsError) -> StoreError:
        """A RemoteException as a StoreError; FileNotFoundException (HTTP 404) as StoreNotFound."""
        cause = getattr(exc, "exception", None) or "HdfsError"
        kind = StoreNotFound if cause == "FileNotFoundException" else StoreError
        return kind(f"{self.uri}: cannot {what} {path}: {cause}: {exc.message}")

    # -- primitives ---------------------------------------------------------------------------
    def _walk(self, path: str) -> list[tuple[str, int]]:
        if not self._is_dir(path):
            raise StoreNotFound(f"{self.uri}: no payload at {path}")
        found: list[tuple[str, int]] = []

        def visit(rel: str) -> None:
            full = self._full(posixpath.join(path, rel) if rel else path)
            for name, status in self._call("list", path, lambda: self.client.list(full, status=True)):
                child = posixpath.join(rel, name) if rel else name
                if status["type"] == "DIRECTORY":
                    visit(child)
                else:
                    found.append((child, int(status["length"])))

        visit("")
        return sorted(found)

    def _is_dir(self, path: str) -> bool:
        status: Any = self._call("stat", path, lambda: self.client.status(self._full(path), strict=False))
        return bool(status) and status.get("type") == "DIRECTORY"

    def _read(self, path: str) -> Iterator[bytes]:
        full = self._full(path)
        try:
            with self.client.read(full, chunk_size=CHUNK) as reader:
                yield from reader
        except HdfsError as exc:
            raise self._hdfs_error("read", path, exc) from exc
        except requests.RequestException as exc:
            raise StoreError(f"{self.uri}: cannot read {path}: NameNode or DataNode unreachable ({type(exc).__name__})") from exc

    def _write(self, path: str, chunks: Iterable[bytes]) -> None:
        full = self._full(path)
        self._call("write", path, lambda: self.client.write(full, data=iter(chunks), overwrite=True))

    def _rename(self, src: str, dst: str) -> None:
        # HDFS moves a directory *into* an existing destination directory; refuse instead.
        if self._call("stat", dst, lambda: self.client.status(self._full(dst), strict=False)) is not None:
            raise StoreError(f"{self.uri}: cannot rename {src} to {dst}: target exists")
        self._call("rename", src, lambda: self.client.rename(self._full(src), self._full(dst)))

    def _delete(self, path: str) -> None:
        self._call("delete", path, lambda: self.client.delete(self._full(path), recursive=True))


def _make_client(url: str, user: str | None, timeout: float) -> Client:
    token = os.environ.get("MAAS_HDFS_TOKEN")
    if os.environ.get("MAAS_HDFS_KERBEROS") == "1":
        try:
            from hdfs.ext.kerberos import KerberosClient
        except ImportError as exc:  # requests-kerberos is an optional extra
            raise StoreError("MAAS_HDFS_KERBEROS=1 needs the requests-kerberos package") from exc
        return KerberosClient(url, timeout=timeout)
    if token:
        return TokenClient(url, token, timeout=timeout)
    return InsecureClient(url, user=user or os.environ.get("HADOOP_USER_NAME", "maas"), timeout=timeout)
