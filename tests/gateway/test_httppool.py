"""The gateway's keep-alive HTTP client against real HTTP/1.1 servers: connection reuse, idle
connections the server closed, chunked answers, Connection: close, errors of every kind as
TransportError, the bound on connections, thread safety, forgetting an origin."""

from __future__ import annotations

import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest

from enrichment.httppool import KeepAlivePool, TransportError


class Server:
    """An HTTP/1.1 server echoing method, path, query and body; ``mode`` makes it misbehave."""

    def __init__(self) -> None:
        self.mode = "ok"
        self.connections = 0
        self.release = threading.Event()
        self.release.set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                server.connections += 1

            def _answer(self, body_in: bytes) -> None:
                assert server.release.wait(10)
                parts = urlsplit(self.path)
                body = json.dumps({"method": self.command, "path": parts.path, "query": dict(parse_qsl(parts.query)),
                                   "body": body_in.decode(), "host": self.headers["Host"]}).encode()
                if server.mode == "unframed":  # HTTP/1.0 style: the body ends with the connection
                    self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + body)
                    self.close_connection = True
                    return
                if server.mode == "garbage":
                    self.wfile.write(b"NOT HTTP AT ALL\r\n\r\n")
                    return
                if server.mode == "cut":  # promises more than it sends, then hangs up
                    self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"partial")
                    self.close_connection = True
                    return
                self.send_response(200)
                if server.mode == "chunked":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for piece in (body[:5], body[5:]):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send_header("Content-Length", str(len(body)))
                if server.mode == "close":
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                self.wfile.write(body)
                if server.mode == "close-after":  # answers in full, then closes the idle connection
                    self.close_connection = True

            def do_GET(self) -> None:  # noqa: N802
                self._answer(b"")

            def do_POST(self) -> None:  # noqa: N802
                self._answer(self.rfile.read(int(self.headers["Content-Length"])))

            def log_message(self, *_a: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda *_a: None  # type: ignore[method-assign]  # a client gone: not news
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.release.set()
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def pool() -> Iterator[KeepAlivePool]:
    p = KeepAlivePool(timeout=2.0, max_connections=8)
    yield p
    p.close()


def answer(pool: KeepAlivePool, url: str, *args: str, **kwargs: object) -> dict:
    response = pool.request(*(args or ("GET",)), url, kwargs.pop("path", "apply"), **kwargs)  # type: ignore[arg-type]
    assert response.status == 200
    return json.loads(response.body)


def test_one_connection_serves_many_requests(server: Server, pool: KeepAlivePool) -> None:
    for i in range(20):
        got = answer(pool, server.url, query=f"host=h{i}.com&n={i}")
        assert got["query"] == {"host": f"h{i}.com", "n": str(i)} and got["path"] == "/apply"
    assert server.connections == 1 and pool.stats == {"connections": 1, "reused": 19, "resent": 0}


def test_post_body_path_quoting_and_host_header(server: Server, pool: KeepAlivePool) -> None:
    got = answer(pool, server.url, "POST", path="v2/a b", body=b'[{"host": "x"}]')
    port = server.httpd.server_address[1]
    assert got == {"method": "POST", "path": "/v2/a%20b", "query": {}, "body": '[{"host": "x"}]',
                   "host": f"127.0.0.1:{port}"}
    assert answer(pool, server.url + "/base/", path="/apply")["path"] == "/base/apply"  # a base URL's own path


def test_chunked_answers_are_read_whole(server: Server, pool: KeepAlivePool) -> None:
    server.mode = "chunked"
    assert answer(pool, server.url, query="host=a")["query"] == {"host": "a"}
    assert answer(pool, server.url, query="host=b")["query"] == {"host": "b"}
    assert server.connections == 1


def test_an_answer_ending_with_its_connection_is_read_whole(server: Server, pool: KeepAlivePool) -> None:
    server.mode = "unframed"
    assert answer(pool, server.url, query="host=a")["query"] == {"host": "a"}
    assert answer(pool, server.url, query="host=b")["query"] == {"host": "b"}
    assert server.connections == 2 and pool.stats["reused"] == 0


def test_connection_close_is_honoured(server: Server, pool: KeepAlivePool) -> None:
    server.mode = "close"
    for _ in range(3):
        answer(pool, server.url)
    assert server.connections == 3 and pool.stats["reused"] == 0


def test_an_idle_connection_the_server_closed_is_replaced(server: Server, pool: KeepAlivePool) -> None:
    server.mode = "close-after"  # keeps the answer's keep-alive promise no longer than the answer
    for i in range(4):
        assert answer(pool, server.url, query=f"i={i}")["query"] == {"i": str(i)}
    assert server.connections == 4  # every request found its idle connection closed, and went anew


def test_a_reused_connection_reset_before_the_answer_is_sent_again() -> None:
    """A server that reads the second request on a connection and closes without answering (as a
    server closing an idle connection at that very moment does): the request goes once more on a
    new connection, and succeeds."""
    listener = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    served: list[int] = []

    def serve() -> None:
        for connection_number in range(2):
            conn, _ = listener.accept()
            with conn:
                requests = 0
                while True:
                    data = conn.recv(65536)
                    if not data:
                        break
                    requests += 1
                    if connection_number == 0 and requests == 2:
                        break  # drop the second request unanswered
                    body = b'{"ok": true}'
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                    served.append(connection_number)
                    if connection_number == 1:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    pool = KeepAlivePool(timeout=2.0)
    try:
        assert pool.request("GET", url, "apply").body == b'{"ok": true}'
        assert pool.request("GET", url, "apply").body == b'{"ok": true}'
        assert served == [0, 1] and pool.stats["resent"] == 1
    finally:
        pool.close()
        listener.close()
        thread.join(5)


@pytest.mark.parametrize("mode", ["garbage", "cut"])
def test_malformed_or_cut_answers_are_transport_errors(server: Server, pool: KeepAlivePool, mode: str) -> None:
    server.mode = mode
    with pytest.raises(TransportError):
        pool.request("GET", server.url, "apply")
    server.mode = "ok"
    assert answer(pool, server.url)["method"] == "GET"  # the broken connection was not kept


def test_unreachable_and_bad_urls_are_transport_errors(pool: KeepAlivePool) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
    with pytest.raises(TransportError, match="cannot connect"):
        pool.request("GET", f"http://127.0.0.1:{port}", "apply")
    with pytest.raises(TransportError, match="not an http"):
        pool.request("GET", "ftp://127.0.0.1:1", "apply")
    with pytest.raises(TransportError, match="not a URL"):
        pool.request("GET", "http://127.0.0.1:notaport", "apply")


def test_a_server_that_does_not_answer_times_out(server: Server) -> None:
    server.release.clear()
    pool = KeepAlivePool(timeout=0.3)
    try:
        with pytest.raises(TransportError, match="request failed"):
            pool.request("GET", server.url, "apply")
    finally:
        server.release.set()
        pool.close()


def test_at_most_max_connections_in_flight(server: Server) -> None:
    server.release.clear()
    pool = KeepAlivePool(timeout=5.0, pool_timeout=0.2, max_connections=1)
    try:
        with ThreadPoolExecutor(1) as executor:
            first = executor.submit(pool.request, "GET", server.url, "apply")
            while server.connections == 0:
                threading.Event().wait(0.01)
            with pytest.raises(TransportError, match="no free connection"):
                pool.request("GET", server.url, "apply")
            server.release.set()
            assert first.result(5).status == 200
    finally:
        server.release.set()
        pool.close()


def test_many_threads_share_the_pool(server: Server) -> None:
    pool = KeepAlivePool(timeout=5.0, max_connections=4)
    try:
        with ThreadPoolExecutor(8) as executor:
            got = list(executor.map(lambda i: answer(pool, server.url, query=f"i={i}")["query"]["i"], range(200)))
        assert got == [str(i) for i in range(200)]
        assert pool.stats["connections"] <= 4 < pool.stats["reused"]
    finally:
        pool.close()


def test_forget_closes_the_idle_connections_of_an_origin(server: Server, pool: KeepAlivePool) -> None:
    answer(pool, server.url)
    assert pool.origins() == [server.url]
    pool.forget(server.url)
    assert pool.origins() == [] and not pool._idle
    answer(pool, server.url)
    assert server.connections == 2
