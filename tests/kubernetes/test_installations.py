"""Against the kmock emulator: installations sharing a namespace keep to their own pods, ended
pods are kept (bounded) for their logs, and instances are health-probed at their registered URL."""

from __future__ import annotations

import time

import pytest
from kazoo.client import KazooClient

from maas.config import MaasConfig
from maas.controller.service import Controller
from maas.instance import InstanceState
from maas.launcher.kubernetes import LABEL_EXITED, pod_name
from maas.registration import Endpoint
from maas.retry import wait_until
from maas.settings import ServiceSettings
from maas.zk import Layout, installation_id
from tests.kubernetes.conftest import NAMESPACE, LauncherFactory, make_spec
from tests.kubernetes.emulator import EmulatorThread

READY = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
ENDED = {"status": {"phase": "Failed", "containerStatuses": [{
    "name": "runner", "ready": False, "restartCount": 0, "image": "img", "imageID": "",
    "state": {"terminated": {"reason": "Error", "exitCode": 3}}}]}}


def test_two_installations_in_one_namespace_never_touch_each_others_pods(
        emulator: EmulatorThread, make_launcher: LauncherFactory) -> None:
    ours, theirs = make_launcher(installation="a" * 32), make_launcher(installation="b" * 32)
    ours.start(make_spec("dga-1.0-000000000a"))
    theirs.start(make_spec("dga-1.0-000000000b"))
    fresh_ours = make_launcher(installation="a" * 32)
    fresh_ours.resync()
    assert [i.instance_id for i in fresh_ours.instances()] == ["dga-1.0-000000000a"]
    assert [i.instance_id for i in theirs.instances()] == ["dga-1.0-000000000b"]
    # A model removed in one installation stops its pods only.
    fresh_ours.stop("dga-1.0-000000000b")  # not ours: nothing happens
    assert pod_name("dga-1.0-000000000b") in emulator.pods(NAMESPACE)


def test_installation_id_is_created_once(zk: KazooClient) -> None:
    layout = Layout.from_config(MaasConfig())
    first = installation_id(zk, layout)
    assert len(first) == 32 and installation_id(zk, layout) == first


def test_kept_ended_pods_are_bounded_per_model(emulator: EmulatorThread, make_launcher: LauncherFactory) -> None:
    launcher = make_launcher(keep_exited=2)
    for n in range(4):
        spec = make_spec(f"dga-1.0-{n:010x}")
        launcher.start(spec)
        emulator.patch_pod(NAMESPACE, pod_name(spec.instance_id), ENDED)
        [inst] = launcher.instances()
        assert inst.state is InstanceState.EXITED
        launcher.forget(spec.instance_id)
        time.sleep(0.01)
    other = make_spec("other-1-0000000000", name="other", version="1")  # another model's are its own
    launcher.start(other)
    emulator.patch_pod(NAMESPACE, pod_name(other.instance_id), ENDED)
    launcher.instances()
    launcher.forget(other.instance_id)
    kept = {name for name, pod in emulator.pods(NAMESPACE).items() if pod["metadata"]["labels"].get(LABEL_EXITED)}
    assert kept == {pod_name("dga-1.0-0000000002"), pod_name("dga-1.0-0000000003"), pod_name(other.instance_id)}


def test_pods_are_health_probed_at_their_registered_url(emulator: EmulatorThread, make_launcher: LauncherFactory,
                                                        zk: KazooClient) -> None:
    launcher = make_launcher()
    spec = make_spec("dga-1.0-00000000c0")
    launcher.start(spec)
    emulator.patch_pod(NAMESPACE, pod_name(spec.instance_id), READY)
    layout = Layout.from_config(MaasConfig())
    layout.ensure(zk)
    # What the runner in the pod registers: the pod IP and the port it chose.
    url = "http://10.244.1.7:31337"
    zk.create(layout.registration("dga", spec.instance_id),
              Endpoint("dga", "1.0", spec.instance_id, url, container_id=spec.instance_id).to_json(),
              ephemeral=True, makepath=True)
    settings = ServiceSettings(zk_quorum="unused:1", k8s_namespace=NAMESPACE)
    controller = Controller(zk, MaasConfig(), launcher, settings)
    try:
        def probed() -> bool:
            (inst,) = controller._observe()
            return inst.url == url and controller.prober._targets == {spec.instance_id: url}

        wait_until(probed, timeout=10, what="the registered URL to be probed")
    finally:
        controller.stop()


def test_pods_from_before_the_installation_label_are_adopted_by_their_own_installation(
        emulator: EmulatorThread, make_launcher: LauncherFactory) -> None:
    from maas.launcher.kubernetes import LABEL_INSTALLATION, build_pod

    legacy = make_spec("dga-1.0-00000000l0")  # zk_quorum and config_path of the fixtures' launcher
    stranger = make_spec("dga-1.0-00000000l1").model_copy(update={"zk_quorum": "other-zk:2181"})
    for spec in (legacy, stranger):
        pod = emulator.api_client().sanitize_for_serialization(build_pod(spec, namespace=NAMESPACE, image="img"))
        assert LABEL_INSTALLATION not in pod["metadata"]["labels"]
        emulator.put_pod(NAMESPACE, pod["metadata"]["name"], pod)
    launcher = make_launcher()
    launcher.resync()
    assert [i.instance_id for i in launcher.instances()] == [legacy.instance_id]
