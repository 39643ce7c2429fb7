"""``KubernetesLauncher.from_settings``: a kubeconfig file when ``settings.kubeconfig`` is set,
the in-cluster service account otherwise, and a ConfigError (not a client exception) when
neither can be loaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from maas.config import MaasConfig
from maas.errors import ConfigError
from maas.launcher.factory import make_launcher
from maas.launcher.kubernetes import KubernetesLauncher
from maas.settings import ServiceSettings
from tests.kubernetes.conftest import IMAGE, NAMESPACE, make_spec
from tests.kubernetes.emulator import EmulatorThread

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
  - name: kmock
    cluster: {{server: "{url}"}}
users:
  - name: tester
    user: {{token: not-a-secret}}
contexts:
  - name: kmock
    context: {{cluster: kmock, user: tester, namespace: {namespace}}}
current-context: kmock
"""


def settings(**extra: object) -> ServiceSettings:
    return ServiceSettings(zk_quorum="zookeeper.maas.svc:2181", k8s_namespace=NAMESPACE, k8s_image=IMAGE,
                           **extra)


def test_from_a_kubeconfig_file(emulator: EmulatorThread, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG.format(url=emulator.url, namespace=NAMESPACE))
    launcher = make_launcher(MaasConfig(launcher="kubernetes"), settings(kubeconfig=kubeconfig))
    assert isinstance(launcher, KubernetesLauncher)
    try:
        launcher.start(make_spec("dga-1.0-0000000001"))
        assert [i.instance_id for i in launcher.instances()] == ["dga-1.0-0000000001"]
        [create] = [r for r in emulator.requests() if r.method.value == "POST"]
        assert create.headers.get("Authorization") == "Bearer not-a-secret"
        assert launcher.api_client.configuration.retries is False  # maas.retry is the only retry layer
    finally:
        launcher.close()


def test_missing_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load Kubernetes configuration"):
        KubernetesLauncher.from_settings(settings(kubeconfig=tmp_path / "nope"))


def test_outside_a_cluster_without_kubeconfig_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    with pytest.raises(ConfigError, match="in-cluster service account"):
        KubernetesLauncher.from_settings(settings())
