"""ZooKeeper authentication and ACLs on a real ZooKeeper with digest credentials: who can deploy,
change desired state or remove a registration; a controller that keeps working (and
re-authenticates) through a session expiry; and an open cluster that still works, with one
warning at start."""

from __future__ import annotations

import json
import logging
import secrets
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.recipe.queue import Queue
from kazoo.security import Permissions

from deploy_client.api import DeployClient
from maas.config import DEFAULT_CONFIG_PATH, ext_path
from maas.controller.service import Controller
from maas.discovery import DiscoveryClient
from maas.errors import AccessDenied
from maas.launcher.local import LocalLauncher
from maas.retry import wait_until
from maas.settings import ServiceSettings
from maas.testing import expire_session
from maas.zk import Layout, connect, read_config
from maas.zkauth import AclPolicy, ZkAccess, digest_identity, read_policy, use_policy
from maas.acl_tool import apply_cluster_policy
from tests.cluster import PAYLOADS, REPO, Cluster

pytestmark = pytest.mark.zk

ROLES = ("admin", "controller", "runner", "deployer", "reader")


@dataclass
class Secured:
    quorum: str
    files: dict[str, Path]
    store: Path
    clients: list[KazooClient]

    def access(self, role: str | None) -> ZkAccess:
        return ZkAccess.from_file(self.files[role]) if role else ZkAccess()

    def client(self, role: str | None) -> KazooClient:
        client = connect(self.quorum, access=self.access(role))
        self.clients.append(client)
        return client

    @property
    def layout(self) -> Layout:
        return Layout.from_config(read_config(self.client("reader")))


@pytest.fixture
def secured(zk_quorum: str, tmp_path: Path) -> Iterator[Secured]:
    """A chroot whose MaaS znodes are protected by a digest policy with one user per role."""
    files, holders = {}, {}
    for role in ROLES:
        password = secrets.token_urlsafe(18)
        files[role] = tmp_path / f"{role}.json"
        files[role].write_text(json.dumps({"scheme": "digest", "user": f"{role}-user", "password": password}))
        files[role].chmod(0o600)
        holders[role] = [digest_identity(f"{role}-user", password)]
    store = tmp_path / "store"
    store.mkdir()
    setup = Secured(zk_quorum, files, store, [])
    admin = setup.client("admin")
    apply_cluster_policy(admin, setup.access("admin"), AclPolicy(**holders), DEFAULT_CONFIG_PATH,
                         store_uri=f"file://{store}")
    yield setup
    for client in setup.clients[1:]:
        client.stop()
        client.close()
    for root in ("/maas", "/metron"):  # only an administrator may remove what is protected
        admin.delete(root, recursive=True)
    admin.stop()
    admin.close()


def put_request(client: KazooClient, layout: Layout, request_id: str) -> None:
    item = {"name": "echo", "version": "1", "numInstances": 1, "memory": 64, "action": "ADD",
            "path": "/models/echo/1", "requestId": request_id}
    Queue(client, layout.queue).put(json.dumps(item).encode())


def test_the_policy_is_in_force(secured: Secured) -> None:
    admin = secured.clients[0]
    layout = secured.layout
    queue_acl, _ = admin.get_acls(layout.queue)
    by_id = {a.id.id.split(":")[0]: a.perms for a in queue_acl}
    assert by_id == {"admin-user": Permissions.ALL, "controller-user": Permissions.READ | Permissions.DELETE,
                     "deployer-user": Permissions.CREATE}
    assert read_policy(secured.client("reader"), DEFAULT_CONFIG_PATH) is not None
    for znode in (DEFAULT_CONFIG_PATH, ext_path(DEFAULT_CONFIG_PATH), "/metron", "/maas"):
        acl = {a.id.id.split(":")[0]: a.perms for a in admin.get_acls(znode)[0]}
        assert acl["admin-user"] == Permissions.ALL
        assert all(p == Permissions.READ for who, p in acl.items() if who != "admin-user"), (znode, acl)


def test_maas_acl_show_prints_the_policy_and_acls(secured: Secured) -> None:
    import os

    def show(role: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "maas.acl_tool", "show", "-zq", secured.quorum],
                              env={**os.environ, "MAAS_ZK_AUTH_FILE": str(secured.files[role])},
                              capture_output=True, text=True, cwd=REPO, timeout=60)

    result = show("admin")
    assert result.returncode == 0, result.stderr
    assert '"deployer": [' in result.stdout
    assert any(line.startswith("/maas/queue: ") and "deployer-user" in line and "=create" in line
               for line in result.stdout.splitlines()), result.stdout
    reader = show("reader")
    assert reader.returncode == 0, reader.stderr
    assert "/maas/queue: (its ACL is not readable with these credentials)" in reader.stdout
    anonymous = subprocess.run([sys.executable, "-m", "maas.acl_tool", "show", "-zq", secured.quorum],
                               capture_output=True, text=True, cwd=REPO, timeout=60)
    assert anonymous.returncode == 9 and "not authorized" in anonymous.stderr


