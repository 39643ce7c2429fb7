"""Fixtures of the model-server tests: the DGA payload built once per session from
``examples/dga/train.py``, a small multi-input/multi-output model built with ``onnx.helper``,
and in-process clients (FastAPI's TestClient) serving them."""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import numpy as np
import onnx
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper

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
