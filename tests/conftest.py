"""Shared test setup: the real-ZooKeeper fixtures of :mod:`maas.testing`."""

pytest_plugins = ["maas.testing.fixtures"]
