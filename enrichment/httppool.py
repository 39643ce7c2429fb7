"""The model gateway's HTTP client: a thread-safe pool of keep-alive HTTP/1.1 connections.

A model call is a ~100 µs inference behind an HTTP round trip, so the client's own cost per request
is a large share of what ``MAAS_MODEL_APPLY`` costs. Measured on the DGA model (``python -m bench
model_call``), per single call: ``httpx`` spends ~350 µs of its own (request and response models,
its transport layers), ``urllib3`` ~150 µs, ``http.client`` ~100 µs (it parses every response's
headers through ``email.feedparser``). This client writes the request line and its few headers
itself and parses responses with ``httptools`` (the C HTTP parser uvicorn uses); what it does by
hand is only what those libraries leave to their caller — the socket, the pool and reuse of idle
connections — which is why it exists (no well-kept library offers that pool without the layers
that cost the time).

What it does:

* one pool per client, idle connections kept per origin (``scheme://host:port``), last used first;
  at most ``max_connections`` requests in flight at once (a caller waits up to ``pool_timeout``,
  by default ``timeout``, for a free slot), at most ``max_idle`` idle connections per origin;
* an idle connection the server has closed meanwhile (uvicorn closes idle ones after 5 s) is
  noticed before reuse; should a reused connection still fail before a single byte of the answer
  arrived, the request is sent once more on a new connection (model calls are idempotent);
* ``timeout`` bounds the connect and every read and write; ``https`` URLs use the system's trust
  store and check the host name;
* answers are read whole (Content-Length or chunked), the connection kept when the server allows
  it; anything that goes wrong is a :class:`TransportError` and the connection is dropped.

:class:`HttpTransport` is the interface the gateway uses, so tests and the benchmark can put
another client behind it.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, urlsplit

import httptools

from enrichment.errors import EnrichmentError

__all__ = ["HttpTransport", "KeepAlivePool", "Response", "TransportError"]

RECV_BYTES = 65536
PATH_SAFE = "/:@!$&'()*+,;=-._~"


class TransportError(EnrichmentError):
    """The request could not be made or its answer not read (connection refused, reset, timed
    out, malformed answer): the instance is unreachable, not the request wrong."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class HttpTransport(Protocol):
    """What the gateway needs of an HTTP client (thread-safe)."""

    def request(self, method: str, base_url: str, path: str, *, query: str = "",
                body: bytes | None = None) -> Response:
        """``method`` on ``base_url`` + ``/`` + ``path`` (+ ``?query``), with a JSON ``body``;
        raises :class:`TransportError` when no answer could be had."""
        ...

    def forget(self, base_url: str) -> None:
        """Close the idle connections to ``base_url``'s origin and drop what is kept of it."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int
    host_header: bytes
    prefix: str  # a path the base URL carries, without its trailing slash


class _Connection:
    """One socket and its response parser (the parser's callbacks are methods of this object)."""

    __slots__ = ("sock", "parser", "_chunks", "_complete", "_received", "_keep", "_headers_done", "_framed")

    def __init__(self, origin: _Origin, timeout: float, tls: ssl.SSLContext | None) -> None:
        sock = socket.create_connection((origin.host, origin.port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=origin.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.parser = httptools.HttpResponseParser(self)
        self._chunks: list[bytes] = []
        self._complete = False
        self._received = False
        self._keep = False
        self._headers_done = False
        self._framed = False  # the answer says where it ends (Content-Length, chunked)

    # httptools callbacks
    def on_header(self, name: bytes, _value: bytes) -> None:
        if len(name) in (14, 17) and name.lower() in (b"content-length", b"transfer-encoding"):
            self._framed = True

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)

    def on_message_complete(self) -> None:
        self._keep = self.parser.should_keep_alive()  # only known while the message is current
        self._complete = True

    def alive(self) -> bool:
        """Idle and still open: nothing to read (a closed peer reads as end of file)."""
        if isinstance(self.sock, ssl.SSLSocket):
            return self.sock.fileno() >= 0 and self.sock.pending() == 0 and _quiet(self.sock)
        return _quiet(self.sock)

    def exchange(self, request: bytes) -> tuple[int, bytes, bool]:
        """Send ``request``, read its whole answer: (status, body, keep-alive)."""
        self._chunks = []
        self._complete = False
        self._received = False
        self._headers_done = False
        self._framed = False
        self.sock.sendall(request)
        while not self._complete:
            data = self.sock.recv(RECV_BYTES)
            if not data:
                if self._headers_done and not self._framed:  # an answer that ends where the connection does
                    return self.parser.get_status_code(), b"".join(self._chunks), False
                raise ConnectionResetError("the server closed the connection before answering in full")
            self._received = True
            self.parser.feed_data(data)
        return self.parser.get_status_code(), b"".join(self._chunks), self._keep

    @property
    def received(self) -> bool:
        """Some of the answer arrived (so the request must not be sent again)."""
        return self._received

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _quiet(sock: socket.socket) -> bool:
    """Nothing to read on ``sock`` right now (a recv on a socket with a timeout would wait first)."""
    poller = select.poll()
    try:
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


class KeepAlivePool:
    """The :class:`HttpTransport` of the model gateway (see the module's docstring)."""

    def __init__(self, *, timeout: float = 5.0, max_connections: int = 64, max_idle: int | None = None,
                 pool_timeout: float | None = None, tls: ssl.SSLContext | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        # headers sent with every request (an endpoint's bearer token), encoded once
        self._extra = b"".join(b"%s: %s\r\n" % (k.encode("ascii"), v.encode("latin-1"))
                               for k, v in (headers or {}).items())
        self.timeout = timeout
        self.pool_timeout = timeout if pool_timeout is None else pool_timeout
        self.max_idle = max_connections if max_idle is None else max_idle
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self._idle: dict[_Origin, list[_Connection]] = {}
        self._origins: dict[str, _Origin] = {}
        self._paths: dict[str, str] = {}
        self._tls = tls
        self._closed = False
        self.stats = {"connections": 0, "reused": 0, "resent": 0}

    # -- addressing -----------------------------------------------------------------------------
    def _origin(self, base_url: str) -> _Origin:
        origin = self._origins.get(base_url)
        if origin is not None:
            return origin
        try:
            parts = urlsplit(base_url)
            port = parts.port
        except ValueError as exc:
            raise TransportError(f"{base_url!r} is not a URL: {exc}") from exc
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TransportError(f"{base_url!r} is not an http:// or https:// URL")
        default = 443 if parts.scheme == "https" else 80
        port = port or default
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        header = shown if port == default else f"{shown}:{port}"
        origin = _Origin(parts.scheme, host, port, header.encode("idna"), parts.path.rstrip("/"))
        with self._lock:
            self._origins[base_url] = origin
        return origin

    def _target(self, origin: _Origin, path: str, query: str) -> bytes:
        quoted = self._paths.get(path)
        if quoted is None:
            quoted = quote("/" + path.lstrip("/"), safe=PATH_SAFE)
            with self._lock:
                if len(self._paths) < 4096:  # the functions of the models called: few
                    self._paths[path] = quoted
        target = origin.prefix + quoted
        return (f"{target}?{query}" if query else target).encode("ascii")

    # -- connections ----------------------------------------------------------------------------
    def _checkout(self, origin: _Origin) -> tuple[_Connection, bool]:
        """An idle connection to ``origin`` that is still open, else a new one; (it, reused)."""
        while True:
            with self._lock:
                idle = self._idle.get(origin)
                conn = idle.pop() if idle else None
            if conn is None:
                break
            if conn.alive():
                return conn, True
            conn.close()
        return self._connect(origin), False

    def _connect(self, origin: _Origin) -> _Connection:
        tls = None
        if origin.scheme == "https":
            tls = self._tls or ssl.create_default_context()
        conn = _Connection(origin, self.timeout, tls)
        with self._lock:
            self.stats["connections"] += 1
        return conn

    def _checkin(self, base_url: str, origin: _Origin, conn: _Connection) -> None:
        """Keep ``conn`` for reuse, unless the pool closed or forgot ``base_url`` meanwhile."""
        with self._lock:
            if not self._closed and self._origins.get(base_url) is origin:
                idle = self._idle.setdefault(origin, [])
                if len(idle) < self.max_idle:
                    idle.append(conn)
                    return
        conn.close()

    # -- the interface --------------------------------------------------------------------------
    def request(self, method: str, base_url: str, path: str, *, query: str = "",
                body: bytes | None = None) -> Response:
        origin = self._origin(base_url)
        head = b"%s %s HTTP/1.1\r\nHost: %s\r\nAccept: application/json\r\n%s" % (
            method.encode("ascii"), self._target(origin, path, query), origin.host_header, self._extra)
        if body is None:
            message = head + b"\r\n"
        else:
            message = b"%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (head, len(body), body)
        if not self._slots.acquire(timeout=self.pool_timeout):
            raise TransportError(f"no free connection to {base_url} within {self.pool_timeout:g}s")
        try:
            return self._request(origin, base_url, message)
        finally:
            self._slots.release()

    def _request(self, origin: _Origin, base_url: str, message: bytes) -> Response:
        try:
            conn, reused = self._checkout(origin)
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(f"cannot connect to {base_url}: {exc or type(exc).__name__}") from exc
        for attempt in (1, 2):
            try:
                status, body, keep = conn.exchange(message)
            except (OSError, ssl.SSLError, httptools.HttpParserError) as exc:
                conn.close()
                if attempt == 1 and reused and not conn.received and not isinstance(exc, (TimeoutError,
                                                                                            httptools.HttpParserError)):
                    with self._lock:
                        self.stats["resent"] += 1
                    try:  # the server closed the idle connection as we reused it: once more, anew
                        conn, reused = self._connect(origin), False
                    except (OSError, ssl.SSLError) as again:
                        raise TransportError(f"cannot connect to {base_url}: {again or type(again).__name__}") \
                            from again
                    continue
                what = "malformed answer" if isinstance(exc, httptools.HttpParserError) else "request failed"
                raise TransportError(f"{what} from {base_url}: {exc or type(exc).__name__}") from exc
            if reused:
                with self._lock:
                    self.stats["reused"] += 1
            if keep:
                self._checkin(base_url, origin, conn)
            else:
                conn.close()
            return Response(status, body)
        raise AssertionError("unreachable")  # pragma: no cover

    def forget(self, base_url: str) -> None:
        with self._lock:
            origin = self._origins.pop(base_url, None)
            if origin is None:
                return
            still_used = origin in set(self._origins.values())
            idle = [] if still_used else self._idle.pop(origin, [])
        for conn in idle:
            conn.close()

    def origins(self) -> list[str]:
        """The base URLs this pool keeps something of."""
        with self._lock:
            return list(self._origins)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle = [c for conns in self._idle.values() for c in conns]
            self._idle.clear()
            self._origins.clear()
        for conn in idle:
            conn.close()
