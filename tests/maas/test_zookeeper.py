"""Against a real ZooKeeper: the harness itself, request intake transactions, the discovery cache."""

from __future__ import annotations

import json
from typing import Callable

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.recipe.queue import Queue

from maas.config import MaasConfig
from maas.controller.desired import ModelKey, read_desired, read_desired_state
from maas.controller.intake import Intake
from maas.discovery import DiscoveryClient, version_key
from maas.errors import ConfigError, PayloadError
from maas.registration import Endpoint
from maas.request import RequestState, RequestStatus
from maas.retry import wait_until
from maas.testing import expire_session
from maas.zk import ConfigWatch, Layout, cluster_configured, ensure_config, publish_config, read_config

pytestmark = pytest.mark.zk

LAYOUT = Layout.from_config(MaasConfig())


def test_each_test_has_its_own_chroot(zk: KazooClient, zk_quorum: str) -> None:
    assert zk.get_children("/") in ([], ["zookeeper"])
    zk.create("/mine", b"1")
    assert "/maas-test-" in zk_quorum


def test_expire_session_drops_ephemerals_and_client_reconnects(zk_factory: Callable[..., KazooClient]) -> None:
    owner, watcher = zk_factory(), zk_factory()
    owner.create("/eph", b"x", ephemeral=True)
    states: list[KazooState] = []
    owner.add_listener(states.append)
    expire_session(owner)
    assert KazooState.LOST in states
    wait_until(lambda: watcher.exists("/eph") is None, timeout=10, what="the ephemeral node to vanish")
    wait_until(lambda: owner.connected, timeout=10, what="a new session")
    owner.create("/eph", b"again", ephemeral=True)


def test_config_znode_round_trip(zk: KazooClient) -> None:
    assert read_config(zk).service_root == "/maas/service"  # absent: defaults
    publish_config(zk, MaasConfig().with_overrides(store_uri="file:///data/store"))
    raw = json.loads(zk.get("/metron/maas/config")[0])
    assert raw == {"queue": "ZOOKEEPER", "queueConfig": {"zk_path": "/maas/queue"}, "serviceRoot": "/maas/service"}
    assert json.loads(zk.get("/metron/maas/config.ext")[0])["storeUri"] == "file:///data/store"
    assert read_config(zk).store_uri == "file:///data/store"


def test_ensure_config_creates_what_is_absent_and_refuses_a_disagreeing_flag(zk: KazooClient) -> None:
    cfg = ensure_config(zk, overrides={"store_uri": "file:///a"})
    assert cfg.store_uri == "file:///a"
    assert set(json.loads(zk.get("/metron/maas/config")[0])) == {"queue", "queueConfig", "serviceRoot"}
    assert ensure_config(zk, overrides={"store_uri": "file:///a"}).store_uri == "file:///a"  # agrees: fine
    assert ensure_config(zk).store_uri == "file:///a"  # no flag: the znode's
    with pytest.raises(ConfigError, match=r"storeUri: 'file:///a' → 'file:///b'.*--write-config"):
        ensure_config(zk, overrides={"store_uri": "file:///b"})
    assert read_config(zk).store_uri == "file:///a"  # nothing written
    assert ensure_config(zk, overrides={"store_uri": "file:///b"}, write=True).store_uri == "file:///b"
    assert read_config(zk).store_uri == "file:///b"


def test_ensure_config_moves_our_keys_out_of_an_old_style_config_znode(zk: KazooClient) -> None:
    zk.create("/metron/maas/config", json.dumps({
        "queue": "ZOOKEEPER", "queueConfig": {"zk_path": "/q"}, "serviceRoot": "/svc",
        "stateRoot": "/st", "storeUri": "file:///old", "launcher": "local", "maxPayloadMB": 10}).encode(), makepath=True)
    assert read_config(zk).store_uri == "file:///old"  # old znodes are still read
    with pytest.raises(ConfigError, match="file:///old"):  # its settings count: a different flag is refused
        ensure_config(zk, overrides={"store_uri": "file:///new"})
    cfg = ensure_config(zk, overrides={"store_uri": "file:///old"})
    assert (cfg.queue_path, cfg.service_root, cfg.state_root, cfg.store_uri, cfg.max_payload_mb) == (
        "/q", "/svc", "/st", "file:///old", 10)
    assert json.loads(zk.get("/metron/maas/config")[0]) == {
        "queue": "ZOOKEEPER", "queueConfig": {"zk_path": "/q"}, "serviceRoot": "/svc"}
    assert read_config(zk) == cfg


