"""The manifests under k8s/ pass ``kubernetes-validate --strict`` (offline JSON schemas of the
Kubernetes API): every resource file a kustomization lists, and, where ``kubectl`` is installed,
every kustomization rendered as ``kubectl kustomize`` renders it (overlays and patches applied).
Also: the controller's Role grants what the launcher calls and nothing more."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

K8S_DIR = Path(__file__).resolve().parents[2] / "k8s"
#: The newest Kubernetes kubernetes-validate knows offline, and an older one still common.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
KUBECTL = shutil.which("kubectl")


def kustomizations() -> list[Path]:
    return sorted(K8S_DIR.rglob("kustomization.yaml"))


def listed_files(kustomization: Path) -> list[Path]:
    """The files (not directories) a kustomization names as resources or patches."""
    data = yaml.safe_load(kustomization.read_text())
    names = [r for r in data.get("resources", [])]
    names += [p["path"] for p in data.get("patches", []) if isinstance(p, dict) and "path" in p]
    names += [p for p in data.get("patchesStrategicMerge", [])]
    paths = [(kustomization.parent / name).resolve() for name in names]
    return [p for p in paths if p.is_file()]


def resource_files() -> list[Path]:
    return sorted({p for k in kustomizations() for p in listed_files(k)})


def validate(path: Path) -> tuple[int, str]:
    args = [sys.executable, "-m", "kubernetes_validate", "--strict"]
    for version in KUBERNETES_VERSIONS:
        args += ["-k", version]
    proc = subprocess.run([*args, str(path)], capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def assert_valid(path: Path, label: str) -> None:
    code, output = validate(path)
    # kubernetes-validate exits 0 on a kind it has no schema for (a typo, or a kustomization)
    # and only warns: a WARN is a failure here.
    problems = [line for line in output.splitlines() if not line.startswith("INFO ")]
    assert code == 0 and not problems, f"{label}:\n{output}"
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    passed = len(re.findall(r"^INFO .* passed for resource", output, re.M))
    assert passed == len(documents) * len(KUBERNETES_VERSIONS), output


def test_there_are_manifests() -> None:
    assert {p.parent.relative_to(K8S_DIR).as_posix() for p in kustomizations()} >= {"base", "zookeeper"}
    assert len(resource_files()) >= 10


def test_every_manifest_is_listed_by_a_kustomization() -> None:
    """So that validating the listed files validates them all."""
    listed = set(resource_files())
    files = {p.resolve() for p in K8S_DIR.rglob("*.y*ml") if p.name != "kustomization.yaml"}
    assert files - listed == set()


@pytest.mark.parametrize("path", resource_files(), ids=lambda p: p.relative_to(K8S_DIR).as_posix())
def test_manifest_passes_kubernetes_validate_strict(path: Path) -> None:
    assert_valid(path, str(path))


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (renders kustomizations)")
@pytest.mark.parametrize("kustomization", kustomizations(), ids=lambda p: p.parent.relative_to(K8S_DIR).as_posix())
def test_rendered_kustomization_passes_kubernetes_validate_strict(kustomization: Path, tmp_path: Path) -> None:
    assert KUBECTL is not None
    rendered = subprocess.run([KUBECTL, "kustomize", str(kustomization.parent)], capture_output=True, text=True,
                              timeout=120)
    assert rendered.returncode == 0, rendered.stderr
    out = tmp_path / "rendered.yaml"
    out.write_text(rendered.stdout)
    assert_valid(out, f"kubectl kustomize {kustomization.parent}")


def test_the_validator_catches_mistakes(tmp_path: Path) -> None:
    """Guards the guard: an unknown field and an unknown kind both fail."""
    bad_field = tmp_path / "bad-field.yaml"
    bad_field.write_text("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: x\nautomount: true\n")
    assert validate(bad_field)[0] != 0
    bad_kind = tmp_path / "bad-kind.yaml"
    bad_kind.write_text("apiVersion: v1\nkind: Deploymnet\nmetadata:\n  name: x\n")
    code, output = validate(bad_kind)
    assert code != 0 or "WARN" in output


def test_the_controller_role_is_least_privilege() -> None:
    role = yaml.safe_load((K8S_DIR / "base" / "role.yaml").read_text())
    rules = {(tuple(r["apiGroups"]), tuple(r["resources"])): set(r["verbs"]) for r in role["rules"]}
    assert role["kind"] == "Role"  # namespaced: nothing outside its own namespace
    assert rules == {
        (("",), ("pods",)): {"get", "list", "watch", "create", "delete", "patch"},
        (("",), ("pods/log",)): {"get"},
    }
    # What the launcher calls is granted.
    source = (Path(__file__).resolve().parents[2] / "maas" / "launcher" / "kubernetes.py").read_text()
    calls = set(re.findall(r"self\.api\.(\w+)_namespaced_pod\(", source))
    assert calls == {"create", "list", "delete", "patch"}
    assert calls <= rules[(("",), ("pods",))]


def test_the_controller_has_a_liveness_probe_on_its_healthz() -> None:
    """The probe asks the port maas_service is told to serve /healthz on, on every interface, and
    the container's arguments are ones maas_service accepts."""
    from maas.cli import main as maas_service

    deployment = yaml.safe_load((K8S_DIR / "base" / "deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {"ZK_QUORUM": "zookeeper.maas.svc:2181", "POD_NAMESPACE": "maas", "RUNNER_IMAGE": "maas:0.1.0",
           "STORE_URI": "hdfs://maas@namenode:9870/maas/store"}
    args = [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], a) for a in container["args"]]
    ctx = maas_service.make_context("maas_service", args)
    assert ctx.params["metrics_host"] == "0.0.0.0"
    port = {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"]
    assert ctx.params["metrics_port"] == port
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz" and probe["port"] == "metrics"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
