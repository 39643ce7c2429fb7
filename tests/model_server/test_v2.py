"""The Open Inference Protocol (KServe V2 / Triton REST): every route, every datatype, JSON and
binary tensor data, errors — over plain HTTP (in process, FastAPI's TestClient) and with the
standard client, ``tritonclient[http]``, against a real ``python -m model_server`` process."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.http as triton
from fastapi.testclient import TestClient
from tritonclient.utils import InferenceServerException

from model_server.app import create_app
from model_server.runtime import ModelRuntime
from tests.model_server.conftest import V2_DATATYPES, ServedModel, settings_for

HOSTS = ["www.google.com", "xjwqkzvbtpqmd.com", "news.bbc.co.uk", "a8f3c9e1b7d24f6e.net", "", "ünïcødé.com"]


def ort_run(payload: Path, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
    """What onnxruntime itself returns, in process."""
    session = ort.InferenceSession(str(payload / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def zipmap_to_matrix(rows: list[dict[Any, float]]) -> np.ndarray:
    keys = list(rows[0])
    return np.array([[row[k] for k in keys] for row in rows], dtype=np.float32)


def infer_body(inputs: dict[str, tuple[str, np.ndarray]], **extra: Any) -> dict[str, Any]:
    """A JSON inference request: name → (datatype, array)."""
    return {"inputs": [{"name": name, "datatype": datatype, "shape": list(array.shape),
                        "data": array.reshape(-1).tolist()} for name, (datatype, array) in inputs.items()], **extra}


def binary_request(inputs: dict[str, tuple[str, np.ndarray]], **extra: Any) -> tuple[bytes, dict[str, str]]:
    """A request in the binary tensor data extension (built here, independently of the server)."""
    header: dict[str, Any] = {"inputs": [], **extra}
    chunks = []
    for name, (datatype, array) in inputs.items():
        if datatype == "BYTES":
            raw = b"".join(struct.pack("<I", len(s.encode())) + s.encode() for s in array.reshape(-1).tolist())
        else:
            raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        header["inputs"].append({"name": name, "datatype": datatype, "shape": list(array.shape),
                                 "parameters": {"binary_data_size": len(raw)}})
        chunks.append(raw)
    head = json.dumps(header).encode()
    return head + b"".join(chunks), {"Inference-Header-Content-Length": str(len(head))}


def decode_response(response: Any) -> dict[str, np.ndarray]:
    """Output name → array, from a JSON or binary response."""
    length = response.headers.get("inference-header-content-length")
    content = response.content
    doc = json.loads(content[:int(length)] if length else content)
    binary = content[int(length):] if length else b""
    offset = 0
    arrays: dict[str, np.ndarray] = {}
    for out in doc["outputs"]:
        dtype = V2_DATATYPES[out["datatype"]][1]
        size = out.get("parameters", {}).get("binary_data_size")
        if size is None:
            arrays[out["name"]] = np.array(out["data"], dtype=dtype).reshape(out["shape"])
            continue
        raw = binary[offset:offset + size]
        offset += size
        if out["datatype"] == "BYTES":
            items, pos = [], 0
            while pos < len(raw):
                (n,) = struct.unpack_from("<I", raw, pos)
                items.append(raw[pos + 4:pos + 4 + n].decode())
                pos += 4 + n
            arrays[out["name"]] = np.array(items, dtype=object).reshape(out["shape"])
        else:
            arrays[out["name"]] = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(out["shape"])
    return arrays


@pytest.fixture(scope="module")
def dtypes_client(dtypes_payload: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(dtypes_payload, model_name="mix", model_version="7"))) as client:
        yield client


@pytest.fixture(scope="module")
def identity_client(identity_payload: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(identity_payload, model_name="identity"))) as client:
        yield client


# -- metadata and health ----------------------------------------------------------------------

def test_server_metadata_and_health(multi_client: TestClient) -> None:
    meta = multi_client.get("/v2")
    assert meta.status_code == 200
    assert meta.json()["name"] == "maas-model-server" and meta.json()["version"]
    assert "binary_tensor_data" in meta.json()["extensions"]
    assert multi_client.get("/v2/health/live").json() == {"live": True}
    assert multi_client.get("/v2/health/ready").json() == {"ready": True}


def test_model_metadata_lists_tensors_with_v2_datatypes(multi_client: TestClient, dtypes_client: TestClient,
                                                        dga_client: TestClient) -> None:
    assert multi_client.get("/v2/models/model").json() == {
        "name": "model", "versions": [], "platform": "onnxruntime_onnx",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}, {"name": "w", "datatype": "FP32", "shape": [-1]}],
        "outputs": [{"name": "total", "datatype": "FP32", "shape": [-1]},
                    {"name": "scaled", "datatype": "FP32", "shape": [-1, 2]},
                    {"name": "argmax", "datatype": "INT64", "shape": [-1]}],
    }
    mix = dtypes_client.get("/v2/models/mix/versions/7").json()
    assert mix["versions"] == ["7"] and mix == dtypes_client.get("/v2/models/mix").json()
    assert [(t["name"], t["datatype"], t["shape"]) for t in mix["inputs"]] == [
        ("ids", "INT64", [-1, 3]), ("flag", "BOOL", [-1]), ("half", "FP16", [-1, 2])]
    assert [(t["name"], t["datatype"]) for t in mix["outputs"]] == [
        ("id_sum", "INT64"), ("picked", "INT64"), ("flag_not", "BOOL"), ("half_sq", "FP16")]
    dga = dga_client.get("/v2/models/model").json()
    assert dga["inputs"] == [{"name": "host", "datatype": "BYTES", "shape": [-1]}]
    assert dga["outputs"] == [{"name": "output_label", "datatype": "INT64", "shape": [-1]},
                              {"name": "output_probability", "datatype": "FP32", "shape": [-1, -1]}]


def test_model_readiness_routes(dtypes_client: TestClient) -> None:
    for url in ("/v2/models/mix/ready", "/v2/models/mix/versions/7/ready"):
        response = dtypes_client.get(url)
        assert response.status_code == 200 and response.json() == {"name": "mix", "ready": True}


@pytest.mark.parametrize("url", ["/v2/models/nope", "/v2/models/nope/ready", "/v2/models/mix/versions/8",
                                 "/v2/models/mix/versions/8/ready", "/v2/models/Mix"])
def test_unknown_model_or_version_is_404(dtypes_client: TestClient, url: str) -> None:
    response = dtypes_client.get(url)
    assert response.status_code == 404, response.text
    assert "Not Found" in response.json()["error"]


def test_unknown_model_wins_over_method_and_wrong_method_is_405(dtypes_client: TestClient) -> None:
    response = dtypes_client.post("/v2/models/nope/infer", json={})
    assert response.status_code == 404 and "unknown model 'nope'" in response.json()["error"]
    assert dtypes_client.get("/v2/models/nope/infer").status_code == 404
    assert dtypes_client.post("/v2/models/mix/versions/9/infer", json={}).status_code == 404
    wrong = dtypes_client.get("/v2/models/mix/infer")
    assert wrong.status_code == 405 and "error" in wrong.json()
    assert dtypes_client.delete("/v2/models/mix").status_code == 405


def test_not_ready_model(multi_payload: Path) -> None:
    settings = settings_for(multi_payload)
    client = TestClient(create_app(settings, ModelRuntime.load(settings.model_path, settings.signature_path)))
    assert client.get("/v2/models/model/ready").status_code == 503
    body = infer_body({"x": ("FP32", np.ones((1, 2), np.float32)), "w": ("FP32", np.ones(1, np.float32))})
    response = client.post("/v2/models/model/infer", json=body)
    assert response.status_code == 503 and "not ready" in response.json()["error"]


# -- inference: results equal onnxruntime's -----------------------------------------------------

def test_infer_multi_model_equals_onnxruntime(multi_client: TestClient, multi_payload: Path) -> None:
    x = np.array([[1, 2], [5, -1], [0.25, 0.125]], dtype=np.float32)
    w = np.array([3, 0.5, 1], dtype=np.float32)
    expected = ort_run(multi_payload, {"x": x, "w": w})
    response = multi_client.post("/v2/models/model/infer", json=infer_body({"x": ("FP32", x), "w": ("FP32", w)},
                                                                             id="req-1"))
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["id"] == "req-1" and doc["model_name"] == "model" and "model_version" not in doc
    assert [o["name"] for o in doc["outputs"]] == ["total", "scaled", "argmax"]
    got = decode_response(response)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value)
        assert got[name].dtype == value.dtype
    # nested data, row-major, and a chosen subset of outputs in the order asked
    nested = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 2], "data": x.tolist()},
                         {"name": "w", "datatype": "FP32", "shape": [3], "data": w.tolist()}],
              "outputs": [{"name": "argmax"}, {"name": "total"}]}
    doc = multi_client.post("/v2/models/model/infer", json=nested).json()
    assert [(o["name"], o["shape"], o["datatype"]) for o in doc["outputs"]] == [
        ("argmax", [3], "INT64"), ("total", [3], "FP32")]
    assert doc["outputs"][0]["data"] == expected["argmax"].tolist()


def test_infer_dtypes_model_int64_bool_fp16(dtypes_client: TestClient, dtypes_payload: Path) -> None:
    ids = np.array([[1, 2, 3], [-(2 ** 62), 2 ** 61, 7], [0, 0, 0]], dtype=np.int64)
    flag = np.array([True, False, True])
    half = np.array([[1.5, -2], [0.1, 255.9], [0, 3.25]], dtype=np.float16)
    expected = ort_run(dtypes_payload, {"ids": ids, "flag": flag, "half": half})
    inputs = {"ids": ("INT64", ids), "flag": ("BOOL", flag), "half": ("FP16", half)}
    for url in ("/v2/models/mix/infer", "/v2/models/mix/versions/7/infer"):
        response = dtypes_client.post(url, json=infer_body(inputs))
        assert response.status_code == 200, response.text
        assert response.json()["model_version"] == "7"
        got = decode_response(response)
        for name, value in expected.items():
            np.testing.assert_array_equal(got[name], value)
    body, headers = binary_request(inputs, outputs=[{"name": n, "parameters": {"binary_data": True}}
                                                    for n in expected])
    response = dtypes_client.post("/v2/models/mix/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    got = decode_response(response)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value)
        assert got[name].dtype == value.dtype


def test_infer_dga_equals_onnxruntime(dga_client: TestClient, dga_payload: Path) -> None:
    expected = ort_run(dga_payload, {"host": np.array(HOSTS, dtype=object)})
    response = dga_client.post("/v2/models/model/infer",
                               json=infer_body({"host": ("BYTES", np.array(HOSTS, dtype=object))}))
    assert response.status_code == 200, response.text
    got = decode_response(response)
    np.testing.assert_array_equal(got["output_label"], expected["output_label"])
    np.testing.assert_array_equal(got["output_probability"], zipmap_to_matrix(expected["output_probability"]))


def identity_values(datatype: str) -> np.ndarray:
    """Two rows of extreme and ordinary values of a datatype."""
    dtype = V2_DATATYPES[datatype][1]
    if datatype == "BOOL":
        return np.array([[True, False], [False, True]])
    if datatype == "BYTES":
        return np.array([["", "héllo wörld"], ["日本語 ✓", "a\u0000b"]], dtype=object)
    if np.dtype(dtype).kind == "f":
        info = np.finfo(dtype)
        return np.array([[info.max, info.min], [0.1, -2.5e-3]], dtype=dtype)
    info = np.iinfo(dtype)
    return np.array([[info.max, info.min], [0, 1]], dtype=dtype)


@pytest.mark.parametrize("encoding", ["json", "binary"])
def test_every_datatype_round_trips(identity_client: TestClient, encoding: str) -> None:
    inputs = {f"in_{dt.lower()}": (dt, identity_values(dt)) for dt in V2_DATATYPES}
    if encoding == "json":
        response = identity_client.post("/v2/models/identity/infer", json=infer_body(inputs))
    else:
        body, headers = binary_request(inputs, parameters={"binary_data_output": True})
        response = identity_client.post("/v2/models/identity/infer", content=body, headers=headers)
    assert response.status_code == 200, response.text
    got = decode_response(response)
    doc_types = {o["name"]: o["datatype"] for o in json.loads(response.content[
        :int(response.headers.get("inference-header-content-length", len(response.content)))])["outputs"]}
    for datatype in V2_DATATYPES:
        name = f"out_{datatype.lower()}"
        assert doc_types[name] == datatype
        np.testing.assert_array_equal(got[name], identity_values(datatype))


def test_binary_and_json_inputs_mix(multi_client: TestClient, multi_payload: Path) -> None:
    x = np.array([[1, 2], [3, 4]], dtype=np.float32)
    w = np.array([2, 3], dtype=np.float32)
    body, headers = binary_request({"x": ("FP32", x)})
    head_length = int(headers["Inference-Header-Content-Length"])
    header = json.loads(body[:head_length])
    header["inputs"].append({"name": "w", "datatype": "FP32", "shape": [2], "data": w.tolist()})
    head = json.dumps(header).encode()
    response = multi_client.post("/v2/models/model/infer", content=head + body[head_length:],
                                 headers={"Inference-Header-Content-Length": str(len(head))})
    assert response.status_code == 200, response.text
    np.testing.assert_array_equal(decode_response(response)["total"], ort_run(multi_payload, {"x": x, "w": w})["total"])


def test_integral_floats_are_integers_and_non_finite_outputs_are_null(dtypes_client: TestClient) -> None:
    body = {"inputs": [{"name": "ids", "datatype": "INT64", "shape": [1, 3], "data": [1.0, 2, 3]},
                       {"name": "flag", "datatype": "BOOL", "shape": [1], "data": [True]},
                       {"name": "half", "datatype": "FP16", "shape": [1, 2], "data": [300, 1]}]}
    doc = dtypes_client.post("/v2/models/mix/infer", json=body).json()
    outputs = {o["name"]: o["data"] for o in doc["outputs"]}
    assert outputs["id_sum"] == [6]
    assert outputs["half_sq"] == [None, 1.0]  # 300² overflows FP16: JSON has no infinity


# -- errors -----------------------------------------------------------------------------------

def mix_body(**changes: Any) -> dict[str, Any]:
    body = {"inputs": [{"name": "ids", "datatype": "INT64", "shape": [1, 3], "data": [1, 2, 3]},
                       {"name": "flag", "datatype": "BOOL", "shape": [1], "data": [True]},
                       {"name": "half", "datatype": "FP16", "shape": [1, 2], "data": [1, 2]}]}
    for index, (key, value) in enumerate(changes.items()):
        name, _, field = key.partition("__")
        for tensor in body["inputs"]:
            if tensor["name"] == name:
                if value is ...:
                    del tensor[field]
                else:
                    tensor[field] = value
    return body


BAD_INFERS: list[tuple[str, Any, int, str]] = [
    ("not JSON", b"{", 400, "not valid JSON"),
    ("empty body", b"", 400, "empty"),
    ("NaN", b'{"inputs": [{"name": "ids", "datatype": "INT64", "shape": [1], "data": [NaN]}]}', 400, "NaN"),
    ("not UTF-8", b'{"inputs": "\xff"}', 400, "not UTF-8"),
    ("a list", [], 400, "JSON list"),
    ("no inputs", {}, 400, "'inputs' must be a non-empty list"),
    ("empty inputs", {"inputs": []}, 400, "'inputs' must be a non-empty list"),
    ("input not an object", {"inputs": [3]}, 400, "inputs[0] must be a JSON object"),
    ("name missing", {"inputs": [{"datatype": "INT64"}]}, 400, "inputs[0]: 'name' must be a string"),
    ("unknown input", {"inputs": [{"name": "idz", "datatype": "INT64", "shape": [1], "data": [1]}]}, 400,
     "unknown input 'idz'"),
    ("missing input", {"inputs": mix_body()["inputs"][:2]}, 400, "missing input 'half'"),
    ("duplicate input", {"inputs": mix_body()["inputs"] + mix_body()["inputs"][:1]}, 400,
     "input 'ids' is given more than once"),
    ("unknown datatype", mix_body(ids__datatype="INT128"), 400, "input 'ids': unknown datatype 'INT128'"),
    ("wrong datatype", mix_body(ids__datatype="FP32"), 400, "input 'ids': datatype FP32 does not match the model's INT64"),
    ("datatype missing", mix_body(flag__datatype=...), 400, "input 'flag': 'datatype' must be a string"),
    ("shape missing", mix_body(ids__shape=...), 400, "input 'ids': 'shape' must be a list of integers"),
    ("shape not ints", mix_body(ids__shape=[1, "3"]), 400, "input 'ids': 'shape' must be a list of integers"),
    ("wrong rank", mix_body(ids__shape=[3]), 400, "input 'ids': shape [3] has 1 dimensions"),
    ("wrong fixed dim", mix_body(ids__shape=[1, 4]), 400, "input 'ids': shape [1, 4] does not fit the model's [-1, 3]"),
    ("negative dim", mix_body(ids__shape=[-1, 3]), 400, "negative dimension"),
    ("zero rows", mix_body(ids__shape=[0, 3], ids__data=[]), 400, "the batch dimension is 0"),
    ("count mismatch", mix_body(ids__data=[1, 2]), 400, "input 'ids': shape [1, 3] holds 3 elements but 'data' has 2"),
    ("data missing", mix_body(half__data=...), 400, "input 'half': 'data' is missing"),
    ("data not a list", mix_body(half__data=1.5), 400, "input 'half': 'data' must be a JSON list"),
    ("ragged data", mix_body(ids__data=[[1, 2], 3]), 400, "input 'ids': 'data' mixes lists and values"),
    ("too deep", mix_body(flag__data=[[[True]]]), 400, "input 'flag': 'data' is nested deeper"),
    ("string for int", mix_body(ids__data=[1, "2", 3]), 400, "input 'ids': expected integers for INT64, got string"),
    ("float for int", mix_body(ids__data=[1, 2.5, 3]), 400, "input 'ids': expected integers for INT64, got 2.5"),
    ("bool for int", mix_body(ids__data=[1, True, 3]), 400, "input 'ids': expected integers for INT64, got boolean"),
    ("int out of range", mix_body(ids__data=[1, 2 ** 63, 3]), 400, "input 'ids': a value is out of range for INT64"),
    ("number for bool", mix_body(flag__data=[1]), 400, "input 'flag': expected booleans for BOOL, got number"),
    ("null for float", mix_body(half__data=[None, 1]), 400, "input 'half': expected numbers for FP16, got null"),
    ("float out of range", mix_body(half__data=[1e6, 1]), 400, "input 'half': a value is out of range for FP16"),
    ("batch sizes differ", mix_body(flag__shape=[2], flag__data=[True, False]), 400,
     "the inputs disagree on the batch size"),
    ("too many rows", mix_body(flag__shape=[51], flag__data=[True] * 51), 400, "at most 50 are allowed"),
    ("unknown output", {**mix_body(), "outputs": [{"name": "sum"}]}, 400, "unknown output 'sum'"),
    ("duplicate output", {**mix_body(), "outputs": [{"name": "picked"}, {"name": "picked"}]}, 400,
     "output 'picked' is requested more than once"),
    ("outputs not a list", {**mix_body(), "outputs": "picked"}, 400, "'outputs' must be a list"),
    ("bad binary flag", {**mix_body(), "outputs": [{"name": "picked", "parameters": {"binary_data": "yes"}}]}, 400,
     "parameters.binary_data must be true or false"),
    ("id not a string", {**mix_body(), "id": 7}, 400, "'id' must be a string"),
    ("parameters not an object", {**mix_body(), "parameters": []}, 400, "'parameters' must be a JSON object"),
    ("classification", {**mix_body(), "outputs": [{"name": "picked", "parameters": {"classification": 2}}]}, 400,
     "classification extension is not supported"),
]


@pytest.mark.parametrize("body,status,words", [c[1:] for c in BAD_INFERS], ids=[c[0] for c in BAD_INFERS])
def test_bad_infer_is_4xx_naming_the_problem(dtypes_payload: Path, bad_infer_client: TestClient, body: Any,
                                             status: int, words: str) -> None:
    if isinstance(body, bytes):
        response = bad_infer_client.post("/v2/models/mix/infer", content=body)
    else:
        response = bad_infer_client.post("/v2/models/mix/infer", json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert bad_infer_client.post("/v2/models/mix/infer", json=mix_body()).status_code == 200


@pytest.fixture(scope="module")
def bad_infer_client(dtypes_payload: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(dtypes_payload, model_name="mix", max_batch_size=50))) as client:
        yield client


BAD_BINARY: list[tuple[str, Callable[[bytes, int], tuple[bytes, str]], str]] = [
    ("header length not a number", lambda b, n: (b, "lots"), "is not a byte count"),
    ("header length past the body", lambda b, n: (b, str(len(b) + 1)), "the body has"),
    ("header length zero", lambda b, n: (b, "0"), "the body has"),
    ("binary data truncated", lambda b, n: (b[:-1], str(n)), "runs past the end of the body"),
    ("extra binary data", lambda b, n: (b + b"\x00", str(n)), "1 bytes of binary data after the JSON header"),
    ("header cut inside the JSON", lambda b, n: (b, str(n - 1)), "not valid JSON"),
]


@pytest.mark.parametrize("mangle,words", [c[1:] for c in BAD_BINARY], ids=[c[0] for c in BAD_BINARY])
def test_bad_binary_framing_is_400(multi_client: TestClient, mangle: Callable[[bytes, int], tuple[bytes, str]],
                                   words: str) -> None:
    body, headers = binary_request({"x": ("FP32", np.ones((1, 2), np.float32)), "w": ("FP32", np.ones(1, np.float32))})
    content, length = mangle(body, int(headers["Inference-Header-Content-Length"]))
    response = multi_client.post("/v2/models/model/infer", content=content,
                                 headers={"Inference-Header-Content-Length": length})
    assert response.status_code == 400, response.text
    assert words in response.json()["error"]


def test_bad_binary_tensors_are_400(identity_client: TestClient) -> None:
    inputs = {f"in_{dt.lower()}": (dt, identity_values(dt)) for dt in V2_DATATYPES}
    body, headers = binary_request(inputs)
    head_length = int(headers["Inference-Header-Content-Length"])
    header, data = json.loads(body[:head_length]), body[head_length:]
    sizes = [t["parameters"]["binary_data_size"] for t in header["inputs"]]
    offsets = dict(zip([t["name"] for t in header["inputs"]], np.cumsum([0] + sizes[:-1]).tolist()))

    def post(new_header: dict[str, Any], new_data: bytes) -> Any:
        head = json.dumps(new_header).encode()
        return identity_client.post("/v2/models/identity/infer", content=head + new_data,
                                    headers={"Inference-Header-Content-Length": str(len(head))})

    bool_at = offsets["in_bool"]
    response = post(header, data[:bool_at] + b"\x02" + data[bool_at + 1:])
    assert response.status_code == 400 and "BOOL binary data must hold bytes 0 or 1" in response.json()["error"]
    bytes_at = offsets["in_bytes"]
    response = post(header, data[:bytes_at] + struct.pack("<I", 2) + b"\xff\xfe" + data[bytes_at + 4:])
    assert response.status_code == 400 and "input 'in_bytes': element 0 is not UTF-8" in response.json()["error"]
    wrong_size = json.loads(json.dumps(header))
    wrong_size["inputs"][1]["shape"] = [1, 2]  # INT8 [1, 2] takes 2 bytes; 4 are given
    response = post(wrong_size, data)
    assert response.status_code == 400 and "4 bytes of binary data, but shape [1, 2] of INT8 takes 2" in \
        response.json()["error"]
    both = json.loads(json.dumps(header))
    both["inputs"][0]["data"] = [True, False, False, True]
    response = post(both, data)
    assert response.status_code == 400 and "either 'data' or parameters.binary_data_size" in response.json()["error"]
    assert identity_client.post("/v2/models/identity/infer", content=body, headers=headers).status_code == 200


def test_lone_surrogate_in_bytes_is_400(dga_client: TestClient) -> None:
    body = b'{"inputs": [{"name": "host", "datatype": "BYTES", "shape": [1], "data": ["\\ud800"]}]}'
    response = dga_client.post("/v2/models/model/infer", content=body)
    assert response.status_code == 400 and "lone surrogate" in response.json()["error"]


def test_oversized_body_is_413(multi_payload: Path) -> None:
    with TestClient(create_app(settings_for(multi_payload, max_body_bytes=2048))) as client:
        x = np.ones((400, 2), np.float32)
        body = infer_body({"x": ("FP32", x), "w": ("FP32", np.ones(400, np.float32))})
        response = client.post("/v2/models/model/infer", json=body)
        assert response.status_code == 413 and "2048" in response.json()["error"]


# -- the standard client against a real server -------------------------------------------------

@pytest.fixture(scope="module")
def dga_server(serve: Callable[..., ServedModel], dga_payload: Path) -> ServedModel:
    return serve(dga_payload, env={"MAAS_MODEL_NAME": "dga", "MAAS_MODEL_VERSION": "3"})


@pytest.fixture(scope="module")
def mix_server(serve: Callable[..., ServedModel], dtypes_payload: Path) -> ServedModel:
    return serve(dtypes_payload, "--model-name", "mix", "--max-batch-size", "64")


@pytest.fixture
def triton_client(dga_server: ServedModel) -> Iterator[triton.InferenceServerClient]:
    client = triton.InferenceServerClient(dga_server.url.removeprefix("http://"))
    yield client
    client.close()


def test_tritonclient_health_and_metadata(triton_client: triton.InferenceServerClient) -> None:
    assert triton_client.is_server_live() and triton_client.is_server_ready()
    assert triton_client.is_model_ready("dga") and triton_client.is_model_ready("dga", "3")
    assert not triton_client.is_model_ready("other")
    server = triton_client.get_server_metadata()
    assert server["name"] == "maas-model-server" and "binary_tensor_data" in server["extensions"]
    meta = triton_client.get_model_metadata("dga")
    assert meta["name"] == "dga" and meta["versions"] == ["3"]
    assert meta == triton_client.get_model_metadata("dga", "3")
    assert meta["inputs"] == [{"name": "host", "datatype": "BYTES", "shape": [-1]}]
    with pytest.raises(InferenceServerException) as info:
        triton_client.get_model_metadata("other")
    assert info.value.status() == "404" and "unknown model 'other'" in info.value.message()


@pytest.mark.parametrize("binary_in", [True, False])
@pytest.mark.parametrize("binary_out", [True, False])
def test_tritonclient_infer_equals_onnxruntime(triton_client: triton.InferenceServerClient, dga_payload: Path,
                                               binary_in: bool, binary_out: bool) -> None:
    hosts = np.array(HOSTS, dtype=object)
    expected = ort_run(dga_payload, {"host": hosts})
    host = triton.InferInput("host", [len(HOSTS)], "BYTES")
    host.set_data_from_numpy(hosts, binary_data=binary_in)
    outputs = [triton.InferRequestedOutput("output_probability", binary_data=binary_out),
               triton.InferRequestedOutput("output_label", binary_data=binary_out)]
    result = triton_client.infer("dga", [host], outputs=outputs, request_id="q-7", model_version="3")
    response = result.get_response()
    assert response["id"] == "q-7" and response["model_name"] == "dga" and response["model_version"] == "3"
    assert [o["name"] for o in response["outputs"]] == ["output_probability", "output_label"]
    np.testing.assert_array_equal(result.as_numpy("output_label"), expected["output_label"])
    np.testing.assert_array_equal(result.as_numpy("output_probability"),
                                  zipmap_to_matrix(expected["output_probability"]))


def test_tritonclient_default_request_gets_every_output(triton_client: triton.InferenceServerClient,
                                                        dga_payload: Path) -> None:
    host = triton.InferInput("host", [2], "BYTES")
    host.set_data_from_numpy(np.array(HOSTS[:2], dtype=object))
    result = triton_client.infer("dga", [host])  # no outputs named: all of them, as binary data
    expected = ort_run(dga_payload, {"host": np.array(HOSTS[:2], dtype=object)})
    np.testing.assert_array_equal(result.as_numpy("output_label"), expected["output_label"])
    assert result.as_numpy("output_probability").shape == (2, 2)


def test_tritonclient_errors(triton_client: triton.InferenceServerClient) -> None:
    host = triton.InferInput("host", [1], "BYTES")
    host.set_data_from_numpy(np.array(["a.com"], dtype=object))
    with pytest.raises(InferenceServerException) as info:
        triton_client.infer("nope", [host])
    assert info.value.status() == "404"
    with pytest.raises(InferenceServerException) as info:
        triton_client.infer("dga", [host], model_version="4")
    assert info.value.status() == "404" and "no version '4'" in info.value.message()
    wrong = triton.InferInput("host", [1], "FP32")
    wrong.set_data_from_numpy(np.array([1.0], dtype=np.float32))
    with pytest.raises(InferenceServerException) as info:
        triton_client.infer("dga", [wrong])
    assert info.value.status() == "400" and "datatype FP32 does not match the model's BYTES" in info.value.message()
    unknown = triton.InferInput("hostname", [1], "BYTES")
    unknown.set_data_from_numpy(np.array(["a.com"], dtype=object))
    with pytest.raises(InferenceServerException) as info:
        triton_client.infer("dga", [unknown])
    assert info.value.status() == "400" and "unknown input 'hostname'" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        triton_client.infer("dga", [host], outputs=[triton.InferRequestedOutput("probability")])
    assert info.value.status() == "400" and "unknown output 'probability'" in info.value.message()
    assert triton_client.is_server_live()


def test_tritonclient_several_datatypes(mix_server: ServedModel, dtypes_payload: Path) -> None:
    client = triton.InferenceServerClient(mix_server.url.removeprefix("http://"))
    try:
        ids = np.arange(12, dtype=np.int64).reshape(4, 3) - 5
        flag = np.array([True, False, False, True])
        half = np.array([[0.5, 1], [2, -3], [0.1, 0.2], [100, -100]], dtype=np.float16)
        expected = ort_run(dtypes_payload, {"ids": ids, "flag": flag, "half": half})
        for binary in (True, False):
            inputs = []
            for name, datatype, value in (("ids", "INT64", ids), ("flag", "BOOL", flag), ("half", "FP16", half)):
                tensor = triton.InferInput(name, list(value.shape), datatype)
                tensor.set_data_from_numpy(value, binary_data=binary)
                inputs.append(tensor)
            outputs = [triton.InferRequestedOutput(n, binary_data=binary) for n in expected]
            result = client.infer("mix", inputs, outputs=outputs)
            for name, value in expected.items():
                np.testing.assert_array_equal(result.as_numpy(name), value)
    finally:
        client.close()
