"""The pipeline against a real MaaS cluster: real ZooKeeper, a real controller, real model services
(the echo payload; the DGA example's ONNX model through ``maas_enrich`` when it is built).

Version resolution, failover when an instance dies mid-stream, a ZooKeeper restart mid-stream,
and the documented DGA example run as a user runs it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from maas.local_zookeeper import ZooKeeperServer
from maas.retry import wait_until
from enrichment import EnrichmentPipeline, parse_config
from enrichment.service import EnrichSettings, ModelConnection, connect_models, run
from enrichment.gateway import GatewaySettings
from tests.cluster import PAYLOADS, REPO, Cluster

pytestmark = [pytest.mark.zk, pytest.mark.e2e]

DGA = REPO / "examples" / "dga"
ECHO = {"enrichments": {
    "answer": "MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('echo'), {'host': host})",
    "version": "MAP_GET('version', answer)",
    "instance": "MAP_GET('instance', answer)",
    "pinned": "MAP_GET('version', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('echo', '9'), {'host': host}))",
}}


@pytest.fixture
def maas(zk_quorum: str, tmp_path: Path) -> Iterator[Cluster]:
    cluster = Cluster(zk_quorum, tmp_path / "cluster")
    cluster.start_controller()
    try:
        assert cluster.client is not None  # the config znode is published
        yield cluster
    finally:
        cluster.close()
        print(cluster.controller_log()[-4000:])


def deploy(cluster: Cluster, payload: Path, name: str, version: str, instances: int) -> None:
    client = cluster.client
    client.upload(payload, f"/models/{name}/{version}")
    client.wait(client.submit("ADD", name, version, num_instances=instances, path=f"/models/{name}/{version}"),
                timeout=60)


@pytest.fixture
def models(maas: Cluster, zk_quorum: str) -> Iterator[Callable[..., ModelConnection]]:
    """Connects the pipeline's side (discovery + gateway) to the cluster; closed afterwards."""
    made: list[ModelConnection] = []

    def make(**settings: Any) -> ModelConnection:
        connection = connect_models(zk_quorum, settings=GatewaySettings(**settings))
        made.append(connection)
        return connection

    yield make
    for connection in made:
        connection.close()


def service_pid(port: int) -> int:
    return next(c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port and c.status == "LISTEN")


def events(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"host": f"host-{i}.example.com", "i": i} for i in range(start, start + n)]


def test_newest_version_by_natural_order_and_explicit_version(maas: Cluster, models: Callable[..., ModelConnection]) -> None:
    deploy(maas, PAYLOADS / "echo", "echo", "9", 1)
    deploy(maas, PAYLOADS / "echo", "echo", "10", 1)
    connection = models(cache_size=0)
    connection.discovery.wait_for(lambda d: d.versions("echo") == ["9", "10"], timeout=10, what="both versions")
    config = parse_config(ECHO)
    batch = events(40)
    batched = EnrichmentPipeline(config, connection.gateway).enrich(batch)
    assert [e["version"] for e in batched] == ["10"] * 40  # "10" beats "9": natural order, not text
    assert [e["pinned"] for e in batched] == ["9"] * 40
    assert batched[7]["answer"] == {"host": "host-7.example.com", "instance": batched[7]["instance"], "version": "10"}
    # One instance per version: the unbatched pipeline gives the very same events.
    stats = dict(connection.gateway.stats)
    direct = EnrichmentPipeline(config, connection.gateway, batch_calls=False).enrich(batch)
    assert direct == batched
    assert stats["batches"] == 2  # one batched request per (model, version) for 40 events
    assert connection.gateway.stats["calls"] - stats["calls"] == 80  # unbatched: one GET per call


def test_instance_killed_mid_stream_loses_no_enrichment(maas: Cluster, models: Callable[..., ModelConnection]) -> None:
    deploy(maas, PAYLOADS / "echo", "echo", "1.0", 2)
    connection = models(cache_size=0, timeout=2, eject_base=30)
    connection.discovery.wait_for(lambda d: len(d.endpoints("echo")) == 2, timeout=10, what="2 instances")
    instances = {e.instance_id: e for e in connection.discovery.endpoints("echo")}
    config = parse_config({"enrichments": {"instance": "MAP_GET('instance', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('echo'), {'host': host}))"}})
    pipeline = EnrichmentPipeline(config, connection.gateway)

    got: list[dict[str, Any]] = []
    victim = next(iter(instances))
    for i in range(30):  # a stream of batches of 20 distinct events, 20 ms apart
        if i == 10:
            # The victim's service dies; its runner is frozen first so that the registration
            # lingers (as with a hung node, until its ZooKeeper session expires): discovery keeps
            # offering the dead instance and batches sent to it must be retried on the other.
            service = psutil.Process(service_pid(instances[victim].port))
            runner = service.parent()
            assert runner is not None and "maas.runner" in " ".join(runner.cmdline())
            runner.suspend()
            service.kill()
        got += pipeline.enrich(events(20, 20 * i))
        time.sleep(0.02)
    assert victim in {e.instance_id for e in connection.discovery.endpoints("echo")}  # still registered
    assert len(got) == 600
    assert [e for e in got if e["instance"] is None] == []  # every event got its answer
    assert {e["instance"] for e in got[:200]} == set(instances)  # both served before the kill
    assert {e["instance"] for e in got[200:]} == set(instances) - {victim}  # the survivor after it
    stats = connection.gateway.stats
    assert stats["retries"] >= 1 and stats["failures"] == 0
    runner.kill()


