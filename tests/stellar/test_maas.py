"""MAAS_GET_ENDPOINT and MAAS_MODEL_APPLY against fake model gateways, and the evaluation Context."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

import stellar_like
from stellar_like import Context, ModelGateway, StellarError, StellarEvaluationError, evaluate

DGA_RULE = "MAP_GET('is_malicious', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), {'host': host}))"


class FakeGateway:
    """Serves one model, 'dga', that calls hosts with many digits malicious."""

    def __init__(self) -> None:
        self.lookups: list[tuple[str, str | None]] = []
        self.calls: list[tuple[dict[str, Any], str | None, dict[str, Any]]] = []

    def get_endpoint(self, name: str, version: str | None = None) -> dict[str, Any] | None:
        self.lookups.append((name, version))
        if name != "dga":
            return None
        return {"name": name, "version": version or "1.0", "url": "http://127.0.0.1:9999", "endpoint:apply": "apply"}

    def apply(self, endpoint: dict[str, Any], function: str | None, args: dict[str, Any]) -> dict[str, Any] | None:
        self.calls.append((endpoint, function, args))
        host = str(args.get("host", ""))
        digits = sum(ch.isdigit() for ch in host)
        return {"is_malicious": digits > 3, "function": function, "args": args}


class BrokenGateway(FakeGateway):
    def apply(self, endpoint: dict[str, Any], function: str | None, args: dict[str, Any]) -> dict[str, Any] | None:
        raise ConnectionError("model unreachable")


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def context(gateway: FakeGateway) -> Context:
    return Context(gateway=gateway)


@pytest.fixture
def no_default_context() -> Iterator[None]:
    previous = stellar_like.set_default_context(None)
    yield
    stellar_like.set_default_context(previous)


def test_fake_gateway_satisfies_the_protocol(gateway: FakeGateway) -> None:
    assert isinstance(gateway, ModelGateway)


def test_dga_rule_end_to_end(context: Context, gateway: FakeGateway) -> None:
    assert evaluate(DGA_RULE, {"host": "x8k2j4q9.com"}, context) is True
    assert evaluate(DGA_RULE, {"host": "google.com"}, context) is False
    assert gateway.lookups == [("dga", None), ("dga", None)]
    endpoint, function, args = gateway.calls[0]
    assert endpoint["url"] == "http://127.0.0.1:9999" and function is None and args == {"host": "x8k2j4q9.com"}


def test_get_endpoint_with_version(context: Context, gateway: FakeGateway) -> None:
    endpoint = evaluate("MAAS_GET_ENDPOINT('dga', '2.0')", {}, context)
    assert endpoint["version"] == "2.0" and endpoint["name"] == "dga"
    assert gateway.lookups == [("dga", "2.0")]
    evaluate("MAAS_GET_ENDPOINT('dga', 3)", {}, context)
    assert gateway.lookups[-1] == ("dga", "3")


def test_unknown_model_gives_null_and_apply_passes_null_through(context: Context, gateway: FakeGateway) -> None:
    assert evaluate("MAAS_GET_ENDPOINT('nope')", {}, context) is None
    assert evaluate("MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('nope'), {'a': 1})", {}, context) is None
    assert gateway.calls == []


def test_apply_with_a_named_function(context: Context, gateway: FakeGateway) -> None:
    result = evaluate("MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), 'score', {'host': h})", {"h": "a1b2"}, context)
    assert result["function"] == "score" and result["args"] == {"host": "a1b2"}
    assert gateway.calls[-1][1] == "score"


def test_apply_with_null_function_and_no_args(context: Context, gateway: FakeGateway) -> None:
    evaluate("MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), null, {'x': 1})", {}, context)
    assert gateway.calls[-1][1] is None and gateway.calls[-1][2] == {"x": 1}
    evaluate("MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), null)", {}, context)
    assert gateway.calls[-1][2] == {}


def test_apply_never_lets_gateway_failures_escape(caplog: pytest.LogCaptureFixture) -> None:
    context = Context(gateway=BrokenGateway())
    with caplog.at_level(logging.WARNING, logger="stellar_like.functions.maas"):
        assert evaluate(DGA_RULE, {"host": "x"}, context) is None
    assert "model unreachable" in caplog.text


def test_apply_ignores_non_map_results() -> None:
    class ListGateway(FakeGateway):
        def apply(self, endpoint: dict[str, Any], function: str | None, args: dict[str, Any]) -> Any:
            return [1, 2]

    assert evaluate("MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), {})", {}, Context(gateway=ListGateway())) is None


@pytest.mark.parametrize("expression, problem", [
    ("MAAS_MODEL_APPLY('x', {})", "argument 1 'x' is not an endpoint map"),
    ("MAAS_MODEL_APPLY([1, 2], {'host': 'a'})", "argument 1 [1, 2] is not an endpoint map"),
    ("MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), 'f', 'y')", "argument 3 'y' is not a map of model arguments"),
    ("MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), 'f', [1])", "argument 3 [1] is not a map of model arguments"),
    ("MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), 5, {})", "argument 2 5 is not a function name"),
])
def test_bad_arguments_give_null_and_a_warning(context: Context, gateway: FakeGateway, expression: str,
                                                problem: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="stellar_like.functions.maas"):
        assert evaluate(expression, {}, context) is None
    assert problem in caplog.text
    assert gateway.calls == []  # nothing reached the model


def test_a_bad_call_does_not_stop_the_others(context: Context) -> None:
    rule = stellar_like.compile("MAP_GET('is_malicious', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), args))")
    got = [rule.evaluate({"args": a}, context) for a in ({"host": "a1b2c3d4"}, ["not a map"], {"host": "g.com"})]
    assert got == [True, None, False]


def test_get_endpoint_gateway_failure_is_a_stellar_error() -> None:
    class Failing(FakeGateway):
        def get_endpoint(self, name: str, version: str | None = None) -> dict[str, Any] | None:
            raise RuntimeError("zookeeper down")

    with pytest.raises(StellarEvaluationError, match="zookeeper down"):
        evaluate("MAAS_GET_ENDPOINT('dga')", {}, Context(gateway=Failing()))


def test_without_a_gateway_both_give_null_with_a_warning(no_default_context: None,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="stellar_like.functions.maas"):
        assert evaluate("MAAS_GET_ENDPOINT('dga')") is None
        assert evaluate(DGA_RULE, {"host": "x"}) is None
        assert evaluate("MAAS_MODEL_APPLY({'name': 'dga', 'url': 'http://x'}, {})") is None
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("MAAS_GET_ENDPOINT: no model gateway is configured") for m in messages)
    assert any(m.startswith("MAAS_MODEL_APPLY: no model gateway is configured") for m in messages)
    assert "-zq HOST:PORT" in messages[0]


def test_without_a_gateway_the_warning_is_not_repeated_for_every_event(no_default_context: None,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    evaluate("MAAS_GET_ENDPOINT('dga')")  # warned (here or earlier in this process)
    with caplog.at_level(logging.WARNING, logger="stellar_like.functions.maas"):
        for _ in range(5):
            assert evaluate("MAAS_GET_ENDPOINT('dga')") is None
    assert caplog.records == []


def test_without_a_gateway_apply_on_null_endpoint_is_null(no_default_context: None) -> None:
    assert evaluate("MAAS_MODEL_APPLY(null, {})") is None


def test_default_context_is_used_when_none_is_given(no_default_context: None, gateway: FakeGateway) -> None:
    previous = stellar_like.set_default_context(Context(gateway=gateway))
    assert previous.gateway is None
    assert stellar_like.get_default_context().gateway is gateway
    assert evaluate(DGA_RULE, {"host": "12345.biz"}) is True
    # An explicit context wins over the default.
    assert evaluate("MAAS_GET_ENDPOINT('dga')", {}, Context(gateway=BrokenGateway()))["name"] == "dga"


def test_set_default_context_rejects_other_objects() -> None:
    with pytest.raises(TypeError):
        stellar_like.set_default_context("not a context")  # type: ignore[arg-type]


def test_context_services_and_immutability(gateway: FakeGateway) -> None:
    context = Context(gateway=gateway, geo="geo-db")
    assert context.service("geo") == "geo-db"
    assert context.service("gateway") is gateway
    assert context.service("missing", 1) == 1
    assert context.services == {"geo": "geo-db"}
    with pytest.raises(AttributeError):
        context.gateway = None  # type: ignore[misc]
    replaced = context.replace(gateway=None, asn="asn-db")
    assert replaced.gateway is None and replaced.service("asn") == "asn-db" and replaced.service("geo") == "geo-db"
    assert "geo" in repr(context)


def test_maas_calls_are_never_constant_folded(context: Context, gateway: FakeGateway) -> None:
    compiled = stellar_like.compile("MAAS_GET_ENDPOINT('dga')")
    compiled.evaluate({}, context)
    compiled.evaluate({}, context)
    assert len(gateway.lookups) == 2
