"""API errors, injected with kmock's DSL: 409 on create means started, 404 on delete means gone,
5xx answers and timeouts are retried a bounded number of times, and whatever still fails comes
out as a LauncherError naming the status and the API's message — never as a client exception."""

from __future__ import annotations

import asyncio

import kmock
import pytest
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from maas.errors import LauncherError
from maas.instance import InstanceState
from maas.launcher.kubernetes import KubernetesLauncher, pod_name
from tests.kubernetes.conftest import NAMESPACE, LauncherFactory, make_spec
from tests.kubernetes.emulator import EmulatorThread

FORBIDDEN = kmock.KubernetesError(
    status=403, reason="Forbidden",
    message='pods is forbidden: User "system:serviceaccount:maas:maas-controller" cannot create resource '
            '"pods" in API group "" in the namespace "maas"')
UNAVAILABLE = kmock.KubernetesError(status=500, reason="InternalError",
                                    message="etcdserver: request timed out")


def slow(seconds: float):  # type: ignore[no-untyped-def]
    async def answer_late() -> None:
        await asyncio.sleep(seconds)

    return answer_late


def test_409_on_create_means_started(emulator: EmulatorThread, launcher: KubernetesLauncher) -> None:
    spec = make_spec("dga-1.0-0000000409")
    # The pod exists already (an earlier attempt whose answer was lost).
    other = KubernetesLauncher(emulator.api_client(), namespace=NAMESPACE, image="img")
    other.start(spec)
    launcher.start(spec)
    assert [i.instance_id for i in launcher.instances()] == [spec.instance_id]
    assert len(emulator.pods(NAMESPACE)) == 1


def test_500_on_create_is_retried(emulator: EmulatorThread, launcher: KubernetesLauncher) -> None:
    emulator.fail(kmock.action.CREATE, UNAVAILABLE, times=1)
    spec = make_spec("dga-1.0-0000000500")
    launcher.start(spec)
    # kmock stores the pod even though it answered 500 (like an API server whose etcd write
    # committed after the client gave up); the retry gets 409, which counts as started.
    assert len(emulator.requests(kmock.action.CREATE)) == 2
    assert list(emulator.pods(NAMESPACE)) == [pod_name(spec.instance_id)]
    [inst] = launcher.instances()
    assert inst.instance_id == spec.instance_id and inst.state is InstanceState.STARTING


def test_500s_on_list_are_retried_then_succeed(emulator: EmulatorThread, launcher: KubernetesLauncher) -> None:
    launcher.start(make_spec("dga-1.0-0000000501"))
    emulator.fail(kmock.action.LIST, UNAVAILABLE, times=2)
    before = len(emulator.requests(kmock.action.LIST))
    assert len(launcher.instances()) == 1
    assert len(emulator.requests(kmock.action.LIST)) - before == 3


def test_persistent_500_is_a_launcher_error_after_bounded_attempts(emulator: EmulatorThread,
                                                                   launcher: KubernetesLauncher) -> None:
    emulator.fail(kmock.action.LIST, UNAVAILABLE, times=100)
    with pytest.raises(LauncherError) as caught:
        launcher.instances()
    assert "500" in str(caught.value) and "etcdserver: request timed out" in str(caught.value)
    assert isinstance(caught.value.__cause__, ApiException)
    assert len(emulator.requests(kmock.action.LIST)) == launcher.attempts == 3


def test_403_is_reported_at_once(emulator: EmulatorThread, launcher: KubernetesLauncher) -> None:
    emulator.fail(kmock.action.CREATE, FORBIDDEN, times=100)
    with pytest.raises(LauncherError) as caught:
        launcher.start(make_spec("dga-1.0-0000000403"))
    text = str(caught.value)
    assert "403 Forbidden" in text and 'cannot create resource "pods"' in text
    assert isinstance(caught.value.__cause__, ApiException)
    assert len(emulator.requests(kmock.action.CREATE)) == 1  # not retried


def test_403_on_list_is_a_launcher_error(emulator: EmulatorThread, launcher: KubernetesLauncher) -> None:
    emulator.fail(kmock.action.LIST, kmock.KubernetesError(status=403, reason="Forbidden",
                                                           message="pods is forbidden"), times=1)
    with pytest.raises(LauncherError, match="403 Forbidden: pods is forbidden"):
        launcher.instances()


def test_404_on_delete_is_fine(emulator: EmulatorThread, launcher: KubernetesLauncher) -> None:
    spec = make_spec("dga-1.0-0000000404")
    launcher.start(spec)
    emulator.fail(kmock.action.DELETE, kmock.KubernetesError(status=404, reason="NotFound",
                                                             message="pods not found"), times=1)
    launcher.stop(spec.instance_id)
    [inst] = launcher.instances()
    assert inst.stop_requested


