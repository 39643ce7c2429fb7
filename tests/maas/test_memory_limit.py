"""``-m MB`` on the local launcher: each instance's service runs in a memory cgroup of that size
(where the machine lets the runner make one), and a service killed for going over says so."""

from __future__ import annotations

import uuid
from pathlib import Path

import psutil
import pytest

from maas import memlimit
from maas.retry import wait_until
from tests.cluster import Cluster

pytestmark = [pytest.mark.zk, pytest.mark.e2e]


def _enforceable() -> tuple[bool, str]:
    cgroup, note = memlimit.create(f"probe-{uuid.uuid4().hex[:8]}", 64)
    if cgroup is not None:
        cgroup.remove()
    return cgroup is not None, note


ENFORCEABLE, NOTE = _enforceable()


def test_no_limit_asked_makes_no_cgroup() -> None:
    assert memlimit.create("x", 0) == (None, "no memory limit asked (-m 0)")


def test_where_no_cgroup_can_be_made_the_reason_is_given() -> None:
    if ENFORCEABLE:
        assert NOTE.startswith("memory limit 64 MB (cgroup v")
    else:
        assert "not enforced by the runner" in NOTE


def test_without_a_memory_cgroup_the_note_says_only_a_container_limit_applies(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memlimit, "CGROUP_MOUNT", tmp_path)  # a machine with no cgroup file systems
    cgroup, note = memlimit.create("x", 128)
    assert cgroup is None
    assert note == ("memory limit 128 MB not enforced by the runner (no writable memory cgroup on this machine); "
                    "only a container's own limit (a Kubernetes pod's) applies")


@pytest.mark.skipif(not ENFORCEABLE, reason=f"memory cgroups are not writable here: {NOTE}")
def test_an_instance_runs_in_a_cgroup_of_its_memory_size(cluster: Cluster) -> None:
    cluster.deploy("echo", "-mo", "ADD", "-n", "echo", "-v", "1", "-m", "200", "-hmp", "/models/echo/1", "--wait")
    port = next(iter(cluster.registrations("echo").values()))["port"]
    service = psutil.Process(cluster.service_pid(port))
    line = next(l for l in Path(f"/proc/{service.pid}/cgroup").read_text().splitlines()
                if ":memory:" in l or l.startswith("0::"))
    assert "/maas-echo-1-" in line
    cgroup_dir = next(p for p in (Path("/sys/fs/cgroup/memory") / line.split(":", 2)[2].lstrip("/"),
                                  Path("/sys/fs/cgroup") / line.split(":", 2)[2].lstrip("/")) if p.is_dir())
    limit_file = cgroup_dir / ("memory.limit_in_bytes" if (cgroup_dir / "memory.limit_in_bytes").exists() else "memory.max")
    assert int(limit_file.read_text()) == 200 << 20
    # A runner killed outright cannot remove its cgroup: the launcher does, when it forgets it.
    runner = next(p for p in cluster.runner_processes() if "maas.runner" in " ".join(p.cmdline()))
    killed = set(cluster.registrations("echo"))
    runner.kill()
    wait_until(lambda: not cgroup_dir.exists(), timeout=30, what="the killed instance's cgroup to be removed")
    wait_until(lambda: len(cluster.registrations("echo")) == 1 and not set(cluster.registrations("echo")) & killed,
               timeout=60, what="the replacement instance (and the killed one's registration gone)")
    port = next(iter(cluster.registrations("echo").values()))["port"]
    line = next(l for l in Path(f"/proc/{cluster.service_pid(port)}/cgroup").read_text().splitlines()
                if ":memory:" in l or l.startswith("0::"))
    replacement = cgroup_dir.parent / Path(line.split(":", 2)[2]).name
    cluster.maas_deploy("-mo", "REMOVE", "-n", "echo", "-v", "1", "--wait")
    wait_until(lambda: not replacement.exists(), timeout=15, what="the removed instance's cgroup to go")


@pytest.mark.skipif(not ENFORCEABLE, reason=f"memory cgroups are not writable here: {NOTE}")
def test_a_service_over_its_limit_fails_naming_the_limit(cluster: Cluster) -> None:
    result = cluster.deploy("hog", "-mo", "ADD", "-n", "hog", "-v", "1", "-m", "64", "-hmp", "/models/hog/1", "--wait",
                            check=False)
    assert result.returncode == 7, result.stdout + result.stderr
    assert "was killed for going over its memory limit of 64 MB (-m)" in result.stderr
    assert "Rolled back: hog@1 is desired at 0 instance(s)." in result.stderr
