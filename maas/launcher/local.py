"""The local launcher: each instance is a runner process (``python -m maas.runner``) on this
machine, with its own directory ``<work_root>/instances/<instanceId>/`` holding the spec, the
runner's status file, logs and the payload's working copy.

Runners live in their own sessions, so they survive a controller restart; a new launcher on the
same work root adopts the runners it finds alive instead of starting new ones.
"""

from __future__ import annotations

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
from maas.runner import PID_FILE, SPEC_FILE, STATUS_FILE

log = logging.getLogger(__name__)

#: Extra seconds past the spec's own drain + stop grace before the launcher kills everything.
KILL_MARGIN = 5.0


@dataclass
class _Tracked:
    spec: InstanceSpec
    dir: Path
    pid: int
    started_at: float
    proc: subprocess.Popen[bytes] | None = None  # None when adopted from an earlier controller
    stop_deadline: float | None = None
    exit_code: int | None = None
    running_since: float | None = None
    gone: bool = False
    extra: dict[str, object] = field(default_factory=dict)


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


def _is_runner(pid: int, instance_dir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"maas.runner" in cmdline and str(instance_dir).encode() in cmdline


def _killpg(pid: int | None, sig: signal.Signals) -> None:
    if not pid:
        return
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class LocalLauncher(Launcher):
    """Runs instances as local runner processes."""

    def __init__(self, work_root: Path, *, clock: Clock = SYSTEM_CLOCK, python: str = sys.executable) -> None:
        self.root = work_root.resolve() / "instances"
        self.root.mkdir(parents=True, exist_ok=True)
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
                pid = int((inst_dir / PID_FILE).read_text())
            except (OSError, ValueError):
                if time.time() - inst_dir.stat().st_mtime > 60:
                    log.warning("removing unusable instance directory %s", inst_dir)
                    shutil.rmtree(inst_dir, ignore_errors=True)
                continue  # else: being created right now by another launcher
            if _is_runner(pid, inst_dir) and _pid_alive(pid):
                now = self.clock.monotonic()
                status = read_json(inst_dir / STATUS_FILE) or {}
                running = status.get("state") == "running"
                tracked = _Tracked(spec=spec, dir=inst_dir, pid=pid, started_at=now,
                                   running_since=now if running else None)
                self._tracked[spec.instance_id] = tracked
                log.info("adopted instance %s (runner pid %d)", spec.instance_id, pid)
            else:
                # A runner that died with its controller away: clean up what it left.
                status = read_json(inst_dir / STATUS_FILE) or {}
                _killpg(int(status.get("service_pid") or 0), signal.SIGKILL)
                memlimit.remove_left(status.get("cgroup") if isinstance(status.get("cgroup"), str) else None)
                shutil.rmtree(inst_dir, ignore_errors=True)

    # -- Launcher ---------------------------------------------------------------------------
    def start(self, spec: InstanceSpec) -> None:
        if spec.instance_id in self._tracked:
            raise LauncherError(f"instance {spec.instance_id} already exists")
        inst_dir = self.root / spec.instance_id
        try:
            inst_dir.mkdir(parents=True)
            (inst_dir / SPEC_FILE).write_text(spec.model_dump_json())
            with open(inst_dir / "runner.log", "ab") as log_file:
                proc = subprocess.Popen(
                    [self.python, "-m", "maas.runner", "--instance-dir", str(inst_dir)],
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except OSError as exc:
            shutil.rmtree(inst_dir, ignore_errors=True)
            raise LauncherError(f"cannot start runner for {spec.instance_id}: {exc}") from exc
        (inst_dir / PID_FILE).write_text(str(proc.pid))
        self._tracked[spec.instance_id] = _Tracked(
            spec=spec, dir=inst_dir, pid=proc.pid, proc=proc, started_at=self.clock.monotonic()
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
            shutil.rmtree(tracked.dir, ignore_errors=True)

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
        elif not _pid_alive(tracked.pid):
            tracked.gone = True
        return tracked.gone

    def _observe(self, tracked: _Tracked) -> Instance:
        status = read_json(tracked.dir / STATUS_FILE) or {}
        now = self.clock.monotonic()
        exited = self._exited(tracked)
        reason = status.get("reason")
        if exited:
            state = InstanceState.EXITED
            if not reason and tracked.stop_deadline is None:
                reason = f"runner exited with code {tracked.exit_code}" if tracked.exit_code is not None else "runner died"
            self._kill_everything(tracked, status)
        elif tracked.stop_deadline is not None:
            state = InstanceState.STOPPING
            if now >= tracked.stop_deadline:
                log.warning("instance %s did not stop in time; killing it", tracked.spec.instance_id)
                self._kill_everything(tracked, status)
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
            reason=reason if isinstance(reason, str) else None,
            url=status.get("url") if isinstance(status.get("url"), str) else None,
        )

    def _kill_everything(self, tracked: _Tracked, status: dict[str, object] | None = None) -> None:
        status = status if status is not None else (read_json(tracked.dir / STATUS_FILE) or {})
        service_pid = status.get("service_pid")
        _killpg(int(service_pid) if isinstance(service_pid, int) else None, signal.SIGKILL)
        if not tracked.gone:
            _killpg(tracked.pid, signal.SIGKILL)
            if tracked.proc is not None:
                try:
                    tracked.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
