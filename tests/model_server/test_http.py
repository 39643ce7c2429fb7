"""The HTTP edge in process (FastAPI's TestClient): results equal onnxruntime's, GET and POST,
single rows and batches; every bad input is a 4xx naming the problem and the service goes on;
health routes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient
from onnx import TensorProto, helper

from model_server.app import create_app
from model_server.runtime import ModelRuntime
from tests.model_server.conftest import multi_reference, settings_for, write_payload

HOSTS = ["www.google.com", "google.com", "WIKIPEDIA.org", "news.bbc.co.uk", "github.com", "xjwqkzvbtpqmd.com",
         "a8f3c9e1b7d24f6e.net", "qwzxkvjplmtrn.info", "localhost", "", "earnestnessbiophysicalohax.com"]


def ort_dga(payload: Path, hosts: list[str]) -> list[dict[str, Any]]:
    """What onnxruntime itself says, in the signature's terms."""
    session = ort.InferenceSession(str(payload / "model.onnx"), providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(["output_label", "output_probability"],
                                        {"host": np.array(hosts, dtype=object)})
    return [{"is_malicious": "malicious" if label == 1 else "legit", "probability": float(np.float32(p[1]))}
            for label, p in zip(labels, probabilities)]


# -- results ----------------------------------------------------------------------------------

def test_dga_get_equals_onnxruntime(dga_client: TestClient, dga_payload: Path) -> None:
    expected = ort_dga(dga_payload, HOSTS)
    for host, want in zip(HOSTS, expected):
        response = dga_client.get("/apply", params={"host": host})
        assert response.status_code == 200, response.text
        assert response.json() == pytest.approx(want)


def test_dga_post_single_and_batch_equal_onnxruntime(dga_client: TestClient, dga_payload: Path) -> None:
    expected = ort_dga(dga_payload, HOSTS)
    single = dga_client.post("/apply", json={"host": HOSTS[5]})
    assert single.status_code == 200 and single.json() == pytest.approx(expected[5])
    batch = dga_client.post("/apply", json=[{"host": h} for h in HOSTS])
    assert batch.status_code == 200
    assert batch.json() == [pytest.approx(e) for e in expected]


def test_dga_answers_like_the_readme(dga_client: TestClient) -> None:
    verdict = {h: dga_client.get("/apply", params={"host": h}).json()["is_malicious"] for h in HOSTS[:8]}
    assert verdict == {"www.google.com": "legit", "google.com": "legit", "WIKIPEDIA.org": "legit",
                       "news.bbc.co.uk": "legit", "github.com": "legit", "xjwqkzvbtpqmd.com": "malicious",
                       "a8f3c9e1b7d24f6e.net": "malicious", "qwzxkvjplmtrn.info": "malicious"}
    www, bare = (dga_client.get("/apply", params={"host": h}).json() for h in ("www.google.com", "google.com"))
    assert www == bare


def test_multi_input_multi_output_model(multi_client: TestClient) -> None:
    rows = [{"features": [1.0, 2.0], "weight": 3.0}, {"features": [5, -1], "weight": 0.5}, {"features": [0.25, 0.125]}]
    expected = multi_reference([r["features"] for r in rows], [r.get("weight", 1.0) for r in rows])
    batch = multi_client.post("/score", json=rows)
    assert batch.status_code == 200, batch.text
    assert batch.json() == expected
    assert multi_client.post("/score", json=rows[0]).json() == expected[0]
    # GET: a tensor argument as a JSON list, a scalar parsed by its dtype, a default left out
    assert multi_client.get("/score", params={"features": "[1, 2]", "weight": "3"}).json() == expected[0]
    assert multi_client.get("/score", params={"features": "[0.25,0.125]"}).json() == expected[2]


def test_metadata_route_describes_the_function(multi_client: TestClient) -> None:
    meta = multi_client.get("/").json()
    assert meta["functions"] == {"score": "score"} and meta["ready"] is True
    assert meta["inputs"] == [
        {"arg": "features", "name": "x", "dtype": "float32", "shape": [-1, 2]},
        {"arg": "weight", "name": "w", "dtype": "float32", "shape": [-1], "default": 1.0},
    ]
    assert [o["key"] for o in meta["outputs"]] == ["total", "scaled", "largest"]


def test_signature_derived_from_the_model(tmp_path: Path, multi_payload: Path) -> None:
    """Without signature.json, arguments and keys are the model's own names."""
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "model.onnx").write_bytes((multi_payload / "model.onnx").read_bytes())
    with TestClient(create_app(settings_for(payload))) as client:
        answer = client.post("/apply", json={"x": [1, 3], "w": 2})
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"total": 8.0, "scaled": [2.0, 6.0], "argmax": 1}


