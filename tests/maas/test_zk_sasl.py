"""SASL authentication to a real ZooKeeper (DIGEST-MD5, the mechanism a test can run without a
Kerberos KDC), through the same credentials file and ``maas.zk.connect`` as digest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from kazoo.exceptions import NoAuthError
from kazoo.security import ACL, Id, Permissions

from maas.errors import AccessDenied
from maas.local_zookeeper import ZooKeeperServer, zookeeper_available
from maas.zk import connect
from maas.zkauth import ZkAccess

pytestmark = pytest.mark.zk
pytest.importorskip("puresasl", reason="SASL needs pure-sasl (pip install 'maas[sasl]')")

PASSWORD = "sasl-secret"


@pytest.fixture(scope="module")
def sasl_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZooKeeperServer]:
    if not zookeeper_available():
        pytest.skip("ZooKeeper is not installed")
    base = tmp_path_factory.mktemp("zk-sasl")
    jaas = base / "jaas.conf"
    jaas.write_text('Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n'
                    f'  user_deployer="{PASSWORD}";\n}};\n')
    server = ZooKeeperServer(data_dir=base / "zk",
                             extra_config=["authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider"],
                             jvm_options=[f"-Djava.security.auth.login.config={jaas}"])
    server.start()
    yield server
    server.cleanup()


def credentials(tmp_path: Path, password: str) -> ZkAccess:
    path = tmp_path / "sasl.json"
    path.write_text(json.dumps({"scheme": "sasl", "mechanism": "DIGEST-MD5", "user": "deployer",
                                "password": password}))
    path.chmod(0o600)
    return ZkAccess.from_file(path)


def test_a_sasl_identity_owns_what_its_acl_grants(sasl_server: ZooKeeperServer, tmp_path: Path) -> None:
    access = credentials(tmp_path, PASSWORD)
    assert access.credentials is not None and access.credentials.identity == "sasl:deployer"
    owner = connect(sasl_server.address, access=access)
    anonymous = connect(sasl_server.address, access=ZkAccess())
    try:
        owner.create("/sasl-owned", b"x", acl=[ACL(Permissions.ALL, Id("sasl", "deployer"))])
        assert owner.get("/sasl-owned")[0] == b"x"
        with pytest.raises(NoAuthError):
            anonymous.get("/sasl-owned")
        owner.delete("/sasl-owned")
    finally:
        for client in (owner, anonymous):
            client.stop()
            client.close()


def test_a_wrong_sasl_password_is_refused_clearly(sasl_server: ZooKeeperServer, tmp_path: Path) -> None:
    with pytest.raises(AccessDenied) as info:
        connect(sasl_server.address, access=credentials(tmp_path, "wrong"), timeout=10)
    assert "refused this process's credentials" in str(info.value) and "sasl user deployer" in str(info.value)
    assert "wrong" not in str(info.value)
