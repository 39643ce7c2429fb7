"""Fixtures of the enrichment tests: a fake model gateway that counts what it is asked, and small
real HTTP model services (GET one row, POST an object or a list) that can be told to misbehave."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from maas.registration import Endpoint


def score(args: Mapping[str, Any]) -> dict[str, Any]:
    """The fake model: a deterministic function of its arguments."""
    host = str(args.get("host"))
    return {"is_malicious": "malicious" if host.startswith("x") else "legit", "length": len(host),
            "echo": dict(args)}


class FakeGateway:
    """A :class:`~enrichment.BatchModelGateway` without HTTP.

    Endpoints name one of two instances at random (as P2C would); answers are :func:`score` of the
    arguments, None for a host in ``reject``. Every call is recorded.
    """

    def __init__(self, *, batches: bool = True, reject: Sequence[str] = (), seed: int = 3) -> None:
        self.rng = random.Random(seed)
        self.reject = set(reject)
        self.lock = threading.Lock()
        self.applies: list[dict[str, Any]] = []  # single calls, by arguments
        self.batches: list[list[dict[str, Any]]] = []  # batched calls, by rows
        self.lookups = 0
        if not batches:
            self.apply_batch = None  # type: ignore[assignment]

    def get_endpoint(self, name: str, version: str | None = None) -> dict[str, Any] | None:
        with self.lock:
            self.lookups += 1
            if name == "missing":
                return None
            url = self.rng.choice(["http://10.0.0.1:1", "http://10.0.0.2:1"])
        return {"name": name, "version": version or "2", "url": url, "endpoint:apply": "apply"}

    def _answer(self, endpoint: Mapping[str, Any], function: str | None, args: Mapping[str, Any]) -> dict[str, Any] | None:
        if str(args.get("host")) in self.reject:
            return None
        return {**score(args), "model": endpoint["name"], "version": endpoint["version"], "function": function or "apply"}

    def apply(self, endpoint: dict[str, Any], function: str | None, args: dict[str, Any]) -> dict[str, Any] | None:
        with self.lock:
            self.applies.append(dict(args))
        return self._answer(endpoint, function, args)

    def apply_batch(self, endpoint: dict[str, Any], function: str | None,
                    rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any] | None]:
        with self.lock:
            self.batches.append([dict(r) for r in rows])
        return [self._answer(endpoint, function, r) for r in rows]

    @property
    def requests(self) -> int:
        return len(self.applies) + len(self.batches)


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


class ModelService:
    """A real HTTP model service on 127.0.0.1 speaking the Metron-style protocol of docs/contracts.md.

    ``status`` forces every answer's status; a row whose host is in ``refuse`` makes the whole
    request a 400 (as the built-in model server refuses a batch with one bad row); ``garble``
    makes batch answers a list one item short. Requests are recorded as (method, rows).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.status = 200
        self.refuse: set[str] = set()
        self.garble = False
        self.requests: list[tuple[str, list[dict[str, Any]]]] = []
        service = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, code: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _answer(self, method: str, rows: list[dict[str, Any]], batch: bool) -> None:
                service.requests.append((method, rows))
                if service.status != 200:
                    self._reply(service.status, {"error": "forced"})
                    return
                bad = [i for i, row in enumerate(rows) if str(row.get("host")) in service.refuse]
                if bad:
                    self._reply(400, {"error": f"row {bad[0]} refused"})
                    return
                out = [{**score(row), "who": service.name} for row in rows]
                if batch and service.garble:
                    out = out[:-1]
                self._reply(200, out if batch else out[0])

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                self._answer("GET", [dict(parse_qsl(parts.query))], False)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                self._answer("POST", body if isinstance(body, list) else [body], isinstance(body, list))

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def endpoint(self, version: str = "1.0") -> Endpoint:
        return Endpoint("dga", version, self.name, self.url, {"apply": "apply"})

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def services() -> Iterator[list[ModelService]]:
    made = [ModelService("a"), ModelService("b")]
    yield made
    for service in made:
        service.close()


class StaticDiscovery:
    """A discovery client with a fixed list of endpoints."""

    def __init__(self, endpoints: list[Endpoint]) -> None:
        self.list = endpoints

    def endpoints(self, name: str, version: str | None = None) -> list[Endpoint]:
        return [e for e in self.list if e.name == name and (version is None or e.version == version)]

    def all(self) -> list[Endpoint]:
        return list(self.list)
