"""The pump example: its generator is deterministic and its faults are where the ground truth
says; the one documented command trains the model and finds the faults."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
PUMP = REPO / "examples" / "pump"


@pytest.fixture(scope="module")
def telemetry() -> ModuleType:
    spec = importlib.util.spec_from_file_location("pump_telemetry", PUMP / "telemetry.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["pump_telemetry"] = module
    spec.loader.exec_module(module)
    return module


def test_the_generator_is_deterministic(telemetry: ModuleType) -> None:
    first, faults = telemetry.generate(seed=3, days=2)
    second, _ = telemetry.generate(seed=3, days=2)
    assert first.equals(second)
    assert list(first.columns) == telemetry.TAGS and len(first) == 2 * 1440
    assert not telemetry.generate(seed=4, days=2)[0].equals(first)


def test_the_faults_are_where_the_ground_truth_says(telemetry: ModuleType) -> None:
    frame, faults = telemetry.generate()
    running = frame["speed"] > 300
    healthy = frame.loc[running & ~telemetry.truth_mask(frame.index, faults) & (frame.index < telemetry.TRAIN_END)]
    wear = next(f for f in faults if f.kind == "bearing_wear")
    late_wear = frame.loc[running & (frame.index >= wear.end - (wear.end - wear.start) / 5) & (frame.index < wear.end)]
    assert late_wear["vibration"].mean() > healthy["vibration"].mean() + 1.5
    cavitation = next(f for f in faults if f.kind == "cavitation" and f.start >= telemetry.TRAIN_END)
    inside = frame.loc[(frame.index >= cavitation.start) & (frame.index < cavitation.end)]
    assert inside["suction_pressure"].max() < healthy["suction_pressure"].min()
    assert sum(f.start < telemetry.TRAIN_END for f in faults) == 1  # one fault for the markup to leave out
    intervals = telemetry.normal_operation_intervals(faults)
    first_fault = faults[0]
    assert all(not (i["from"] <= first_fault.start.strftime("%Y-%m-%dT%H:%M:%SZ") < i["to"]) for i in intervals)


def test_the_documented_command_trains_the_model_and_finds_the_faults(tmp_path: Path) -> None:
    work = tmp_path / "work"
    done = subprocess.run([sys.executable, str(PUMP / "train.py"), "--work", str(work), "--max-epochs", "3"],
                          capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "model pump7: TRAINED" in done.stdout
    summary = json.loads((work / "summary.json").read_text())
    assert summary["job"]["state"] == "done" and summary["model_status"] == "TRAINED"
    model = summary["quality"]["model"]
    assert model["precision"] > 0.8 and model["detected_events"] >= 4
    payloads = work / "store" / "lifecycle" / "payloads" / "pump7"
    assert sorted(p.name for p in payloads.iterdir()) == ["hydraulics", "operating-point"]
    assert (payloads / "hydraulics" / "1" / "model.onnx").exists()
    assert np.isfinite(summary["job"]["result"]["elements"]["hydraulics"]["threshold"])


def test_the_exported_maas_model_commands_train_the_model_on_a_running_service(tmp_path: Path) -> None:
    import os
    import signal
    import socket
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "MAAS_LIFECYCLE_ADMIN_TOKEN": "pump-example-admin-token", "MAAS_TOKEN": "pump-example-admin-token",
           "MAAS_LIFECYCLE_URL": f"http://127.0.0.1:{port}"}
    bin_dir = Path(sys.executable).parent
    service = subprocess.Popen([str(bin_dir / "maas_lifecycle"), "serve", "--data-dir", str(tmp_path / "service"),
                                "--port", str(port), "--workers", "1", "--log-level", "warning"],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert service.poll() is None, service.stderr.read() if service.stderr else ""
            try:
                if httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the service did not start"
            time.sleep(0.2)
        exported = subprocess.run([sys.executable, str(PUMP / "train.py"), "--export", "--work", str(tmp_path / "work"),
                                   "--max-epochs", "2"], capture_output=True, text=True, timeout=300, check=True)
        commands = [line.split(" ", 1)[1] for line in exported.stdout.splitlines() if line.startswith("maas_model ")]
        assert commands[-1] == "train pump7 --wait"
        import shlex

        for command in commands:
            done = subprocess.run([str(bin_dir / "maas_model"), *shlex.split(command)], env=env, capture_output=True,
                                  text=True, timeout=600)
            assert done.returncode == 0, f"maas_model {command}: {done.stdout}{done.stderr}"
        assert "model pump7: TRAINED" in done.stdout
        assert "hydraulics: trained" in done.stdout and "operating-point: trained" in done.stdout
    finally:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
