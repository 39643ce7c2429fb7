"""The memory limit of a local instance (``maas_deploy -m MB``): a memory cgroup holding the
payload's service and everything it starts.

The runner makes a cgroup for its instance *below its own* (so a limit the machine already puts
on the runner still applies), sets the limit, and the service's process joins it before its
script runs (in the child, before exec), so nothing it forks escapes it. When the kernel kills
the service for going over, :meth:`MemoryCgroup.oom_killed` says so and the instance's failure
reason names the limit. Both cgroup v1 (the ``memory`` hierarchy) and v2 (``memory.max``) are
handled; where neither is writable (not root, no memory controller delegated), :func:`create`
says why and the instance runs without a limit — only the Kubernetes launcher then enforces ``-m``.

Written here because no maintained Python library creates a nested cgroup for one child process
group across v1 and v2 without a systemd bus; it is a few file writes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

CGROUP_MOUNT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class MemoryCgroup:
    """One instance's memory cgroup."""

    path: Path
    version: int  # 1 or 2
    limit_mb: int

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def join(self) -> None:
        """Move the calling process into the cgroup (called in the service's child before exec)."""
        with open(self.procs, "w") as fh:
            fh.write(str(os.getpid()))

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the cgroup for going over the limit."""
        events = self.path / ("memory.events" if self.version == 2 else "memory.oom_control")
        try:
            for line in events.read_text().splitlines():
                key, _, count = line.partition(" ")
                if key == "oom_kill" and int(count or 0) > 0:
                    return True
        except (OSError, ValueError):
            return False
        return False

    def has_processes(self) -> bool:
        try:
            return bool(self.procs.read_text().split())
        except OSError:
            return False

    def remove(self) -> None:
        """Remove the (empty) cgroup; a cgroup that still holds processes is left for the kernel."""
        try:
            self.path.rmdir()
        except OSError:
            pass


def _own_cgroup(version: int, controller: str = "memory") -> str | None:
    """This process' cgroup path in the v1 ``controller`` hierarchy, or in the v2 hierarchy."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _id, controllers, path = line.split(":", 2)
        if version == 2 and _id == "0" and controllers == "":
            return path
        if version == 1 and controller in controllers.split(","):
            return path
    return None


def _v2_root() -> Path | None:
    for candidate in (CGROUP_MOUNT, CGROUP_MOUNT / "unified"):
        try:
            if "memory" in (candidate / "cgroup.controllers").read_text().split():
                return candidate
        except OSError:
            continue
    return None


def create(name: str, limit_mb: int) -> tuple[MemoryCgroup | None, str]:
    """A cgroup ``name`` limited to ``limit_mb`` MB below this process' own, and a sentence for the
    log; (None, why) when no limit can be set here (or ``limit_mb`` is 0: no limit asked)."""
    if limit_mb <= 0:
        return None, "no memory limit asked (-m 0)"
    limit = str(limit_mb << 20)
    problems = []
    v1 = _own_cgroup(1)
    if v1 is not None and (CGROUP_MOUNT / "memory").is_dir():
        path = CGROUP_MOUNT / "memory" / v1.lstrip("/") / f"maas-{name}"
        try:
            path.mkdir(exist_ok=True)
            (path / "memory.limit_in_bytes").write_text(limit)
            swap = path / "memory.memsw.limit_in_bytes"
            if swap.exists():  # no swapping past the limit either
                try:
                    swap.write_text(limit)
                except OSError:
                    pass
            return MemoryCgroup(path, 1, limit_mb), f"memory limit {limit_mb} MB (cgroup v1 {path})"
        except OSError as exc:
            problems.append(f"cgroup v1: {exc.strerror or exc}")
            _rmdir(path)
    root = _v2_root()
    v2 = _own_cgroup(2)
    if root is not None and v2 is not None:
        parent = root / v2.lstrip("/")
        path = parent / f"maas-{name}"
        try:
            if "memory" not in (parent / "cgroup.subtree_control").read_text().split():
                (parent / "cgroup.subtree_control").write_text("+memory")
            path.mkdir(exist_ok=True)
            (path / "memory.max").write_text(limit)
            if (path / "memory.swap.max").exists():  # no swapping past the limit either
                (path / "memory.swap.max").write_text("0")
            return MemoryCgroup(path, 2, limit_mb), f"memory limit {limit_mb} MB (cgroup v2 {path})"
        except OSError as exc:
            problems.append(f"cgroup v2: {exc.strerror or exc}")
            _rmdir(path)
    if not problems:
        problems.append("no writable memory cgroup on this machine")
    return None, (f"memory limit {limit_mb} MB not enforced by the runner ({'; '.join(problems)}); "
                  "only a container's own limit (a Kubernetes pod's) applies")


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass


def remove_left(path: str | None, wait: float = 1.0) -> None:
    """Remove an instance's cgroup left by a runner that died (its processes just killed leave it
    a moment later); only directories this module names (``maas-…``) are touched."""
    if not path or not Path(path).name.startswith("maas-"):
        return
    cgroup = Path(path)
    deadline = time.monotonic() + wait
    while cgroup.exists():
        try:
            cgroup.rmdir()
            return
        except OSError:
            if time.monotonic() >= deadline:
                return
            time.sleep(0.05)
