"""The model server on two models, in one run (about two minutes); for each of them:

- in-process onnxruntime: one-row calls per second (the floor every server adds to);
- our server, single requests with a keep-alive ``httpx.Client``: p50/p99 latency and req/s, for
  the Metron API (``POST /apply``) and the Open Inference Protocol (``POST /v2/models/<m>/infer``);
- rows/s at 1, 8 and 32 concurrent keep-alive clients, one row per request, with server-side
  batching on and off, for both APIs;
- side by side, KServe's Python model server (the ``kserve`` package, a ``kserve.Model`` around the
  same onnxruntime session, one worker, its per-request log lines off as ours are) with the same
  clients and load on the same V2 requests. KServe lives in its own virtual environment,
  ``.bench-venv`` (created here when missing, with pip); if it cannot be installed or started, the
  rest is reported and the KServe figures say why they are missing;
- ratios: ours / in-process, ours / KServe, batching on / off;
- the ceiling batching could reach were the server's own request handling free (see below).

The models: the DGA example (``examples/dga``: a string pipeline, ~50 µs a call, far less than the
HTTP handling of a request), and a dense sensor autoencoder of the kind industrial anomaly
detection uses (128 readings → 2048 → 2048 → 128, the mean squared reconstruction error as the
anomaly score; 4.5 M weights, built here untrained — its cost, not its answers, is measured), whose
inference is most of a request.

Where the machine has two CPUs or more, every server runs on one CPU and the load generator on the
others, so the client never takes CPU from the server it measures, and every server gets the same
single core. The concurrent load comes from ``wrk`` (C, keep-alive, a Lua script for the POST body;
``make bench`` installs it), or, where wrk is missing, from ``python -m bench.model_server load …``,
a small asyncio HTTP/1.1 keep-alive client whose own CPU cost then limits the fastest servers. Each
"setup" line says which. Every process started here is stopped (SIGTERM, then SIGKILL of its process
group) before :func:`run` returns.

The HTTP floor is uvicorn serving a fixed answer with the model server's settings, loaded alike;
the "ceiling" of batching on a model is the server CPU per row without batching divided by that
floor plus the model's batched inference per row: what batching would give were everything else the
server does per request (parsing, validation, batching, encoding, metrics) free.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
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
SINGLE_SECONDS = 2.0
LOAD_SECONDS = 3.0
CLIENTS = (1, 8, 32)
MODEL_NAME = "dga"

AE_NAME = "sensor_ae"
AE_FEATURES, AE_HIDDEN = 128, 2048

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
                                     env={**os.environ, **(env or {})}, start_new_session=True,
                                     preexec_fn=_pin(PLACEMENT.server))

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


class Placement:
    """Which CPUs the servers and the load generator run on (all of them where there is one)."""

    def __init__(self) -> None:
        cpus = sorted(os.sched_getaffinity(0))
        self.server = {cpus[-1]} if len(cpus) > 1 else set(cpus)
        self.load = set(cpus[:-1]) if len(cpus) > 1 else set(cpus)

    @property
    def split(self) -> bool:
        """Server and load on CPUs of their own."""
        return self.server != self.load

    def describe(self) -> str:
        if not self.split:
            return "one CPU: server and load share it"
        return f"server on CPU {min(self.server)}, load on CPU {', '.join(map(str, sorted(self.load)))}"


PLACEMENT = Placement()


def _pin(cpus: set[int]) -> Any:
    """A ``preexec_fn`` putting the child (and every thread it starts) on ``cpus``."""
    return lambda: os.sched_setaffinity(0, cpus)


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


def _build_autoencoder(work: Path) -> Path:
    """A payload with the dense sensor autoencoder: ``x`` [n, 128] → ``score`` [n], the mean squared
    reconstruction error. He-initialised, untrained weights (seeded): only its cost matters here."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(7)
    dims = [AE_FEATURES, AE_HIDDEN, AE_HIDDEN, AE_FEATURES]
    nodes, weights, previous = [], [], "x"
    for layer, (fan_in, fan_out) in enumerate(zip(dims[:-1], dims[1:])):
        w = (rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)).astype(np.float32)
        weights += [numpy_helper.from_array(w, f"W{layer}"),
                    numpy_helper.from_array(np.zeros(fan_out, np.float32), f"B{layer}")]
        nodes.append(helper.make_node("Gemm", [previous, f"W{layer}", f"B{layer}"], [f"h{layer}"]))
        previous = f"h{layer}"
        if layer < len(dims) - 2:
            nodes.append(helper.make_node("Relu", [previous], [f"a{layer}"]))
            previous = f"a{layer}"
    nodes += [helper.make_node("Sub", [previous, "x"], ["diff"]),
              helper.make_node("Mul", ["diff", "diff"], ["squared"]),
              helper.make_node("ReduceMean", ["squared"], ["score"], axes=[1], keepdims=0)]
    graph = helper.make_graph(nodes, AE_NAME, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, AE_FEATURES])],
                              [helper.make_tensor_value_info("score", TensorProto.FLOAT, [None])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    payload = work / "sensor_ae"
    payload.mkdir()
    onnx.save(model, str(payload / "model.onnx"))
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

def _in_process(model: Path, one: dict[str, np.ndarray], many: dict[str, np.ndarray]) -> dict[str, float]:
    """onnxruntime in this process (on the servers' CPU): one-row calls, and 32-row calls."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
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
            "rows_per_s_batch32": calls * len(next(iter(many.values()))) / (time.perf_counter() - start)}


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


LOAD_TOOL = "wrk" if shutil.which("wrk") else "python asyncio client"


def _load(port: int, path: str, body: bytes, clients: int, work: Path, server_pid: int) -> dict[str, float]:
    """``clients`` concurrent keep-alive connections for LOAD_SECONDS, from a process of its own on
    the load CPUs; with the server's CPU time per 1000 rows answered."""
    body_file = work / f"body-{abs(hash(body))}.json"
    body_file.write_bytes(body)
    cpu = _cpu_seconds(server_pid)
    if LOAD_TOOL == "wrk":
        figures = _wrk(port, path, body_file, clients, work)
    else:
        out = subprocess.run([sys.executable, "-m", "bench.model_server", "load", "--port", str(port), "--path", path,
                              "--clients", str(clients), "--seconds", str(LOAD_SECONDS), "--body", str(body_file)],
                             cwd=REPO, capture_output=True, text=True, timeout=LOAD_SECONDS + 60,
                             preexec_fn=_pin(PLACEMENT.load))
        if out.returncode != 0:
            raise RuntimeError(f"load generator failed: {out.stderr.strip()[-500:]}")
        figures = json.loads(out.stdout)
    answered = figures["requests"] - figures["errors"]
    figures["cpu_ms_per_1000_rows"] = (_cpu_seconds(server_pid) - cpu) * 1e6 / max(answered, 1)
    return figures


WRK_SCRIPT = """wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("{body}", "rb"):read()
"""
_WRK_TIME = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _wrk(port: int, path: str, body_file: Path, clients: int, work: Path) -> dict[str, float]:
    """The same load from wrk: one thread per load CPU, ``clients`` connections."""
    script = work / f"{body_file.stem}.lua"
    script.write_text(WRK_SCRIPT.format(body=body_file))
    threads = max(1, min(clients, len(PLACEMENT.load)))
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{clients}", f"-d{LOAD_SECONDS:.0f}s", "--latency", "-s",
                          str(script), f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                         timeout=LOAD_SECONDS + 60, preexec_fn=_pin(PLACEMENT.load))
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed: {(out.stderr or out.stdout).strip()[-500:]}")
    return _parse_wrk(out.stdout)


