"""Scale: how discovery and the reconcile pass grow with the number of models.

- 1,000 models × 3 registrations in a real ZooKeeper: the discovery client's initial sync time
  and memory, and the latency from one registration change to the client's cache;
- the controller's pass (desired state read from ZooKeeper + plan + executor, launcher faked)
  with 100, 1,000 and 10,000 desired models, and the pure plan() alone;
- failover: a new leader's term start (adopt, load pending requests, first pass) with no request
  history and with 10,000 terminal request statuses, side by side with reading every status
  (what a term start cost before the pending index).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench.common import Result, percentile
from maas.clock import SYSTEM_CLOCK
from maas.config import MaasConfig
from maas.controller.desired import DesiredModel
from maas.controller.plan import plan
from maas.controller.service import Controller
from maas.discovery import DiscoveryClient
from maas.instance import Instance, InstanceSpec, InstanceState
from maas.launcher import Launcher
from maas.local_zookeeper import ZooKeeperServer
from maas.registration import Endpoint
from maas.settings import ServiceSettings
from maas.zk import Layout, connect


class SteadyLauncher(Launcher):
    """A launcher whose instances always match what was asked: isolates the controller's cost."""

    def __init__(self, instances: list[Instance]) -> None:
        self._instances = instances

    def start(self, spec: InstanceSpec) -> None:
        self._instances.append(Instance(spec.instance_id, spec.name, spec.version, InstanceState.RUNNING, 0.0))

    def stop(self, instance_id: str) -> None:
        pass

    def instances(self) -> list[Instance]:
        return list(self._instances)

    def forget(self, instance_id: str) -> None:
        pass


def _bulk_create(client, items: list[tuple[str, bytes]], ephemeral: bool = False) -> None:  # type: ignore[no-untyped-def]
    for start in range(0, len(items), 500):
        pending = [client.create_async(p, d, ephemeral=ephemeral, makepath=True) for p, d in items[start:start + 500]]
        for p in pending:
            p.get(timeout=60)


def run(models: int = 1000, per_model: int = 3) -> list[Result]:
    results: list[Result] = []
    tmp = Path(tempfile.mkdtemp(prefix="maas-bench-scale-"))
    zk = ZooKeeperServer(data_dir=tmp / "zk")
    try:
        zk.start()
        layout = Layout.from_config(MaasConfig())
        writer = connect(zk.address)
        layout.ensure(writer)
        regs = []
        for m in range(models):
            for i in range(per_model):
                ep = Endpoint(f"model{m}", "1.0", f"i{i}", f"http://10.0.{m % 250}.{i}:{30000 + m}", container_id=f"i{i}")
                regs.append((layout.registration(ep.name, ep.instance_id), ep.to_json()))
        _bulk_create(writer, regs, ephemeral=True)

        # Memory is traced on a first sync; the time is measured on a second one, untraced.
        probe = connect(zk.address)
        tracemalloc.start()
        traced = DiscoveryClient(probe, layout.service_root)
        traced.wait_ready(timeout=300)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        traced.close()
        probe.stop()
        reader = connect(zk.address)
        t0 = time.perf_counter()
        discovery = DiscoveryClient(reader, layout.service_root)
        discovery.wait_ready(timeout=120)
        sync = time.perf_counter() - t0
        assert len(discovery.all()) == models * per_model
        results.append(Result("scale", f"discovery initial sync, {models}×{per_model} registrations", sync * 1000, "ms"))
        results.append(Result("scale", "discovery cache memory (traced peak)", peak / 2**20, "MiB"))

        lat = []
        for k in range(20):
            name = f"model{random.randrange(models)}"
            path = layout.registration(name, f"extra{k}")
            ep = Endpoint(name, "1.0", f"extra{k}", "http://10.9.9.9:1", container_id="x")
            t0 = time.perf_counter()
            writer.create(path, ep.to_json(), ephemeral=True)
            discovery.wait_for(lambda d: any(e.instance_id == f"extra{k}" for e in d.endpoints(name)), timeout=10,
                               what="the change")
            lat.append(time.perf_counter() - t0)
        results.append(Result("scale", "registration change → client cache p50", percentile(lat, 50) * 1000, "ms", "n=20"))
        results.append(Result("scale", "registration change → client cache p95", percentile(lat, 95) * 1000, "ms", "n=20"))
        discovery.close()
        reader.stop()

        for n in (100, 1000, 10000):
            chroot = f"/scale{n}"
            writer.ensure_path(chroot)
            client = connect(zk.address + chroot)
            layout.ensure(client)
            desired = {}
            items = []
            for m in range(n):
                model = DesiredModel(name=f"m{m}", version="1", instances=3, path=f"/models/m{m}", store_uri="file:///s")
                desired[model.key] = model
                items.append((layout.model(model.name, model.version), model.to_json()))
            _bulk_create(client, items)
            instances = [Instance(f"m{m}-{i}", f"m{m}", "1", InstanceState.RUNNING, 0.0) for m in range(n) for i in range(3)]
            settings = ServiceSettings(zk_quorum=zk.address + chroot, work_dir=tmp / "work")
            controller = Controller(client, MaasConfig(), SteadyLauncher(instances), settings, clock=SYSTEM_CLOCK)
            controller.prober.update = lambda _instances: None  # type: ignore[method-assign]
            controller.run_pass()  # first pass publishes every status
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                controller.run_pass()
                times.append(time.perf_counter() - t0)
            results.append(Result("scale", f"controller pass, {n} models (ZooKeeper read + plan)", min(times) * 1000, "ms"))
            t0 = time.perf_counter()
            for _ in range(5):
                actions = plan(desired, instances, {}, 0.0)
            assert actions == []
            results.append(Result("scale", f"plan() alone, {n} models × 3 instances", (time.perf_counter() - t0) / 5 * 1000, "ms"))
            client.stop()
        results.extend(_failover(writer, zk.address, tmp))
        writer.stop()
    finally:
        zk.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return results


