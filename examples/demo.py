"""`make demo`: the whole system on one machine, start to finish.

Starts a local ZooKeeper (Debian's package) on 127.0.0.1, starts the controller
(``maas_service``), uploads and deploys the DGA example with ``maas_deploy``, waits for its
endpoint, evaluates a Stellar expression that calls the model for a few hosts, prints the
results, then removes the model and stops everything it started.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import stellar_like  # noqa: E402
from maas.discovery import DiscoveryClient  # noqa: E402
from maas.local_zookeeper import ZooKeeperServer  # noqa: E402
from maas.retry import wait_until  # noqa: E402
from maas.zk import connect, read_config  # noqa: E402
from enrichment.gateway import MaasGateway  # noqa: E402

BIN = Path(sys.executable).parent
EXPRESSION = "MAP_GET('is_malicious', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), {'host': host}))"
HOSTS = ["www.google.com", "wikipedia.org", "github.com", "xjwqkzvbtpqmd.com", "a8f3c9e1b7d24f6e.net", "qwzxkvjplmtrn.info"]


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def run(*args: str) -> str:
    print("$ " + " ".join(Path(args[0]).name if i == 0 else a for i, a in enumerate(args)), flush=True)
    result = subprocess.run(args, capture_output=True, text=True, timeout=180)
    print(result.stdout, end="")
    if result.returncode != 0:
        print(result.stderr, end="", file=sys.stderr)
        raise SystemExit(f"command failed with exit code {result.returncode}")
    return result.stdout


def main() -> int:
    run_dir = Path(tempfile.mkdtemp(prefix="maas-demo-"))
    zk = ZooKeeperServer(data_dir=run_dir / "zookeeper")
    controller: subprocess.Popen[bytes] | None = None
    deployed = False
    try:
        step("Starting ZooKeeper on 127.0.0.1")
        zk.start()
        quorum = zk.address
        print(f"ZooKeeper serving at {quorum}")

        step("Starting the controller (maas_service)")
        log = open(run_dir / "maas_service.log", "wb")
        controller = subprocess.Popen(
            [str(BIN / "maas_service"), "-zq", quorum, "--store-uri", f"file://{run_dir / 'store'}",
             "--work-dir", str(run_dir / "work"), "--reconcile-interval", "0.5"],
            stdout=log, stderr=subprocess.STDOUT,
        )
        client = connect(quorum)
        store_uri = f"file://{run_dir / 'store'}"
        wait_until(lambda: read_config(client).store_uri == store_uri, timeout=30,
                   what="the controller to publish its configuration")

        step("Deploying the DGA model (maas_deploy -mo ADD)")
        run(str(BIN / "maas_deploy"), "-zq", quorum, "-mo", "ADD", "-n", "dga", "-v", "1.0", "-ni", "1", "-m", "512",
            "-hmp", "/models/dga/1.0", "-lmp", str(HERE / "dga" / "payload"), "--wait")
        deployed = True
        run(str(BIN / "maas_deploy"), "-zq", quorum, "-mo", "LIST")

        step("Evaluating a Stellar expression against the model")
        discovery = DiscoveryClient(client, read_config(client).service_root)
        discovery.wait_for(lambda d: bool(d.endpoints("dga")), timeout=30, what="the dga endpoint")
        gateway = MaasGateway(discovery)
        stellar_like.set_default_context(stellar_like.Context(gateway=gateway))
        print(EXPRESSION)
        for host in HOSTS:
            print(f"  host={host!r:24} -> {stellar_like.evaluate(EXPRESSION, {'host': host})!r}")
        gateway.close()
        discovery.close()
        client.stop()
        client.close()
        return 0
    finally:
        step("Shutting down")
        if deployed and zk.proc is not None:
            subprocess.run([str(BIN / "maas_deploy"), "-zq", zk.address, "-mo", "REMOVE", "-n", "dga", "-v", "1.0",
                            "-ni", "1", "--wait"], timeout=120)
        if controller is not None and controller.poll() is None:
            controller.send_signal(signal.SIGTERM)
            controller.wait(timeout=30)
        zk.cleanup()
        leftovers = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True).stdout.split()
        if leftovers:
            print(f"killing leftover processes {leftovers}", file=sys.stderr)
            for pid in leftovers:
                subprocess.run(["kill", "-9", pid])
        shutil.rmtree(run_dir, ignore_errors=True)
        print("Everything stopped.")


if __name__ == "__main__":
    sys.exit(main())
