"""`make demo`: the whole system on one machine, start to finish.

Starts a local ZooKeeper (Debian's package) on 127.0.0.1, protects it with digest credentials
(a generated password per role, an ACL policy applied as the administrator; docs/security.md),
starts the controller (``maas_service``), uploads and deploys the DGA example with
``maas_deploy`` as a deployer, waits for its endpoint, evaluates a Stellar expression that calls
the model for a few hosts as a reader and prints the results. Then the ML-model lifecycle on the
pump example (examples/pump): starts ``maas_lifecycle serve`` on the same cluster (as a
deployer), creates an engineer and a publisher with ``maas_model``, uploads the telemetry,
creates the markups, the model and its elements, trains it, prepares it (the engineer) and
publishes it (the publisher: the four-eyes rule is on), runs historical inference over the
evaluation week — its elements deployed through MaaS — and prints the incidents it registered.
Finally it removes everything and stops everything it started. ``--open`` runs it without
credentials (an open cluster: the controller warns about it once).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
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
from maas.acl_tool import apply_cluster_policy  # noqa: E402
from maas.zk import connect, read_config  # noqa: E402
from maas.zkauth import AclPolicy, ZkAccess, digest_identity  # noqa: E402
from enrichment.gateway import MaasGateway  # noqa: E402

BIN = Path(sys.executable).parent
EXPRESSION = "MAP_GET('is_malicious', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), {'host': host}))"
HOSTS = ["www.google.com", "wikipedia.org", "github.com", "xjwqkzvbtpqmd.com", "a8f3c9e1b7d24f6e.net", "qwzxkvjplmtrn.info"]


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


ROLES = ("admin", "controller", "runner", "deployer", "reader")


def set_up_credentials(run_dir: Path, quorum: str, store_uri: str) -> dict[str, Path]:
    """A credentials file per role (mode 600) and the ACL policy, applied as the administrator."""
    files: dict[str, Path] = {}
    holders: dict[str, list[str]] = {}
    for role in ROLES:
        password = secrets.token_urlsafe(18)
        files[role] = run_dir / "credentials" / f"{role}.json"
        files[role].parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(files[role], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"scheme": "digest", "user": role, "password": password}, fh)
        holders[role] = [digest_identity(role, password)]
    admin_access = ZkAccess.from_file(files["admin"])
    admin = connect(quorum, access=admin_access)
    try:
        counts = apply_cluster_policy(admin, admin_access, AclPolicy(**holders), "/metron/maas/config",
                                      store_uri=store_uri)
    finally:
        admin.stop()
        admin.close()
    print(f"credentials in {files['admin'].parent}; ACLs set on {sum(counts.values())} znodes")
    return files


def as_role(files: dict[str, Path], role: str) -> dict[str, str]:
    """The environment of a command run with ``role``'s credentials."""
    env = dict(os.environ)
    if role in files:
        env["MAAS_ZK_AUTH_FILE"] = str(files[role])
    return env


def run(*args: str, env: dict[str, str] | None = None) -> str:
    print("$ " + " ".join(Path(args[0]).name if i == 0 else a for i, a in enumerate(args)), flush=True)
    result = subprocess.run(args, capture_output=True, text=True, timeout=180, env=env)
    print(result.stdout, end="")
    if result.returncode != 0:
        print(result.stderr, end="", file=sys.stderr)
        raise SystemExit(f"command failed with exit code {result.returncode}")
    return result.stdout


#: Detection settings of the pump elements in the demo: an incident when half of a 30-minute
#: observation interval is anomalous, no new one within an hour of the previous one's end.
DETECTION = {"observation_s": 1800, "share": 0.5, "suppression_s": 3600}
DEMO_EPOCHS = 20


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def maas_model(url: str, token: str, *args: str, as_json: bool = False) -> str:
    env = {**os.environ, "MAAS_TOKEN": token, "MAAS_LIFECYCLE_URL": url}
    shown = " ".join(a if len(a) < 60 else a[:57] + "…" for a in args)
    print(f"$ maas_model {shown}", flush=True)
    result = subprocess.run([str(BIN / "maas_model"), *(["--json"] if as_json else []), *args], capture_output=True,
                            text=True, timeout=1800, env=env)
    if not as_json:
        print(result.stdout, end="")
    if result.returncode != 0:
        print(result.stderr, end="", file=sys.stderr)
        raise SystemExit(f"maas_model failed with exit code {result.returncode}")
    return result.stdout


