"""``python -m model_server`` as a real process: the endpoint file appears only once the server
answers, SIGTERM stops it cleanly — letting running and queued requests finish —, a broken payload
exits non-zero before listening, and the DGA payload's script honours the payload contract the
runner relies on."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import httpx
import pytest

from maas.payload import find_script, parse_endpoint
from maas.probe import check_http
from tests.model_server.conftest import (MULTI_SIGNATURE, build_multi_model, build_slow_model, free_port,
                                         write_payload)

pytestmark = pytest.mark.e2e

START_TIMEOUT = 30.0


def start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(args, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Processes a test started; any still running at the end are killed (by pid)."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def wait_for_endpoint(proc: subprocess.Popen[str], path: Path) -> dict[str, object]:
    """Poll for the endpoint file; the moment it exists, the server must answer."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if path.exists():
            endpoint = json.loads(path.read_text())
            ready = httpx.get(f"{endpoint['url']}/v2/health/ready", timeout=5)
            assert ready.status_code == 200, "endpoint file written before the server answered"
            return endpoint
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.01)
    pytest.fail("no endpoint file within the start timeout")


def is_listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_endpoint_file_only_once_answering_and_sigterm_stops_cleanly(
        dga_payload: Path, tmp_path: Path, processes: list[subprocess.Popen[str]]) -> None:
    port = free_port()
    endpoint_file = tmp_path / "endpoint.dat"
    proc = start([sys.executable, "-m", "model_server", "--payload", str(dga_payload), "--port", str(port),
                  "--endpoint-file", str(endpoint_file)], cwd=tmp_path)
    processes.append(proc)
    endpoint = wait_for_endpoint(proc, endpoint_file)
    assert endpoint == {"url": f"http://127.0.0.1:{port}", "functions": {"apply": "apply"}}
    assert parse_endpoint(endpoint_file.read_text()).url == f"http://127.0.0.1:{port}"  # the runner's reader
    answer = httpx.get(f"http://127.0.0.1:{port}/apply", params={"host": "xjwqkzvbtpqmd.com"}).json()
    assert answer["is_malicious"] == "malicious" and 0.5 < answer["probability"] <= 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["endpoint.dat"]  # no temporary file left behind

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    assert not endpoint_file.exists()  # withdrawn while shutting down
    assert not is_listening(port)
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")


def test_payload_script_follows_the_contract(dga_payload: Path, tmp_path: Path,
                                             processes: list[subprocess.Popen[str]]) -> None:
    """Like the runner: copy the payload to a fresh directory, run its single script with MAAS_*."""
    workdir = tmp_path / "work"
    shutil.copytree(dga_payload, workdir)
    script = find_script([p.name for p in workdir.iterdir()])
    port = free_port()
    proc = start(["/bin/bash", script], cwd=workdir, env={
        "MAAS_PORT": str(port), "MAAS_MODEL_NAME": "dga", "MAAS_MODEL_VERSION": "1.0",
        "MAAS_INSTANCE_ID": "test-1", "MAAS_PYTHON": sys.executable})
    processes.append(proc)
    endpoint = wait_for_endpoint(proc, workdir / "endpoint.dat")
    info = parse_endpoint(json.dumps(endpoint))
    with httpx.Client(timeout=5) as http:
        assert check_http(http, info.url) is None  # the runner's and the prober's readiness check
        meta = http.get(info.url + "/").json()
        assert (meta["name"], meta["version"]) == ("dga", "1.0")
        assert http.get(f"{info.url}/{info.functions['apply']}", params={"host": "github.com"}).json()[
            "is_malicious"] == "legit"
    os.killpg(proc.pid, signal.SIGTERM)  # what the runner does to the service's process group
    assert proc.wait(timeout=30) == 0