def test_a_cluster_is_configured_by_both_znodes_or_an_old_style_config_znode(zk: KazooClient) -> None:
    assert not cluster_configured(zk)  # nothing yet
    metron = {"queue": "ZOOKEEPER", "queueConfig": {"zk_path": "/maas/queue"}, "serviceRoot": "/maas/service"}
    zk.create("/metron/maas/config", json.dumps(metron).encode(), makepath=True)
    assert not cluster_configured(zk)  # Metron's keys alone name no store of ours
    zk.set("/metron/maas/config", json.dumps({**metron, "storeUri": "file:///old"}).encode())
    assert cluster_configured(zk)  # written by an earlier controller: still read as ours
    zk.set("/metron/maas/config", json.dumps(metron).encode())
    ensure_config(zk, overrides={"store_uri": "file:///new"})
    assert cluster_configured(zk)  # the split: config znode and its .ext
    zk.delete("/metron/maas/config")
    assert not cluster_configured(zk)  # an ext znode alone: the config znode Metron reads is missing


def test_config_watch_reports_changes_of_either_znode(zk: KazooClient, zk_factory: Callable[..., KazooClient]) -> None:
    ensure_config(zk, overrides={"store_uri": "file:///a"})
    seen: list[MaasConfig] = []
    ConfigWatch(zk_factory(), "/metron/maas/config", seen.append).start()
    zk.set("/metron/maas/config.ext", b'{"storeUri": "file:///b"}')
    wait_until(lambda: seen and seen[-1].store_uri == "file:///b", timeout=10, what="the ext change")
    zk.set("/metron/maas/config.ext", b'{"storeUri": "ftp://bad"}')  # invalid: logged, skipped
    zk.set("/metron/maas/config.ext", b'{"storeUri": "file:///c"}')
    zk.set("/metron/maas/config", b'{"serviceRoot": "/elsewhere"}')
    wait_until(lambda: seen[-1].service_root == "/elsewhere", timeout=10, what="the config change")
    assert all(c.store_uri != "ftp://bad" for c in seen)


def _intake(zk: KazooClient, bad_paths: set[str] = frozenset()) -> Intake:  # type: ignore[assignment]
    LAYOUT.ensure(zk)

    def check(store: str, path: str) -> None:
        if path in bad_paths:
            raise PayloadError("payload has no *.sh script at its top level")

    return Intake(zk, LAYOUT, "file:///store", check_payload=check)


def _put(zk: KazooClient, **req: object) -> None:
    Queue(zk, LAYOUT.queue).put(json.dumps(req).encode())


def test_intake_applies_each_request_once_in_order(zk: KazooClient) -> None:
    intake = _intake(zk)
    _put(zk, name="m", version="1", action="ADD", numInstances=2, path="/p", requestId="r1")
    _put(zk, name="m", version="1", action="ADD", numInstances=3, path="/p", requestId="r2")
    _put(zk, name="m", version="1", action="REMOVE", numInstances=1, requestId="r3")
    _put(zk, name="m", version="1", action="SCALE", numInstances=7, path="/p", requestId="r4")
    outcomes = []
    while (o := intake.apply_next()) is not None:
        outcomes.append(o)
    assert [o.status.target for o in outcomes] == [2, 5, 4, 7]
    assert zk.get_children(LAYOUT.queue) == []
    (model, _), = read_desired(zk, LAYOUT).values()
    assert model.instances == 7 and model.store_uri == "file:///store" and model.path == "/p"
    for rid in ("r1", "r2", "r3", "r4"):
        status = RequestStatus.from_json(zk.get(LAYOUT.request(rid))[0])
        assert status.state is RequestState.ACCEPTED