def test_zipmap_output_without_select_and_relabelled(dga_payload: Path, tmp_path: Path) -> None:
    """A map output is one JSON object per row; labels rename its keys (the classes)."""
    payload = tmp_path / "payload"
    payload.mkdir()
    (payload / "model.onnx").write_bytes((dga_payload / "model.onnx").read_bytes())
    (payload / "signature.json").write_text(json.dumps({"outputs": [
        {"name": "output_probability", "key": "raw"}, {"name": "output_label", "key": "label"}]}))
    runtime = ModelRuntime.load(payload / "model.onnx", payload / "signature.json")
    runtime.warm_up()
    (row,) = runtime.predict([{"host": "google.com"}])
    assert set(row["raw"]) == {"0", "1"} and row["raw"]["0"] + row["raw"]["1"] == pytest.approx(1.0)
    assert row["label"] == 0
    (payload / "signature.json").write_text(json.dumps({"outputs": [
        {"name": "output_probability", "key": "p", "labels": {"0": "legit", "1": "malicious"}}]}))
    relabelled = ModelRuntime.load(payload / "model.onnx", payload / "signature.json")
    relabelled.warm_up()
    (row,) = relabelled.predict([{"host": "google.com"}])
    assert set(row["p"]) == {"legit", "malicious"}


