"""Property tests: whatever a client sends to ``/apply`` (or ``/score``), the answer is a success
or a 4xx with a JSON ``{"error": …}`` — never a 5xx — and the service keeps answering."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
