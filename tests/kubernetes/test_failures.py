"""How pod failures show up: Kubernetes' own reason in the EXITED instance (OOMKilled, image pull
errors, a runner's exit code and last log line, eviction), and pods that cannot start (image pull
back-off, Pending past ``k8s_pending_timeout``) deleted so the controller replaces them.

The emulator has no kubelet: each test writes the status a kubelet would write."""

from __future__ import annotations

from typing import Any

import pytest

from maas.clock import FakeClock
from maas.instance import InstanceState
from maas.launcher.kubernetes import LABEL_EXITED, KubernetesLauncher, pod_name
from tests.kubernetes.conftest import NAMESPACE, make_spec
from tests.kubernetes.emulator import EmulatorThread


def terminated(reason: str, exit_code: int, message: str | None = None) -> dict[str, Any]:
    state: dict[str, Any] = {"terminated": {"reason": reason, "exitCode": exit_code}}
    if message:
        state["terminated"]["message"] = message
    return {"status": {"phase": "Failed", "containerStatuses": [{
        "name": "runner", "ready": False, "restartCount": 0, "image": "img", "imageID": "",
        "state": state}]}}


def waiting(reason: str, message: str, phase: str = "Pending") -> dict[str, Any]:
    return {"status": {"phase": phase, "containerStatuses": [{
        "name": "runner", "ready": False, "restartCount": 0, "image": "img", "imageID": "",
        "state": {"waiting": {"reason": reason, "message": message}}}]}}


def start_one(launcher: KubernetesLauncher, suffix: str = "abcdef0123") -> str:
    spec = make_spec(f"dga-1.0-{suffix}")
    launcher.start(spec)
    return spec.instance_id


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (terminated("OOMKilled", 137), "OOMKilled (exit code 137)"),
        (terminated("Error", 3, "2025-01-01 INFO maas.runner: localizing\n"
                                 "2025-01-01 ERROR maas.runner: instance x failed: payload has two *.sh\n"),
         "Error (exit code 3): 2025-01-01 ERROR maas.runner: instance x failed: payload has two *.sh"),
        ({"status": {"phase": "Failed", "reason": "Evicted",
                     "message": "The node was low on resource: ephemeral-storage."}},
         "Evicted: The node was low on resource: ephemeral-storage."),
        ({"status": {"phase": "Succeeded", "containerStatuses": [{
            "name": "runner", "ready": False, "restartCount": 0, "image": "img", "imageID": "",
            "state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]}},
         "Completed (exit code 0)"),
    ],
    ids=["oom", "error-exit-code", "evicted", "succeeded-unasked"],
)
def test_ended_pod_is_exited_with_kubernetes_reason(emulator: EmulatorThread, launcher: KubernetesLauncher,
                                                    status: dict[str, Any], reason: str) -> None:
    instance_id = start_one(launcher)
    emulator.patch_pod(NAMESPACE, pod_name(instance_id), status)
    [inst] = launcher.instances()
    assert inst.state is InstanceState.EXITED
    assert inst.reason == reason
    assert not inst.stop_requested
    # An ended pod stays in the API; forget() keeps it for its logs, labelled out of the instances.
    assert pod_name(instance_id) in emulator.pods(NAMESPACE)
    assert launcher.logs_hint(instance_id) == f"kubectl -n {NAMESPACE} logs {pod_name(instance_id)}"
    launcher.forget(instance_id)
    kept = emulator.pods(NAMESPACE)[pod_name(instance_id)]
    assert kept["metadata"]["labels"][LABEL_EXITED] == "true"
    assert launcher.instances() == []
    launcher.resync()  # a new leader does not adopt it (nor count its failure again)
    assert launcher.instances() == []
    assert launcher.instances() == []


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("ImagePullBackOff", 'Back-off pulling image "registry.example.com/maas:typo"'),
        ("ErrImagePull", "rpc error: code = NotFound desc = failed to pull and unpack image"),
        ("CrashLoopBackOff", "back-off 40s restarting failed container=runner"),
    ],
)
def test_pod_that_cannot_start_is_exited_and_deleted(emulator: EmulatorThread, launcher: KubernetesLauncher,
                                                     reason: str, message: str) -> None:
    instance_id = start_one(launcher)
    phase = "Running" if reason == "CrashLoopBackOff" else "Pending"
    emulator.patch_pod(NAMESPACE, pod_name(instance_id), waiting(reason, message, phase))
    [inst] = launcher.instances()
    assert inst.state is InstanceState.EXITED
    assert inst.reason == f"{reason}: {message}"
    # Observing changes nothing: the pod is deleted by the plan's forget, in the same pass.
    assert list(emulator.pods(NAMESPACE)) == [pod_name(instance_id)]
    [again] = launcher.instances()
    assert again.state is InstanceState.EXITED and again.reason == inst.reason
    assert launcher.logs_hint(instance_id) is None  # a pod that never ran has no logs to keep
    launcher.forget(instance_id)
    assert emulator.pods(NAMESPACE) == {}  # deleted, not kept: it would linger as a live pod
    assert launcher.instances() == []


def test_pod_pending_too_long_is_exited_with_the_schedulers_reason(emulator: EmulatorThread,
                                                                   launcher: KubernetesLauncher,
                                                                   clock: FakeClock) -> None:
    instance_id = start_one(launcher)
    emulator.patch_pod(NAMESPACE, pod_name(instance_id), {"status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
         "message": "0/3 nodes are available: 3 Insufficient memory."}]}})
    clock.advance(299)
    [inst] = launcher.instances()
    assert inst.state is InstanceState.STARTING
    clock.advance(2)
    [inst] = launcher.instances()
    assert inst.state is InstanceState.EXITED
    assert inst.reason == ("pod Pending for more than 300s "
                           "(Unschedulable: 0/3 nodes are available: 3 Insufficient memory.)")
    assert pod_name(instance_id) in emulator.pods(NAMESPACE)  # observing deletes nothing
    launcher.forget(instance_id)
    assert emulator.pods(NAMESPACE) == {}  # the plan's forget does, at once


def test_pending_while_container_creating_is_not_a_failure(emulator: EmulatorThread,
                                                           launcher: KubernetesLauncher, clock: FakeClock) -> None:
    instance_id = start_one(launcher)
    emulator.patch_pod(NAMESPACE, pod_name(instance_id), waiting("ContainerCreating", ""))
    clock.advance(60)
    [inst] = launcher.instances()
    assert inst.state is InstanceState.STARTING and inst.reason is None


def test_failure_after_a_requested_stop_is_not_reported(emulator: EmulatorThread, launcher: KubernetesLauncher) -> None:
    instance_id = start_one(launcher)
    name = pod_name(instance_id)
    emulator.patch_pod(NAMESPACE, name, {"metadata": {"finalizers": ["test/hold"]}})
    launcher.stop(instance_id)
    # The kubelet SIGKILLed it at the end of the grace period.
    emulator.patch_pod(NAMESPACE, name, terminated("Error", 137))
    [inst] = launcher.instances()
    assert inst.state is InstanceState.STOPPING
    emulator.call(lambda e: e.objects["v1/pods", NAMESPACE, name].delete())
    [inst] = launcher.instances()
    assert inst.state is InstanceState.EXITED and inst.stop_requested and inst.reason is None