def test_string_column_input_takes_scalars(tmp_path: Path) -> None:
    """Text models from skl2onnx take strings shaped [N, 1]: a row may give a plain string."""
    graph = helper.make_graph([helper.make_node("Identity", ["text"], ["echo"])], "echo",
                              [helper.make_tensor_value_info("text", TensorProto.STRING, [None, 1])],
                              [helper.make_tensor_value_info("echo", TensorProto.STRING, [None, 1])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    payload = write_payload(tmp_path / "payload", model, {"outputs": [{"name": "echo", "select": 0}]})
    with TestClient(create_app(settings_for(payload))) as client:
        assert client.get("/apply", params={"text": "héllo [x]"}).json() == {"echo": "héllo [x]"}
        assert client.post("/apply", json=[{"text": "a"}, {"text": ["b"]}]).json() == [{"echo": "a"}, {"echo": "b"}]
        assert client.post("/apply", json={"text": ["a", "b"]}).status_code == 422


# -- bad input --------------------------------------------------------------------------------

BAD_POSTS: list[tuple[str, Any, int, str]] = [
    # (body as raw text or JSON value, expected status, words the error must contain)
    ("non-JSON", b"{not json", 400, "not valid JSON"),
    ("empty body", b"", 400, "empty"),
    ("NaN constant", b'{"features": [NaN, 1]}', 400, "NaN"),
    ("not UTF-8", b'{"features": "\xff\xfe"}', 400, "not UTF-8"),
    ("scalar body", 42, 400, "JSON number"),
    ("string body", "features", 400, "JSON string"),
    ("null body", b"null", 400, "JSON null"),
    ("empty batch", [], 400, "batch is empty"),
    ("row not an object", [{"features": [1, 2]}, 7], 400, "row 1"),
    ("batch too large", [{"features": [1, 2]}] * 51, 400, "at most 50"),
    ("unknown argument", {"features": [1, 2], "colour": "red"}, 422, "'colour'"),
    ("missing argument", {"weight": 2}, 422, "missing argument 'features'"),
    ("missing in a batch row", [{"features": [1, 2]}, {"weight": 2}], 422, "row 1: missing argument 'features'"),
    ("wrong type string", {"features": "ab"}, 422, "'features'"),
    ("wrong type bool", {"features": [True, 1]}, 422, "'features': expected a number, got boolean"),
    ("wrong type null", {"features": [1, 2], "weight": None}, 422, "'weight': expected a number, got null"),
    ("wrong type object", {"features": [1, {"a": 1}]}, 422, "'features'"),
    ("wrong shape", {"features": [1, 2, 3]}, 422, "'features': expected shape [2], got 3"),
    ("too deep", {"features": [[1, 2], [3, 4]]}, 422, "'features'"),
    ("scalar for vector", {"features": 1.5}, 422, "'features'"),
    ("out of float32 range", {"features": [1e39, 1]}, 422, "out of range for float32"),
    ("huge integer", {"features": [10 ** 400, 1]}, 422, "out of range"),
    ("deeply nested", b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    ("ragged batch", [{"features": [1, 2]}, {"features": [[1, 2]]}], 422, "row 1: argument 'features'"),
]


@pytest.mark.parametrize("body,status,words", [c[1:] for c in BAD_POSTS], ids=[c[0] for c in BAD_POSTS])
def test_bad_post_is_4xx_naming_the_problem(multi_client: TestClient, body: Any, status: int, words: str) -> None:
    if isinstance(body, bytes):
        response = multi_client.post("/score", content=body, headers={"content-type": "application/json"})
    else:
        response = multi_client.post("/score", json=body)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    # … and the service goes on answering
    assert multi_client.post("/score", json={"features": [1, 2]}).json()["total"] == 3.0


BAD_GETS: list[tuple[str, str, int, str]] = [
    ("unknown argument", "/score?features=[1,2]&nope=1", 422, "'nope'"),
    ("missing argument", "/score?weight=2", 422, "missing argument 'features'"),
    ("not a number", "/score?features=[1,2]&weight=heavy", 422, "'weight': expected a number, got 'heavy'"),
    ("not finite", "/score?features=[1,2]&weight=inf", 422, "'weight': expected a finite number"),
    ("vector not JSON", "/score?features=1,2", 422, "'features'"),
    ("bad JSON list", "/score?features=[1,", 422, "'features': not a valid JSON list"),
    ("deeply nested", "/score?features=" + "[" * 5000, 422, "'features': the list is nested too deeply"),
    ("repeated argument", "/score?features=[1,2]&weight=1&weight=2", 400, "'weight' is given more than once"),
    ("unknown function", "/apply?features=[1,2]", 404, "unknown function 'apply'"),
    ("unknown path", "/v2/models/x/infer", 404, "Not Found"),
]


@pytest.mark.parametrize("url,status,words", [c[1:] for c in BAD_GETS], ids=[c[0] for c in BAD_GETS])
def test_bad_get_is_4xx_naming_the_problem(multi_client: TestClient, url: str, status: int, words: str) -> None:
    response = multi_client.get(url)
    assert response.status_code == status, response.text
    assert words in response.json()["error"]
    assert multi_client.get("/score", params={"features": "[1,2]"}).status_code == 200


def test_dga_bad_inputs(dga_client: TestClient) -> None:
    cases = [
        ({"host": 42}, 422, "'host': expected a string, got number"),
        ({"host": ["a.com"]}, 422, "'host': expected a string, got list"),
        ({"hostname": "a.com"}, 422, "unknown argument 'hostname'"),
        ({}, 422, "missing argument 'host'"),
        (b'{"host": "\\ud800.com"}', 422, "'host': the string is not valid Unicode"),  # a lone surrogate
    ]
    for body, status, words in cases:
        if isinstance(body, bytes):
            response = dga_client.post("/apply", content=body)
        else:
            response = dga_client.post("/apply", json=body)
        assert response.status_code == status, (body, response.text)
        assert words in response.json()["error"]
    assert dga_client.get("/apply").json()["error"] == "missing argument 'host'"
    assert dga_client.get("/apply", params={"host": "google.com"}).status_code == 200


def test_body_size_limit(multi_payload: Path) -> None:
    with TestClient(create_app(settings_for(multi_payload, max_body_bytes=1024))) as client:
        big = [{"features": [1, 2]}] * 200
        response = client.post("/score", json=big)
        assert response.status_code == 413 and "1024" in response.json()["error"]
        assert client.post("/score", json=big[:10]).status_code == 200


def test_wrong_method(multi_client: TestClient) -> None:
    response = multi_client.put("/score", json={"features": [1, 2]})
    assert response.status_code == 405 and "error" in response.json()


# -- health -----------------------------------------------------------------------------------

def test_health_routes(multi_client: TestClient) -> None:
    assert multi_client.get("/v2/health/live").status_code == 200
    ready = multi_client.get("/v2/health/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}


def test_not_ready_before_warm_up(multi_payload: Path) -> None:
    settings = settings_for(multi_payload)
    runtime = ModelRuntime.load(settings.model_path, settings.signature_path)
    client = TestClient(create_app(settings, runtime))  # not entered: the lifespan (warm-up) does not run
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").status_code == 503
    response = client.post("/score", json={"features": [1, 2]})
    assert response.status_code == 503 and "not ready" in response.json()["error"]
    with client:  # start-up warms the model up
        assert client.get("/v2/health/ready").status_code == 200
        assert client.post("/score", json={"features": [1, 2]}).status_code == 200


def test_listen_and_announce_addresses_come_from_the_payload_environment(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from model_server.settings import Settings

    (tmp_path / "model.onnx").write_bytes(b"")
    env = {"MAAS_PORT": "8000", "MAAS_BIND_HOST": "0.0.0.0", "MAAS_ADVERTISED_HOST": "10.1.2.3"}
    settings = Settings.from_args(["--payload", str(tmp_path)], env)
    assert settings.host == "0.0.0.0" and settings.public_url() == "http://10.1.2.3:8000"
    explicit = Settings.from_args(["--payload", str(tmp_path), "--host", "127.0.0.1"], env)
    assert explicit.public_url() == "http://127.0.0.1:8000"  # a flag wins; a concrete address is announced as is
    assert Settings.from_args(["--payload", str(tmp_path)], {"MAAS_PORT": "1"}).public_url() == "http://127.0.0.1:1"