def _parse_wrk(text: str) -> dict[str, float]:
    """requests, errors (non-2xx and socket errors), rows_per_s (answered per second), p50, p99."""
    def duration(value: str) -> float:
        match = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", value)
        if match is None:
            raise RuntimeError(f"cannot read wrk's latency {value!r}")
        return float(match.group(1)) * _WRK_TIME[match.group(2)]

    done = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m)", text, re.M)
    if done is None:
        raise RuntimeError(f"cannot read wrk's output: {text[-300:]}")
    requests, elapsed = int(done.group(1)), duration(done.group(2) + done.group(3))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0)
    latency = dict(re.findall(r"^\s*(50|99)%\s+(\S+)$", text, re.M))
    return {"requests": requests, "errors": errors, "rows_per_s": max(requests - errors, 0) / elapsed,
            "p50": duration(latency["50"]), "p99": duration(latency["99"])}


def _serve_ours(payload: Path, work: Path, batching: bool, name: str = MODEL_NAME) -> tuple[Process, int]:
    port = _free_port()
    process = Process([sys.executable, "-m", "model_server", "--payload", str(payload), "--port", str(port),
                       "--log-level", "warning", "--batching" if batching else "--no-batching"],
                      work / f"ours-{name}-{'on' if batching else 'off'}.log", cwd=REPO,
                      env={"MAAS_MODEL_NAME": name, "MAAS_MODEL_VERSION": "1"})
    process.wait_ready(f"http://127.0.0.1:{port}/v2/health/ready")
    return process, port


