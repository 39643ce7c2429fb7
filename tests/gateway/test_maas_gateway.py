"""The MAAS model gateway against real HTTP servers: function names, result cache, retries on
another instance, outlier ejection, power-of-two-choices."""

from __future__ import annotations

import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest

from maas.registration import Endpoint
from enrichment.gateway import GatewaySettings, MaasGateway


class Model:
    """A tiny model service: counts calls, can be told to fail."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[str] = []
        self.status = 200
        model = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                model.calls.append(parts.path)
                body = json.dumps({"who": model.name, "path": parts.path, **dict(parse_qsl(parts.query))}).encode()
                self.send_response(model.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def endpoint(self, version: str = "1.0") -> Endpoint:
        return Endpoint("dga", version, self.name, self.url, {"apply": "apply", "score": "v2/score"})


class FakeDiscovery:
    def __init__(self, endpoints: list[Endpoint]) -> None:
        self.list = endpoints
        self.listeners: list = []

    def add_listener(self, listener) -> None:  # type: ignore[no-untyped-def]
        self.listeners.append(listener)

    def change(self, endpoints: list[Endpoint]) -> None:
        self.list = endpoints
        for listener in self.listeners:
            listener()

    def endpoints(self, name: str, version: str | None = None) -> list[Endpoint]:
        return [e for e in self.list if e.name == name and (version is None or e.version == version)]

    def all(self) -> list[Endpoint]:
        return list(self.list)


@pytest.fixture
def models() -> Iterator[list[Model]]:
    ms = [Model("a"), Model("b")]
    yield ms
    for m in ms:
        m.server.shutdown()
        m.server.server_close()


def gateway(endpoints: list[Endpoint], **settings: object) -> MaasGateway:
    return MaasGateway(FakeDiscovery(endpoints), GatewaySettings(**settings), rng=random.Random(1))  # type: ignore[arg-type]


def test_endpoint_map_and_explicit_function(models: list[Model]) -> None:
    gw = gateway([models[0].endpoint()], cache_size=0)
    ep = gw.get_endpoint("dga")
    assert ep == {"name": "dga", "version": "1.0", "url": models[0].url, "endpoint:apply": "apply", "endpoint:score": "v2/score"}
    assert gw.apply(ep, None, {"host": "x.com"})["path"] == "/apply"
    assert gw.apply(ep, "score", {"host": "x.com", "n": 3, "flag": True}) == {
        "who": "a", "path": "/v2/score", "host": "x.com", "n": "3", "flag": "true"}
    assert gw.get_endpoint("unknown") is None


def test_result_cache_really_hits(models: list[Model]) -> None:
    gw = gateway([models[0].endpoint()], cache_size=100, cache_ttl=60)
    ep = gw.get_endpoint("dga")
    first = gw.apply(ep, None, {"host": "x.com"})
    for _ in range(5):
        assert gw.apply(ep, None, {"host": "x.com"}) == first
    gw.apply(ep, None, {"host": "other.com"})
    assert len(models[0].calls) == 2 and gw.stats["cache_hits"] == 5


def test_failed_instance_is_retried_elsewhere_and_ejected(models: list[Model]) -> None:
    bad, good = models
    bad.status = 503
    gw = gateway([bad.endpoint(), good.endpoint()], cache_size=0, eject_base=60)
    ep = {"name": "dga", "version": "1.0", "url": bad.url, "endpoint:apply": "apply"}
    assert gw.apply(ep, None, {"host": "x"})["who"] == "b"  # retried on the other instance
    assert len(bad.calls) == 1
    for _ in range(10):  # the failed one is ejected: get_endpoint no longer offers it
        assert gw.get_endpoint("dga")["url"] == good.url
    assert len(bad.calls) == 1


def test_unreachable_instance_and_all_down(models: list[Model]) -> None:
    dead = Endpoint("dga", "1.0", "dead", "http://127.0.0.1:1", {"apply": "apply"})
    gw = gateway([dead, models[0].endpoint()], cache_size=0, timeout=1)
    assert gw.apply(endpoint_of(dead), None, {"h": "1"})["who"] == "a"
    models[0].status = 500
    assert gw.apply(endpoint_of(models[0].endpoint()), None, {"h": "2"}) is None  # everything failed: null, no raise
    assert gw.stats["failures"] == 1


def test_client_error_is_not_retried(models: list[Model]) -> None:
    models[0].status = 400
    gw = gateway([models[0].endpoint(), models[1].endpoint()], cache_size=0)
    assert gw.apply(endpoint_of(models[0].endpoint()), None, {"bad": "arg"}) is None
    assert len(models[0].calls) == 1 and models[1].calls == []


def test_power_of_two_choices_prefers_fewer_in_flight(models: list[Model]) -> None:
    eps = [models[0].endpoint(), models[1].endpoint()]
    gw = gateway(eps, cache_size=0)
    gw._in_flight[models[0].url] = 5
    assert all(gw.get_endpoint("dga")["url"] == models[1].url for _ in range(20))
    gw._in_flight[models[0].url] = 0
    picks = {gw.get_endpoint("dga")["url"] for _ in range(50)}
    assert picks == {models[0].url, models[1].url}  # ties: both are used


def endpoint_of(e: Endpoint) -> dict:
    return {"name": e.name, "version": e.version, "url": e.url, "endpoint:apply": "apply"}


def test_per_url_state_is_kept_only_for_registered_urls(models: list[Model]) -> None:
    a, b = models
    dead = Endpoint("dga", "1.0", "dead", "http://127.0.0.1:1", {"apply": "apply"})
    discovery = FakeDiscovery([a.endpoint(), b.endpoint(), dead])
    gw = MaasGateway(discovery, GatewaySettings(cache_size=0, timeout=1), rng=random.Random(1))  # type: ignore[arg-type]
    for e in (a.endpoint(), b.endpoint(), dead):
        gw.apply(endpoint_of(e), None, {"h": "1"})
    assert gw.tracked_urls() == {a.url, b.url, dead.url}
    discovery.change([a.endpoint()])  # b and the dead one are deregistered
    gw.get_endpoint("dga")  # the next lookup prunes
    assert gw.tracked_urls() == {a.url}
    assert gw.http.origins() == [a.url]  # type: ignore[attr-defined]  # b's idle connection is closed
    assert gw.apply(endpoint_of(a.endpoint()), None, {"h": "2"})["who"] == "a"


def test_per_url_state_stays_bounded_while_instances_come_and_go(models: list[Model]) -> None:
    """Instances restarted on new ports, hundreds of times; also without any listener (pruned on a
    clock) and with calls to URLs that were never registered."""
    clock = [0.0]
    discovery = FakeDiscovery([])
    discovery.add_listener = None  # type: ignore[assignment,method-assign]  # a discovery without listeners
    gw = MaasGateway(discovery, GatewaySettings(cache_size=0, timeout=0.2, prune_interval=10),  # type: ignore[arg-type]
                     rng=random.Random(1), clock=lambda: clock[0])
    for i in range(300):
        gone = Endpoint("dga", "1.0", f"i{i}", f"http://127.0.0.1:{i + 2}", {"apply": "apply"})
        discovery.list = [gone, models[0].endpoint()]
        gw.apply(endpoint_of(gone), None, {"h": str(i)})  # refused: ejected, retried on the live one
        clock[0] += 1.0
        gw.get_endpoint("dga")
        assert len(gw.tracked_urls()) <= 12
    discovery.list = [models[0].endpoint()]
    clock[0] += 10.0
    gw.get_endpoint("dga")
    assert gw.tracked_urls() == {models[0].url}


def test_the_gateway_is_thread_safe(models: list[Model]) -> None:
    from concurrent.futures import ThreadPoolExecutor

    gw = gateway([models[0].endpoint(), models[1].endpoint()], cache_size=50)

    def call(i: int) -> tuple[str, str]:
        ep = gw.get_endpoint("dga")
        got = gw.apply(ep, None, {"host": f"h{i % 80}"})
        return got["host"], f"h{i % 80}"

    with ThreadPoolExecutor(8) as pool:
        pairs = list(pool.map(call, range(400)))
    assert all(got == wanted for got, wanted in pairs)
    assert gw.stats["calls"] == 400 and gw.stats["failures"] == 0
    assert all(n == 0 for n in gw._in_flight.values())
    assert len(models[0].calls) + len(models[1].calls) + gw.stats["cache_hits"] == 400
