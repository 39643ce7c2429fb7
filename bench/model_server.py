"""The model server on the DGA example model, in one run (about two minutes):

- in-process onnxruntime: one-row calls per second (the floor every server adds to);
- our server, single requests with a keep-alive ``httpx.Client``: p50/p99 latency and req/s, for
  the Metron API (``POST /apply``) and the Open Inference Protocol (``POST /v2/models/dga/infer``);
- rows/s at 1, 8 and 32 concurrent keep-alive clients, one row per request, with server-side
  batching on and off, for both APIs;
- side by side, KServe's Python model server (the ``kserve`` package, a ``kserve.Model`` around the
  same onnxruntime session, one worker, its per-request log lines off as ours are) with the same
  clients and load on the same V2 requests. KServe lives in its own virtual environment,
  ``.bench-venv`` (created here when missing, with pip); if it cannot be installed or started, the
  rest is reported and the KServe figures say why they are missing;
- ratios: ours / in-process, ours / KServe, batching on / off.

The concurrent load comes from ``python -m bench.model_server load …`` in a process of its own: a
small asyncio HTTP/1.1 keep-alive client (httpx's AsyncClient costs more CPU per request than the
servers measured, and this machine has two cores). Every process started here is stopped (SIGTERM,
then SIGKILL of its process group) before :func:`run` returns.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from bench.common import Result, percentile

REPO = Path(__file__).resolve().parents[1]
DGA = REPO / "examples" / "dga"
BENCH_VENV = Path(os.environ.get("MAAS_BENCH_VENV", REPO / ".bench-venv"))
KSERVE_REQUIREMENTS = ["kserve", "onnxruntime", "numpy"]
SCENARIO = "model_server"
HOST = "xjwqkzvbtpqmd.com"
SINGLE_SECONDS = 3.0
LOAD_SECONDS = 4.0
CLIENTS = (1, 8, 32)
MODEL_NAME = "dga"

METRON_BODY = json.dumps({"host": HOST}).encode()
V2_BODY = json.dumps({"id": "1", "inputs": [{"name": "host", "datatype": "BYTES", "shape": [1], "data": [HOST]}]}).encode()

KSERVE_SERVER = '''"""KServe's Python model server serving an ONNX model: the usual custom kserve.Model."""
import argparse
import logging
import uuid

import numpy as np
import onnxruntime as ort
import kserve
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer


