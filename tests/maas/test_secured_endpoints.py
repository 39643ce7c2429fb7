"""A cluster whose model services require a bearer token and serve HTTPS: the runner hands the
paths to the payload, checks readiness over TLS, the prober keeps the instance healthy, and only
callers with the token get answers."""

from __future__ import annotations

import ssl
import time
from pathlib import Path
from typing import Callable

import httpx
import pytest

from enrichment.gateway import GatewaySettings, MaasGateway
from maas.endpoint_auth import EndpointCredentials
from maas.registration import Endpoint
from maas.retry import wait_until
from tests.cluster import Cluster
from tests.enrichment.conftest import StaticDiscovery
from tests.model_server.test_auth import make_certificate

pytestmark = [pytest.mark.zk, pytest.mark.e2e]

DGA = Path(__file__).resolve().parents[2] / "examples" / "dga" / "payload"


def test_the_example_serves_https_with_a_token(cluster_factory: Callable[..., Cluster], tmp_path: Path) -> None:
    if not (DGA / "model.onnx").exists():
        pytest.skip("the example model is not built (make model)")
    token = tmp_path / "model.token"
    token.write_text("cluster-token\n")
    cert, key = make_certificate(tmp_path)
    cluster = cluster_factory("--model-token-file", str(token), "--model-tls-cert", str(cert),
                              "--model-tls-key", str(key), "--model-ca-file", str(cert), "--probe-interval", "0.3")
    out = cluster.maas_deploy("-mo", "ADD", "-n", "dga", "-v", "1", "-hmp", "/models/dga/1", "-lmp", str(DGA), "--wait")
    assert "done" in out.stdout
    (registration,) = cluster.registrations("dga").values()
    url = registration["payload"]["endpoint"]["url"]
    assert url.startswith("https://127.0.0.1:")

    trust = ssl.create_default_context(cafile=str(cert))
    assert httpx.get(f"{url}/apply", params={"host": "x"}, verify=trust).status_code == 401
    endpoint = Endpoint.from_json(cluster.client.client.get(
        f"{cluster.client.layout.service_root}/dga/{registration['id']}")[0])
    gateway = MaasGateway(StaticDiscovery([endpoint]),  # type: ignore[arg-type]
                          GatewaySettings(cache_size=0, credentials=EndpointCredentials.create(token, cert)))
    try:
        answer = gateway.apply(gateway.get_endpoint("dga"), None, {"host": "xjwqkzvbtpqmd.com"})  # type: ignore[arg-type]
        assert answer is not None and answer["is_malicious"] == "malicious"
    finally:
        gateway.close()

    # The prober checks it over TLS with the token: after several rounds it is the same, healthy instance.
    wait_until(lambda: (s := cluster.status_of("dga")) is not None and s.ready == 1, timeout=10, what="ready")
    time.sleep(2.0)  # ≥ 6 probe rounds at 0.3 s: an instance failing 3 in a row would have been replaced
    status = cluster.status_of("dga")
    assert status is not None and status.restarts == 0 and status.last_error is None
    assert list(cluster.registrations("dga")) == [registration["id"]]
    cluster.maas_deploy("-mo", "REMOVE", "-n", "dga", "-v", "1", "--wait")