def test_intake_failures_get_terminal_status_and_change_nothing(zk: KazooClient) -> None:
    intake = _intake(zk, bad_paths={"/broken"})
    Queue(zk, LAYOUT.queue).put(b"{not json")
    _put(zk, name="m", version="1", action="REMOVE", numInstances=1, requestId="remove-nothing")
    _put(zk, name="m", version="1", action="ADD", numInstances=1, path="/broken", requestId="broken")
    _put(zk, name="m", version="1", action="ADD", numInstances=1, path="/ok", requestId="ok")
    _put(zk, name="m", version="1", action="ADD", numInstances=1, path="/ok", requestId="ok")  # duplicate id
    outcomes = []
    while (o := intake.apply_next()) is not None:
        outcomes.append(o.status)
    assert [s.state for s in outcomes] == [RequestState.FAILED] * 3 + [RequestState.ACCEPTED, RequestState.FAILED]
    assert "not valid JSON" in (outcomes[0].reason or "")
    assert "not deployed" in (outcomes[1].reason or "")
    assert "no *.sh" in (outcomes[2].reason or "")
    assert "duplicate" in (outcomes[4].reason or "")
    assert RequestStatus.from_json(zk.get(LAYOUT.request("ok"))[0]).state is RequestState.ACCEPTED
    assert read_desired(zk, LAYOUT)[ModelKey("m", "1")][0].instances == 1


def test_remove_to_zero_deletes_desired_state(zk: KazooClient) -> None:
    intake = _intake(zk)
    _put(zk, name="m", version="1", action="ADD", numInstances=1, path="/p")
    _put(zk, name="m", version="1", action="REMOVE", numInstances=5)
    while intake.apply_next() is not None:
        pass
    assert read_desired(zk, LAYOUT) == {}


def _register(zk: KazooClient, name: str, version: str, iid: str, port: int) -> None:
    ep = Endpoint(name, version, iid, f"http://127.0.0.1:{port}", container_id=iid)
    zk.create(LAYOUT.registration(name, iid), ep.to_json(), ephemeral=True, makepath=True)


def test_discovery_follows_registrations_and_orders_versions_naturally(zk_factory: Callable[..., KazooClient]) -> None:
    runner, reader = zk_factory(), zk_factory()
    discovery = DiscoveryClient(reader, LAYOUT.service_root)
    discovery.wait_ready()
    _register(runner, "dga", "9.0", "a", 1001)
    _register(runner, "dga", "10.0", "b", 1002)
    _register(runner, "dga", "10.0", "c", 1003)
    runner.create(f"{LAYOUT.service_root}/dga/garbage", b"not a registration", ephemeral=True)
    discovery.wait_for(lambda d: len(d.all()) == 3, timeout=10, what="3 endpoints")
    assert [e.instance_id for e in discovery.endpoints("dga")] == ["b", "c"]  # 10.0 > 9.0
    assert [e.instance_id for e in discovery.endpoints("dga", "9.0")] == ["a"]
    assert discovery.versions("dga") == ["9.0", "10.0"]
    runner.delete(LAYOUT.registration("dga", "b"))
    discovery.wait_for(lambda d: len(d.endpoints("dga")) == 1, timeout=10, what="b to go")
    expire_session(runner)  # every registration of that session goes
    discovery.wait_for(lambda d: d.all() == [], timeout=10, what="all endpoints to go")
    discovery.close()


def test_discovery_serves_from_cache_while_zookeeper_is_down(zk_server, zk_factory) -> None:  # type: ignore[no-untyped-def]
    runner, reader = zk_factory(), zk_factory()
    discovery = DiscoveryClient(reader, LAYOUT.service_root)
    _register(runner, "dga", "1", "a", 1001)
    discovery.wait_for(lambda d: len(d.all()) == 1, timeout=10, what="a")
    zk_server.stop()
    try:
        wait_until(lambda: not reader.connected, timeout=10, what="the client to notice")
        assert [e.instance_id for e in discovery.endpoints("dga")] == ["a"]
    finally:
        zk_server.start()
    wait_until(lambda: reader.connected, timeout=20, what="reconnection")
    discovery.close()


def test_version_key() -> None:
    assert sorted(["1.10", "1.9", "10.0", "9.0", "1.0-beta", "1.0"], key=version_key) == [
        "1.0", "1.0-beta", "1.9", "1.10", "9.0", "10.0"]


def test_any_exception_while_applying_fails_that_request_only(zk: KazooClient) -> None:
    LAYOUT.ensure(zk)

    def check(store: str, path: str) -> None:
        if path == "/explodes":
            raise ValueError("Port could not be cast to integer value")  # not a MaasError

    intake = Intake(zk, LAYOUT, "file:///store", check_payload=check)
    _put(zk, name="m", version="1", action="ADD", path="hdfs://nn:abc/x", requestId="bad-uri")
    _put(zk, name="m", version="1", action="ADD", path="/explodes", requestId="explodes")
    _put(zk, name="m", version="1", action="ADD", path="/ok", requestId="ok")
    outcomes = [o.status for o in iter(intake.apply_next, None)]
    assert [s.request_id for s in outcomes] == ["bad-uri", "explodes", "ok"]
    assert "hdfs://nn:abc/x" in (outcomes[0].reason or "") and "malformed" in (outcomes[0].reason or "")
    assert "internal error" in (outcomes[1].reason or "") and "ValueError" in (outcomes[1].reason or "")
    assert outcomes[2].state is RequestState.ACCEPTED
    assert read_desired(zk, LAYOUT)[ModelKey("m", "1")][0].path == "/ok"


