"""The local launcher with real processes (no ZooKeeper): adoption that never signals a process it
cannot prove is its own, observation without side effects, and the bounded evidence of exited
instances."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from maas.clock import FakeClock
from maas.instance import InstanceSpec, InstanceState
from maas.launcher.local import LocalLauncher
from maas.process import ProcessIdentity
from maas.runner import PID_FILE, SPEC_FILE, STATUS_FILE


def _spec(instance_id: str, name: str = "m") -> InstanceSpec:
    return InstanceSpec(instance_id=instance_id, name=name, version="1", store_uri="file:///nowhere", path="/p",
                        zk_quorum="127.0.0.1:1", config_path="/c", drain_seconds=0, stop_grace=0)


def _bystander() -> subprocess.Popen[bytes]:
    """An unrelated process group leader, as a daemon after a reboot might be."""
    return subprocess.Popen(["sleep", "60"], start_new_session=True)


def _leftover_dir(root: Path, instance_id: str, runner: dict, status: dict) -> Path:
    inst = root / "instances" / instance_id
    inst.mkdir(parents=True)
    (inst / SPEC_FILE).write_text(_spec(instance_id).model_dump_json())
    (inst / PID_FILE).write_text(json.dumps(runner))
    (inst / STATUS_FILE).write_text(json.dumps(status))
    (inst / "runner.log").write_text("the runner's last words\n")
    return inst


@pytest.fixture
def bystander():  # type: ignore[no-untyped-def]
    proc = _bystander()
    yield proc
    proc.kill()
    proc.wait()


def test_adoption_after_a_reboot_never_signals_a_reused_pid(tmp_path: Path, bystander) -> None:  # type: ignore[no-untyped-def]
    me = ProcessIdentity.of(bystander.pid)
    assert me is not None
    # The previous boot's files name the bystander's pid, with that boot's times.
    before_reboot = {"pid": bystander.pid, "started": me.started, "boot": "a-previous-boot"}
    _leftover_dir(tmp_path, "m-1-a", before_reboot, {"state": "running", "service_pid": bystander.pid,
                                                     "service": before_reboot})
    # An earlier version's files: bare pids, no start time.
    _leftover_dir(tmp_path, "m-1-b", bystander.pid, {"state": "running", "service_pid": bystander.pid})  # type: ignore[arg-type]
    launcher = LocalLauncher(tmp_path, clock=FakeClock())
    launcher.resync()
    assert launcher.instances() == []  # neither is adopted: the bystander is no runner of ours
    time.sleep(0.2)
    assert bystander.poll() is None, "an unrelated process group was signalled"
    # Both directories are kept as evidence, not deleted.
    assert (tmp_path / "exited" / "m" / "1" / "m-1-a" / "runner.log").read_text() == "the runner's last words\n"


def test_a_dead_runners_own_service_group_is_cleaned_up(tmp_path: Path) -> None:
    service = _bystander()
    try:
        identity = ProcessIdentity.of(service.pid)
        assert identity is not None
        dead_runner = {"pid": 1, "started": 0.0, "boot": identity.boot}  # pid 1 is no runner
        _leftover_dir(tmp_path, "m-1-c", dead_runner, {"state": "running", "service": identity.to_dict()})
        LocalLauncher(tmp_path, clock=FakeClock()).resync()
        assert service.wait(timeout=5) == -signal.SIGKILL
    finally:
        service.kill()


def test_observation_never_acts_and_kill_is_an_explicit_step(tmp_path: Path) -> None:
    clock = FakeClock()
    launcher = LocalLauncher(tmp_path, clock=clock)
    spec = _spec("m-1-d")
    launcher.start(spec)
    # A runner that ignores SIGTERM long enough: replace it by one that does.
    tracked = launcher._tracked[spec.instance_id]
    tracked.proc.kill()  # type: ignore[union-attr]
    tracked.proc.wait()  # type: ignore[union-attr]
    stubborn = subprocess.Popen(
        [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                               "print('ready', flush=True); time.sleep(60)"],
        start_new_session=True, stdout=subprocess.PIPE)
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    tracked.proc, tracked.pid, tracked.identity = stubborn, stubborn.pid, ProcessIdentity.of(stubborn.pid)
    tracked.gone = False
    try:
        launcher.stop(spec.instance_id)
        clock.advance(3600)
        (inst,) = launcher.instances()
        assert inst.state is InstanceState.STOPPING and inst.stop_overdue
        assert stubborn.poll() is None  # looking did not kill it
        launcher.kill(spec.instance_id)
        assert stubborn.wait(timeout=5) == -signal.SIGKILL
        (inst,) = launcher.instances()
        assert inst.state is InstanceState.EXITED
    finally:
        stubborn.kill()


def test_the_logs_of_the_last_n_exited_instances_are_kept_per_model(tmp_path: Path) -> None:
    launcher = LocalLauncher(tmp_path, clock=FakeClock(), keep_exited=2)
    hints = []
    for i in range(4):
        spec = _spec(f"m-1-{i}")
        launcher.start(spec)
        launcher._tracked[spec.instance_id].proc.wait(timeout=30)  # type: ignore[union-attr]  # fails: no store
        (inst,) = launcher.instances()
        assert inst.state is InstanceState.EXITED
        hints.append(launcher.logs_hint(spec.instance_id))
        launcher.forget(spec.instance_id)
        time.sleep(0.02)  # distinct modification times
    kept = sorted(p.name for p in (tmp_path / "exited" / "m" / "1").iterdir())
    assert kept == ["m-1-2", "m-1-3"]
    assert hints[-1] == str(tmp_path.resolve() / "exited" / "m" / "1" / "m-1-3")
    last = Path(hints[-1])
    assert (last / "runner.log").stat().st_size > 0 and (last / STATUS_FILE).is_file()
    assert json.loads((last / STATUS_FILE).read_text())["state"] == "failed"
    assert not (last / "work").exists()
    assert list((tmp_path / "instances").iterdir()) == []
    assert not any(p.info["cmdline"] and str(tmp_path) in " ".join(p.info["cmdline"])
                   for p in psutil.process_iter(["cmdline"]) if p.pid != os.getpid())


def test_a_pid_reused_in_the_same_boot_is_not_the_same_process(bystander) -> None:  # type: ignore[no-untyped-def]
    me = ProcessIdentity.of(bystander.pid)
    assert me is not None and me.is_running()
    earlier = ProcessIdentity(bystander.pid, me.started - 10, me.boot)  # the pid's previous owner
    assert not earlier.is_running()
    assert not earlier.killpg(signal.SIGKILL) and not earlier.kill(signal.SIGKILL)
    assert ProcessIdentity.from_dict(me.to_dict()) == me and ProcessIdentity.from_dict(1234) is None
    time.sleep(0.1)
    assert bystander.poll() is None
