"""HTTP clients the model-call benchmark compares, each behind the gateway's
:class:`~enrichment.httppool.HttpTransport` interface so ``MAAS_MODEL_APPLY`` can run over any of
them: ``httpx`` (the gateway's client until the keep-alive pool replaced it), ``urllib3``'s pool,
``http.client`` with one keep-alive connection per thread and origin, and the floor — a minimal
keep-alive client that sends a GET and reads Content-Length bytes, with none of a client's checks.
The gateway itself uses :class:`enrichment.httppool.KeepAlivePool`.
"""

from __future__ import annotations

import http.client
import socket
import threading
from urllib.parse import urlsplit

import httpx
import urllib3

from enrichment.httppool import Response, TransportError

JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def _target(url: str, path: str, query: str) -> str:
    return f"{url}/{path.lstrip('/')}" + (f"?{query}" if query else "")


class HttpxTransport:
    def __init__(self, timeout: float = 5.0, max_connections: int = 64) -> None:
        self.client = httpx.Client(timeout=timeout, limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections))

    def request(self, method: str, base_url: str, path: str, *, query: str = "", body: bytes | None = None) -> Response:
        try:
            r = self.client.request(method, _target(base_url, path, query), content=body,
                                    headers=JSON_HEADERS if body is not None else None)
        except httpx.HTTPError as exc:
            raise TransportError(str(exc)) from exc
        return Response(r.status_code, r.content)

    def forget(self, base_url: str) -> None:
        pass

    def close(self) -> None:
        self.client.close()


class Urllib3Transport:
    def __init__(self, timeout: float = 5.0, max_connections: int = 64) -> None:
        self.pool = urllib3.PoolManager(maxsize=max_connections, retries=False, timeout=timeout)

    def request(self, method: str, base_url: str, path: str, *, query: str = "", body: bytes | None = None) -> Response:
        try:
            r = self.pool.request(method, _target(base_url, path, query), body=body,
                                  headers=JSON_HEADERS if body is not None else None)
        except urllib3.exceptions.HTTPError as exc:
            raise TransportError(str(exc)) from exc
        return Response(r.status, r.data)

    def forget(self, base_url: str) -> None:
        pass

    def close(self) -> None:
        self.pool.clear()


class HttpClientTransport:
    """``http.client``: one keep-alive connection per thread and origin."""

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.local = threading.local()

    def _conn(self, base_url: str) -> http.client.HTTPConnection:
        conns = self.local.__dict__.setdefault("conns", {})
        conn = conns.get(base_url)
        if conn is None:
            parts = urlsplit(base_url)
            conn = conns[base_url] = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
        return conn

    def request(self, method: str, base_url: str, path: str, *, query: str = "", body: bytes | None = None) -> Response:
        target = "/" + path.lstrip("/") + (f"?{query}" if query else "")
        for attempt in (1, 2):
            conn = self._conn(base_url)
            try:
                conn.request(method, target, body=body, headers=JSON_HEADERS if body is not None else {})
                r = conn.getresponse()
                return Response(r.status, r.read())
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if attempt == 2:
                    raise TransportError(str(exc)) from exc
        raise AssertionError("unreachable")

    def forget(self, base_url: str) -> None:
        pass

    def close(self) -> None:
        pass


class FloorClient:
    """The least an HTTP/1.1 keep-alive GET can cost from Python: one socket, the request written
    by hand, the answer read up to its Content-Length (no chunking, no checks; one thread). A
    connection the server closed while idle is opened anew."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.address = (parts.hostname, parts.port)
        self.sock = self._connect()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.address)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def get(self, path_and_query: str) -> bytes:
        request = b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path_and_query.encode("ascii")
        try:
            self.sock.sendall(request)
            data = self.sock.recv(65536)
        except ConnectionError:
            data = b""
        if not data:  # closed while idle: once more, anew
            self.sock.close()
            self.sock = self._connect()
            self.sock.sendall(request)
            data = self.sock.recv(65536)
        buf = b""
        while True:
            if not data:
                raise ConnectionError("closed")
            buf += data
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            data = self.sock.recv(65536)
        head = buf[:end].lower()
        length = int(head.split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
        body = buf[end + 4:]
        while len(body) < length:
            body += self.sock.recv(65536)
        return body

    def close(self) -> None:
        self.sock.close()