def _serve_kserve(python: Path, model: Path, work: Path, name: str) -> tuple[Process, int]:
    script = work / "kserve_onnx.py"
    script.write_text(KSERVE_SERVER)
    port = _free_port()
    process = Process([str(python), str(script), "--http_port", str(port), "--model_name", name,
                       "--model_path", str(model)], work / f"kserve-{name}.log", cwd=work)
    process.wait_ready(f"http://127.0.0.1:{port}/v2/models/{name}/ready")
    return process, port


@dataclass
class Subject:
    """One model measured: its payload, and one row of it in process and on both APIs."""

    title: str  # in the table
    name: str   # served as (the V2 model name)
    payload: Path
    one: dict[str, np.ndarray]   # one row, in process
    many: dict[str, np.ndarray]  # 32 rows, in process
    metron_body: bytes
    v2_body: bytes


def _subjects(work: Path) -> list[Subject]:
    dga = _ensure_dga_model(work)
    ae = _build_autoencoder(work)
    readings = np.random.default_rng(3).standard_normal((32, AE_FEATURES)).astype(np.float32)
    row = [round(float(v), 4) for v in readings[0]]
    return [
        Subject("DGA", MODEL_NAME, dga, {"host": np.array([HOST], dtype=object)},
                {"host": np.array([HOST] * 32, dtype=object)}, METRON_BODY, V2_BODY),
        Subject("sensor AE", AE_NAME, ae, {"x": readings[:1]}, {"x": readings}, json.dumps({"x": row}).encode(),
                json.dumps({"id": "1", "inputs": [{"name": "x", "datatype": "FP32", "shape": [1, AE_FEATURES],
                                                   "data": row}]}).encode()),
    ]


def _measure(subject: Subject, work: Path, stack: ExitStack, kserve: Path | None) -> dict[str, Any]:
    """In process; ours with batching on and off (single requests, then 1/8/32 clients on both APIs);
    KServe on the same V2 requests when ``kserve`` (its python) is given."""
    os.sched_setaffinity(0, PLACEMENT.server)  # onnxruntime in process: on the servers' CPU
    base = _in_process(subject.payload / "model.onnx", subject.one, subject.many)
    os.sched_setaffinity(0, PLACEMENT.load)  # the single-request clients: on the load CPUs
    v2_path = f"/v2/models/{subject.name}/infer"
    single: dict[str, dict[str, float]] = {}
    load: dict[tuple[str, int], dict[str, float]] = {}
    for batching in (True, False):
        process, port = _serve_ours(subject.payload, work, batching, name=subject.name)
        stack.callback(process.stop)
        mode = "on" if batching else "off"
        if batching:
            single["metron"] = _single(f"http://127.0.0.1:{port}/apply", subject.metron_body)
            single["v2"] = _single(f"http://127.0.0.1:{port}{v2_path}", subject.v2_body)
        for clients in CLIENTS:
            pid = process.proc.pid
            load[(f"metron-{mode}", clients)] = _load(port, "/apply", subject.metron_body, clients, work, pid)
            load[(f"v2-{mode}", clients)] = _load(port, v2_path, subject.v2_body, clients, work, pid)
        process.stop()
    kserve_note = ""
    if kserve is not None:
        try:
            process, port = _serve_kserve(kserve, subject.payload / "model.onnx", work, subject.name)
            stack.callback(process.stop)
            single["kserve"] = _single(f"http://127.0.0.1:{port}{v2_path}", subject.v2_body)
            for clients in CLIENTS:
                load[("kserve", clients)] = _load(port, v2_path, subject.v2_body, clients, work, process.proc.pid)
            process.stop()
        except RuntimeError as exc:
            kserve_note = f"KServe could not be run: {exc}"
    return {"base": base, "single": single, "load": load, "kserve_note": kserve_note}


