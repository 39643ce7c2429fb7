"""The pod the launcher builds, without an API server: names and labels are always valid, the
manifest passes the Kubernetes schema (kubernetes-validate --strict) and the restricted Pod
Security Standard, and pod statuses map to instance states as documented."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kubernetes import client as k8s

from maas.instance import InstanceState
from maas.launcher.kubernetes import (
    build_pod,
    cpu_quantity,
    grace_seconds,
    label_value,
    observe_pod,
    pod_name,
)
from maas.runner import STATUS_FILE, Runner
from tests.kubernetes.conftest import make_spec
from tests.kubernetes.test_manifests import KUBERNETES_VERSIONS

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

ids = st.text(min_size=1, max_size=120)


@given(ids)
def test_pod_names_are_dns_labels(instance_id: str) -> None:
    name = pod_name(instance_id)
    assert DNS_LABEL.match(name) and len(name) <= 63


@given(ids, ids)
def test_distinct_ids_get_distinct_pods(a: str, b: str) -> None:
    if a != b:
        assert pod_name(a) != pod_name(b)


def test_a_clean_id_is_its_own_pod_name() -> None:
    assert pod_name("dga-v2-0123456789") == "dga-v2-0123456789"
    assert pod_name("dga-1.0-0123456789").startswith("dga-1-0-0123456789-")


@given(ids)
def test_label_values_are_valid(value: str) -> None:
    label = label_value(value)
    assert LABEL_VALUE.match(label) and len(label) <= 63


def test_label_values_keep_ordinary_names() -> None:
    assert label_value("dga") == "dga" and label_value("1.0") == "1.0"
    assert label_value("dga-1.0-0123456789") == "dga-1.0-0123456789"


def test_quantities_and_grace() -> None:
    assert cpu_quantity(0.5) == "500m" and cpu_quantity(2) == "2000m" and cpu_quantity(0.0001) == "1m"
    assert grace_seconds(make_spec("x", drain_seconds=0.5, stop_grace=10)) == 13


def pod_dict(secret: str | None = None, **spec_fields: Any) -> dict[str, Any]:
    pod = build_pod(make_spec("dga-1.0-0123456789", **spec_fields), namespace="maas", image="maas:test",
                    secret=secret)
    body: dict[str, Any] = k8s.ApiClient().sanitize_for_serialization(pod)  # type: ignore[no-untyped-call]
    return body


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("fields", [{}, {"cpu": 1.5, "memory": 2048}, {"memory": 0}],
                         ids=["default", "cpu", "no-memory"])
def test_pod_manifest_passes_the_schema(version: str, fields: dict[str, Any]) -> None:
    kubernetes_validate.validate(pod_dict(**fields), version, strict=True)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_a_secret_is_mounted_read_only_for_the_credential_paths(version: str) -> None:
    pod = pod_dict(secret="maas-instance-secrets", zk_auth_file="/etc/maas/secrets/zk.json",
                   model_token_file="/etc/maas/secrets/model.token")
    kubernetes_validate.validate(pod, version, strict=True)
    [container] = pod["spec"]["containers"]
    assert {"name": "secrets", "mountPath": "/etc/maas/secrets", "readOnly": True} in container["volumeMounts"]
    assert {"name": "secrets", "secret": {"secretName": "maas-instance-secrets", "defaultMode": 0o440}} \
        in pod["spec"]["volumes"]
    assert "secrets" not in json.dumps(pod_dict()["spec"]["volumes"])


def test_no_memory_means_no_limit() -> None:
    assert pod_dict(memory=0)["spec"]["containers"][0]["resources"] == {}


def test_pod_meets_the_restricted_pod_security_standard() -> None:
    pod = pod_dict()
    spec = pod["spec"]
    [container] = spec["containers"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert spec["automountServiceAccountToken"] is False
    assert not any(key in spec for key in ("hostNetwork", "hostPID", "hostIPC"))
    assert all("emptyDir" in volume or "secret" in volume for volume in spec["volumes"])


# -- status mapping, one pod at a time -----------------------------------------------------------
def pod(status: dict[str, Any] | None = None, deleting: bool = False) -> k8s.V1Pod:
    body: dict[str, Any] = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    if deleting:
        body["metadata"]["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    if status is not None:
        body["status"] = status
    parsed = k8s.V1Pod.from_dict(body)
    assert parsed is not None
    return parsed


def runner(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": "runner", "ready": False, "restartCount": 0, "image": "i", "imageID": "", "state": state}]


@pytest.mark.parametrize(
    ("status", "deleting", "state", "reason"),
    [
        (None, False, InstanceState.STARTING, None),
        ({"phase": "Pending"}, False, InstanceState.STARTING, None),
        ({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}, False,
         InstanceState.STARTING, None),
        ({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}, False,
         InstanceState.RUNNING, None),
        ({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}, True,
         InstanceState.STOPPING, None),
        ({"phase": "Failed", "containerStatuses": runner({"terminated": {"reason": "OOMKilled", "exitCode": 137}})},
         False, InstanceState.EXITED, "OOMKilled (exit code 137)"),
        ({"phase": "Failed", "containerStatuses": runner({"terminated": {"reason": "Error", "exitCode": 3,
                                                                         "message": "x" * 500}})},
         False, InstanceState.EXITED, "Error (exit code 3): …" + "x" * 300),
        ({"phase": "Failed", "reason": "DeadlineExceeded"}, False, InstanceState.EXITED, "DeadlineExceeded"),
        ({"phase": "Failed"}, False, InstanceState.EXITED, "pod Failed"),
        ({"phase": "Pending", "containerStatuses": runner({"waiting": {"reason": "ErrImagePull"}})}, False,
         InstanceState.EXITED, "ErrImagePull"),
        ({"phase": "Pending", "containerStatuses": runner({"waiting": {"reason": "InvalidImageName",
                                                                       "message": "bad ref"}})},
         False, InstanceState.EXITED, "InvalidImageName: bad ref"),
    ],
)
def test_observe_pod(status: dict[str, Any] | None, deleting: bool, state: InstanceState, reason: str | None) -> None:
    seen = observe_pod(pod(status, deleting), pending_for=0.0, pending_timeout=300.0)
    assert seen.state is state
    assert seen.reason == reason


def test_only_pods_that_will_not_start_are_doomed() -> None:
    stuck = pod({"phase": "Pending", "containerStatuses": runner({"waiting": {"reason": "ImagePullBackOff"}})})
    assert observe_pod(stuck, pending_for=0, pending_timeout=300).doomed
    failed = pod({"phase": "Failed"})
    assert not observe_pod(failed, pending_for=0, pending_timeout=300).doomed  # its containers are gone
    pending = pod({"phase": "Pending"})
    assert not observe_pod(pending, pending_for=300, pending_timeout=300).doomed
    assert observe_pod(pending, pending_for=301, pending_timeout=300).doomed


@pytest.mark.parametrize(("state", "ready"), [("starting", False), ("running", True), ("stopping", False),
                                              ("failed", False)])
def test_readiness_probe_reads_what_the_runner_writes(tmp_path: Path, state: str, ready: bool) -> None:
    """The probe's grep against a status file written by the runner itself."""
    Runner(tmp_path, make_spec("dga-1.0-0123456789")).report(state, url="http://10.0.0.1:8080")
    command = pod_dict()["spec"]["containers"][0]["readinessProbe"]["exec"]["command"]
    assert command[-1] == f"/var/lib/maas/instance/{STATUS_FILE}"
    probe = subprocess.run([*command[:-1], str(tmp_path / STATUS_FILE)], check=False)
    assert (probe.returncode == 0) is ready
