"""Test support: a real ZooKeeper (Debian's ``zookeeper`` package) for tests, per-test chroots,
session expiry, and a fake clock. Used by the project's tests and usable by downstream projects.

Load the pytest fixtures with ``pytest_plugins = ["maas.testing.fixtures"]``.
"""

from maas.clock import FakeClock
from maas.local_zookeeper import ZooKeeperEnsemble, ZooKeeperServer, expire_session, zookeeper_available

__all__ = ["FakeClock", "ZooKeeperEnsemble", "ZooKeeperServer", "expire_session", "zookeeper_available"]