def lifecycle_demo(quorum: str, store_uri: str, run_dir: Path, env: dict[str, str]) -> None:
    """The pump example through the lifecycle service; ``env`` carries its ZooKeeper credentials."""
    sys.path.insert(0, str(HERE / "pump"))
    import train as pump  # noqa: E402  (examples/pump/train.py)

    step("Starting the lifecycle service (maas_lifecycle serve) on the same cluster")
    port, admin = free_port(), "demo-admin-" + secrets.token_hex(12)
    url = f"http://127.0.0.1:{port}"
    log = open(run_dir / "maas_lifecycle.log", "wb")
    service = subprocess.Popen(
        [str(BIN / "maas_lifecycle"), "serve", "--data-dir", str(run_dir / "lifecycle"), "--port", str(port),
         "-zq", quorum, "--store-uri", store_uri, "--workers", "1", "--four-eyes", "true"],
        stdout=log, stderr=subprocess.STDOUT, env={**env, "MAAS_LIFECYCLE_ADMIN_TOKEN": admin})
    try:
        import httpx

        def up() -> bool:
            try:
                return httpx.get(f"{url}/api/v1/whoami", headers={"Authorization": f"Bearer {admin}"},
                                 timeout=2).status_code == 200
            except httpx.HTTPError:
                return service.poll() is not None  # stop waiting: it exited
        wait_until(up, timeout=60, what="the lifecycle service")
        if service.poll() is not None:
            raise SystemExit(f"maas_lifecycle serve exited: {(run_dir / 'maas_lifecycle.log').read_text()[-2000:]}")

        step("An engineer and a publisher (maas_model role/user create)")
        maas_model(url, admin, "role", "create", "engineer", *[a for r in (
            "models.create", "models.edit", "models.train", "models.prepare", "markups.edit", "datasets.upload",
            "models.infer", "incidents.edit") for a in ("--right", r)])
        maas_model(url, admin, "role", "create", "publisher", "--right", "models.publish")
        eve = json.loads(maas_model(url, admin, "user", "create", "eve", "--role", "engineer", as_json=True))["token"]
        paul = json.loads(maas_model(url, admin, "user", "create", "paul", "--role", "publisher",
                                     as_json=True))["token"]

        step(f"The pump example: telemetry, markups, model pump7 and its elements, training ({DEMO_EPOCHS} epochs at most)")
        work = run_dir / "pump"
        commands = pump.export(work, max_epochs=DEMO_EPOCHS)
        for path in (work / "elements").glob("*.json"):
            element = json.loads(path.read_text())
            element["detection"] = DETECTION
            path.write_text(json.dumps(element, indent=1))
        for command in commands:
            maas_model(url, eve, *command)

        step("Prepared by the engineer, published by the publisher")
        maas_model(url, eve, "prepare", "pump7")
        maas_model(url, paul, "publish", "pump7")

        start = pump.telemetry.TRAIN_END
        end = pump.telemetry.START + pump.pd.Timedelta(days=21)
        step(f"Historical inference over the evaluation week [{start:%Y-%m-%d}, {end:%Y-%m-%d}) through MaaS")
        maas_model(url, eve, "infer", "pump7", "--dataset", pump.DATASET, "--from", start.isoformat(),
                   "--to", end.isoformat(), "--wait", "--wait-timeout", "900")

        step("The incidents it registered, and the faults injected into the telemetry")
        maas_model(url, eve, "incidents", "--model", "pump7", "--limit", "100")
        for fault in json.loads((work / "faults.json").read_text()):
            if fault["from"] >= start.isoformat().replace("+00:00", "Z"):
                print(f"  injected {fault['kind']:13} {fault['from']} → {fault['to']}")
        maas_model(url, eve, "infer-stop", "pump7")
    finally:
        if service.poll() is None:
            service.send_signal(signal.SIGTERM)
            try:
                service.wait(timeout=30)
            except subprocess.TimeoutExpired:
                service.kill()
        log.close()


