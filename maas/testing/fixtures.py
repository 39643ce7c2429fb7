"""pytest fixtures around a real ZooKeeper: one server per test session, a fresh chroot per test.

- ``zk_server``: the session's :class:`~maas.local_zookeeper.ZooKeeperServer`.
- ``zk_quorum``: a connection string ``127.0.0.1:PORT/maas-test-<id>`` private to the test.
- ``zk``: a started kazoo client on that chroot, closed (and the chroot deleted) afterwards.
- ``zk_factory``: makes more clients on the test's chroot.
"""

from __future__ import annotations

import os
import uuid
from typing import Callable, Iterator

import pytest
from kazoo.client import KazooClient

from maas.local_zookeeper import ZooKeeperServer, zookeeper_available
from maas.zk import connect


@pytest.fixture(scope="session")
def zk_server() -> Iterator[ZooKeeperServer]:
    if not zookeeper_available():
        if os.environ.get("CI"):
            pytest.fail("ZooKeeper is not installed (apt-get install -y zookeeper)")
        pytest.skip("ZooKeeper is not installed (apt-get install -y zookeeper)")
    server = ZooKeeperServer()
    server.start()
    yield server
    server.cleanup()


@pytest.fixture
def zk_chroot(zk_server: ZooKeeperServer) -> Iterator[str]:
    chroot = f"/maas-test-{uuid.uuid4().hex[:12]}"
    yield chroot
    admin = connect(zk_server.address)
    try:
        admin.delete(chroot, recursive=True)
    except Exception:
        pass
    finally:
        admin.stop()
        admin.close()


@pytest.fixture
def zk_quorum(zk_server: ZooKeeperServer, zk_chroot: str) -> str:
    admin = connect(zk_server.address)
    try:
        admin.ensure_path(zk_chroot)
    finally:
        admin.stop()
        admin.close()
    return zk_server.address + zk_chroot


@pytest.fixture
def zk_factory(zk_quorum: str) -> Iterator[Callable[[], KazooClient]]:
    clients: list[KazooClient] = []

    def make(**kwargs: object) -> KazooClient:
        client = connect(zk_quorum, **kwargs)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        try:
            client.stop()
            client.close()
        except Exception:
            pass


@pytest.fixture
def zk(zk_factory: Callable[[], KazooClient]) -> KazooClient:
    return zk_factory()
