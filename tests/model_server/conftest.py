"""Fixtures of the model-server tests: the DGA payload built once per session from
``examples/dga/train.py``; small models built with ``onnx.helper`` (multi-input/multi-output,
several datatypes, one identity per Open Inference Protocol datatype, a slow one); in-process
clients (FastAPI's TestClient) serving them; and real ``python -m model_server`` processes."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

import httpx
import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper, numpy_helper

from model_server.app import create_app
from model_server.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DGA_DIR = REPO / "examples" / "dga"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def dga_train() -> ModuleType:
    """``examples/dga/train.py`` as a module."""
    spec = importlib.util.spec_from_file_location("dga_train", DGA_DIR / "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["dga_train"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def dga_build(dga_train: ModuleType) -> tuple[onnx.ModelProto, dict[str, float]]:
    """The trained DGA model and its held-out metrics (trained once per session)."""
    return dga_train.build_model()


@pytest.fixture(scope="session")
def dga_payload(tmp_path_factory: pytest.TempPathFactory, dga_train: ModuleType,
                dga_build: tuple[onnx.ModelProto, dict[str, float]]) -> Path:
    """A copy of ``examples/dga/payload`` with a freshly built ``model.onnx``."""
    payload = tmp_path_factory.mktemp("dga") / "payload"
    payload.mkdir()
    for name in ("rest.sh", "signature.json"):
        shutil.copy(DGA_DIR / "payload" / name, payload / name)
    dga_train.write_model(dga_build[0], payload / "model.onnx")
    return payload


def settings_for(payload: Path, **overrides: Any) -> Settings:
    return Settings.create(payload=payload, port=0, **overrides)


@pytest.fixture(scope="session")
def dga_client(dga_payload: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(dga_payload))) as client:
        yield client


# -- a model with two float inputs and three outputs, built with onnx.helper --------------------

MULTI_SIGNATURE: dict[str, Any] = {
    "function": "score",
    "inputs": [
        {"name": "x", "arg": "features", "dtype": "float32", "shape": [-1, 2]},
        {"name": "w", "arg": "weight", "dtype": "float32", "shape": [-1], "default": 1.0},
    ],
    "outputs": [
        {"name": "total", "key": "total"},
        {"name": "scaled", "key": "scaled"},
        {"name": "argmax", "key": "largest", "labels": {"0": "first", "1": "second"}},
    ],
}


def build_multi_model() -> onnx.ModelProto:
    """``total = (x[:,0] + x[:,1]) * w``, ``scaled = x * w[:,None]``, ``argmax = argmax(x, 1)``."""
    nodes = [
        helper.make_node("Unsqueeze", ["w", "axis1"], ["w_col"]),
        helper.make_node("Mul", ["x", "w_col"], ["scaled"]),
        helper.make_node("ReduceSum", ["scaled", "axis1"], ["total"], keepdims=0),
        helper.make_node("ArgMax", ["x"], ["argmax"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes, "multi",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, ["N"])],
        [helper.make_tensor_value_info("total", TensorProto.FLOAT, ["N"]),
         helper.make_tensor_value_info("scaled", TensorProto.FLOAT, ["N", 2]),
         helper.make_tensor_value_info("argmax", TensorProto.INT64, ["N"])],
        initializer=[helper.make_tensor("axis1", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def multi_reference(features: list[list[float]], weights: list[float]) -> list[dict[str, Any]]:
    x = np.array(features, dtype=np.float32)
    w = np.array(weights, dtype=np.float32)
    scaled = x * w[:, None]
    return [{"total": float(scaled[i].sum()), "scaled": scaled[i].tolist(),
             "largest": ["first", "second"][int(np.argmax(x[i]))]} for i in range(len(x))]


def write_payload(directory: Path, model: onnx.ModelProto, signature: dict[str, Any] | None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save(model, directory / "model.onnx")
    if signature is not None:
        (directory / "signature.json").write_text(json.dumps(signature))
    return directory


@pytest.fixture(scope="session")
def multi_payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_payload(tmp_path_factory.mktemp("multi") / "payload", build_multi_model(), MULTI_SIGNATURE)


@pytest.fixture(scope="session")
def multi_client(multi_payload: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(multi_payload, max_batch_size=50))) as client:
        yield client


# -- a model over several datatypes (INT64, BOOL, FP16 inputs) -----------------------------------

DTYPES_SIGNATURE: dict[str, Any] = {
    "function": "mix",
    "inputs": [
        {"name": "ids", "dtype": "int64", "shape": [-1, 3]},
        {"name": "flag", "dtype": "bool", "shape": [-1], "default": False},
        {"name": "half", "dtype": "float16", "shape": [-1, 2]},
    ],
    "outputs": [
        {"name": "id_sum", "key": "sum"},
        {"name": "picked", "key": "picked"},
        {"name": "flag_not", "key": "not_flag", "labels": {"true": "off", "false": "on"}},
        {"name": "half_sq", "key": "squared"},
    ],
}


def build_dtypes_model() -> onnx.ModelProto:
    """``id_sum = sum(ids, 1)`` (INT64), ``picked = flag ? id_sum : -id_sum``, ``flag_not = !flag``
    (BOOL), ``half_sq = half * half`` (FP16)."""
    nodes = [
        helper.make_node("ReduceSum", ["ids", "axis1"], ["id_sum"], keepdims=0),
        helper.make_node("Neg", ["id_sum"], ["id_neg"]),
        helper.make_node("Where", ["flag", "id_sum", "id_neg"], ["picked"]),
        helper.make_node("Not", ["flag"], ["flag_not"]),
        helper.make_node("Mul", ["half", "half"], ["half_sq"]),
    ]
    graph = helper.make_graph(
        nodes, "dtypes",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["N", 3]),
         helper.make_tensor_value_info("flag", TensorProto.BOOL, ["N"]),
         helper.make_tensor_value_info("half", TensorProto.FLOAT16, ["N", 2])],
        [helper.make_tensor_value_info("id_sum", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("picked", TensorProto.INT64, ["N"]),
         helper.make_tensor_value_info("flag_not", TensorProto.BOOL, ["N"]),
         helper.make_tensor_value_info("half_sq", TensorProto.FLOAT16, ["N", 2])],
        initializer=[helper.make_tensor("axis1", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


# every Open Inference Protocol datatype: V2 name → (ONNX element type, numpy dtype)
V2_DATATYPES: dict[str, tuple[int, Any]] = {
    "BOOL": (TensorProto.BOOL, np.bool_), "INT8": (TensorProto.INT8, np.int8), "INT16": (TensorProto.INT16, np.int16),
    "INT32": (TensorProto.INT32, np.int32), "INT64": (TensorProto.INT64, np.int64),
    "UINT8": (TensorProto.UINT8, np.uint8), "UINT16": (TensorProto.UINT16, np.uint16),
    "UINT32": (TensorProto.UINT32, np.uint32), "UINT64": (TensorProto.UINT64, np.uint64),
    "FP16": (TensorProto.FLOAT16, np.float16), "FP32": (TensorProto.FLOAT, np.float32),
    "FP64": (TensorProto.DOUBLE, np.float64), "BYTES": (TensorProto.STRING, np.object_),
}


def build_identity_model() -> onnx.ModelProto:
    """One ``[N, 2]`` input ``in_<type>`` per datatype, returned as ``out_<type>``."""
    inputs, outputs, nodes = [], [], []
    for name, (elem, _) in V2_DATATYPES.items():
        low = name.lower()
        inputs.append(helper.make_tensor_value_info(f"in_{low}", elem, ["N", 2]))
        outputs.append(helper.make_tensor_value_info(f"out_{low}", elem, ["N", 2]))
        nodes.append(helper.make_node("Identity", [f"in_{low}"], [f"out_{low}"]))
    model = helper.make_model(helper.make_graph(nodes, "identity", inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def build_slow_model(size: int = 1024, layers: int = 8) -> onnx.ModelProto:
    """``y = x @ W @ W … (layers times)``: a float model slow enough to have requests in flight."""
    weight = np.full((size, size), 1.0 / size, dtype=np.float32)
    nodes, previous = [], "x"
    for layer in range(layers):
        nodes.append(helper.make_node("MatMul", [previous, "w"], [f"h{layer}"]))
        previous = f"h{layer}"
    nodes.append(helper.make_node("ReduceSum", [previous, "axis1"], ["y"], keepdims=0))
    graph = helper.make_graph(
        nodes, "slow", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", size])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"])],
        initializer=[numpy_helper.from_array(weight, "w"),
                     helper.make_tensor("axis1", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


@pytest.fixture(scope="session")
def dtypes_payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_payload(tmp_path_factory.mktemp("dtypes") / "payload", build_dtypes_model(), DTYPES_SIGNATURE)


@pytest.fixture(scope="session")
def identity_payload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_payload(tmp_path_factory.mktemp("identity") / "payload", build_identity_model(), None)


# -- real servers: `python -m model_server` processes on free ports ------------------------------

class ServedModel:
    """A ``python -m model_server`` process serving a payload on a free port."""

    def __init__(self, payload: Path, args: list[str], env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "model_server", "--payload", str(payload), "--port", str(self.port),
             "--log-level", "warning", *args],
            env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            start_new_session=True)

    def wait_ready(self, timeout: float = 60.0) -> "ServedModel":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"model_server exited with {self.process.returncode}: "
                                   f"{self.process.stderr.read() if self.process.stderr else ''}")
            try:
                if httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("model_server did not become ready")

    def stop(self) -> int:
        """SIGTERM (graceful), then SIGKILL after 30 s; the exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return int(self.process.returncode)


@pytest.fixture(scope="session")
def serve() -> Iterator[Callable[..., ServedModel]]:
    """``serve(payload, *flags, env=…)``: a ready server process, shared by the session (one per
    payload and flags), stopped at the end."""
    servers: dict[tuple[Any, ...], ServedModel] = {}

    def start(payload: Path, *args: str, env: dict[str, str] | None = None) -> ServedModel:
        key = (str(payload), args, tuple(sorted((env or {}).items())))
        if key not in servers:
            servers[key] = ServedModel(payload, list(args), env).wait_ready()
        return servers[key]

    yield start
    for server in servers.values():
        server.stop()
