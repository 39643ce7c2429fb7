"""Shared test setup: the real-ZooKeeper fixtures of :mod:`maas.testing`, and clusters with a
real controller process for end-to-end tests."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.cluster import Cluster

pytest_plugins = ["maas.testing.fixtures", "lifecycle.testing.postgres"]


@pytest.fixture
def cluster_factory(zk_quorum: str, tmp_path: Path) -> Iterator[Callable[..., Cluster]]:
    """Makes clusters whose first controller runs with the given extra flags."""
    made: list[Cluster] = []

    def make(*flags: str, quorum: str | None = None, start: bool = True, env: dict[str, str] | None = None) -> Cluster:
        c = Cluster(quorum or zk_quorum, tmp_path / f"cluster{len(made)}")
        made.append(c)
        if start:
            c.start_controller(*flags, env=env)
            c.client  # the config znode is published: deploys now find the store
        return c

    yield make
    for c in made:
        c.close()
        print(c.controller_log()[-6000:])


@pytest.fixture
def cluster(cluster_factory: Callable[..., Cluster]) -> Cluster:
    """A cluster with one controller on default settings."""
    return cluster_factory()
