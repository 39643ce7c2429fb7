"""The signature file, its binding to a model, the runtime's load errors and the settings."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from model_server.errors import (InvalidInput, ModelLoadError, ModelServerError, PayloadError, SettingsError,
                                 SignatureError)
from model_server.runtime import ModelRuntime
from model_server.settings import Settings
from model_server.signature import Signature, TensorInfo, bind, parse_signature
from tests.model_server.conftest import MULTI_SIGNATURE, build_multi_model, write_payload

MULTI_INPUTS = [TensorInfo("x", "tensor(float)", ("N", 2)), TensorInfo("w", "tensor(float)", ("N",))]
MULTI_OUTPUTS = [TensorInfo("total", "tensor(float)", ("N",)), TensorInfo("scaled", "tensor(float)", ("N", 2)),
                 TensorInfo("argmax", "tensor(int64)", ("N",))]
ZIPMAP = TensorInfo("probabilities", "seq(map(int64,tensor(float)))", None)


def signature(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(MULTI_SIGNATURE)
    data.update(changes)
    return data


def test_parse_and_bind_resolves_everything() -> None:
    binding = bind(parse_signature(json.dumps(MULTI_SIGNATURE)), MULTI_INPUTS, MULTI_OUTPUTS)
    assert binding.function == "score" and binding.max_batch is None
    features, weight = binding.inputs
    assert (features.arg, features.name, features.dtype, features.row_shape) == ("features", "x", "float32", (2,))
    assert (weight.arg, weight.row_shape, weight.has_default, weight.default) == ("weight", (), True, 1.0)
    assert [(o.name, o.key, o.kind) for o in binding.outputs] == [
        ("total", "total", "tensor"), ("scaled", "scaled", "tensor"), ("argmax", "largest", "tensor")]


def test_defaults_come_from_the_model() -> None:
    binding = bind(Signature(), MULTI_INPUTS, MULTI_OUTPUTS + [ZIPMAP])
    assert [(i.arg, i.dtype, i.row_shape, i.has_default) for i in binding.inputs] == [
        ("x", "float32", (2,), False), ("w", "float32", (), False)]
    assert [(o.key, o.kind) for o in binding.outputs] == [
        ("total", "tensor"), ("scaled", "tensor"), ("argmax", "tensor"), ("probabilities", "map_sequence")]


@pytest.mark.parametrize("text,words", [
    ("{", "not valid JSON"),
    ("[]", "must hold a JSON object"),
    (json.dumps(signature(typo=1)), "typo: Extra inputs are not permitted"),
    (json.dumps(signature(function="v2")), "'v2' is reserved"),
    (json.dumps(signature(function="a/b")), "function"),
    (json.dumps(signature(inputs=[{"name": "x", "shape": [4, 2]}])), "batch dimension"),
    (json.dumps(signature(inputs=[{"name": "x", "shape": [-1, 0]}])), "positive"),
    (json.dumps(signature(inputs=[{"name": "x", "dtype": "complex64"}])), "inputs.0.dtype"),
    (json.dumps(signature(inputs=[{"name": "x", "arg": "a"}, {"name": "w", "arg": "a"}])), "duplicate argument: a"),
    (json.dumps(signature(outputs=[{"name": "total", "key": "k"}, {"name": "scaled", "key": "k"}])),
     "duplicate output key: k"),
])
def test_malformed_signature_files(text: str, words: str) -> None:
    with pytest.raises(SignatureError, match="signature") as info:
        parse_signature(text)
    assert words in str(info.value)


@pytest.mark.parametrize("changes,words", [
    ({"inputs": [{"name": "nope"}, {"name": "w"}]}, "input 'nope' is not an input of the model"),
    ({"inputs": [{"name": "x"}]}, "model input(s) 'w' have no argument"),
    ({"inputs": [{"name": "x", "dtype": "int64"}, {"name": "w"}]}, "dtype int64 but the model takes float32"),
    ({"inputs": [{"name": "x", "shape": [-1]}, {"name": "w"}]}, "1 dimensions, the model's 2"),
    ({"inputs": [{"name": "x", "shape": [-1, 3]}, {"name": "w"}]}, "dimension 1 is 3 in the signature but 2"),
    ({"outputs": [{"name": "missing"}]}, "output 'missing' is not an output of the model"),
    ({"outputs": []}, "returns no outputs"),
    ({"outputs": [{"name": "scaled", "select": 5}]}, "select index 5 is out of range"),
    ({"outputs": [{"name": "total", "select": 0}]}, "select needs an output with a dimension beyond the batch"),
    ({"outputs": [{"name": "scaled", "select": "big"}]}, "select must be an index"),
    ({"outputs": [{"name": "probabilities", "select": "malicious"}]}, "the map's keys are int64"),
])
def test_signature_that_does_not_fit_the_model(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(SignatureError) as info:
        bind(Signature.model_validate(signature(**changes)), MULTI_INPUTS, MULTI_OUTPUTS + [ZIPMAP])
    assert words in str(info.value)


def test_default_that_does_not_fit(tmp_path: Path) -> None:
    sig = signature(inputs=[{"name": "x", "arg": "features", "default": [1, 2, 3]}, {"name": "w"}])
    payload = write_payload(tmp_path / "p", build_multi_model(), sig)
    with pytest.raises(SignatureError, match=r"input 'x': default \[1, 2, 3\] does not fit: expected shape \[2\]"):
        ModelRuntime.load(payload / "model.onnx", payload / "signature.json")


def test_broken_model_files(tmp_path: Path) -> None:
    (tmp_path / "garbage.onnx").write_bytes(b"this is not a protobuf")
    with pytest.raises(ModelLoadError, match="onnxruntime cannot load") as info:
        ModelRuntime.load(tmp_path / "garbage.onnx")
    assert info.value.__cause__ is not None  # translated with raise … from
    with pytest.raises(PayloadError, match="does not exist"):
        ModelRuntime.load(tmp_path / "absent.onnx")


def _fixed_batch_model(first_dim: int) -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["y"])], "fixed",
        [helper.make_tensor_value_info("x", TensorProto.INT64, [first_dim, 3])],
        [helper.make_tensor_value_info("y", TensorProto.INT64, [first_dim, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def test_model_with_a_batch_of_one_runs_row_by_row(tmp_path: Path) -> None:
    payload = write_payload(tmp_path / "p", _fixed_batch_model(1), None)
    runtime = ModelRuntime.load(payload / "model.onnx")
    runtime.warm_up()
    assert runtime.binding.max_batch == 1
    rows = [{"x": [i, i + 1, i + 2]} for i in range(4)]
    assert runtime.predict(rows) == [{"y": [-i, -i - 1, -i - 2]} for i in range(4)]
    with pytest.raises(InvalidInput, match="'x': expected an integer, got number 1.5"):
        runtime.predict([{"x": [1.5, 2, 3]}])


def test_model_with_a_fixed_batch_above_one_is_refused(tmp_path: Path) -> None:
    payload = write_payload(tmp_path / "p", _fixed_batch_model(4), None)
    with pytest.raises(SignatureError, match="first dimension is fixed at 4"):
        ModelRuntime.load(payload / "model.onnx")


def test_tensor_level_inference_is_protocol_neutral(multi_payload: Path) -> None:
    runtime = ModelRuntime.load(multi_payload / "model.onnx", multi_payload / "signature.json")
    out = runtime.infer({"x": np.array([[1, 2]], dtype=np.float32), "w": np.array([2], dtype=np.float32)})
    assert out["total"].tolist() == [6.0] and out["argmax"].tolist() == [1]
    with pytest.raises(InvalidInput, match="the model rejected the input") as info:
        runtime.infer({"x": np.array([[1, 2]], dtype=np.float64), "w": np.array([2], dtype=np.float32)})
    assert info.value.http_status == 422


def test_error_tree() -> None:
    for cls in (SettingsError, PayloadError, SignatureError, ModelLoadError, InvalidInput):
        assert issubclass(cls, ModelServerError)
    assert (InvalidInput.http_status, SignatureError.exit_code, SettingsError.exit_code) == (422, 3, 2)


# -- settings ---------------------------------------------------------------------------------

def test_settings_from_flags_and_environment(multi_payload: Path, tmp_path: Path) -> None:
    env = {"MAAS_PORT": "8123", "MAAS_MODEL_NAME": "multi", "MAAS_MODEL_VERSION": "2.0", "MODEL_SERVER_THREADS": "3"}
    settings = Settings.from_args(["--payload", str(multi_payload), "--endpoint-file", str(tmp_path / "e.dat")], env)
    assert (settings.port, settings.threads, settings.model_name, settings.model_version) == (8123, 3, "multi", "2.0")
    assert settings.signature_path == multi_payload / "signature.json"
    assert settings.public_url() == "http://127.0.0.1:8123"
    flagged = Settings.from_args(["--payload", str(multi_payload), "--port", "9", "--host", "0.0.0.0"], env)
    assert flagged.port == 9 and flagged.public_url() == "http://127.0.0.1:9"
    assert Settings.create(payload=multi_payload, port=1, host="::1").public_url() == "http://[::1]:1"


@pytest.mark.parametrize("argv,env,error,words", [
    (["--payload", "{p}"], {}, SettingsError, "no port"),
    (["--payload", "{p}", "--port", "70000"], {}, SettingsError, "port: Input should be less than or equal to 65535"),
    (["--payload", "{p}", "--port", "1", "--threads", "0"], {}, SettingsError, "threads"),
    (["--payload", "{p}", "--port", "1", "--max-body-bytes", "lots"], {}, SettingsError, "max_body_bytes"),
    (["--payload", "{p}", "--port", "1", "--host", "a b"], {}, SettingsError, "host"),
    (["--port", "1"], {}, SettingsError, "payload: Field required"),
    (["--payload", "{p}/nowhere", "--port", "1"], {}, PayloadError, "payload directory"),
    (["--payload", "{p}", "--port", "1", "--signature", "other.json"], {}, PayloadError, "other.json does not exist"),
    (["--payload", "{p}", "--bogus"], {"MAAS_PORT": "1"}, SettingsError, "unrecognized arguments: --bogus"),
])
def test_invalid_settings(multi_payload: Path, argv: list[str], env: dict[str, str], error: type, words: str) -> None:
    with pytest.raises(error) as info:
        Settings.from_args([a.replace("{p}", str(multi_payload)) for a in argv], env)
    assert words in str(info.value)