class _IdleLauncher(SteadyLauncher):
    """Starts nothing: the pending requests stay pending across the measured terms."""

    def start(self, spec: InstanceSpec) -> None:
        pass


def _term_start(quorum: str, tmp: Path) -> float:
    """Seconds from a new leader's first step to the end of its first pass (median of 5)."""
    client = connect(quorum)
    try:
        settings = ServiceSettings(zk_quorum=quorum, work_dir=tmp / "work")
        times = []
        for _ in range(5):
            controller = Controller(client, MaasConfig(), _IdleLauncher([]), settings, clock=SYSTEM_CLOCK)
            controller.prober.update = lambda _instances: None  # type: ignore[method-assign]
            controller._next_prune = float("inf")  # pruning is not part of taking over
            t0 = time.perf_counter()
            controller.launcher.resync()
            controller._load_pending()
            controller.run_pass()
            times.append(time.perf_counter() - t0)
            assert len(controller._pending) == 10
        return sorted(times)[2]
    finally:
        client.stop()


def _failover(writer, address: str, tmp: Path) -> list[Result]:  # type: ignore[no-untyped-def]
    from maas.controller.ledger import RequestLedger
    from maas.request import RequestState, RequestStatus

    figures: dict[int, float] = {}
    for history in (0, 10_000):
        chroot = f"/failover{history}"
        writer.ensure_path(chroot)
        client = connect(address + chroot)
        layout = Layout.from_config(MaasConfig())
        layout.ensure(client)
        RequestLedger(client, layout).load_pending()  # a current state: the index exists
        items = [(layout.request(f"old{i}"), RequestStatus(requestId=f"old{i}", state=RequestState.DONE).to_json())
                 for i in range(history)]
        _bulk_create(client, items)
        # Ten requests still pending for one model, indexed as intake indexes them.
        model = DesiredModel(name="m", version="1", instances=1, path="/models/m", store_uri="file:///s")
        pending = [(layout.request(f"p{i}"), RequestStatus(requestId=f"p{i}", state=RequestState.ACCEPTED, name="m",
                                                            version="1", target=1).to_json()) for i in range(10)]
        _bulk_create(client, pending + [(layout.pending_request(f"p{i}"), b"") for i in range(10)]
                     + [(layout.model("m", "1"), model.to_json())])
        figures[history] = _term_start(address + chroot, tmp)
        if history:
            t0 = time.perf_counter()
            statuses = RequestLedger(client, layout)._read(client.get_children(layout.requests))
            full = time.perf_counter() - t0
            assert len(statuses) == history + 10
        client.stop()
    return [
        Result("scale", "failover: term start, no request history", figures[0] * 1000, "ms", "median of 5"),
        Result("scale", "failover: term start, 10,000 terminal statuses", figures[10_000] * 1000, "ms", "median of 5"),
        Result("scale", "failover: 10,000 statuses vs none", figures[10_000] / figures[0], "x"),
        Result("scale", "reference: reading all 10,010 statuses (pipelined)", full * 1000, "ms",
               "what a term start read before the index"),
    ]