class OnnxModel(Model):
    def __init__(self, name: str, path: str) -> None:
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(self.path, sess_options=options, providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.ready = True
        return self.ready

    def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        feeds = {i.name: i.as_numpy() for i in payload.inputs}
        outputs = []
        for name, value in zip(self.output_names, self.session.run(self.output_names, feeds)):
            if isinstance(value, list):  # a ZipMap: rows of {class: probability}
                keys = list(value[0])
                value = np.array([[row[k] for k in keys] for row in value], dtype=np.float32)
            datatype = "FP32" if value.dtype == np.float32 else "INT64"
            out = InferOutput(name=name, shape=list(value.shape), datatype=datatype)
            out.set_data_from_numpy(value, binary_data=False)
            outputs.append(out)
        return InferResponse(response_id=payload.id or str(uuid.uuid4()), model_name=self.name,
                             infer_outputs=outputs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_path", required=True)
    args, _ = parser.parse_known_args()
    server = ModelServer(http_port=args.http_port, enable_grpc=False, enable_latency_logging=False)
    for name in ("uvicorn.access", "kserve.trace"):  # no log line per request: ours logs none either
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = False
    server.start([OnnxModel(args.model_name, args.model_path)])
'''


# -- processes ------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Process:
    """A server process in its own process group, stopped for sure by :meth:`stop`."""

    def __init__(self, args: list[str], log: Path, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self._log = open(log, "ab")
        self.proc = subprocess.Popen(args, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})}, start_new_session=True)

    def wait_ready(self, url: str, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"exited with {self.proc.returncode}: {self.tail()}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"not ready within {timeout:.0f} s: {self.tail()}")

    def tail(self) -> str:
        self._log.flush()
        return self.log.read_text(errors="replace")[-600:].strip()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None or _group_alive(self.proc.pid):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self._log.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _ensure_dga_model(work: Path) -> Path:
    """The DGA payload with its model (trained here when ``make model`` has not been run)."""
    payload = work / "payload"
    shutil.copytree(DGA / "payload", payload)
    if not (payload / "model.onnx").is_file():
        subprocess.run([sys.executable, str(DGA / "train.py"), "--out", str(payload / "model.onnx")], check=True,
                       capture_output=True, timeout=600)
    return payload


def _kserve_python() -> tuple[Path | None, str]:
    """The bench venv's python with kserve, creating the venv when missing; or None and why."""
    python = BENCH_VENV / "bin" / "python"
    check = [str(python), "-c", "import kserve, onnxruntime"]
    if python.exists() and subprocess.run(check, capture_output=True, timeout=120).returncode == 0:
        return python, ""
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True, capture_output=True, timeout=120)
        install = subprocess.run([str(python), "-m", "pip", "install", "-q", *KSERVE_REQUIREMENTS],
                                 capture_output=True, text=True, timeout=900)
        if install.returncode != 0:
            return None, f"pip install kserve failed: {install.stderr.strip()[-300:]}"
        if subprocess.run(check, capture_output=True, timeout=120).returncode != 0:
            return None, "kserve installed but cannot be imported"
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"cannot create {BENCH_VENV}: {exc}"
    return python, ""


# -- measurements ---------------------------------------------------------------------------------

def _in_process(model: Path) -> dict[str, float]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    one = {"host": np.array([HOST], dtype=object)}
    many = {"host": np.array([HOST] * 32, dtype=object)}
    for _ in range(50):
        session.run(None, one)
    latencies = []
    stop = time.perf_counter() + SINGLE_SECONDS
    while time.perf_counter() < stop:
        start = time.perf_counter()
        session.run(None, one)
        latencies.append(time.perf_counter() - start)
    calls = 0
    start = time.perf_counter()
    while time.perf_counter() - start < 1.0:
        session.run(None, many)
        calls += 1
    return {"calls_per_s": len(latencies) / sum(latencies), "p50": percentile(latencies, 50),
            "rows_per_s_batch32": calls * 32 / (time.perf_counter() - start)}


def _single(url: str, body: bytes) -> dict[str, float]:
    """One keep-alive httpx client, one request at a time."""
    headers = {"content-type": "application/json"}
    with httpx.Client(timeout=30) as client:
        for _ in range(50):
            client.post(url, content=body, headers=headers).raise_for_status()
        latencies = []
        stop = time.perf_counter() + SINGLE_SECONDS
        while time.perf_counter() < stop:
            start = time.perf_counter()
            client.post(url, content=body, headers=headers).raise_for_status()
            latencies.append(time.perf_counter() - start)
    return {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "rps": len(latencies) / sum(latencies),
            "n": len(latencies)}


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load(port: int, path: str, body: bytes, clients: int, work: Path, server_pid: int) -> dict[str, float]:
    """``clients`` concurrent keep-alive connections for LOAD_SECONDS, in a process of its own; with
    the server's CPU time per 1000 rows answered."""
    body_file = work / f"body-{abs(hash(body))}.json"
    body_file.write_bytes(body)
    cpu = _cpu_seconds(server_pid)
    out = subprocess.run([sys.executable, "-m", "bench.model_server", "load", "--port", str(port), "--path", path,
                          "--clients", str(clients), "--seconds", str(LOAD_SECONDS), "--body", str(body_file)],
                         cwd=REPO, capture_output=True, text=True, timeout=LOAD_SECONDS + 60)
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr.strip()[-500:]}")
    figures: dict[str, float] = json.loads(out.stdout)
    answered = figures["requests"] - figures["errors"]
    figures["cpu_ms_per_1000_rows"] = (_cpu_seconds(server_pid) - cpu) * 1e6 / max(answered, 1)
    return figures


def _serve_ours(payload: Path, work: Path, batching: bool) -> tuple[Process, int]:
    port = _free_port()
    process = Process([sys.executable, "-m", "model_server", "--payload", str(payload), "--port", str(port),
                       "--log-level", "warning", "--batching" if batching else "--no-batching"],
                      work / f"ours-{'on' if batching else 'off'}.log", cwd=REPO,
                      env={"MAAS_MODEL_NAME": MODEL_NAME, "MAAS_MODEL_VERSION": "1"})
    process.wait_ready(f"http://127.0.0.1:{port}/v2/health/ready")
    return process, port


def _serve_kserve(python: Path, model: Path, work: Path) -> tuple[Process, int]:
    script = work / "kserve_onnx.py"
    script.write_text(KSERVE_SERVER)
    port = _free_port()
    process = Process([str(python), str(script), "--http_port", str(port), "--model_name", MODEL_NAME,
                       "--model_path", str(model)], work / "kserve.log", cwd=work)
    process.wait_ready(f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}/ready")
    return process, port


def run() -> list[Result]:
    results: list[Result] = []

    def add(metric: str, value: float, unit: str, note: str = "", **extra: Any) -> None:
        results.append(Result(SCENARIO, metric, float(value), unit, note, extra))
    work = Path(tempfile.mkdtemp(prefix="maas-bench-ms-"))
    try:
        with ExitStack() as stack:
            payload = _ensure_dga_model(work)
            model = payload / "model.onnx"

            base = _in_process(model)
            add("in-process onnxruntime, 1 row", base["calls_per_s"], "calls/s", f"p50 {base['p50'] * 1e6:.0f} µs")
            add("in-process onnxruntime, 32 rows", base["rows_per_s_batch32"], "rows/s")

            single: dict[str, dict[str, float]] = {}
            load: dict[tuple[str, str], dict[str, float]] = {}
            for batching in (True, False):
                process, port = _serve_ours(payload, work, batching)
                stack.callback(process.stop)
                mode = "on" if batching else "off"
                url = f"http://127.0.0.1:{port}"
                if batching:
                    single["metron"] = _single(f"{url}/apply", METRON_BODY)
                    single["v2"] = _single(f"{url}/v2/models/{MODEL_NAME}/infer", V2_BODY)
                for clients in CLIENTS:
                    pid = process.proc.pid
                    load[("metron-" + mode, str(clients))] = _load(port, "/apply", METRON_BODY, clients, work, pid)
                    load[("v2-" + mode, str(clients))] = _load(port, f"/v2/models/{MODEL_NAME}/infer", V2_BODY,
                                                               clients, work, pid)
                process.stop()

            kserve_note = ""
            python, why = _kserve_python()
            if python is None:
                kserve_note = why
            else:
                try:
                    process, port = _serve_kserve(python, model, work)
                    stack.callback(process.stop)
                    single["kserve"] = _single(f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}/infer", V2_BODY)
                    for clients in CLIENTS:
                        load[("kserve", str(clients))] = _load(port, f"/v2/models/{MODEL_NAME}/infer", V2_BODY,
                                                               clients, work, process.proc.pid)
                    process.stop()
                except RuntimeError as exc:
                    kserve_note = f"KServe could not be run: {exc}"

        # -- single requests -------------------------------------------------------------------------
        names = {"metron": "ours, Metron POST /apply", "v2": "ours, V2 infer", "kserve": "KServe, V2 infer"}
        for key, figures in single.items():
            add(f"{names[key]}: single request p50", figures["p50"] * 1000, "ms", "keep-alive httpx.Client")
            add(f"{names[key]}: single request p99", figures["p99"] * 1000, "ms")
            add(f"{names[key]}: single requests", figures["rps"], "req/s", f"n={figures['n']:.0f}")
        for key in single:
            overhead = (single[key]["p50"] - base["p50"]) * 1000
            add(f"{names[key]}: overhead per request (p50 - in-process)", overhead, "ms")
        add("ratio ours (Metron) / in-process, single req/s", single["metron"]["rps"] / base["calls_per_s"], "x")
        add("ratio ours (V2) / in-process, single req/s", single["v2"]["rps"] / base["calls_per_s"], "x")
        if "kserve" in single:
            add("ratio ours / KServe, V2 overhead per request",
                (single["v2"]["p50"] - base["p50"]) / (single["kserve"]["p50"] - base["p50"]), "x", "lower is better")
            add("ratio ours / KServe, V2 single req/s", single["v2"]["rps"] / single["kserve"]["rps"], "x")

        # -- concurrency -------------------------------------------------------------------------------
        labels = {"metron-on": "ours, Metron, batching on", "metron-off": "ours, Metron, batching off",
                  "v2-on": "ours, V2, batching on", "v2-off": "ours, V2, batching off", "kserve": "KServe, V2"}
        for (key, count), figures in load.items():
            add(f"{labels[key]}, {count} clients", figures["rows_per_s"], "rows/s",
                f"p50 {figures['p50'] * 1000:.1f} ms, p99 {figures['p99'] * 1000:.1f} ms, "
                f"server CPU {figures['cpu_ms_per_1000_rows']:.0f} ms/1000 rows", errors=figures["errors"],
                p50_ms=figures["p50"] * 1000, p99_ms=figures["p99"] * 1000,
                cpu_ms_per_1000_rows=figures["cpu_ms_per_1000_rows"])
        for api in ("metron", "v2"):
            for clients in CLIENTS:
                on, off = load[(f"{api}-on", str(clients))], load[(f"{api}-off", str(clients))]
                add(f"ratio batching on / off, {'Metron' if api == 'metron' else 'V2'}, {clients} clients",
                    on["rows_per_s"] / off["rows_per_s"], "x",
                    f"server CPU per row: on/off {on['cpu_ms_per_1000_rows'] / off['cpu_ms_per_1000_rows']:.2f}"
                    + ("; target ≥ 3 at 32 clients" if clients == 32 else ""))
        for clients in CLIENTS:
            if ("kserve", str(clients)) in load:
                add(f"ratio ours (V2, batching on) / KServe, {clients} clients",
                    load[("v2-on", str(clients))]["rows_per_s"] / load[("kserve", str(clients))]["rows_per_s"], "x")
        if kserve_note:
            add("KServe comparison", float("nan"), "-", kserve_note)
    finally:
        if os.environ.get("MAAS_BENCH_KEEP"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return results


# -- the load generator (python -m bench.model_server load …) -------------------------------------------

async def _client(port: int, request: bytes, stop: float, latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length, chunked = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"transfer-encoding" and b"chunked" in value.lower():
                    chunked = True
            if chunked:
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
            else:
                await reader.readexactly(length)
            if status != 200:
                errors.append(status)
            latencies.append(time.perf_counter() - start)
    finally:
        writer.close()


async def _generate(port: int, path: str, body: bytes, clients: int, seconds: float) -> dict[str, float]:
    request = (f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
               f"content-length: {len(body)}\r\n\r\n").encode() + body
    latencies: list[float] = []
    errors: list[int] = []
    start = time.perf_counter()
    await asyncio.gather(*[_client(port, request, start + seconds, latencies, errors) for _ in range(clients)])
    elapsed = time.perf_counter() - start
    return {"rows_per_s": (len(latencies) - len(errors)) / elapsed, "requests": len(latencies),
            "errors": len(errors), "p50": percentile(latencies, 50), "p99": percentile(latencies, 99)}


def _load_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.model_server load")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--body", type=Path, required=True)
    args = parser.parse_args(argv)
    generate = _generate(args.port, args.path, args.body.read_bytes(), args.clients, args.seconds)
    try:
        import uvloop  # the cheapest event loop there is, when installed

        figures = uvloop.run(generate)
    except ImportError:
        figures = asyncio.run(generate)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["load"]:
        sys.exit(_load_main(sys.argv[2:]))
    for result in run():
        print(f"{result.metric:72} {result.value:12.2f} {result.unit:7} {result.note}", flush=True)
