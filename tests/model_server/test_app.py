"""The app as a whole: the hot paths answer exactly like the FastAPI routes, Prometheus metrics,
readiness while draining, and the settings of batching, limits and names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from model_server.app import create_app
from model_server.errors import SettingsError, SignatureError
from model_server.settings import Settings
from model_server.signature import parse_signature
from tests.model_server.conftest import settings_for

REQUESTS: list[tuple[str, str, Any, dict[str, str]]] = [
    # (method, url, body: bytes | JSON | None, headers)
    ("GET", "/score?features=[1,2]&weight=3", None, {}),
    ("GET", "/score?features=[1,2]&weight=3&weight=4", None, {}),
    ("GET", "/score?features=[1,2]&nope=1", None, {}),
    ("GET", "/score", None, {}),
    ("POST", "/score", {"features": [1, 2]}, {}),
    ("POST", "/score", [{"features": [1, 2]}, {"features": [3, 4], "weight": 0.5}], {}),
    ("POST", "/score", b"{not json", {}),
    ("POST", "/score", b"", {}),
    ("POST", "/score", [{"features": [1, 2]}] * 51, {}),
    ("POST", "/score", {"features": [1, "2"]}, {}),
    ("POST", "/score", b"x" * 5000, {}),
    ("PUT", "/score", {"features": [1, 2]}, {}),
    ("POST", "/v2/models/model/infer", {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]},
                                                   {"name": "w", "datatype": "FP32", "shape": [1], "data": [2]}],
                                        "id": "é"}, {}),
    ("POST", "/v2/models/model/infer", {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1, 2], "data": [1, 2]},
                                                   {"name": "w", "datatype": "FP32", "shape": [1], "data": [2]}],
                                        "parameters": {"binary_data_output": True}}, {}),
    ("POST", "/v2/models/model/infer", {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 2], "data": [1, 2]}]},
     {}),
    ("POST", "/v2/models/model/infer", b"[1]", {"Inference-Header-Content-Length": "99"}),
    ("POST", "/v2/models/model/infer", b"x" * 5000, {}),
    ("POST", "/v2/models/other/infer", {}, {}),
    ("GET", "/v2/models/model/infer", None, {}),
    ("POST", "/apply", {"features": [1, 2]}, {}),
    ("GET", "/v2/models/model", None, {}),
]


def send(client: TestClient, method: str, url: str, body: Any, headers: dict[str, str]) -> Any:
    if body is None:
        return client.request(method, url, headers=headers)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.request(method, url, content=content, headers=headers)


@pytest.fixture(scope="module")
def both_clients(multi_payload: Path) -> Iterator[tuple[TestClient, TestClient]]:
    settings = settings_for(multi_payload, max_batch_size=50, max_body_bytes=4096)
    with TestClient(create_app(settings)) as hot, TestClient(create_app(settings, hot_paths=False)) as plain:
        yield hot, plain


@pytest.mark.parametrize("method,url,body,headers", REQUESTS, ids=[f"{r[0]} {r[1][:40]} {i}" for i, r in
                                                                   enumerate(REQUESTS)])
def test_hot_paths_answer_like_fastapi(both_clients: tuple[TestClient, TestClient], method: str, url: str,
                                       body: Any, headers: dict[str, str]) -> None:
    hot, plain = both_clients
    a, b = send(hot, method, url, body, headers), send(plain, method, url, body, headers)
    assert (a.status_code, a.content) == (b.status_code, b.content)
    assert a.headers["content-type"] == b.headers["content-type"]
    assert a.headers.get("inference-header-content-length") == b.headers.get("inference-header-content-length")
    if a.status_code >= 400:
        assert set(a.json()) == {"error"}


# -- metrics ----------------------------------------------------------------------------------

def samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text) for s in family.samples}


def value(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in metrics.items() if n == name and labels.items() <= dict(ls).items())


@pytest.mark.parametrize("hot_paths", [True, False])
def test_metrics_count_requests_errors_batches_and_latency(multi_payload: Path, hot_paths: bool) -> None:
    settings = settings_for(multi_payload, model_name="multi", max_body_bytes=2048)
    with TestClient(create_app(settings, hot_paths=hot_paths)) as client:
        for method, url, body, headers in REQUESTS:
            send(client, method, url.replace("/model/", "/multi/"), body, headers)
        client.get("/no/such/path")
        metrics = samples(client)
    assert value(metrics, "model_server_requests_total", model="multi", route="/{function}", status="200") == 4
    assert value(metrics, "model_server_requests_total", route="/v2/models/{model_name}/infer", status="200") == 2
    assert value(metrics, "model_server_request_duration_seconds_count", route="/{function}") == 13  # /score, /apply
    for kind, status, route in [("InvalidInput", "422", "/{function}"), ("BadRequest", "400", "/{function}"),
                                ("PayloadTooLarge", "413", "/{function}"), ("FunctionNotFound", "404", "/{function}"),
                                ("HTTPException", "405", "/{function}"),
                                ("InvalidTensor", "400", "/v2/models/{model_name}/infer"),
                                ("BadRequest", "400", "/v2/models/{model_name}/infer"),
                                ("ModelNotFound", "404", "/v2/models/{model_name}/infer"),
                                ("HTTPException", "404", "unmatched")]:
        assert value(metrics, "model_server_errors_total", kind=kind, status=status, route=route) >= 1, kind
    assert value(metrics, "model_server_errors_total") == sum(
        v for (n, ls), v in metrics.items() if n == "model_server_requests_total" and int(dict(ls)["status"]) >= 400)
    # one onnxruntime call per successful inference, plus the warm-up run outside the batcher
    assert value(metrics, "model_server_batch_size_count", model="multi") == 6
    assert value(metrics, "model_server_batch_size_sum") == 57  # 1 + 1 + 2 + 51 + 1 + 1 rows
    assert value(metrics, "model_server_compute_duration_seconds_count") == 6
    assert value(metrics, "model_server_queue_duration_seconds_count") == 6
    assert value(metrics, "model_server_inference_rows_total") == 57
    assert value(metrics, "model_server_model_ready", model="multi") == 1
    assert value(metrics, "model_server_queue_rows") == 0
    assert value(metrics, "process_cpu_seconds_total") > 0


def test_ready_turns_false_when_draining(multi_payload: Path) -> None:
    client = TestClient(create_app(settings_for(multi_payload)))
    with client:
        assert client.get("/v2/health/ready").status_code == 200
    # the lifespan has ended: the server drains (the batcher finished and refuses new work)
    assert client.get("/v2/health/ready").status_code == 503
    assert client.get("/v2/models/model/ready").status_code == 503
    assert client.get("/v2/health/live").status_code == 200


# -- settings -----------------------------------------------------------------------------------

def test_batching_settings_from_flags_and_environment(multi_payload: Path) -> None:
    base = ["--payload", str(multi_payload), "--port", "1"]
    default = Settings.from_args(base, {})
    assert (default.batching, default.max_queue_delay_ms, default.max_batch_size, default.graceful_timeout) == \
        (True, 0.0, 1024, 30.0)
    flagged = Settings.from_args([*base, "--no-batching", "--max-queue-delay-ms", "2.5", "--max-batch-size", "64",
                                  "--graceful-timeout", "5"], {})
    assert (flagged.batching, flagged.max_queue_delay, flagged.max_batch_size, flagged.graceful_timeout) == \
        (False, 0.0025, 64, 5.0)
    env = {"MODEL_SERVER_BATCHING": "off", "MODEL_SERVER_MAX_QUEUE_DELAY_MS": "1", "MODEL_SERVER_THREADS": "2",
           "MODEL_SERVER_MAX_BODY_BYTES": "4096", "MAAS_MODEL_NAME": "dga", "MAAS_MODEL_VERSION": "1.0"}
    from_env = Settings.from_args(base, env)
    assert (from_env.batching, from_env.max_queue_delay_ms, from_env.threads, from_env.max_body_bytes,
            from_env.model_name, from_env.model_version) == (False, 1.0, 2, 4096, "dga", "1.0")
    assert Settings.from_args([*base, "--batching"], env).batching is True  # a flag beats the environment


def test_max_inline_from_flag_and_environment(multi_payload: Path) -> None:
    base = ["--payload", str(multi_payload), "--port", "1"]
    assert Settings.from_args(base, {}).max_inline == 0.00025
    assert Settings.from_args([*base, "--max-inline-ms", "0"], {}).max_inline == 0.0
    assert Settings.from_args(base, {"MODEL_SERVER_MAX_INLINE_MS": "1.5"}).max_inline_ms == 1.5
    app = create_app(Settings.from_args([*base, "--max-inline-ms", "0.5"], {}))
    assert app.state.batcher.max_inline == 0.0005


def test_queue_bound_defaults_to_sixteen_full_batches(multi_payload: Path) -> None:
    base = ["--payload", str(multi_payload), "--port", "1"]
    assert Settings.from_args(base, {}).queue_rows_limit == 16 * 1024
    assert Settings.from_args([*base, "--max-batch-size", "8"], {}).queue_rows_limit == 128
    assert Settings.from_args([*base, "--max-queue-rows", "100"], {}).queue_rows_limit == 100
    assert Settings.from_args(base, {"MODEL_SERVER_MAX_QUEUE_ROWS": "7"}).queue_rows_limit == 7


@pytest.mark.parametrize("argv,env,words", [
    (["--max-queue-delay-ms", "-1"], {}, "max_queue_delay_ms"),
    (["--max-queue-delay-ms", "soon"], {}, "max_queue_delay_ms"),
    (["--max-batch-size", "0"], {}, "max_batch_size"),
    (["--max-queue-rows", "0"], {}, "max_queue_rows"),
    (["--max-inline-ms", "-1"], {}, "max_inline_ms"),
    ([], {"MODEL_SERVER_MAX_INLINE_MS": "fast"}, "max_inline_ms"),
    (["--graceful-timeout", "0"], {}, "graceful_timeout"),
    ([], {"MODEL_SERVER_BATCHING": "maybe"}, "MODEL_SERVER_BATCHING='maybe' is not a boolean"),
    ([], {"MODEL_SERVER_ACCESS_LOG": "sure"}, "MODEL_SERVER_ACCESS_LOG='sure' is not a boolean"),
    (["--model-name", "a/b"], {}, "model_name: 'a/b' must be"),
    (["--model-name=-x"], {}, "model_name"),
    (["--model-version", "1 0"], {}, "model_version: '1 0' must be"),
    (["--max-body-bytes", "10"], {}, "max_body_bytes"),
])
def test_invalid_batching_and_name_settings(multi_payload: Path, argv: list[str], env: dict[str, str],
                                            words: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_args(["--payload", str(multi_payload), "--port", "1", *argv], env)
    assert words in str(info.value)


def test_metrics_is_a_reserved_function_name() -> None:
    with pytest.raises(SignatureError, match="'metrics' is reserved"):
        parse_signature(json.dumps({"function": "metrics"}))