@pytest.mark.parametrize("breakage,code,words", [
    ("no model", 3, "model file"),
    ("garbage model", 3, "onnxruntime cannot load"),
    ("bad signature", 3, "input 'nope' is not an input of the model"),
    ("signature not JSON", 3, "is not valid JSON"),
    ("no port", 2, "no port"),
])
def test_broken_payload_exits_before_listening(tmp_path: Path, breakage: str, code: int, words: str) -> None:
    payload = write_payload(tmp_path / "payload", build_multi_model(), MULTI_SIGNATURE)
    if breakage == "no model":
        (payload / "model.onnx").unlink()
    elif breakage == "garbage model":
        (payload / "model.onnx").write_bytes(b"\x00garbage")
    elif breakage == "bad signature":
        (payload / "signature.json").write_text(json.dumps({"inputs": [{"name": "nope"}]}))
    elif breakage == "signature not JSON":
        (payload / "signature.json").write_text("{")
    port_args = [] if breakage == "no port" else ["--port", str(free_port())]
    env = {k: v for k, v in os.environ.items() if k != "MAAS_PORT"}
    result = subprocess.run([sys.executable, "-m", "model_server", "--payload", str(payload), *port_args,
                             "--endpoint-file", str(tmp_path / "endpoint.dat")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == code, result.stderr
    assert words in result.stderr and "model_server: error:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "endpoint.dat").exists()


def test_port_in_use_fails_without_an_endpoint_file(multi_payload: Path, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "model_server", "--payload", str(multi_payload),
                                 "--port", str(port), "--endpoint-file", str(tmp_path / "endpoint.dat")],
                                capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "could not serve" in result.stderr
    assert not (tmp_path / "endpoint.dat").exists()


def queue_figures(url: str) -> tuple[float, float]:
    """(rows waiting for the model, requests whose inference started — the queue time is observed
    when it starts), from the server's metrics."""
    metrics = httpx.get(f"{url}/metrics", timeout=5).text
    queued = float(re.search(r"^model_server_queue_rows\{[^}]*\} (\S+)$", metrics, re.M).group(1))
    dispatched = float(re.search(r"^model_server_queue_duration_seconds_count\{[^}]*\} (\S+)$", metrics,
                                 re.M).group(1))
    return queued, dispatched


def wait_for(url: str, condition: Callable[[float, float], bool], what: str) -> None:
    """Poll :func:`queue_figures` until ``condition(queued, dispatched)`` holds."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if condition(*queue_figures(url)):
            return
        time.sleep(0.01)
    pytest.fail(f"never saw {what}")


@pytest.mark.parametrize("batching", ["--batching", "--no-batching"])
def test_sigterm_lets_running_and_queued_requests_finish(tmp_path: Path, processes: list[subprocess.Popen[str]],
                                                         batching: str) -> None:
    payload = write_payload(tmp_path / "slow", build_slow_model(layers=300), None)  # 0.4 s or more per request
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start([sys.executable, "-m", "model_server", "--payload", str(payload), "--port", str(port),
                  "--threads", "1", batching, "--endpoint-file", str(tmp_path / "endpoint.dat")], cwd=tmp_path)
    processes.append(proc)
    wait_for_endpoint(proc, tmp_path / "endpoint.dat")
    body = json.dumps([{"x": [1.0] * 1024}] * 48)

    def call(_: int) -> tuple[int, object]:
        with httpx.Client(timeout=60) as http:
            response = http.post(f"{url}/apply", content=body)
            return response.status_code, response.json()

    with ThreadPoolExecutor(6) as pool:
        # one request runs first (0.4 s or more), then five more arrive while it runs: they queue (batching)
        # or run beside it (no batching) — sent in two steps, so a slow start cannot spread them out
        futures = [pool.submit(call, 0)]
        wait_for(url, lambda queued, dispatched: dispatched >= 1, "the first request running")
        futures += [pool.submit(call, i) for i in range(1, 6)]
        if batching == "--batching":
            wait_for(url, lambda queued, dispatched: queued >= 48, "requests queued behind a running one")
        else:
            wait_for(url, lambda queued, dispatched: dispatched >= 2, "two requests running together")
        proc.send_signal(signal.SIGTERM)
        answers = [f.result(timeout=60) for f in futures]
    assert [status for status, _ in answers] == [200] * 6, answers
    assert all(answer == [{"y": pytest.approx(1024.0, rel=1e-4)}] * 48 for _, answer in answers)
    assert proc.wait(timeout=60) == 0
    assert not is_listening(port)
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")


@pytest.mark.parametrize("batching", ["--batching", "--no-batching"])
def test_a_full_queue_refuses_at_once_with_503_and_keeps_serving(tmp_path: Path,
                                                                  processes: list[subprocess.Popen[str]],
                                                                  batching: str) -> None:
    payload = write_payload(tmp_path / "slow", build_slow_model(layers=1800), None)  # 2.4 s or more per request: the
    # queue stays full for long enough to be seen by a loaded machine polling /metrics
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start([sys.executable, "-m", "model_server", "--payload", str(payload), "--port", str(port),
                  "--threads", "1", batching, "--max-batch-size", "48", "--max-queue-rows", "48",
                  "--endpoint-file", str(tmp_path / "endpoint.dat")], cwd=tmp_path)
    processes.append(proc)
    wait_for_endpoint(proc, tmp_path / "endpoint.dat")

    def call(rows: int) -> httpx.Response:
        with httpx.Client(timeout=60) as http:
            return http.post(f"{url}/apply", content=json.dumps([{"x": [1.0] * 1024}] * rows))

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(call, 48)
        if batching == "--batching":  # the first runs; the second waits behind it and fills the queue
            wait_for(url, lambda queued, dispatched: dispatched >= 1, "the first request running")
            second = pool.submit(call, 48)
            wait_for(url, lambda queued, dispatched: queued >= 48 or second.done(), "48 rows queued")
            assert not second.done(), second.result().text
        else:  # without batching, the rows of requests in the thread pool are what waits
            wait_for(url, lambda queued, dispatched: queued >= 48, "48 rows in the thread pool")
            second = None
        started = time.monotonic()
        refused = call(1)
        assert time.monotonic() - started < 0.5  # refused at once, not after the queue
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "overloaded" in refused.json()["error"] and "at most 48" in refused.json()["error"]
        assert first.result(timeout=60).status_code == 200  # what waited is served
        if second is not None:
            assert second.result(timeout=60).status_code == 200
    wait_for(url, lambda queued, dispatched: queued == 0, "an empty queue")
    assert call(1).status_code == 200  # and the server goes on
    metrics = httpx.get(f"{url}/metrics", timeout=5).text
    assert re.search(r'^model_server_errors_total\{.*kind="Overloaded".*\} 1\.0$', metrics, re.M), metrics
