"""TLS to a real ZooKeeper (its secureClientPort), through kazoo's own support: the server's
certificate is verified against the configured CA, and credentials travel inside TLS."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from kazoo.exceptions import NoAuthError
from kazoo.security import make_digest_acl

from maas.errors import CoordinationError
from maas.local_zookeeper import ZooKeeperServer, free_port, zookeeper_available
from maas.retry import wait_until
from maas.zk import connect
from maas.zkauth import ZkAccess

pytestmark = pytest.mark.zk


def self_signed(directory: Path, name: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """``(secure address, the server's certificate, another CA's certificate)``."""
    if not zookeeper_available():
        pytest.skip("ZooKeeper is not installed")
    base = tmp_path_factory.mktemp("zk-tls")
    cert = self_signed(base, "server")
    keystore = base / "keystore.pem"  # ZooKeeper's PEM keystore: the key and its certificate
    keystore.write_text((base / "server.key").read_text() + cert.read_text())
    other = self_signed(base, "other")
    port = free_port()
    server = ZooKeeperServer(data_dir=base / "zk", extra_config=[
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
        f"secureClientPort={port}", "secureClientPortAddress=127.0.0.1",
        f"ssl.keyStore.location={keystore}", "ssl.keyStore.type=PEM",
        f"ssl.trustStore.location={cert}", "ssl.trustStore.type=PEM", "ssl.clientAuth=none"])
    server.start()
    # start() waits for the plain port; the secure one opens a moment later, and connect()
    # takes a refused port as final
    wait_until(lambda: _accepts(port), timeout=30, what="ZooKeeper's secure port")
    yield f"127.0.0.1:{port}", cert, other
    server.cleanup()


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def test_tls_with_digest_credentials(tls_server: tuple[str, Path, Path], tmp_path: Path) -> None:
    address, cert, _ = tls_server
    auth = tmp_path / "auth.json"
    auth.write_text(json.dumps({"user": "deployer", "password": "pw", "tls": {"ca": str(cert)}}))
    auth.chmod(0o600)
    owner = connect(address, access=ZkAccess.from_file(auth))
    tls_only = connect(address, access=ZkAccess.from_environment({"MAAS_ZK_TLS_CA": str(cert)}))
    try:
        owner.create("/tls-owned", b"x", acl=[make_digest_acl("deployer", "pw", all=True)])
        assert owner.get("/tls-owned")[0] == b"x"
        with pytest.raises(NoAuthError):
            tls_only.get("/tls-owned")
        owner.delete("/tls-owned")
    finally:
        for client in (owner, tls_only):
            client.stop()
            client.close()


def test_a_server_certificate_the_ca_did_not_sign_is_refused(tls_server: tuple[str, Path, Path]) -> None:
    address, _, other = tls_server
    with pytest.raises(CoordinationError, match="cannot connect to ZooKeeper"):
        connect(address, access=ZkAccess.from_environment({"MAAS_ZK_TLS_CA": str(other)}), timeout=3)