def _floor(work: Path, stack: ExitStack) -> dict[str, float]:
    """uvicorn serving a fixed answer, with the model server's settings, at 32 clients."""
    port = _free_port()
    process = Process([sys.executable, "-m", "bench.model_server", "floor", "--port", str(port)], work / "floor.log",
                      cwd=REPO)
    stack.callback(process.stop)
    process.wait_ready(f"http://127.0.0.1:{port}/")
    figures = _load(port, "/apply", METRON_BODY, 32, work, process.proc.pid)
    process.stop()
    return figures


def _report(subject: Subject, figures: dict[str, Any], floor: dict[str, float], add: Any) -> None:
    """The figures of one model as results, named after it."""
    base, single, load = figures["base"], figures["single"], figures["load"]
    title = subject.title
    add(f"{title}: in-process onnxruntime, 1 row", base["calls_per_s"], "calls/s", f"p50 {base['p50'] * 1e6:.0f} µs")
    add(f"{title}: in-process onnxruntime, 32 rows", base["rows_per_s_batch32"], "rows/s")

    # -- single requests ---------------------------------------------------------------------------
    names = {"metron": "ours, Metron POST /apply", "v2": "ours, V2 infer", "kserve": "KServe, V2 infer"}
    for key, one in single.items():
        add(f"{title}: {names[key]}: single request p50", one["p50"] * 1000, "ms", "keep-alive httpx.Client")
        add(f"{title}: {names[key]}: single request p99", one["p99"] * 1000, "ms")
        add(f"{title}: {names[key]}: single requests", one["rps"], "req/s", f"n={one['n']:.0f}")
    for key in single:
        add(f"{title}: {names[key]}: overhead per request (p50 - in-process)",
            (single[key]["p50"] - base["p50"]) * 1000, "ms")
    add(f"{title}: ratio ours (Metron) / in-process, single req/s", single["metron"]["rps"] / base["calls_per_s"], "x")
    add(f"{title}: ratio ours (V2) / in-process, single req/s", single["v2"]["rps"] / base["calls_per_s"], "x")
    if "kserve" in single:
        add(f"{title}: ratio ours / KServe, V2 overhead per request",
            (single["v2"]["p50"] - base["p50"]) / (single["kserve"]["p50"] - base["p50"]), "x", "lower is better")
        add(f"{title}: ratio ours / KServe, V2 single req/s", single["v2"]["rps"] / single["kserve"]["rps"], "x")

    # -- concurrency -------------------------------------------------------------------------------
    labels = {"metron-on": "ours, Metron, batching on", "metron-off": "ours, Metron, batching off",
              "v2-on": "ours, V2, batching on", "v2-off": "ours, V2, batching off", "kserve": "KServe, V2"}
    for (key, clients), one in load.items():
        add(f"{title}: {labels[key]}, {clients} clients", one["rows_per_s"], "rows/s",
            f"p50 {one['p50'] * 1000:.1f} ms, p99 {one['p99'] * 1000:.1f} ms, "
            f"server CPU {one['cpu_ms_per_1000_rows']:.0f} ms/1000 rows", errors=one["errors"],
            p50_ms=one["p50"] * 1000, p99_ms=one["p99"] * 1000, cpu_ms_per_1000_rows=one["cpu_ms_per_1000_rows"])
    inference = 1e6 / base["rows_per_s_batch32"]  # ms per 1000 rows, in 32-row calls
    for api, api_title in (("metron", "Metron"), ("v2", "V2")):
        for clients in CLIENTS:
            on, off = load[(f"{api}-on", clients)], load[(f"{api}-off", clients)]
            add(f"{title}: ratio batching on / off, {api_title}, {clients} clients", on["rows_per_s"] / off["rows_per_s"],
                "x", f"server CPU per row: on/off {on['cpu_ms_per_1000_rows'] / off['cpu_ms_per_1000_rows']:.2f}"
                + ("; target ≥ 3 at 32 clients" if clients == 32 else ""))
        on, off = load[(f"{api}-on", 32)], load[(f"{api}-off", 32)]
        handling = on["cpu_ms_per_1000_rows"] - floor["cpu_ms_per_1000_rows"] - inference
        add(f"{title}: ceiling batching on / off, {api_title}, 32 clients",
            off["cpu_ms_per_1000_rows"] / (floor["cpu_ms_per_1000_rows"] + inference), "x",
            f"were the server's own handling free: CPU per row off / (HTTP floor + batched inference); "
            f"that handling is {100 * handling / on['cpu_ms_per_1000_rows']:.0f} % of a batched row's CPU")
    for clients in CLIENTS:
        if ("kserve", clients) in load:
            add(f"{title}: ratio ours (V2, batching on) / KServe, {clients} clients",
                load[("v2-on", clients)]["rows_per_s"] / load[("kserve", clients)]["rows_per_s"], "x")
    if figures["kserve_note"]:
        add(f"{title}: KServe comparison", float("nan"), "-", figures["kserve_note"])


