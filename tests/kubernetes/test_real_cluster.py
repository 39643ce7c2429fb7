"""The launcher's start → list → adopt → stop scenario against a real cluster, when
``MAAS_TEST_KUBECONFIG`` names a kubeconfig (skipped otherwise).

``MAAS_TEST_K8S_NAMESPACE`` (default ``maas-test``) must exist, and the kubeconfig's user must
have the controller's Role there (k8s/base/role.yaml). ``MAAS_TEST_K8S_IMAGE`` is the runner
image (default ``maas:0.1.0``); it need not be pullable: the scenario only needs the pods to
exist, and a pull error shows up as an EXITED instance with the kubelet's reason, which the
scenario accepts. No ZooKeeper or store is needed: the pods are stopped before they could run.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from maas.instance import InstanceState
from maas.launcher.kubernetes import KubernetesLauncher
from maas.settings import ServiceSettings
from tests.kubernetes.conftest import make_spec

KUBECONFIG = os.environ.get("MAAS_TEST_KUBECONFIG")
pytestmark = pytest.mark.skipif(not KUBECONFIG, reason="MAAS_TEST_KUBECONFIG names no cluster")


def settings() -> ServiceSettings:
    return ServiceSettings(
        zk_quorum="zookeeper.invalid:2181",
        kubeconfig=Path(KUBECONFIG or ""),
        k8s_namespace=os.environ.get("MAAS_TEST_K8S_NAMESPACE", "maas-test"),
        k8s_image=os.environ.get("MAAS_TEST_K8S_IMAGE", "maas:0.1.0"),
    )


def wait_for(launcher: KubernetesLauncher, condition, timeout: float = 120.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        instances = {i.instance_id: i for i in launcher.instances()}
        if condition(instances):
            return instances
        assert time.monotonic() < deadline, f"timed out; last seen: {instances}"
        time.sleep(1)


@pytest.fixture
def launcher() -> Iterator[KubernetesLauncher]:
    launcher = KubernetesLauncher.from_settings(settings())
    yield launcher
    for inst in launcher.instances():  # leave nothing behind
        launcher.stop(inst.instance_id)
    launcher.close()


def test_start_list_adopt_stop(launcher: KubernetesLauncher) -> None:
    run = uuid.uuid4().hex[:6]
    specs = [make_spec(f"k8stest-1.0-{run}{n:04d}", name="k8stest", stop_grace=1.0, drain_seconds=0.0)
             for n in range(2)]
    for spec in specs:
        launcher.start(spec)
    ids = {s.instance_id for s in specs}
    seen = wait_for(launcher, lambda found: ids <= set(found))
    assert all(seen[i].state in (InstanceState.STARTING, InstanceState.RUNNING, InstanceState.EXITED) for i in ids)

    adopter = KubernetesLauncher.from_settings(settings())
    try:
        adopter.resync()
        assert ids <= {i.instance_id for i in adopter.instances()}
    finally:
        adopter.close()

    for spec in specs:
        launcher.stop(spec.instance_id)
    gone = wait_for(launcher, lambda found: all(found[i].state is InstanceState.EXITED for i in ids))
    assert all(gone[i].stop_requested and gone[i].reason is None for i in ids)
    for spec in specs:
        launcher.forget(spec.instance_id)
    assert not ids & {i.instance_id for i in launcher.instances()}
