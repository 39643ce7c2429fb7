"""Property tests: whatever a client sends to any route — ``/apply`` (or ``/score``), the Open
Inference Protocol's ``/v2/models/…/infer`` (JSON or binary framing) and every other route, with
any method — the answer is a success or a 4xx with a JSON ``{"error": …}``, never a 5xx, and the
service keeps answering."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_server.app import create_app
from tests.model_server.conftest import settings_for

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10 ** 500), max_value=10 ** 500)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text())
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
argument_names = st.sampled_from(["host", "features", "weight", "x"]) | st.text(max_size=8)
rows = st.dictionaries(argument_names, json_values, max_size=4)
bodies = rows | st.lists(rows, max_size=5) | json_values
# near-valid rows of the tensor model: the right names, values of any kind and length
tensor_rows = st.fixed_dictionaries({"features": st.lists(scalars, max_size=3) | scalars},
                                    optional={"weight": scalars | st.lists(scalars, max_size=2)})
tensor_bodies = tensor_rows | st.lists(tensor_rows, min_size=1, max_size=4) | bodies


def check(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert 400 <= response.status_code < 500
        error = response.json()["error"]
        assert isinstance(error, str) and error


@FUZZ
@given(body=bodies)
def test_json_bodies_never_give_5xx_on_dga(dga_client: TestClient, body: Any) -> None:
    # json.dumps writes NaN/Infinity tokens and escapes lone surrogates: both must be handled
    check(dga_client.post("/apply", content=json.dumps(body), headers={"content-type": "application/json"}))


@FUZZ
@given(body=tensor_bodies)
def test_json_bodies_never_give_5xx_on_tensor_model(multi_client: TestClient, body: Any) -> None:
    check(multi_client.post("/score", content=json.dumps(body)))


@FUZZ
@given(body=st.binary(max_size=200))
def test_malformed_bytes_are_4xx(dga_client: TestClient, body: bytes) -> None:
    response = dga_client.post("/apply", content=body)
    try:
        parsed = json.loads(body)
        valid = isinstance(parsed, dict) and list(parsed) == ["host"] and isinstance(parsed["host"], str)
    except ValueError:
        valid = False
    if not valid:
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]
    else:
        check(response)


@FUZZ
@given(params=st.lists(st.tuples(argument_names, st.text(max_size=20)), max_size=4))
def test_query_strings_never_give_5xx(multi_client: TestClient, dga_client: TestClient,
                                      params: list[tuple[str, str]]) -> None:
    check(multi_client.get("/score", params=params))
    check(dga_client.get("/apply", params=params))


def test_service_still_answers_after_fuzzing(dga_client: TestClient, multi_client: TestClient) -> None:
    assert dga_client.get("/apply", params={"host": "google.com"}).json()["is_malicious"] == "legit"
    assert multi_client.post("/score", json={"features": [1, 2]}).json()["total"] == 3.0


# -- the Open Inference Protocol ----------------------------------------------------------------

V2_NAMES = ["BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "FP16", "FP32", "FP64",
            "BYTES"]
datatypes = st.sampled_from(V2_NAMES) | st.text(max_size=6) | scalars
shapes = st.lists(st.integers(min_value=-2, max_value=4) | st.booleans() | st.text(max_size=2), max_size=4) | scalars
tensor_parameters = st.dictionaries(st.sampled_from(["binary_data_size", "binary_data"]) | st.text(max_size=5),
                                    scalars, max_size=2)
input_names = st.sampled_from(["host", "x", "w", "ids", "flag", "half"]) | st.text(max_size=4) | scalars
tensor_specs = st.fixed_dictionaries({"name": input_names, "datatype": datatypes, "shape": shapes, "data": json_values},
                                     optional={"parameters": tensor_parameters | scalars})
requested = st.lists(st.fixed_dictionaries({"name": st.sampled_from(["total", "argmax", "output_label", "picked"])
                                            | st.text(max_size=8) | scalars},
                                           optional={"parameters": tensor_parameters | scalars}), max_size=3)
infer_bodies = st.fixed_dictionaries(
    {"inputs": st.lists(tensor_specs, max_size=3) | json_values},
    optional={"outputs": requested | json_values, "id": scalars,
              "parameters": st.dictionaries(st.sampled_from(["binary_data_output", "classification"])
                                            | st.text(max_size=5), scalars, max_size=2) | scalars},
) | json_values
# near-valid requests for the multi model: the right names and datatypes, any shapes and data
small_shapes = st.lists(st.integers(min_value=0, max_value=3), min_size=0, max_size=3)
near_valid = st.fixed_dictionaries({"inputs": st.tuples(
    st.fixed_dictionaries({"name": st.just("x"), "datatype": st.sampled_from(["FP32", "FP64", "BYTES"]),
                           "shape": small_shapes, "data": st.lists(scalars | st.lists(scalars, max_size=3), max_size=6)}),
    st.fixed_dictionaries({"name": st.just("w"), "datatype": st.just("FP32"), "shape": small_shapes,
                           "data": st.lists(scalars, max_size=4)}),
).map(list)}, optional={"outputs": requested})


@pytest.fixture(scope="module")
def dtypes_fuzz_client(dtypes_payload: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(dtypes_payload, max_batch_size=8))) as client:
        yield client


@FUZZ
@given(body=infer_bodies)
def test_v2_infer_bodies_never_give_5xx(multi_client: TestClient, dga_client: TestClient,
                                        dtypes_fuzz_client: TestClient, body: Any) -> None:
    content = json.dumps(body)
    for client in (multi_client, dga_client, dtypes_fuzz_client):
        check(client.post("/v2/models/model/infer", content=content))


@FUZZ
@given(body=near_valid)
def test_near_valid_v2_requests_never_give_5xx(multi_client: TestClient, body: Any) -> None:
    check(multi_client.post("/v2/models/model/infer", content=json.dumps(body)))


@FUZZ
@given(body=st.binary(max_size=300), length=st.none() | st.integers(min_value=-5, max_value=320).map(str)
       | st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=6),
       header=st.none() | infer_bodies)
def test_v2_binary_framing_never_gives_5xx(multi_client: TestClient, dtypes_fuzz_client: TestClient, body: bytes,
                                           length: str | None, header: Any) -> None:
    if header is not None:  # a real JSON header followed by arbitrary "binary data"
        head = json.dumps(header).encode()
        body, length = head + body, str(len(head)) if length is None else length
    headers = {} if length is None else {"Inference-Header-Content-Length": length}
    for client in (multi_client, dtypes_fuzz_client):
        check(client.post("/v2/models/model/infer", content=body, headers=headers))


ROUTES = ["/", "/metrics", "/v2", "/v2/health/live", "/v2/health/ready", "/v2/models/model",
          "/v2/models/model/versions/1", "/v2/models/model/ready", "/v2/models/model/versions/1/ready",
          "/v2/models/model/infer", "/v2/models/model/versions/1/infer", "/v2/models/other/infer", "/score",
          "/apply", "/v2/models", "/v2/health", "/score/extra", "/%00", "/v2/models/model/infer/"]


@FUZZ
@given(route=st.sampled_from(ROUTES), method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]),
       body=st.none() | st.binary(max_size=100) | bodies.map(lambda b: json.dumps(b).encode()) | infer_bodies.map(
           lambda b: json.dumps(b).encode()),
       query=st.lists(st.tuples(argument_names, st.text(max_size=10)), max_size=3))
def test_every_route_and_method_never_gives_5xx(multi_client: TestClient, route: str, method: str,
                                                body: bytes | None, query: list[tuple[str, str]]) -> None:
    response = multi_client.request(method, route, content=body, params=query)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.json()["error"]


def test_v2_still_answers_after_fuzzing(multi_client: TestClient) -> None:
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]},
                       {"name": "w", "datatype": "FP32", "shape": [1], "data": [1]}]}
    response = multi_client.post("/v2/models/model/infer", json=body)
    assert response.status_code == 200 and response.json()["outputs"][0]["data"] == [3.0]
