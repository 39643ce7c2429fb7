"""Element definitions: defaults filled in, every bad field refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from lifecycle.elements.params import (
    DEFAULT_WINDOW,
    default_params,
    describe_params,
    expression_variables,
    validate_element,
)
from lifecycle.errors import InvalidInput


def test_forecaster_defaults() -> None:
    params = validate_element("forecaster", ["Flow", "Speed"], ["Pressure"], 4, {})
    assert params["algorithm"] == "mlp"
    assert params["hidden_layers"] == [32, 16]
    assert params["power"] == 2.0
    assert params["scaling"] == "robust"
    assert params["threshold_quantile"] == 0.99 and params["threshold_margin"] == 1.5
    assert params == default_params("forecaster")


def test_given_values_are_kept_and_the_rest_defaulted() -> None:
    params = validate_element("forecaster", ["a"], ["b"], None, {"algorithm": "linear", "power": 1})
    assert params["algorithm"] == "linear" and params["power"] == 1.0 and params["horizon"] == 0
    assert DEFAULT_WINDOW == 1


def test_envelope_and_rule() -> None:
    assert validate_element("envelope", ["a", "b"], [], 1, {"method": "pca"})["components"] == 0.95
    rule = validate_element("rule", ["Current", "Pressure"], None, None,
                            {"expression": "Current > 0.5 && not(Pressure < 0.1)"})
    assert rule == {"expression": "Current > 0.5 && not(Pressure < 0.1)", "inconclusive_positive": False}


@pytest.mark.parametrize(
    ("kind", "inputs", "outputs", "window", "params", "field", "words"),
    [
        ("detector", ["a"], [], 1, {}, "kind", "unknown element kind"),
        ("forecaster", [], ["b"], 1, {}, "inputs", "at least one input"),
        ("forecaster", ["a"], [], 1, {}, "outputs", "at least one output"),
        ("forecaster", ["a", "a"], ["b"], 1, {}, "inputs[1]", "listed twice"),
        ("forecaster", ["a", ""], ["b"], 1, {}, "inputs[1]", "non-empty"),
        ("forecaster", "a", ["b"], 1, {}, "inputs", "list of tag names"),
        ("forecaster", ["a"], ["b"], 0, {}, "window", "1 to 1000"),
        ("forecaster", ["a"], ["b"], 2.5, {}, "window", "whole number"),
        ("forecaster", ["a"], ["a"], 1, {}, "outputs[0]", "horizon"),
        ("forecaster", ["a"], ["b"], 1, {"hidden_layers": [8, 0]}, "params.hidden_layers[1]", "1 to 1024"),
        ("forecaster", ["a"], ["b"], 1, {"hidden_layers": []}, "params.hidden_layers", "at least one hidden"),
        ("forecaster", ["a"], ["b"], 1, {"algorithm": "lstm"}, "params.algorithm", "'mlp' or 'linear'"),
        ("forecaster", ["a"], ["b"], 1, {"learning_rate": 0}, "params.learning_rate", "greater than 0"),
        ("forecaster", ["a"], ["b"], 1, {"epochs": 3}, "params.epochs", "Extra inputs"),
        ("forecaster", ["a"], ["b"], 1, {"threshold_quantile": 1.0}, "params.threshold_quantile", "less than 1"),
        ("forecaster", ["a"], ["b"], 1, [], "params", "must be an object"),
        ("envelope", ["a"], ["b"], 1, {}, "outputs", "no output tags"),
        ("envelope", ["a"], [], 3, {}, "window", "window must be 1"),
        ("envelope", ["a"], [], 1, {"method": "iforest"}, "params.method", "'elliptic' or 'pca'"),
        ("envelope", ["a", "b"], [], 1, {"method": "pca", "components": 3}, "params.components", "at most one"),
        ("envelope", ["a", "b"], [], 1, {"method": "pca", "components": 1.5}, "params.components", "whole number"),
        ("rule", ["a"], [], 1, {}, "params.expression", "Field required"),
        ("rule", ["a"], [], 1, {"expression": "a > "}, "params.expression", "line 1, column 5"),
        ("rule", ["a"], [], 1, {"expression": "a > b"}, "params.expression", "'b'"),
        ("rule", ["a"], [], 1, {"expression": "NO_SUCH_FN(a)"}, "params.expression", "column 1"),
    ],
)
def test_refusals_name_the_field(kind: str, inputs: Any, outputs: Any, window: Any, params: Any,
                                 field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_element(kind, inputs, outputs, window, params)
    assert caught.value.field == field
    assert words in caught.value.message


def test_a_rule_reads_tags_with_spaces_by_their_alias() -> None:
    params = validate_element("rule", ["motor current", "Pressure"], [], 1,
                              {"expression": "motor_current > 10 and Pressure < 1"})
    assert params["expression"] == "motor_current > 10 and Pressure < 1"
    with pytest.raises(InvalidInput, match="'motor'"):
        validate_element("rule", ["motor current"], [], 1, {"expression": "motor > 10"})


def test_expression_variables_skip_lambda_parameters() -> None:
    assert expression_variables("MAP(xs, (x) -> x + offset) == [] or a > 1") == {"xs", "offset", "a"}
    assert expression_variables("exists(flag) and b") == {"flag", "b"}


def test_describe_params_documents_every_field() -> None:
    described = describe_params("forecaster")
    assert described["hidden_layers"]["default"] == [32, 16]
    assert all(entry["description"] for entry in described.values())
    assert describe_params("rule")["expression"]["required"] is True