def test_zookeeper_restart_mid_stream(maas: Cluster, models: Callable[..., ModelConnection],
                                      zk_server: ZooKeeperServer, tmp_path: Path, zk_quorum: str) -> None:
    deploy(maas, PAYLOADS / "echo", "echo", "1.0", 1)
    models()  # waits until the cluster is visible
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    out = tmp_path / "out.jsonl"
    config = tmp_path / "enrichment.json"
    config.write_text(json.dumps({"enrichments": {"version": "MAP_GET('version', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('echo'), {'host': host}))"}}))
    settings = EnrichSettings(config=config, zk_quorum=zk_quorum, inputs=(str(inbox),), follow=True, output=str(out),
                              errors=str(tmp_path / "errors.jsonl"), batch_size=50, linger_ms=20, poll_interval=0.05,
                              gateway=GatewaySettings(cache_size=0))
    stop = threading.Event()
    failure: list[BaseException] = []

    def stream() -> None:
        try:
            run(settings, stop=stop)
        except BaseException as exc:  # pragma: no cover - reported below
            failure.append(exc)

    thread = threading.Thread(target=stream, daemon=True)
    thread.start()

    def written() -> list[dict[str, Any]]:
        return [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []

    def feed(name: str, start: int) -> None:
        (inbox / name).write_text("".join(json.dumps(e) + "\n" for e in events(50, start)))

    try:
        feed("1.jsonl", 0)
        wait_until(lambda: len(written()) == 50, timeout=20, what="the first events")
        zk_server.stop()
        try:
            feed("2.jsonl", 50)  # ZooKeeper is down: endpoints come from the discovery cache
            wait_until(lambda: len(written()) == 100, timeout=20, what="events while ZooKeeper is down")
        finally:
            zk_server.start()
        feed("3.jsonl", 100)
        wait_until(lambda: len(written()) == 150, timeout=20, what="events after ZooKeeper is back")
    finally:
        stop.set()
        thread.join(15)
    assert not failure and not thread.is_alive()
    assert [e["version"] for e in written()] == ["1.0"] * 150
    assert not (tmp_path / "errors.jsonl").exists() or (tmp_path / "errors.jsonl").read_text() == ""


@pytest.mark.skipif(not (DGA / "payload" / "model.onnx").exists(), reason="examples/dga/payload/model.onnx not built")
def test_dga_example_as_documented(maas: Cluster, models: Callable[..., ModelConnection], tmp_path: Path,
                                   zk_quorum: str) -> None:
    deploy(maas, DGA / "payload", "dga", "1.0", 1)
    models().discovery.wait_for(lambda d: bool(d.endpoints("dga")), timeout=10, what="the dga model")
    runs = {}
    for batch_size in ("100", "1"):
        out, err = tmp_path / f"out-{batch_size}.jsonl", tmp_path / f"err-{batch_size}.jsonl"
        result = subprocess.run(
            [sys.executable, "-m", "enrichment", "--config", str(DGA / "enrichment.json"), "-zq", zk_quorum,
             "--input", str(DGA / "events.jsonl"), "--output", str(out), "--errors", str(err), "--batch-size", batch_size],
            capture_output=True, text=True, cwd=REPO, timeout=60)
        assert result.returncode == 0, result.stderr
        runs[batch_size] = ([json.loads(line) for line in out.read_text().splitlines()],
                            [json.loads(line) for line in err.read_text().splitlines()])
    enriched, errors = runs["100"]
    assert len(enriched) == 34 and len(errors) == 1
    assert errors[0]["error_type"] == "parser_error" and errors[0]["source"].endswith("events.jsonl:18")
    for event in enriched:
        assert event["full_hostname"] in event["url"]
        assert event["is_malicious"] in ("legit", "malicious")
        assert event.get("is_alert") is (True if event["is_malicious"] == "malicious" else None)
    alerts = {e["domain_without_subdomains"] for e in enriched if e.get("is_alert")}
    assert len(alerts) == 12 and "google.com" not in alerts and "xjwqkzvbtpqmdlr.com" in alerts
    # Unbatched (--batch-size 1) gives the same labels; ONNX float32 scores may differ in the last digits.
    unbatched, _ = runs["1"]
    assert [e["is_malicious"] for e in unbatched] == [e["is_malicious"] for e in enriched]
    for a, b in zip(enriched, unbatched):
        assert {k: v for k, v in a.items() if k != "dga_probability"} == {k: v for k, v in b.items() if k != "dga_probability"}
        assert b["dga_probability"] == pytest.approx(a["dga_probability"], rel=1e-5)


@pytest.mark.parametrize("batch_size", ["100", "1"])
def test_a_model_with_no_endpoint_is_warned_once_and_counted(maas: Cluster, tmp_path: Path, zk_quorum: str,
                                                             batch_size: str) -> None:
    """The example enrichment with the dga model not deployed: every field computed from it is
    null, which is worth one warning per model name, and a count in the closing summary."""
    out, err = tmp_path / "out.jsonl", tmp_path / "err.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "enrichment", "--config", str(DGA / "enrichment.json"), "-zq", zk_quorum,
         "--input", str(DGA / "events.jsonl"), "--output", str(out), "--errors", str(err), "--batch-size", batch_size],
        capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    enriched = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(enriched) == 34 and all(e.get("is_malicious") is None for e in enriched)
    assert result.stderr.count("no instance of model 'dga' is registered") == 1, result.stderr
    summary = re.search(r"models with no endpoint \(lookups\): dga \((\d+)\)", result.stderr)
    assert summary is not None, result.stderr
    assert int(summary.group(1)) >= 1