def test_403_on_delete_is_a_launcher_error_and_the_stop_can_be_repeated(emulator: EmulatorThread,
                                                                        launcher: KubernetesLauncher) -> None:
    spec = make_spec("dga-1.0-1000000403")
    launcher.start(spec)
    name = pod_name(spec.instance_id)
    emulator.patch_pod(NAMESPACE, name, {"metadata": {"finalizers": ["test/hold"]}})
    emulator.fail(kmock.action.DELETE, kmock.KubernetesError(status=403, reason="Forbidden",
                                                             message="pods is forbidden"), times=1)
    with pytest.raises(LauncherError, match="403"):
        launcher.stop(spec.instance_id)
    [inst] = launcher.instances()
    assert not inst.stop_requested  # not recorded as asked: the controller may ask again
    launcher.stop(spec.instance_id)
    [inst] = launcher.instances()
    assert inst.stop_requested and inst.state is InstanceState.STOPPING


def test_a_timeout_is_retried(emulator: EmulatorThread, make_launcher: LauncherFactory) -> None:
    launcher = make_launcher(request_timeout=0.3)
    launcher.start(make_spec("dga-1.0-00000000t0"))
    emulator.fail(kmock.action.LIST, slow(2.0), times=1)
    before = len(emulator.requests(kmock.action.LIST))
    assert len(launcher.instances()) == 1
    assert len(emulator.requests(kmock.action.LIST)) - before == 2


def test_persistent_timeouts_are_a_launcher_error(emulator: EmulatorThread, make_launcher: LauncherFactory) -> None:
    launcher = make_launcher(request_timeout=0.2)
    emulator.fail(kmock.action.LIST, slow(2.0), times=100)
    with pytest.raises(LauncherError, match="unreachable.*timed out") as caught:
        launcher.instances()
    assert isinstance(caught.value.__cause__, HTTPError)
    assert len(emulator.requests(kmock.action.LIST)) == launcher.attempts


def test_unreachable_api(emulator: EmulatorThread, make_launcher: LauncherFactory) -> None:
    launcher = make_launcher()
    emulator.stop()
    with pytest.raises(LauncherError, match="unreachable"):
        launcher.start(make_spec("dga-1.0-00000000c0"))
    with pytest.raises(LauncherError, match="unreachable"):
        launcher.instances()
    launcher.resync()  # logs and defers adoption to the next listing; never raises


def test_resync_during_an_outage_adopts_on_the_next_listing(emulator: EmulatorThread,
                                                            make_launcher: LauncherFactory) -> None:
    make_launcher().start(make_spec("dga-1.0-00000000r0"))
    launcher = make_launcher()
    emulator.fail(kmock.action.LIST, UNAVAILABLE, times=3)
    launcher.resync()
    assert [i.instance_id for i in launcher.instances()] == ["dga-1.0-00000000r0"]


def test_forget_whose_delete_fails_is_retried_by_the_next_forget(emulator: EmulatorThread,
                                                                  launcher: KubernetesLauncher) -> None:
    spec = make_spec("dga-1.0-00000000f0")
    launcher.start(spec)
    name = pod_name(spec.instance_id)
    emulator.patch_pod(NAMESPACE, name, {"status": {"phase": "Pending", "containerStatuses": [{
        "name": "runner", "ready": False, "restartCount": 0, "image": "img", "imageID": "",
        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}}]}})
    [inst] = launcher.instances()
    assert inst.state is InstanceState.EXITED
    # kmock applies the deletion before the injected error answers, so hold the pod with a
    # finalizer to emulate a delete that did not happen.
    emulator.patch_pod(NAMESPACE, name, {"metadata": {"finalizers": ["test/hold"]}})
    emulator.fail(kmock.action.DELETE, UNAVAILABLE, times=launcher.attempts)
    with pytest.raises(LauncherError):
        launcher.forget(spec.instance_id)
    emulator.patch_pod(NAMESPACE, name, {"metadata": {"deletionTimestamp": None}})  # it did not happen
    # Reported once more as a requested stop (no second failure counted), for the plan to forget
    # again: the executor, not the observation, retries the deletion.
    [again] = launcher.instances()
    assert (again.instance_id, again.state, again.stop_requested) == (spec.instance_id, InstanceState.EXITED, True)
    emulator.patch_pod(NAMESPACE, name, {"metadata": {"finalizers": []}})
    launcher.forget(spec.instance_id)
    assert launcher.instances() == []
