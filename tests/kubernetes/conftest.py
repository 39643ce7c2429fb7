"""Fixtures of the Kubernetes launcher tests: a kmock API emulator on 127.0.0.1, launchers talking
to it through the real ``kubernetes`` client, a fake clock and instance specs."""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from maas.clock import FakeClock
from maas.instance import InstanceSpec
from maas.launcher.kubernetes import KubernetesLauncher
from maas.retry import Backoff
from maas.settings import ServiceSettings
from tests.kubernetes.emulator import EmulatorThread

NAMESPACE = "maas"
INSTALLATION = "0123456789abcdef0123456789abcdef"
IMAGE = "registry.example.com/maas:test"

LauncherFactory = Callable[..., KubernetesLauncher]


def make_spec(instance_id: str, *, name: str = "dga", version: str = "1.0", **extra: Any) -> InstanceSpec:
    return InstanceSpec(
        instance_id=instance_id,
        name=name,
        version=version,
        store_uri="hdfs://maas@namenode:9870/maas/store",
        path=f"/models/{name}/{version}",
        zk_quorum="zookeeper.maas.svc:2181",
        config_path="/metron/maas/config",
        **extra,
    )


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    emu = EmulatorThread().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_launcher(emulator: EmulatorThread, clock: FakeClock) -> Iterator[LauncherFactory]:
    """Launchers as ``maas_service`` builds them (``from_settings``), on the emulator's client.
    Keyword arguments override the launcher's tuning (request timeout, attempts)."""
    made: list[KubernetesLauncher] = []

    def make(installation: str = INSTALLATION, **tuning: Any) -> KubernetesLauncher:
        settings = ServiceSettings(zk_quorum="zookeeper.maas.svc:2181", k8s_namespace=NAMESPACE, k8s_image=IMAGE,
                                   k8s_pending_timeout=300.0)
        launcher = KubernetesLauncher.from_settings(settings, api_client=emulator.api_client(), clock=clock,
                                                    installation=installation)
        launcher.backoff = Backoff(initial=0.01, max_delay=0.05, jitter=0.0)
        for key, value in tuning.items():
            setattr(launcher, key, value)
        made.append(launcher)
        return launcher

    yield make
    for launcher in made:
        launcher.api_client.close()


@pytest.fixture
def launcher(make_launcher: LauncherFactory) -> KubernetesLauncher:
    return make_launcher()
