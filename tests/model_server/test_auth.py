"""Bearer-token authentication and TLS of the model server, and the gateway's calls with them:
routes in process (TestClient) and a real ``python -m model_server`` process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Callable

import httpx
import pytest
from fastapi.testclient import TestClient

from enrichment.gateway import GatewaySettings, MaasGateway
from maas.endpoint_auth import EndpointCredentials
from maas.errors import ConfigError
from maas.registration import Endpoint
from model_server.app import create_app
from model_server.errors import SettingsError
from tests.enrichment.conftest import StaticDiscovery
from tests.model_server.conftest import ServedModel, settings_for

TOKEN = "s3cret-model-token"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.token"
    path.write_text(f"{TOKEN}\n")
    return path


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def gateway_for(url: str, credentials: EndpointCredentials) -> MaasGateway:
    endpoint = Endpoint(name="dga", version="1.0", instance_id="i1", url=url, functions={"apply": "apply"},
                        container_id="i1", registered_ms=0)
    return MaasGateway(StaticDiscovery([endpoint]),  # type: ignore[arg-type]
                       GatewaySettings(cache_size=0, attempts=1, timeout=10, credentials=credentials))


# -- routes, in process ------------------------------------------------------------------------------

def test_every_route_but_metrics_and_health_needs_the_token(dga_payload: Path, token_file: Path) -> None:
    with TestClient(create_app(settings_for(dga_payload, auth_token_file=token_file))) as client:
        for method, path in (("GET", "/apply?host=google"), ("POST", "/apply"), ("GET", "/"),
                             ("GET", "/v2/models/model"), ("POST", "/v2/models/model/infer"), ("GET", "/nothing")):
            refused = client.request(method, path, json={"host": "google"})
            assert refused.status_code == 401, (method, path)
            assert "bearer token" in refused.json()["error"]
            assert refused.headers["www-authenticate"].startswith("Bearer")
        assert client.get("/apply?host=google", headers=bearer("wrong")).status_code == 401
        assert client.get("/apply?host=google", headers={"Authorization": TOKEN}).status_code == 401
        answer = client.get("/apply?host=google", headers=bearer())
        assert answer.status_code == 200 and "is_malicious" in answer.json()
        assert client.post("/apply", json=[{"host": "a"}, {"host": "b"}], headers=bearer()).status_code == 200
        for path in ("/metrics", "/v2/health/live", "/v2/health/ready"):
            assert client.get(path).status_code == 200, path


def test_metrics_and_health_can_be_protected_too(dga_payload: Path, token_file: Path) -> None:
    settings = settings_for(dga_payload, auth_token_file=token_file, protect_metrics=True, protect_health=True)
    with TestClient(create_app(settings)) as client:
        for path in ("/metrics", "/v2/health/live", "/v2/health/ready"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers=bearer()).status_code == 200, path


def test_every_token_of_the_file_is_accepted_for_rotation(dga_payload: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("new-token\n\nold-token\n")
    with TestClient(create_app(settings_for(dga_payload, auth_token_file=tokens))) as client:
        assert client.get("/", headers=bearer("new-token")).status_code == 200
        assert client.get("/", headers=bearer("old-token")).status_code == 200
        assert client.get("/", headers=bearer("new-tokenold-token")).status_code == 401


def test_without_a_token_file_nothing_changes(dga_payload: Path) -> None:
    with TestClient(create_app(settings_for(dga_payload))) as client:
        assert client.get("/apply?host=google").status_code == 200


def test_bad_security_settings_are_refused_at_start(dga_payload: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text("\n \n")
    with pytest.raises(SettingsError, match="holds no token"):
        settings_for(dga_payload, auth_token_file=empty)
    with pytest.raises(SettingsError, match="auth_token_file: .*missing.* does not exist"):
        settings_for(dga_payload, auth_token_file=tmp_path / "missing")
    with pytest.raises(SettingsError, match="go together"):
        settings_for(dga_payload, tls_cert_file=empty)


def test_client_credentials_read_the_first_token_and_name_a_bad_file(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text("\nfirst\nsecond\n")
    credentials = EndpointCredentials.from_environment({"MAAS_MODEL_TOKEN_FILE": str(tokens)})
    assert credentials.headers == {"Authorization": "Bearer first"}
    assert "first" not in repr(credentials)
    assert EndpointCredentials.from_environment({}).http_options() == {"headers": {}, "verify": True}
    with pytest.raises(ConfigError, match="missing"):
        EndpointCredentials.create(tmp_path / "missing")
    with pytest.raises(ConfigError, match="CA file"):
        EndpointCredentials.create(None, tmp_path / "missing-ca")


# -- a real model_server process, called by the gateway ------------------------------------------------

@pytest.mark.e2e
def test_a_served_model_refuses_calls_without_the_token_and_the_gateway_passes(
        serve: Callable[..., ServedModel], dga_payload: Path, token_file: Path) -> None:
    server = serve(dga_payload, env={"MAAS_MODEL_TOKEN_FILE": str(token_file)})
    assert httpx.get(f"{server.url}/apply", params={"host": "google"}).status_code == 401
    assert httpx.get(f"{server.url}/metrics").status_code == 200

    allowed = gateway_for(server.url, EndpointCredentials.create(token_file))
    refused = gateway_for(server.url, EndpointCredentials())
    try:
        endpoint = allowed.get_endpoint("dga")
        assert endpoint is not None
        answer = allowed.apply(endpoint, None, {"host": "google"})
        assert answer is not None and "is_malicious" in answer
        batch = allowed.apply_batch(endpoint, None, [{"host": "a"}, {"host": "b"}])
        assert all(row is not None and "is_malicious" in row for row in batch)
        assert refused.apply(endpoint, None, {"host": "google"}) is None  # a 401 is a failed call
    finally:
        allowed.close()
        refused.close()


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (Debian's openssl), and its key."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


@pytest.mark.e2e
def test_tls_with_a_token_verified_by_the_gateway(dga_payload: Path, token_file: Path, tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    endpoint_file = tmp_path / "endpoint.dat"
    server = ServedModel(dga_payload, ["--endpoint-file", str(endpoint_file)],
                         env={"MAAS_MODEL_TOKEN_FILE": str(token_file), "MAAS_TLS_CERT_FILE": str(cert),
                              "MAAS_TLS_KEY_FILE": str(key)})
    try:
        server.url = f"https://127.0.0.1:{server.port}"
        ca = ssl_context(cert)
        wait_for(lambda: httpx.get(f"{server.url}/v2/health/ready", verify=ca).status_code == 200)
        assert json.loads(endpoint_file.read_text())["url"] == server.url  # announced as https
        assert httpx.get(f"{server.url}/apply", params={"host": "x"}, verify=ca).status_code == 401
        with pytest.raises(httpx.TransportError):  # plain HTTP is not served
            httpx.get(f"http://127.0.0.1:{server.port}/v2/health/ready")

        verified = gateway_for(server.url, EndpointCredentials.create(token_file, cert))
        untrusting = gateway_for(server.url, EndpointCredentials.create(token_file))  # system CAs only
        try:
            endpoint = verified.get_endpoint("dga")
            assert endpoint is not None
            answer = verified.apply(endpoint, None, {"host": "google"})
            assert answer is not None and "is_malicious" in answer
            assert untrusting.apply(endpoint, None, {"host": "google"}) is None
        finally:
            verified.close()
            untrusting.close()
    finally:
        assert server.stop() == 0


def ssl_context(cafile: Path):  # type: ignore[no-untyped-def]
    import ssl

    return ssl.create_default_context(cafile=str(cafile))


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    from maas.retry import wait_until

    def attempt() -> bool:
        try:
            return condition()
        except httpx.HTTPError:
            return False

    wait_until(attempt, timeout=timeout, what="the TLS model server to answer")
