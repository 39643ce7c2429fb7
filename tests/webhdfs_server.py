"""A WebHDFS-protocol test server backed by a local directory.

It follows the documented REST API (``/webhdfs/v1/<path>?op=…``) closely enough for the real
``hdfs`` client: a *namenode* answers metadata operations and redirects data operations
(CREATE, APPEND, OPEN, GETFILECHECKSUM) with 307 to a *datanode* on another port, which moves
the bytes; errors are ``RemoteException`` JSON with the status codes HDFS uses. Paths under
``denied_prefix`` answer AccessControlException, to test permission errors.

There is no HDFS to install here; this server exists so the store code is exercised through the
real client and the real protocol. It is not a filesystem: no replication, blocks or leases.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

PREFIX = "/webhdfs/v1"


class RemoteError(Exception):
    STATUS = {
        "FileNotFoundException": 404,
        "AccessControlException": 403,
        "FileAlreadyExistsException": 403,
        "IllegalArgumentException": 400,
        "UnsupportedOperationException": 400,
        "IOException": 500,
    }

    def __init__(self, exception: str, message: str) -> None:
        super().__init__(message)
        self.exception = exception
        self.message = message

    @property
    def status(self) -> int:
        return self.STATUS.get(self.exception, 500)

    def body(self) -> dict[str, Any]:
        java = "java.io." if self.exception in ("FileNotFoundException", "IOException") else "org.apache.hadoop.security."
        return {"RemoteException": {"exception": self.exception, "javaClassName": java + self.exception,
                                    "message": self.message}}


class WebHdfsServer:
    """Namenode + datanode over ``root``; use as a context manager or start()/stop()."""

    def __init__(self, root: Path, *, denied_prefix: str | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.denied_prefix = denied_prefix
        self.requests: list[tuple[str, str, str]] = []  # (role, method, op) for assertions
        self._lock = threading.Lock()
        self.namenode = ThreadingHTTPServer(("127.0.0.1", 0), self._handler("namenode"))
        self.datanode = ThreadingHTTPServer(("127.0.0.1", 0), self._handler("datanode"))
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.namenode.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self.namenode.server_address[1])

    def start(self) -> "WebHdfsServer":
        for server in (self.namenode, self.datanode):
            thread = threading.Thread(target=server.serve_forever, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in (self.namenode, self.datanode):
            server.shutdown()
            server.server_close()

    def __enter__(self) -> "WebHdfsServer":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- filesystem ---------------------------------------------------------------------------
    def local(self, hdfs_path: str) -> Path:
        parts = [p for p in hdfs_path.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise RemoteError("IllegalArgumentException", f"Invalid path name {hdfs_path}")
        return self.root.joinpath(*parts)

    def _check_access(self, hdfs_path: str, write: bool) -> None:
        if write and self.denied_prefix and hdfs_path.startswith(self.denied_prefix):
            raise RemoteError("AccessControlException",
                              f"Permission denied: user=maas, access=WRITE, inode=\"{hdfs_path}\":hdfs:supergroup:drwxr-xr-x")

    def _status(self, path: Path, name: str) -> dict[str, Any]:
        st = path.stat()
        is_dir = path.is_dir()
        return {
            "accessTime": int(st.st_atime * 1000), "blockSize": 134217728, "childrenNum": len(list(path.iterdir())) if is_dir else 0,
            "fileId": st.st_ino, "group": "supergroup", "length": 0 if is_dir else st.st_size,
            "modificationTime": int(st.st_mtime * 1000), "owner": "maas", "pathSuffix": name,
            "permission": "755" if is_dir else "644", "replication": 0 if is_dir else 3,
            "storagePolicy": 0, "type": "DIRECTORY" if is_dir else "FILE",
        }

    def _handler(self, role: str) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: object) -> None:
                pass

            def _parse(self) -> tuple[str, dict[str, str]]:
                parts = urlsplit(self.path)
                if not parts.path.startswith(PREFIX):
                    raise RemoteError("IllegalArgumentException", f"not a WebHDFS path: {parts.path}")
                params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                return unquote(parts.path[len(PREFIX):]) or "/", params

            def _send(self, status: int, body: bytes = b"", content_type: str = "application/json",
                      headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, data: Any) -> None:
                self._send(status, json.dumps(data).encode())

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _redirect(self, path: str, params: dict[str, str]) -> None:
                query = "&".join(f"{k}={quote(v)}" for k, v in params.items())
                location = f"http://127.0.0.1:{server.datanode.server_address[1]}{PREFIX}{quote(path)}?{query}"
                self._send(307, b"", headers={"Location": location})

            def _dispatch(self, method: str) -> None:
                try:
                    path, params = self._parse()
                    op = params.get("op", "").upper()
                    with server._lock:
                        server.requests.append((role, method, op))
                    getattr(self, f"_{role}")(method, op, path, params)
                except RemoteError as exc:
                    if method in ("PUT", "POST"):
                        self._body()  # drain, so the connection stays usable
                    self._json(exc.status, exc.body())

            def do_GET(self) -> None:  # noqa: N802
                self._dispatch("GET")

            def do_PUT(self) -> None:  # noqa: N802
                self._dispatch("PUT")

            def do_POST(self) -> None:  # noqa: N802
                self._dispatch("POST")

            def do_DELETE(self) -> None:  # noqa: N802
                self._dispatch("DELETE")

            # -- namenode ------------------------------------------------------------------
            def _namenode(self, method: str, op: str, path: str, params: dict[str, str]) -> None:
                local = server.local(path)
                if (method, op) in (("PUT", "CREATE"), ("POST", "APPEND")):
                    server._check_access(path, write=True)
                    if op == "CREATE" and local.exists() and params.get("overwrite", "false").lower() != "true":
                        self._body()
                        raise RemoteError("FileAlreadyExistsException", f"{path} for client 127.0.0.1 already exists")
                    if op == "APPEND" and not local.is_file():
                        self._body()
                        raise RemoteError("FileNotFoundException", f"File does not exist: {path}")
                    self._body()
                    self._redirect(path, params)
                elif (method, op) in (("GET", "OPEN"), ("GET", "GETFILECHECKSUM")):
                    if not local.is_file():
                        raise RemoteError("FileNotFoundException", f"File does not exist: {path}")
                    self._redirect(path, params)
                elif (method, op) == ("GET", "GETFILESTATUS"):
                    if not local.exists():
                        raise RemoteError("FileNotFoundException", f"File does not exist: {path}")
                    self._json(200, {"FileStatus": server._status(local, "")})
                elif (method, op) == ("GET", "LISTSTATUS"):
                    if not local.exists():
                        raise RemoteError("FileNotFoundException", f"File {path} does not exist.")
                    entries = [server._status(p, p.name) for p in sorted(local.iterdir())] if local.is_dir() \
                        else [server._status(local, "")]
                    self._json(200, {"FileStatuses": {"FileStatus": entries}})
                elif (method, op) == ("GET", "GETHOMEDIRECTORY"):
                    self._json(200, {"Path": "/user/maas"})
                elif (method, op) == ("PUT", "MKDIRS"):
                    server._check_access(path, write=True)
                    if local.is_file():
                        raise RemoteError("FileAlreadyExistsException", f"Path is not a directory: {path}")
                    local.mkdir(parents=True, exist_ok=True)
                    self._json(200, {"boolean": True})
                elif (method, op) == ("PUT", "RENAME"):
                    dest = params.get("destination")
                    if not dest:
                        raise RemoteError("IllegalArgumentException", "destination is required")
                    server._check_access(path, write=True)
                    server._check_access(dest, write=True)
                    target = server.local(dest)
                    if target.is_dir() and local.exists():  # HDFS moves into an existing directory
                        target = target / local.name
                    if not local.exists() or target.exists() or not target.parent.is_dir():
                        self._json(200, {"boolean": False})
                        return
                    os.rename(local, target)
                    self._json(200, {"boolean": True})
                elif (method, op) == ("DELETE", "DELETE"):
                    server._check_access(path, write=True)
                    if not local.exists():
                        self._json(200, {"boolean": False})
                        return
                    if local.is_dir():
                        if any(local.iterdir()) and params.get("recursive", "false").lower() != "true":
                            raise RemoteError("IOException", f"{path} is non empty': Directory is not empty")
                        shutil.rmtree(local)
                    else:
                        local.unlink()
                    self._json(200, {"boolean": True})
                else:
                    raise RemoteError("UnsupportedOperationException", f"op={op} is not supported for {method}")

            # -- datanode ------------------------------------------------------------------
            def _datanode(self, method: str, op: str, path: str, params: dict[str, str]) -> None:
                local = server.local(path)
                if (method, op) == ("PUT", "CREATE"):
                    data = self._body()
                    local.parent.mkdir(parents=True, exist_ok=True)
                    local.write_bytes(data)
                    self._send(201, b"", headers={"Location": f"hdfs://127.0.0.1:{server.port}{path}"})
                elif (method, op) == ("POST", "APPEND"):
                    data = self._body()
                    with open(local, "ab") as fh:
                        fh.write(data)
                    self._send(200)
                elif (method, op) == ("GET", "OPEN"):
                    data = local.read_bytes()
                    offset = int(params.get("offset", 0))
                    length = params.get("length")
                    data = data[offset: offset + int(length)] if length is not None else data[offset:]
                    self._send(200, data, "application/octet-stream")
                elif (method, op) == ("GET", "GETFILECHECKSUM"):
                    digest = hashlib.md5(local.read_bytes()).hexdigest()
                    self._json(200, {"FileChecksum": {"algorithm": "MD5-of-0MD5-of-512CRC32C",
                                                      "bytes": "0" * 8 + digest + "0" * 16, "length": 28}})
                else:
                    raise RemoteError("UnsupportedOperationException", f"datanode: op={op} is not supported")

        return Handler
