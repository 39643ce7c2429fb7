"""Parsing and formatting of what crosses process boundaries: config znode, requests,
registrations, endpoint.dat, store paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from maas.config import MaasConfig
from maas.errors import ConfigError, PayloadError, RequestError, StoreError
from maas.payload import EndpointInfo, find_script, parse_endpoint
from maas.registration import Endpoint
from maas.request import Action, parse_request
from maas.retry import Backoff, retry
from maas.clock import FakeClock
from maas.store import normalize_path, split_uri


def test_config_defaults_are_metrons_and_unknown_keys_survive() -> None:
    cfg = MaasConfig.from_json(b'{"extraKey": 1}')
    raw = json.loads(cfg.to_json())
    assert raw["queue"] == "ZOOKEEPER" and raw["queueConfig"] == {"zk_path": "/maas/queue"}
    assert raw["serviceRoot"] == "/maas/service" and raw["stateRoot"] == "/maas/state"
    assert raw["extraKey"] == 1


def test_config_splits_into_metrons_keys_and_ours() -> None:
    cfg = MaasConfig.from_json(b'{"storeUri": "file:///s", "extraKey": 1}')
    main, ext = (json.loads(d) for d in cfg.znode_payloads())
    # Exactly what Metron's strict (Jackson) MaaSConfig reader accepts.
    assert main == {"queue": "ZOOKEEPER", "queueConfig": {"zk_path": "/maas/queue"}, "serviceRoot": "/maas/service"}
    assert ext == {"stateRoot": "/maas/state", "storeUri": "file:///s", "allowedStores": [], "launcher": "local",
                   "maxPayloadMB": 4096, "extraKey": 1}
    assert MaasConfig.from_znodes(*cfg.znode_payloads()) == cfg


def test_config_reads_an_old_style_znode_and_the_ext_znode_wins() -> None:
    old = b'{"queue":"ZOOKEEPER","serviceRoot":"/svc","stateRoot":"/old","storeUri":"file:///old"}'
    assert MaasConfig.from_znodes(old, None).state_root == "/old"
    merged = MaasConfig.from_znodes(old, b'{"storeUri": "file:///new"}')
    assert (merged.service_root, merged.state_root, merged.store_uri) == ("/svc", "/old", "file:///new")
    assert not MaasConfig.is_metron_only(old) and MaasConfig.is_metron_only(merged.znode_payloads()[0])


def test_config_ext_znode_may_not_hold_metrons_keys() -> None:
    with pytest.raises(ConfigError, match="serviceRoot belong in the config znode"):
        MaasConfig.from_znodes(None, b'{"serviceRoot": "/x"}')


@pytest.mark.parametrize("data, needle", [
    (b"{", "not valid JSON"),
    (b"[]", "expected a JSON object"),
    (b'{"serviceRoot": "relative"}', "serviceRoot"),
    (b'{"storeUri": "ftp://x/y"}', "unsupported scheme"),
])
def test_config_errors_name_the_problem(data: bytes, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        MaasConfig.from_json(data, source="config znode /c")


def test_metron_request_parses() -> None:
    req = parse_request(b'{"name":"dga","version":"1.0","numInstances":2,"memory":512,"action":"ADD","path":"/m"}')
    assert (req.name, req.version, req.num_instances, req.action, req.path) == ("dga", "1.0", 2, Action.ADD, "/m")


@pytest.mark.parametrize("data, needle", [
    (b"\xff", "not valid JSON"),
    (b"[1]", "JSON object"),
    (b'{"name":"dga","version":"1","action":"EXPLODE","path":"/m"}', "action"),
    (b'{"name":"../etc","version":"1","action":"ADD","path":"/m"}', "name"),
    (b'{"name":"dga","version":"1","action":"ADD"}', "path"),
    (b'{"name":"dga","version":"1","action":"ADD","path":"/m","numInstances":-1}', "numInstances"),
    (b'{"name":"dga","version":"1","action":"ADD","path":"/m","bogus":1}', "bogus"),
])
def test_malformed_requests_name_the_field(data: bytes, needle: str) -> None:
    with pytest.raises(RequestError, match=needle):
        parse_request(data)


def test_registration_round_trip_is_curator_service_instance() -> None:
    ep = Endpoint("dga", "1.0", "id-1", "http://10.0.0.5:31000", {"apply": "apply"}, "id-1", 1700000000000)
    raw = ep.to_service_instance()
    assert list(raw) == ["name", "id", "address", "port", "sslPort", "payload", "registrationTimeUTC", "serviceType", "uriSpec"]
    assert (raw["address"], raw["port"]) == ("10.0.0.5", 31000)
    assert Endpoint.from_json(ep.to_json()) == ep
    with pytest.raises(RequestError):
        Endpoint.from_json(b'{"name": "x"}')


def test_endpoint_dat_parsing_and_advertised_rewrite() -> None:
    info = parse_endpoint('{"url": "http://0.0.0.0:8080/"}')
    assert info == EndpointInfo("http://0.0.0.0:8080", {"apply": "apply"})
    assert info.advertised("10.1.2.3").url == "http://10.1.2.3:8080"
    assert parse_endpoint('{"url": "http://model.example:1"}').advertised("h").url == "http://model.example:1"
    for bad in ["{", '{"url": 5}', '{"url": "ftp://x"}', '{"url": "http://x", "functions": [1]}']:
        with pytest.raises(PayloadError):
            parse_endpoint(bad)


def test_script_discovery() -> None:
    assert find_script(["rest.sh", "model.onnx", "sub/other.sh"]) == "rest.sh"
    with pytest.raises(PayloadError, match="no \\*.sh"):
        find_script(["model.onnx"])
    with pytest.raises(PayloadError, match="exactly one"):
        find_script(["a.sh", "b.sh"])


def test_store_paths_refuse_escape(tmp_path: Path) -> None:
    assert normalize_path("/models//dga/./1.0") == "/models/dga/1.0"
    for bad in ["relative", "/models/../../etc", ""]:
        with pytest.raises(StoreError):
            normalize_path(bad)
    assert split_uri("/m/x", "file:///s") == ("file:///s", "/m/x")


def test_retry_backoff_deadline_with_fake_clock() -> None:
    clock = FakeClock(0)
    calls = []

    def flaky() -> str:
        calls.append(clock.now)
        if len(calls) < 4:
            raise OSError("down")
        return "up"

    assert retry(flaky, retry_on=(OSError,), backoff=Backoff(initial=1, jitter=0), clock=clock) == "up"
    assert clock.sleeps == [1, 2, 4]
    clock2 = FakeClock(0)
    with pytest.raises(OSError):
        retry(lambda: (_ for _ in ()).throw(OSError("x")), retry_on=(OSError,),
              backoff=Backoff(initial=1, jitter=0), deadline=5, clock=clock2)
    assert clock2.now <= 5


def test_maas_service_reads_zk_root_from_maas_zk_root(monkeypatch: pytest.MonkeyPatch) -> None:
    from maas.cli import main

    monkeypatch.setenv("MAAS_ZK_ROOT", "/other/config")
    ctx = main.make_context("maas_service", ["-zq", "127.0.0.1:1"])
    assert ctx.params["config_path"] == "/other/config"


@pytest.mark.parametrize("advertised, bind", [
    ("127.0.0.1", "127.0.0.1"), ("127.0.0.2", "127.0.0.2"), ("localhost", "127.0.0.1"), ("::1", "::1"),
    ("10.1.2.3", "0.0.0.0"), ("node7.example", "0.0.0.0"), ("fd00::5", "::"),
])
def test_services_listen_where_the_advertised_address_reaches_them(advertised: str, bind: str) -> None:
    from maas.runner import bind_host_for

    assert bind_host_for(advertised) == bind
