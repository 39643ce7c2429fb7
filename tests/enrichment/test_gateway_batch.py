"""``MaasGateway.apply_batch`` against real HTTP model services: one POST for many rows, the
result cache, retry of a failed batch on another instance, and per-row fallback."""

from __future__ import annotations

import random

from enrichment.gateway import GatewaySettings, MaasGateway
from tests.enrichment.conftest import ModelService, StaticDiscovery, score


def gateway(services: list[ModelService], **settings: object) -> MaasGateway:
    discovery = StaticDiscovery([s.endpoint() for s in services])
    return MaasGateway(discovery, GatewaySettings(**settings), rng=random.Random(1))  # type: ignore[arg-type]


def endpoint(service: ModelService) -> dict:
    return {"name": "dga", "version": "1.0", "url": service.url, "endpoint:apply": "apply"}


def rows(*hosts: str) -> list[dict]:
    return [{"host": h} for h in hosts]


def test_one_post_answers_every_row_in_order(services: list[ModelService]) -> None:
    a = services[0]
    gw = gateway([a], cache_size=0)
    got = gw.apply_batch(endpoint(a), None, rows("x1", "g2", "x3"))
    assert got == [{**score({"host": h}), "who": "a"} for h in ("x1", "g2", "x3")]
    assert a.requests == [("POST", rows("x1", "g2", "x3"))]
    assert gw.stats["batches"] == 1 and gw.stats["batch_rows"] == 3 and gw.stats["calls"] == 3


def test_batch_values_keep_their_json_types(services: list[ModelService]) -> None:
    a = services[0]
    gw = gateway([a], cache_size=0)
    got = gw.apply_batch(endpoint(a), None, [{"host": "h", "n": 3, "flag": True, "none": None}, {"host": "i"}])
    assert a.requests[0][1][0] == {"host": "h", "n": 3, "flag": True, "none": None}
    assert got[0]["echo"] == {"host": "h", "n": 3, "flag": True, "none": None}


def test_a_batch_of_one_is_the_plain_get(services: list[ModelService]) -> None:
    a = services[0]
    gw = gateway([a], cache_size=0)
    assert gw.apply_batch(endpoint(a), None, rows("x")) == [gw.apply(endpoint(a), None, {"host": "x"})]
    assert [method for method, _ in a.requests] == ["GET", "GET"]


def test_cache_and_duplicate_rows(services: list[ModelService]) -> None:
    a = services[0]
    gw = gateway([a], cache_size=100, cache_ttl=60)
    single = gw.apply(endpoint(a), None, {"host": "cached"})  # a GET fills the cache for batches too
    got = gw.apply_batch(endpoint(a), None, rows("cached", "new", "new", "other"))
    assert got[0] == single and got[1] == got[2]
    assert a.requests[-1] == ("POST", rows("new", "other"))  # each distinct, uncached row once
    again = gw.apply_batch(endpoint(a), None, rows("new", "other", "cached"))
    assert again == [got[1], got[3], single] and len(a.requests) == 2  # all from the cache
    assert gw.stats["cache_hits"] == 1 + 3


def test_failed_batch_is_retried_on_another_instance(services: list[ModelService]) -> None:
    bad, good = services
    bad.status = 503
    gw = gateway([bad, good], cache_size=0, eject_base=60)
    got = gw.apply_batch(endpoint(bad), None, rows("x1", "x2", "x3"))
    assert [r["who"] for r in got] == ["b", "b", "b"]
    assert len(bad.requests) == 1 and good.requests == [("POST", rows("x1", "x2", "x3"))]
    assert gw.stats["retries"] == 1
    # The failed instance is ejected: the next batch goes straight to the good one.
    gw.apply_batch(gw.get_endpoint("dga"), None, rows("y1", "y2"))
    assert len(bad.requests) == 1


def test_unreachable_instance_then_all_unreachable(services: list[ModelService]) -> None:
    a = services[0]
    dead = {"name": "dga", "version": "1.0", "url": "http://127.0.0.1:1", "endpoint:apply": "apply"}
    gw = MaasGateway(StaticDiscovery([a.endpoint()]), GatewaySettings(cache_size=0, timeout=1))  # type: ignore[arg-type]
    assert [r["who"] for r in gw.apply_batch(dead, None, rows("1", "2"))] == ["a", "a"]
    a.close()
    got = gw.apply_batch(endpoint(a), None, rows("3", "4", "5"))
    assert got == [None, None, None]  # no instance reachable: nulls, no exception, no per-row storm
    assert gw.stats["failures"] == 3


def test_a_refused_row_costs_only_that_row(services: list[ModelService]) -> None:
    a = services[0]
    a.refuse = {"bad"}
    gw = gateway([a], cache_size=0)
    hosts = [f"h{i}" for i in range(8)]
    hosts[5] = "bad"
    got = gw.apply_batch(endpoint(a), None, rows(*hosts))
    assert [r is None for r in got] == [h == "bad" for h in hosts]
    assert got[0] == {**score({"host": "h0"}), "who": "a"}
    # Halving: 8 → 4+4 → (2+2) → (1+1); the good halves go as batches, the lone rows as GETs.
    methods = [(m, len(r)) for m, r in a.requests]
    assert methods[0] == ("POST", 8) and ("GET", 1) in methods
    assert len(a.requests) <= 2 * 3 + 1


def test_answer_of_the_wrong_shape_falls_back(services: list[ModelService]) -> None:
    a = services[0]
    a.garble = True
    gw = gateway([a], cache_size=0)
    got = gw.apply_batch(endpoint(a), None, rows("p", "q", "r", "s"))
    assert got == [{**score({"host": h}), "who": "a"} for h in "pqrs"]
    # Halved down to single rows, which go as plain GETs.
    assert sorted(r[0]["host"] for m, r in a.requests if m == "GET") == ["p", "q", "r", "s"]


def test_chunks_of_batch_max_rows(services: list[ModelService]) -> None:
    a = services[0]
    gw = gateway([a], cache_size=0, batch_max_rows=4)
    got = gw.apply_batch(endpoint(a), None, rows(*[f"h{i}" for i in range(10)]))
    assert [r["echo"]["host"] for r in got] == [f"h{i}" for i in range(10)]
    assert [len(r) for _, r in a.requests] == [4, 4, 2]


def test_named_function_path_is_used(services: list[ModelService]) -> None:
    a = services[0]
    gw = gateway([a], cache_size=0)
    ep = {**endpoint(a), "endpoint:score": "v2/score"}
    seen: list[str] = []
    original = gw.http.request

    def spy(method: str, url: str, path: str, **kwargs: object):  # type: ignore[no-untyped-def]
        assert method == "POST"
        seen.append(f"{url}/{path}")
        return original(method, url, path, **kwargs)

    gw.http.request = spy  # type: ignore[method-assign]
    gw.apply_batch(ep, "score", rows("1", "2"))
    assert seen == [f"{a.url}/v2/score"]
