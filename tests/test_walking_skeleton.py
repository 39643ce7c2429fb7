"""End to end, as a user runs it: the DGA example payload (model_server + ONNX) deployed with
``maas_deploy`` on a real ZooKeeper, called from a Stellar expression through the discovery
client; an instance killed; the rest removed. Plus ``examples/demo.py`` (``make demo``) itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import httpx
import psutil
import pytest

import stellar_like
from maas.discovery import DiscoveryClient
from maas.retry import wait_until
from enrichment.gateway import GatewaySettings, MaasGateway
from tests.cluster import REPO, Cluster

pytestmark = [pytest.mark.zk, pytest.mark.e2e]

PAYLOAD = REPO / "examples" / "dga" / "payload"
EXPR = "MAP_GET('is_malicious', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), {'host': host}))"


@pytest.fixture(autouse=True)
def model_built() -> None:
    if not (PAYLOAD / "model.onnx").exists():
        pytest.fail("examples/dga/payload/model.onnx is missing: run `make model`")


def test_deploy_dga_call_from_stellar_kill_and_remove(cluster: Cluster) -> None:
    out = cluster.maas_deploy("-mo", "ADD", "-n", "dga", "-v", "1.0", "-ni", "2", "-m", "512",
                              "-hmp", "/models/dga/1.0", "-lmp", str(PAYLOAD), "--wait")
    assert "done" in out.stdout

    zk = cluster.client.client
    regs = cluster.registrations("dga")
    assert len(regs) == 2
    for instance_id, reg in regs.items():
        assert set(reg) == {"name", "id", "address", "port", "sslPort", "payload", "registrationTimeUTC", "serviceType", "uriSpec"}
        assert reg["payload"]["@class"] == "org.apache.metron.maas.config.ModelEndpoint"
        assert reg["payload"]["endpoint"]["functions"] == {"apply": "apply"}

    discovery = DiscoveryClient(zk, "/maas/service")
    gateway = MaasGateway(discovery, GatewaySettings(cache_size=0))
    ctx = stellar_like.Context(gateway=gateway)
    try:
        discovery.wait_for(lambda d: len(d.endpoints("dga")) == 2, timeout=10, what="2 dga endpoints")
        # The model's own answer, straight over HTTP, is what the expression returns.
        url = next(iter(regs.values()))["payload"]["endpoint"]["url"]
        for host in ("www.google.com", "xjwqkzvbtpqmdlr.com"):
            direct = httpx.get(f"{url}/apply", params={"host": host}).json()["is_malicious"]
            assert stellar_like.evaluate(EXPR, {"host": host}, ctx) == direct
        assert stellar_like.evaluate(EXPR, {"host": "www.google.com"}, ctx) == "legit"
        assert stellar_like.evaluate(EXPR, {"host": "xjwqkzvbtpqmdlr.com"}, ctx) == "malicious"

        # SIGKILL one instance's service: its registration goes.
        victim_id, victim = next(iter(regs.items()))
        os.kill(cluster.service_pid(victim["port"]), signal.SIGKILL)
        discovery.wait_for(lambda d: victim_id not in {e.instance_id for e in d.endpoints("dga")}, timeout=10,
                           what="the killed instance's registration to go")
        # The stream keeps getting answers meanwhile.
        assert stellar_like.evaluate(EXPR, {"host": "www.google.com"}, ctx) == "legit"

        cluster.maas_deploy("-mo", "REMOVE", "-n", "dga", "-v", "1.0", "-ni", "2", "--wait")
        assert zk.get_children("/maas/service/dga") == []
        wait_until(lambda: not cluster.runner_processes(), timeout=15, what="no process left")
        assert stellar_like.evaluate(EXPR, {"host": "www.google.com"}, ctx) is None
    finally:
        gateway.close()
        discovery.close()


@pytest.mark.parametrize("flags", [[], ["--open"]], ids=["with-credentials", "open"])
def test_make_demo_script_runs_and_leaves_nothing_behind(flags: list[str]) -> None:
    before = {p.pid for p in psutil.process_iter()}
    result = subprocess.run([sys.executable, str(REPO / "examples" / "demo.py"), *flags], capture_output=True,
                            text=True, timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "'legit'" in result.stdout and "'malicious'" in result.stdout
    assert "Everything stopped." in result.stdout
    # The demo protects its ZooKeeper itself; without credentials the controller warns, once.
    assert result.stdout.count("no ZooKeeper credentials configured") == (1 if flags else 0)
    assert ("ACLs set on" in result.stdout) == (not flags)
    # Everything the demo starts (ZooKeeper, controller, runners, services) lives in its run directory.
    leftovers = [p.info for p in psutil.process_iter(["cmdline", "cwd"]) if p.pid not in before
                 and any("maas-demo-" in part for part in (p.info["cmdline"] or []) + [p.info["cwd"] or ""])]
    assert leftovers == []
