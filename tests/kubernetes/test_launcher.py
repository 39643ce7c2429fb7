"""The Kubernetes launcher's life cycle through the real ``kubernetes`` client against the kmock
emulator: start creates labelled pods, instances() lists them, stop deletes them with the grace
period, and a fresh launcher adopts existing pods instead of creating new ones."""

from __future__ import annotations

import json
import math

import kmock

from maas.clock import FakeClock
from maas.instance import Instance, InstanceSpec, InstanceState
from maas.launcher.kubernetes import (
    ANNOTATION_SPEC,
    KILL_MARGIN_SECONDS,
    SELECTOR,
    KubernetesLauncher,
    pod_name,
)
from tests.kubernetes.conftest import INSTALLATION, IMAGE, NAMESPACE, LauncherFactory, make_spec
from tests.kubernetes.emulator import EmulatorThread

READY = {"status": {"phase": "Running", "podIP": "10.1.2.3",
                    "conditions": [{"type": "Ready", "status": "True"}]}}


def by_id(launcher: KubernetesLauncher) -> dict[str, Instance]:
    return {i.instance_id: i for i in launcher.instances()}


def test_start_creates_one_labelled_pod_per_instance(emulator: EmulatorThread, launcher: KubernetesLauncher) -> None:
    specs = [make_spec(f"dga-1.0-{n:010x}", memory=768, cpu=0.5, drain_seconds=0.5, stop_grace=10.0)
             for n in range(3)]
    for spec in specs:
        launcher.start(spec)

    pods = emulator.pods(NAMESPACE)
    assert sorted(pods) == sorted(pod_name(s.instance_id) for s in specs)
    for spec in specs:
        pod = pods[pod_name(spec.instance_id)]
        meta, pod_spec = pod["metadata"], pod["spec"]
        assert meta["labels"] == {
            "app.kubernetes.io/name": "maas-instance",
            "maas.apache.org/managed-by": "maas-controller",
            "maas.apache.org/model": "dga",
            "maas.apache.org/version": "1.0",
            "maas.apache.org/instance": spec.instance_id,
            "maas.apache.org/installation": INSTALLATION,
        }
        assert InstanceSpec.model_validate_json(meta["annotations"][ANNOTATION_SPEC]) == spec
        assert pod_spec["restartPolicy"] == "Never"
        assert pod_spec["terminationGracePeriodSeconds"] == 11 + KILL_MARGIN_SECONDS
        [container] = pod_spec["containers"]
        assert container["image"] == IMAGE
        assert container["command"] == ["python", "-m", "maas.runner", "--instance-dir", "/var/lib/maas/instance",
                                        "--spec-from-env", "MAAS_INSTANCE_SPEC"]
        assert container["resources"] == {"requests": {"memory": "768Mi", "cpu": "500m"},
                                          "limits": {"memory": "768Mi", "cpu": "500m"}}
        env = {e["name"]: e for e in container["env"]}
        in_pod = InstanceSpec.model_validate_json(env["MAAS_INSTANCE_SPEC"]["value"])
        assert in_pod == spec.model_copy(update={"cache_dir": "/var/lib/maas/cache"})
        assert env["MAAS_ADVERTISE_HOST"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
        probe = container["readinessProbe"]["exec"]["command"]
        assert probe == ["grep", "-q", '"state": "running"', "/var/lib/maas/instance/status.json"]
        assert {"name": "data", "mountPath": "/var/lib/maas"} in container["volumeMounts"]
        assert {"name": "data", "emptyDir": {}} in pod_spec["volumes"]

    # One LIST by label selector per instances() call.
    before = len(emulator.requests(kmock.action.LIST))
    instances = launcher.instances()
    lists = emulator.requests(kmock.action.LIST)[before:]
    assert len(lists) == 1 and lists[0].params.get("labelSelector") == f"{SELECTOR},!maas.apache.org/exited"
    assert sorted(i.instance_id for i in instances) == sorted(s.instance_id for s in specs)
    assert {i.state for i in instances} == {InstanceState.STARTING}
    assert all(i.name == "dga" and i.version == "1.0" and i.url is None for i in instances)


def test_a_ready_pod_is_running(emulator: EmulatorThread, launcher: KubernetesLauncher, clock: FakeClock) -> None:
    spec = make_spec("dga-1.0-aaaaaaaaaa")
    launcher.start(spec)
    name = pod_name(spec.instance_id)

    emulator.patch_pod(NAMESPACE, name, {"status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}]}})
    assert by_id(launcher)[spec.instance_id].state is InstanceState.STARTING

    clock.advance(3)
    emulator.patch_pod(NAMESPACE, name, READY)
    inst = by_id(launcher)[spec.instance_id]
    assert inst.state is InstanceState.RUNNING and inst.running_since == clock.monotonic()
    clock.advance(5)
    assert by_id(launcher)[spec.instance_id].running_since == clock.monotonic() - 5  # first seen ready


def test_stop_deletes_the_pod_with_drain_plus_stop_grace(emulator: EmulatorThread,
                                                         launcher: KubernetesLauncher) -> None:
    spec = make_spec("dga-1.0-bbbbbbbbbb", drain_seconds=0.5, stop_grace=4.0)
    launcher.start(spec)
    name = pod_name(spec.instance_id)
    emulator.patch_pod(NAMESPACE, name, READY)
    # kmock deletes at once unless a finalizer holds the pod: that is how a pod in its grace
    # period (deletionTimestamp set, still listed) is emulated.
    emulator.patch_pod(NAMESPACE, name, {"metadata": {"finalizers": ["test/hold"]}})

    launcher.stop(spec.instance_id)
    [delete] = emulator.requests(kmock.action.DELETE)
    assert delete.name == name
    assert delete.params["gracePeriodSeconds"] == str(math.ceil(0.5 + 4.0) + KILL_MARGIN_SECONDS)
    launcher.stop(spec.instance_id)  # asked already: nothing more
    assert len(emulator.requests(kmock.action.DELETE)) == 1

    inst = by_id(launcher)[spec.instance_id]
    assert inst.state is InstanceState.STOPPING and inst.stop_requested

    emulator.patch_pod(NAMESPACE, name, {"metadata": {"finalizers": None}})  # termination ends
    emulator.call(lambda e: e.objects["v1/pods", NAMESPACE, name].delete())
    inst = by_id(launcher)[spec.instance_id]
    assert inst.state is InstanceState.EXITED and inst.stop_requested and inst.reason is None

    launcher.forget(spec.instance_id)
    assert launcher.instances() == []
    assert emulator.pods(NAMESPACE) == {}


def test_stop_of_a_pod_that_is_gone_already_is_fine(emulator: EmulatorThread, launcher: KubernetesLauncher) -> None:
    spec = make_spec("dga-1.0-cccccccccc")
    launcher.start(spec)
    emulator.call(lambda e: e.objects["v1/pods", NAMESPACE, pod_name(spec.instance_id)].delete())
    launcher.stop(spec.instance_id)  # 404 from the API
    [inst] = launcher.instances()
    assert inst.state is InstanceState.EXITED and inst.stop_requested and inst.reason is None


def test_fresh_launcher_adopts_existing_pods(emulator: EmulatorThread, make_launcher: LauncherFactory,
                                             clock: FakeClock) -> None:
    first = make_launcher()
    specs = [make_spec(f"dga-1.0-{n:010x}") for n in range(2)] + [make_spec("iris-2-0000000001", name="iris",
                                                                            version="2")]
    for spec in specs:
        first.start(spec)
    emulator.patch_pod(NAMESPACE, pod_name(specs[0].instance_id), READY)
    creates = len(emulator.requests(kmock.action.CREATE))

    second = make_launcher()  # a controller that just became the leader
    second.resync()
    instances = {i.instance_id: i for i in second.instances()}
    assert set(instances) == {s.instance_id for s in specs}
    assert instances[specs[0].instance_id].state is InstanceState.RUNNING
    assert instances[specs[0].instance_id].running_since == clock.monotonic()
    assert instances[specs[2].instance_id].key == ("iris", "2")
    assert len(emulator.requests(kmock.action.CREATE)) == creates  # nothing started twice

    # The adopted instances are fully managed: stop and forget work on them.
    second.stop(specs[1].instance_id)
    assert pod_name(specs[1].instance_id) not in emulator.pods(NAMESPACE)


def test_adopted_pod_being_deleted_counts_as_a_requested_stop(emulator: EmulatorThread,
                                                              make_launcher: LauncherFactory) -> None:
    first = make_launcher()
    spec = make_spec("dga-1.0-dddddddddd")
    first.start(spec)
    name = pod_name(spec.instance_id)
    emulator.patch_pod(NAMESPACE, name, {"metadata": {"finalizers": ["test/hold"]}})
    first.stop(spec.instance_id)  # the old leader's stop; then it dies

    second = make_launcher()
    second.resync()
    [inst] = second.instances()
    assert inst.state is InstanceState.STOPPING and inst.stop_requested


def test_instances_adopts_pods_it_did_not_create(emulator: EmulatorThread, make_launcher: LauncherFactory) -> None:
    """A pod whose creation answer was lost (or made by a previous leader after resync) is not
    leaked: the next listing adopts it."""
    other = make_launcher()
    spec = make_spec("dga-1.0-eeeeeeeeee")
    other.start(spec)
    launcher = make_launcher()
    launcher.resync()
    spec2 = make_spec("dga-1.0-ffffffffff")
    other.start(spec2)
    assert {i.instance_id for i in launcher.instances()} == {spec.instance_id, spec2.instance_id}


def test_pods_without_our_labels_or_spec_are_ignored(emulator: EmulatorThread, launcher: KubernetesLauncher) -> None:
    # kmock ignores labelSelector, so the launcher's own label check is what keeps these out here.
    emulator.put_pod(NAMESPACE, "someone-else", {"metadata": {"name": "someone-else", "namespace": NAMESPACE,
                                                              "labels": {"app": "web"}}})
    emulator.put_pod(NAMESPACE, "broken", {"metadata": {
        "name": "broken", "namespace": NAMESPACE,
        "labels": {"app.kubernetes.io/name": "maas-instance", "maas.apache.org/managed-by": "maas-controller"},
        "annotations": {ANNOTATION_SPEC: json.dumps({"instance_id": "x"})}}})
    launcher.resync()
    assert launcher.instances() == []
    spec = make_spec("dga-1.0-0123456789")
    launcher.start(spec)
    assert [i.instance_id for i in launcher.instances()] == [spec.instance_id]


def test_pod_deleted_behind_the_controllers_back_is_a_failure(emulator: EmulatorThread,
                                                              launcher: KubernetesLauncher) -> None:
    spec = make_spec("dga-1.0-1111111111")
    launcher.start(spec)
    name = pod_name(spec.instance_id)
    emulator.patch_pod(NAMESPACE, name, READY)
    launcher.instances()
    # e.g. preempted by the scheduler: Kubernetes marks the pod, then deletes it.
    emulator.patch_pod(NAMESPACE, name, {
        "metadata": {"deletionTimestamp": "2025-01-01T00:00:00Z"},
        "status": {"conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                                   "message": "Preempted in order to admit critical pod"}]}})
    inst = by_id(launcher)[spec.instance_id]
    assert inst.state is InstanceState.STOPPING and not inst.stop_requested
    emulator.call(lambda e: e.objects["v1/pods", NAMESPACE, name].delete())
    inst = by_id(launcher)[spec.instance_id]
    assert inst.state is InstanceState.EXITED and not inst.stop_requested
    assert inst.reason == "PreemptionByScheduler: Preempted in order to admit critical pod"


def test_close_keeps_the_pods(emulator: EmulatorThread, make_launcher: LauncherFactory) -> None:
    launcher = make_launcher()
    launcher.start(make_spec("dga-1.0-2222222222"))
    launcher.close()
    assert len(emulator.pods(NAMESPACE)) == 1