def test_unreadable_desired_state_is_quarantined_and_the_queue_goes_on(zk: KazooClient) -> None:
    intake = _intake(zk)
    zk.create(LAYOUT.model("a", "1"), b"garbage", makepath=True)
    state = read_desired_state(zk, LAYOUT)
    assert state.models == {} and "unreadable" in state.unreadable[ModelKey("a", "1")].reason
    _put(zk, name="a", version="1", action="ADD", path="/p", requestId="add-a")
    _put(zk, name="b", version="1", action="ADD", path="/p", requestId="add-b")
    _put(zk, name="a", version="1", action="SCALE", numInstances=2, path="/p", requestId="repair-a")
    outcomes = [o.status for o in iter(intake.apply_next, None)]
    assert [s.state for s in outcomes] == [RequestState.FAILED, RequestState.ACCEPTED, RequestState.ACCEPTED]
    assert "unreadable" in (outcomes[0].reason or "") and "SCALE" in (outcomes[0].reason or "")
    assert {k: m.instances for k, (m, _) in read_desired(zk, LAYOUT).items()} == {
        ModelKey("a", "1"): 2, ModelKey("b", "1"): 1}


def test_queue_is_consumed_in_sequence_order_whatever_the_prefix(zk: KazooClient) -> None:
    intake = _intake(zk)
    zk.ensure_path(LAYOUT.queue)
    # Curator's SimpleDistributedQueue (Metron's maas_deploy.sh) and kazoo's Queue, interleaved.
    metron = b'{"name":"m","version":"1","numInstances":1,"memory":512,"action":"ADD","path":"/p"}'
    zk.create(f"{LAYOUT.queue}/qn-", metron, sequence=True)
    _put(zk, name="m", version="1", action="SCALE", numInstances=5, path="/p", requestId="scale")
    zk.create(f"{LAYOUT.queue}/qn-", metron, sequence=True)
    outcomes = [o for o in iter(intake.apply_next, None)]
    assert [o.queue_item.split("-")[0] for o in outcomes] == ["qn", "entry", "qn"]
    assert [o.status.target for o in outcomes] == [1, 5, 6]
    assert outcomes[0].status.request_id.startswith(outcomes[0].queue_item + ".")


def test_metron_request_ids_stay_unique_when_the_queue_is_recreated(zk: KazooClient) -> None:
    intake = _intake(zk)
    metron = b'{"name":"m","version":"1","numInstances":1,"memory":512,"action":"ADD","path":"/p"}'
    ids = []
    for _ in range(2):
        zk.ensure_path(LAYOUT.queue)
        zk.create(f"{LAYOUT.queue}/qn-", metron, sequence=True)  # qn-0000000000 both times
        (outcome,) = list(iter(intake.apply_next, None))
        assert outcome.status.state is RequestState.ACCEPTED, outcome.status.reason
        ids.append(outcome.status.request_id)
        zk.delete(LAYOUT.queue, recursive=True)
    assert ids[0] != ids[1]
    assert read_desired(zk, LAYOUT)[ModelKey("m", "1")][0].instances == 2


def test_intake_reads_only_the_target_model(zk: KazooClient, monkeypatch: pytest.MonkeyPatch) -> None:
    intake = _intake(zk)
    for i in range(20):
        zk.create(LAYOUT.model(f"other{i}", "1"), b"{}", makepath=True)
    read: list[str] = []
    for method in ("get", "get_children", "get_async", "get_children_async"):
        original = getattr(zk, method)
        monkeypatch.setattr(zk, method, lambda path, *a, _o=original, **k: (read.append(path), _o(path, *a, **k))[1])
    _put(zk, name="m", version="1", action="ADD", path="/p", requestId="r")
    assert intake.apply_next().status.state is RequestState.ACCEPTED  # type: ignore[union-attr]
    assert {p for p in read if p.startswith(LAYOUT.models)} == {LAYOUT.model("m", "1")}
