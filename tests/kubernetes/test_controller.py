"""The controller's reconcile step (the pure ``plan()`` and the ``Executor``, on a fake clock)
driving the Kubernetes launcher against the emulator: a failed pod is forgotten, its reason lands
in the model's health (what ``maas_deploy -mo STATUS`` prints as LAST ERROR), and a replacement
pod is created once the restart backoff has passed."""

from __future__ import annotations

import random
from typing import Any

import kmock
import pytest

from maas.clock import FakeClock
from maas.controller.desired import DesiredModel, ModelKey
from maas.controller.executor import Executor
from maas.controller.plan import plan
from maas.instance import InstanceSpec, InstanceState
from maas.launcher.kubernetes import LABEL_EXITED, KubernetesLauncher, pod_name
from maas.retry import Backoff
from tests.kubernetes.conftest import NAMESPACE, make_spec
from tests.kubernetes.emulator import EmulatorThread

KEY = ModelKey("dga", "1.0")


def desired(instances: int) -> dict[ModelKey, DesiredModel]:
    return {KEY: DesiredModel(name="dga", version="1.0", instances=instances, path="/models/dga/1.0",
                              store_uri="hdfs://maas@namenode:9870/maas/store", memory=512)}


def spec_for(model: DesiredModel, instance_id: str) -> InstanceSpec:
    return make_spec(instance_id, name=model.name, version=model.version, memory=model.memory)


class Reconciler:
    """What the controller's ``_reconcile`` does with the launcher, minus ZooKeeper."""

    def __init__(self, launcher: KubernetesLauncher, clock: FakeClock) -> None:
        self.launcher = launcher
        self.clock = clock
        self.executor = Executor(launcher, spec_for, clock, backoff=Backoff(initial=1.0, max_delay=60.0, jitter=0.2),
                                 stable_after=10.0, rng=random.Random(7))

    def run_pass(self, want: dict[ModelKey, DesiredModel]) -> list[Any]:
        instances = self.launcher.instances()
        self.executor.observe(instances)
        actions = plan(want, instances, self.executor.health, self.clock.monotonic())
        self.executor.execute(actions)
        return actions


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        ({"status": {"phase": "Failed", "containerStatuses": [{
            "name": "runner", "ready": False, "restartCount": 0, "image": "img", "imageID": "",
            "state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}}]}},
         "OOMKilled (exit code 137)"),
        ({"status": {"phase": "Pending", "containerStatuses": [{
            "name": "runner", "ready": False, "restartCount": 0, "image": "img", "imageID": "",
            "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}]}},
         "ImagePullBackOff: Back-off pulling image"),
    ],
    ids=["oom", "image-pull"],
)
def test_failed_pod_is_replaced_and_its_reason_recorded(emulator: EmulatorThread, launcher: KubernetesLauncher,
                                                        clock: FakeClock, status: dict[str, Any], reason: str) -> None:
    reconciler = Reconciler(launcher, clock)
    reconciler.run_pass(desired(2))
    first = set(emulator.pods(NAMESPACE))
    assert len(first) == 2

    victim = sorted(i.instance_id for i in launcher.instances())[0]
    emulator.patch_pod(NAMESPACE, pod_name(victim), status)

    reconciler.run_pass(desired(2))
    health = reconciler.executor.health[KEY]
    assert health.last_error == reason and health.failures == 1 and health.restarts == 1
    assert pod_name(victim) not in live_pods(emulator)  # forgotten: no longer an instance
    if reason.startswith("OOMKilled"):  # it ran: kept (labelled exited) for kubectl logs
        assert pod_name(victim) in emulator.pods(NAMESPACE)
        assert health.last_logs == f"kubectl -n {NAMESPACE} logs {pod_name(victim)}"
    else:  # it never ran: deleted, it would linger as a live pod
        assert pod_name(victim) not in emulator.pods(NAMESPACE) and health.last_logs is None
    assert len(live_pods(emulator)) == 1  # the replacement waits for the backoff

    reconciler.run_pass(desired(2))
    assert len(live_pods(emulator)) == 1  # still backing off
    clock.advance(health.retry_at - clock.monotonic() + 0.01)
    reconciler.run_pass(desired(2))
    pods = live_pods(emulator)
    assert len(pods) == 2 and pod_name(victim) not in pods and len(pods - first) == 1
    assert all(i.state is InstanceState.STARTING for i in launcher.instances())


def live_pods(emulator: EmulatorThread) -> set[str]:
    return {name for name, pod in emulator.pods(NAMESPACE).items()
            if (pod["metadata"].get("labels") or {}).get(LABEL_EXITED) != "true"}


def test_scale_down_stops_pods_with_their_grace(emulator: EmulatorThread, launcher: KubernetesLauncher,
                                               clock: FakeClock) -> None:
    reconciler = Reconciler(launcher, clock)
    reconciler.run_pass(desired(3))
    assert len(emulator.pods(NAMESPACE)) == 3
    reconciler.run_pass(desired(1))
    deletes = emulator.requests(kmock.action.DELETE)
    assert len(deletes) == 2 and {d.params["gracePeriodSeconds"] for d in deletes} == {"13"}
    assert len(emulator.pods(NAMESPACE)) == 1
    reconciler.run_pass(desired(1))  # the stopped ones are gone: forgotten, not failures
    assert KEY not in reconciler.executor.health
    assert [i.state for i in launcher.instances()] == [InstanceState.STARTING]


def test_api_errors_never_crash_the_pass(emulator: EmulatorThread, launcher: KubernetesLauncher,
                                        clock: FakeClock) -> None:
    reconciler = Reconciler(launcher, clock)
    emulator.fail(kmock.action.CREATE, kmock.KubernetesError(status=403, reason="Forbidden",
                                                             message="pods is forbidden"), times=1)
    reconciler.run_pass(desired(1))
    health = reconciler.executor.health[KEY]
    assert health.last_error is not None and "403 Forbidden: pods is forbidden" in health.last_error
