"""The local launcher: each instance is a runner process (``python -m maas.runner``) on this
machine, with its own directory ``<work_root>/instances/<instanceId>/`` holding the spec, the
runner's status file, logs and the payload's working copy.

Runners live in their own sessions, so they survive a controller restart; a new launcher on the
same work root adopts the runners it finds alive instead of starting new ones. A pid read back
from a file is signalled only while it is still the same process (its start time and the boot
time match, :mod:`maas.process`), so a pid reused after a reboot is never touched.

An exited instance's directory is kept, without its payload copy, under
``<work_root>/exited/<name>/<version>/<instanceId>/`` (runner and service logs, spec, status),
for the last ``keep_exited`` instances of each model and at most 7 days; ``maas_deploy -mo
STATUS`` shows the path.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from maas import memlimit
from maas.clock import SYSTEM_CLOCK, Clock
from maas.errors import LauncherError
from maas.instance import Instance, InstanceSpec, InstanceState, read_json
from maas.launcher import Launcher
from maas.process import ProcessIdentity
from maas.runner import PID_FILE, SPEC_FILE, STATUS_FILE

log = logging.getLogger(__name__)

#: Kept logs of exited instances older than this are deleted (seconds: 7 days).
EXITED_MAX_AGE = 7 * 86400.0

#: Extra seconds past the spec's own drain + stop grace before the launcher kills everything.
KILL_MARGIN = 5.0


@dataclass
class _Tracked:
    spec: InstanceSpec
    dir: Path
    pid: int
    identity: ProcessIdentity | None
    started_at: float
    proc: subprocess.Popen[bytes] | None = None  # None when adopted from an earlier controller
    stop_deadline: float | None = None
    exit_code: int | None = None
    running_since: float | None = None
    gone: bool = False
    extra: dict[str, object] = field(default_factory=dict)


def _is_runner(pid: int, instance_dir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"maas.runner" in cmdline and str(instance_dir).encode() in cmdline


def _read_runner_identity(inst_dir: Path) -> tuple[int, ProcessIdentity | None]:
    """The runner's pid and identity from ``runner.pid`` (JSON); a bare pid (written by earlier
    versions) has no identity. OSError/ValueError when the file is absent or unreadable."""
    text = (inst_dir / PID_FILE).read_text()
    try:
        raw = json.loads(text)
    except ValueError:
        raw = None
    if isinstance(raw, int):
        return raw, None
    identity = ProcessIdentity.from_dict(raw)
    if identity is None:
        raise ValueError(f"unreadable {PID_FILE}")
    return identity.pid, identity


def _service_identity(status: dict[str, object]) -> ProcessIdentity | None:
    return ProcessIdentity.from_dict(status.get("service"))


class LocalLauncher(Launcher):
    """Runs instances as local runner processes."""

    def __init__(self, work_root: Path, *, clock: Clock = SYSTEM_CLOCK, python: str = sys.executable,
                 keep_exited: int = 5) -> None:
        self.root = work_root.resolve() / "instances"
        self.root.mkdir(parents=True, exist_ok=True)
        self.exited_root = work_root.resolve() / "exited"
        self.keep_exited = keep_exited
        self._next_sweep = 0.0
        self.clock = clock
        self.python = python
        self._tracked: dict[str, _Tracked] = {}

    # -- adoption ---------------------------------------------------------------------------
    def resync(self) -> None:
        """Forget what this launcher believed and adopt the live runners under the work root;
        clean up after the dead ones. Called when this controller becomes the leader."""
        self._tracked.clear()
        for inst_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            try:
                spec = InstanceSpec.model_validate_json((inst_dir / SPEC_FILE).read_text())
                pid, identity = _read_runner_identity(inst_dir)
            except (OSError, ValueError):
                if time.time() - inst_dir.stat().st_mtime > 60:
                    log.warning("removing unusable instance directory %s", inst_dir)
                    shutil.rmtree(inst_dir, ignore_errors=True)
                continue  # else: being created right now by another launcher
            if identity is None and _is_runner(pid, inst_dir):
                # A bare pid (an earlier version's file), but the live process's command line
                # names this very instance directory: it is the runner.
                identity = ProcessIdentity.of(pid)
            alive = identity is not None and identity.is_running()
            if alive and _is_runner(pid, inst_dir):
                now = self.clock.monotonic()
                status = read_json(inst_dir / STATUS_FILE) or {}
                running = status.get("state") == "running"
                tracked = _Tracked(spec=spec, dir=inst_dir, pid=pid, identity=identity, started_at=now,
                                   running_since=now if running else None)
                self._tracked[spec.instance_id] = tracked
                log.info("adopted instance %s (runner pid %d)", spec.instance_id, pid)
            else:
                # A runner that died with its controller away (or before a reboot): clean up what
                # it left — signalling only processes that are provably still its own.
                status = read_json(inst_dir / STATUS_FILE) or {}
                service = _service_identity(status)
                if service is not None:
                    service.killpg(signal.SIGKILL)
                elif status.get("service_pid"):
                    log.warning("%s: service pid %s has no recorded start time; not signalling it",
                                inst_dir.name, status.get("service_pid"))
                memlimit.remove_left(status.get("cgroup") if isinstance(status.get("cgroup"), str) else None)
                self._retire(spec, inst_dir)

    # -- Launcher ---------------------------------------------------------------------------
    def start(self, spec: InstanceSpec) -> None:
        if spec.instance_id in self._tracked:
            raise LauncherError(f"instance {spec.instance_id} already exists")
        inst_dir = self.root / spec.instance_id
        try:
            inst_dir.mkdir(parents=True)
            (inst_dir / SPEC_FILE).write_text(spec.model_dump_json())
            # The runner logs to runner.log itself (rotated); its stdout only catches what
            # escapes logging (an interpreter crash), which is small.
            with open(inst_dir / "runner.out", "ab") as out:
                proc = subprocess.Popen(
                    [self.python, "-m", "maas.runner", "--instance-dir", str(inst_dir),
                     "--log-file", str(inst_dir / "runner.log")],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            shutil.rmtree(inst_dir, ignore_errors=True)
            raise LauncherError(f"cannot start runner for {spec.instance_id}: {exc}") from exc
        identity = ProcessIdentity.of(proc.pid)
        (inst_dir / PID_FILE).write_text(json.dumps(identity.to_dict() if identity else proc.pid))
        self._tracked[spec.instance_id] = _Tracked(
            spec=spec, dir=inst_dir, pid=proc.pid, identity=identity, proc=proc, started_at=self.clock.monotonic()
        )
        log.info("started instance %s of %s@%s (runner pid %d)", spec.instance_id, spec.name, spec.version, proc.pid)

    def stop(self, instance_id: str) -> None:
        tracked = self._tracked.get(instance_id)
        if tracked is None or tracked.stop_deadline is not None:
            return
        spec = tracked.spec
        tracked.stop_deadline = self.clock.monotonic() + spec.drain_seconds + spec.stop_grace + KILL_MARGIN
        try:
            os.kill(tracked.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        log.info("stopping instance %s", instance_id)

    def instances(self) -> list[Instance]:
        return [self._observe(t) for t in list(self._tracked.values())]

    def forget(self, instance_id: str) -> None:
        tracked = self._tracked.pop(instance_id, None)
        if tracked is not None:
            status = read_json(tracked.dir / STATUS_FILE) or {}
            self._kill_everything(tracked, status)
            memlimit.remove_left(status.get("cgroup") if isinstance(status.get("cgroup"), str) else None)
            self._retire(tracked.spec, tracked.dir)

    def kill(self, instance_id: str) -> None:
        tracked = self._tracked.get(instance_id)
        if tracked is not None:
            self._kill_everything(tracked)

    def logs_hint(self, instance_id: str) -> str | None:
        tracked = self._tracked.get(instance_id)
        return str(self._retired_dir(tracked.spec)) if tracked is not None and self.keep_exited > 0 else None

    # -- evidence -----------------------------------------------------------------------------
    def _retired_dir(self, spec: InstanceSpec) -> Path:
        return self.exited_root / spec.name / spec.version / spec.instance_id

    def _retire(self, spec: InstanceSpec, inst_dir: Path) -> None:
        """Keep an exited instance's logs (not its payload copy); keep ``keep_exited`` per model."""
        if self.keep_exited <= 0:
            shutil.rmtree(inst_dir, ignore_errors=True)
            return
        shutil.rmtree(inst_dir / "work", ignore_errors=True)
        target = self._retired_dir(spec)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(inst_dir, target)
            os.utime(target)  # the retention order is the order of exits
        except OSError as exc:
            log.warning("cannot keep the logs of %s (%s); removing them", spec.instance_id, exc)
            shutil.rmtree(inst_dir, ignore_errors=True)
            return
        kept = sorted((p for p in target.parent.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in kept[self.keep_exited:]:
            shutil.rmtree(old, ignore_errors=True)
        self._sweep_exited()

    def _sweep_exited(self) -> None:
        """At most hourly: drop kept logs older than ``EXITED_MAX_AGE`` (models long removed keep
        nothing for ever), and the directories left empty."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + 3600
        cutoff = time.time() - EXITED_MAX_AGE
        for version_dir in self.exited_root.glob("*/*"):
            for entry in version_dir.iterdir():
                try:
                    if entry.stat().st_mtime < cutoff:
                        shutil.rmtree(entry, ignore_errors=True)
                except FileNotFoundError:
                    continue
            for empty in (version_dir, version_dir.parent):
                try:
                    empty.rmdir()  # only when empty
                except OSError:
                    pass

    def close(self) -> None:
        # Runners outlive the launcher by design: a new controller adopts them.
        self._tracked.clear()

    def stop_all(self, timeout: float = 30.0) -> None:
        """Stop every instance and wait for them (used by tests and the demo's shutdown)."""
        for instance_id in list(self._tracked):
            self.stop(instance_id)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(i.state != InstanceState.EXITED for i in self.instances()):
            time.sleep(0.05)
        for instance_id in list(self._tracked):
            self.forget(instance_id)

    # -- observation ------------------------------------------------------------------------
    def _exited(self, tracked: _Tracked) -> bool:
        if tracked.gone:
            return True
        if tracked.proc is not None:
            code = tracked.proc.poll()
            if code is not None:
                tracked.exit_code = code
                tracked.gone = True
        elif tracked.identity is None or not tracked.identity.is_running():
            tracked.gone = True
        return tracked.gone

    def _observe(self, tracked: _Tracked) -> Instance:
        status = read_json(tracked.dir / STATUS_FILE) or {}
        now = self.clock.monotonic()
        exited = self._exited(tracked)
        reason = status.get("reason")
        overdue = False
        if exited:
            state = InstanceState.EXITED
            if not reason and tracked.stop_deadline is None:
                reason = f"runner exited with code {tracked.exit_code}" if tracked.exit_code is not None else "runner died"
        elif tracked.stop_deadline is not None:
            state = InstanceState.STOPPING
            overdue = now >= tracked.stop_deadline
        elif status.get("state") == "running":
            state = InstanceState.RUNNING
            if tracked.running_since is None:
                tracked.running_since = now
        else:
            state = InstanceState.STARTING
        return Instance(
            instance_id=tracked.spec.instance_id,
            name=tracked.spec.name,
            version=tracked.spec.version,
            state=state,
            started_at=tracked.started_at,
            running_since=tracked.running_since,
            stop_requested=tracked.stop_deadline is not None,
            stop_overdue=overdue,
            reason=reason if isinstance(reason, str) else None,
            url=status.get("url") if isinstance(status.get("url"), str) else None,
        )

    def _kill_everything(self, tracked: _Tracked, status: dict[str, object] | None = None) -> None:
        """SIGKILL the service's process group and the runner's, if they are still theirs
        (``status``: the runner's status file, when the caller has read it already)."""
        status = status if status is not None else (read_json(tracked.dir / STATUS_FILE) or {})
        service = _service_identity(status)
        if service is not None:
            service.killpg(signal.SIGKILL)
        if not tracked.gone:
            if tracked.proc is not None:
                try:
                    os.killpg(tracked.pid, signal.SIGKILL)  # our own child, not reaped: its pid is ours
                except (ProcessLookupError, PermissionError):
                    pass
            elif tracked.identity is not None:
                tracked.identity.killpg(signal.SIGKILL)
            if tracked.proc is not None:
                try:
                    tracked.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