def main(argv: list[str] | None = None) -> int:
    secured = "--open" not in (sys.argv[1:] if argv is None else argv)
    run_dir = Path(tempfile.mkdtemp(prefix="maas-demo-"))
    files: dict[str, Path] = {}
    zk = ZooKeeperServer(data_dir=run_dir / "zookeeper")
    controller: subprocess.Popen[bytes] | None = None
    deployed = False
    try:
        step("Starting ZooKeeper on 127.0.0.1")
        zk.start()
        quorum = zk.address
        print(f"ZooKeeper serving at {quorum}")
        store_uri = f"file://{run_dir / 'store'}"
        if secured:
            step("Protecting ZooKeeper: a digest user per role, ACLs by role (maas_acl apply)")
            files = set_up_credentials(run_dir, quorum, store_uri)

        step("Starting the controller (maas_service)")
        log = open(run_dir / "maas_service.log", "wb")
        runner_auth = ["--runner-zk-auth-file", str(files["runner"])] if secured else []
        controller = subprocess.Popen(
            [str(BIN / "maas_service"), "-zq", quorum, "--store-uri", store_uri,
             "--work-dir", str(run_dir / "work"), "--reconcile-interval", "0.5", *runner_auth],
            stdout=log, stderr=subprocess.STDOUT, env=as_role(files, "controller"),
        )
        client = connect(quorum, access=ZkAccess.from_file(files["reader"]) if secured else ZkAccess())
        wait_until(lambda: read_config(client).store_uri == store_uri, timeout=30,
                   what="the controller to publish its configuration")

        step("Deploying the DGA model (maas_deploy -mo ADD)")
        run(str(BIN / "maas_deploy"), "-zq", quorum, "-mo", "ADD", "-n", "dga", "-v", "1.0", "-ni", "1", "-m", "512",
            "-hmp", "/models/dga/1.0", "-lmp", str(HERE / "dga" / "payload"), "--wait", env=as_role(files, "deployer"))
        deployed = True
        run(str(BIN / "maas_deploy"), "-zq", quorum, "-mo", "LIST", env=as_role(files, "reader"))

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

        lifecycle_demo(quorum, store_uri, run_dir, as_role(files, "deployer"))
        return 0
    finally:
        step("Shutting down")
        if deployed and zk.proc is not None:
            subprocess.run([str(BIN / "maas_deploy"), "-zq", zk.address, "-mo", "REMOVE", "-n", "dga", "-v", "1.0",
                            "-ni", "1", "--wait"], timeout=120, env=as_role(files, "deployer"))
        if controller is not None and controller.poll() is None:
            controller.send_signal(signal.SIGTERM)
            controller.wait(timeout=30)
        zk.cleanup()
        service_log = run_dir / "maas_service.log"
        complaints = [line for line in (service_log.read_text(errors="replace").splitlines() if service_log.exists() else [])
                      if " WARNING " in line or " ERROR " in line]
        if complaints:
            print("maas_service warned:\n  " + "\n  ".join(complaints))
        leftovers = subprocess.run(["pgrep", "-f", str(run_dir)], capture_output=True, text=True).stdout.split()
        if leftovers:
            print(f"killing leftover processes {leftovers}", file=sys.stderr)
            for pid in leftovers:
                subprocess.run(["kill", "-9", pid])
        shutil.rmtree(run_dir, ignore_errors=True)
        print("Everything stopped.")


if __name__ == "__main__":
    sys.exit(main())