def run() -> list[Result]:
    results: list[Result] = []

    def add(metric: str, value: float, unit: str, note: str = "", **extra: Any) -> None:
        results.append(Result(SCENARIO, metric, float(value), unit, note, extra))
    work = Path(tempfile.mkdtemp(prefix="maas-bench-ms-"))
    own_cpus = os.sched_getaffinity(0)
    add("setup", float("nan"), "-", f"load from {LOAD_TOOL}; {PLACEMENT.describe()}")
    try:
        with ExitStack() as stack:
            kserve, why = _kserve_python()
            if kserve is None:
                add("KServe comparison", float("nan"), "-", why)
            os.sched_setaffinity(0, PLACEMENT.load)
            floor = _floor(work, stack)
            add("uvicorn alone (a fixed answer), 32 clients", floor["rows_per_s"], "req/s",
                f"server CPU {floor['cpu_ms_per_1000_rows']:.0f} ms/1000 requests: the HTTP floor under every request")
            for subject in _subjects(work):
                _report(subject, _measure(subject, work, stack, kserve), floor, add)
    finally:
        os.sched_setaffinity(0, own_cpus)
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


# -- the HTTP floor (python -m bench.model_server floor --port N) ----------------------------------------

async def _fixed_answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app that reads the request and sends a fixed JSON answer: what uvicorn costs alone."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    body = b'{"is_malicious":"legit","probability":0.0123}'
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _floor_main(argv: list[str]) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.model_server floor")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # the model server's own uvicorn settings (model_server/server.py)
    uvicorn.run(_fixed_answer, host="127.0.0.1", port=args.port, log_level="warning", access_log=False,
                lifespan="off", server_header=False, proxy_headers=False)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["load"]:
        sys.exit(_load_main(sys.argv[2:]))
    if sys.argv[1:2] == ["floor"]:
        sys.exit(_floor_main(sys.argv[2:]))
    for result in run():
        print(f"{result.metric:72} {result.value:12.2f} {result.unit:7} {result.note}", flush=True)