@pytest.mark.parametrize("role", [None, "reader"])
def test_anonymous_and_reader_cannot_deploy_change_desired_state_or_deregister(secured: Secured,
                                                                               role: str | None) -> None:
    layout = secured.layout
    controller, runner = secured.client("controller"), secured.client("runner")
    use_policy(controller, DEFAULT_CONFIG_PATH, "controller")
    use_policy(runner, DEFAULT_CONFIG_PATH, "runner")
    controller.create(layout.model("echo", "1"), b'{"instances": 1}', makepath=True)
    runner.create(layout.registration("echo", "i-1"), b"{}", ephemeral=True, makepath=True)

    other = secured.client(role)
    with pytest.raises(NoAuthError):
        put_request(other, layout, "sneaky")
    with pytest.raises(NoAuthError):
        other.set(layout.model("echo", "1"), b'{"instances": 100}')
    with pytest.raises(NoAuthError):
        other.create(layout.model("evil", "1"), b"{}", makepath=True)
    with pytest.raises(NoAuthError):
        other.delete(layout.registration("echo", "i-1"))
    with pytest.raises(NoAuthError):
        other.set(DEFAULT_CONFIG_PATH, b"{}")
    assert controller.get_children(layout.queue) == []
    assert runner.exists(layout.registration("echo", "i-1"))

    # Through the deploy client, the refusal is an AccessDenied that says what and why.
    with pytest.raises(AccessDenied) as info:
        client = DeployClient(secured.quorum, client=other)
        client.retry_deadline = 1
        client.submit("ADD", "echo", "1", path="/models/echo/1")
    assert "not authorized" in str(info.value) and "docs/security.md" in str(info.value)


def test_roles_cannot_step_outside_their_rights(secured: Secured) -> None:
    layout = secured.layout
    deployer, runner, controller = secured.client("deployer"), secured.client("runner"), secured.client("controller")
    with pytest.raises(NoAuthError):  # deployers queue requests but do not apply them
        deployer.create(layout.model("echo", "1"), b"{}", makepath=True)
    with pytest.raises(NoAuthError):  # runners register but do not deploy
        put_request(runner, layout, "from-runner")
    with pytest.raises(NoAuthError):  # controllers do not rewrite the cluster's config
        controller.set(DEFAULT_CONFIG_PATH, b"{}")


def test_a_deployer_deploys_and_the_controller_survives_a_session_expiry(secured: Secured, tmp_path: Path,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = ServiceSettings(zk_quorum=secured.quorum, work_dir=tmp_path / "work", reconcile_interval=0.3,
                               stop_grace=5, start_timeout=30, runner_zk_auth_file=secured.files["runner"])
    zk = secured.client("controller")
    config = read_config(zk)
    use_policy(zk, DEFAULT_CONFIG_PATH, "controller")
    launcher = LocalLauncher(settings.work_dir)
    controller = Controller(zk, config, launcher, settings)
    thread = threading.Thread(target=controller.run, daemon=True)
    thread.start()
    deployer = DeployClient(secured.quorum, client=secured.client("deployer"))
    reader = secured.client("reader")
    discovery = DiscoveryClient(reader, config.service_root)
    try:
        deployer.upload(PAYLOADS / "echo", "/models/echo/1")
        deployer.wait(deployer.submit("ADD", "echo", "1", path="/models/echo/1", memory=64), timeout=60)
        discovery.wait_for(lambda d: len(d.endpoints("echo")) == 1, timeout=10, what="the registration")

        # the registration belongs to the runners: readers see it, only runners (and admins) change it
        layout = Layout.from_config(config)
        instance = reader.get_children(layout.service("echo"))[0]
        acl = {a.id.id.split(":")[0]: a.perms for a in reader.get_acls(layout.registration("echo", instance))[0]}
        assert acl["runner-user"] & Permissions.WRITE and acl["reader-user"] == Permissions.READ

        wait_until(controller.leading.is_set, timeout=10, what="leadership")
        expire_session(zk)  # the controller's session ends: its term too; kazoo logs in again
        wait_until(lambda: zk.connected and controller.leading.is_set(), timeout=30,
                   what="the controller to lead again on a new session")
        assert ("digest", f"controller-user:{json.loads(secured.files['controller'].read_text())['password']}") \
            in zk.auth_data
        deployer.wait(deployer.submit("ADD", "echo", "1", path="/models/echo/1", memory=64), timeout=60)
        discovery.wait_for(lambda d: len(d.endpoints("echo")) == 2, timeout=10, what="two registrations")
        deployer.wait(deployer.submit("REMOVE", "echo", "1", num_instances=2), timeout=60)
        assert [m.desired for m in deployer.model_statuses() if m.name == "echo"] in ([], [0])
    finally:
        discovery.close()
        controller.stop()
        thread.join(timeout=15)
        launcher.stop_all()
    passwords = [json.loads(f.read_text())["password"] for f in secured.files.values()]
    assert caplog.text and not any(p in caplog.text for p in passwords)  # credentials are never logged


def test_an_open_cluster_still_works_and_warns_once(cluster: Cluster) -> None:
    out = cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1", "-hmp", "/models/echo/1", "--wait")
    assert "done" in out.stdout
    cluster.maas_deploy("-mo", "REMOVE", "-n", "echo", "-v", "1", "--wait")
    assert cluster.controller_log().count("no ZooKeeper credentials configured") == 1


def test_maas_acl_digest_reads_the_password_from_stdin() -> None:
    result = subprocess.run([sys.executable, "-m", "maas.acl_tool", "digest", "alice"], input="s3cret\n",
                            capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == digest_identity("alice", "s3cret")
