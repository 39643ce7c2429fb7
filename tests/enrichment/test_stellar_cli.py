"""``stellar eval|shell -zq``: the stellar command reaching deployed models through ZooKeeper
(a real ZooKeeper holding a registration of a real HTTP model service), and its errors."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from kazoo.client import KazooClient

from stellar_like.cli import main
from tests.enrichment.conftest import ModelService

pytestmark = pytest.mark.zk

RULE = "MAP_GET('is_malicious', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), {'host': host}))"


@pytest.fixture
def registered(zk: KazooClient) -> Iterator[ModelService]:
    """A model service registered as dga 1.0 under the default service root."""
    service = ModelService("a")
    zk.create("/maas/service/dga/a", service.endpoint().to_json(), makepath=True)
    yield service
    service.close()


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("flag", ["-zq", "-z", "--zk-quorum"])
def test_eval_calls_a_deployed_model(zk_quorum: str, registered: ModelService, flag: str) -> None:
    code, out, err = run("eval", flag, zk_quorum, RULE, "--var", "host=xjwqkzvbtpqmd.com")
    assert (code, json.loads(out), err) == (0, "malicious", "")
    code, out, _ = run("eval", flag, zk_quorum, "MAAS_GET_ENDPOINT('dga')")
    assert json.loads(out) == {"name": "dga", "version": "1.0", "url": registered.url, "endpoint:apply": "apply"}
    assert registered.requests == [("GET", [{"host": "xjwqkzvbtpqmd.com"}])]


def test_zk_root_names_the_cluster_config(zk: KazooClient, zk_quorum: str) -> None:
    service = ModelService("b")
    try:
        zk.create("/other/config", json.dumps({"serviceRoot": "/other/service"}).encode(), makepath=True)
        zk.create("/other/service/dga/b", service.endpoint().to_json(), makepath=True)
        code, out, _ = run("eval", "-zq", zk_quorum, "-zr", "/other/config", RULE, "--var", "host=google.com")
        assert (code, json.loads(out)) == (0, "legit")
        code, out, _ = run("eval", "-zq", zk_quorum, "MAAS_GET_ENDPOINT('dga')")  # the default root: none
        assert (code, out.strip()) == (0, "null")
    finally:
        service.close()


def test_shell_calls_models_and_keeps_its_history(zk_quorum: str, registered: ModelService, tmp_path: Path) -> None:
    history = tmp_path / "history"
    script = "ep := MAAS_GET_ENDPOINT('dga')\nMAP_GET('is_malicious', MAAS_MODEL_APPLY(ep, {'host': 'xq.com'}))\n"
    code, out, err = run("shell", "-zq", zk_quorum, "--history", str(history), stdin=script)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert json.loads(lines[0])["url"] == registered.url and json.loads(lines[1]) == "malicious"
    assert history.read_text().splitlines()[-2:] == script.splitlines()


def test_without_zookeeper_maas_functions_give_null_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    from stellar_like.functions import maas

    monkeypatch.setattr(maas, "_warned", set())  # as in a fresh process
    code, out, err = run("eval", RULE, "--var", "host=x.com")
    assert (code, out.strip()) == (0, "null")
    assert err.startswith("warning: MAAS_GET_ENDPOINT: no model gateway is configured") and "-zq HOST:PORT" in err


def test_unreachable_zookeeper_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there
    code, out, err = run("eval", "-zq", f"127.0.0.1:{port}", "--zk-timeout", "0.5", "1 + 1")
    assert code == 6 and out == ""
    assert f"cannot reach the models of the cluster at 127.0.0.1:{port}" in err and "Traceback" not in err


def test_a_parse_error_is_reported_before_connecting() -> None:
    code, out, err = run("eval", "-zq", "127.0.0.1:1", "--zk-timeout", "0.5", "1 +")
    assert code == 2 and "unexpected end of expression" in err
