"""The element kinds, the parameters each one takes (with documented defaults) and their validation.

An element is one detector inside an ML model (docs/lifecycle.md). Its ``kind`` chooses what the
``params`` object may hold:

``forecaster``
    predicts its output tags from a window of its input tags (``window`` grid points ending at
    the current one); its artifact is the prediction error.
``envelope``
    a multivariate envelope of normal operation over its input tags; its artifact is a distance.
``rule``
    a Stellar boolean expression over its input tags; pretrained by definition; artifact 1/0.

:func:`validate_element` is what the service calls when an element is created or changed: it
checks the whole definition, fills in the defaults and returns the normalized ``params``, or
raises :class:`~lifecycle.errors.InvalidInput` naming the offending field (``params.hidden_layers``,
``inputs[2]``, ``params.expression`` with the line and column of a syntax error …).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

import stellar_like
from stellar_like import nodes as stellar_nodes
from stellar_like.parser import parse as stellar_parse

from lifecycle.errors import InvalidInput

KINDS = ("forecaster", "envelope", "rule")
TRAINABLE_KINDS = frozenset({"forecaster", "envelope"})
MAX_TAGS = 200
MAX_TAG_LENGTH = 200
MAX_WINDOW = 1000
MAX_FEATURES = 20_000  # window × input tags fed to one forecaster
DEFAULT_WINDOW = 1


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArtifactParams(_Params):
    """How an element's raw artifact becomes the value compared with the threshold, and how the
    threshold is derived when the element's detection settings leave it unset."""

    smoothing_halflife: float = Field(
        5.0, ge=0.0, le=10_000.0,
        description="Exponential smoothing of the artifact over consecutive grid points, as a half-life in grid "
                    "points (the weight of a point halves after this many points); 0 turns smoothing off")
    despike: int = Field(
        5, ge=1, le=101,
        description="Before smoothing, the median of the last this many point artifacts, so a glitch of one or "
                    "two grid points does not raise an alarm (nor the derived threshold); 1 turns it off")
    scaling: Literal["robust", "standard"] = Field(
        "robust",
        description="Input scaling learnt from the training points: 'robust' centres on the median and divides "
                    "by the interquartile range (a few outliers in the training data do not move it), "
                    "'standard' uses the mean and the standard deviation")
    threshold_quantile: float = Field(
        0.99, gt=0.5, lt=1.0,
        description="Derived threshold: this quantile of the smoothed artifact over the validation points …")
    threshold_margin: float = Field(
        1.5, ge=1.0, le=100.0, description="… times this margin")


class ForecasterParams(ArtifactParams):
    """Parameters of a ``forecaster``."""

    algorithm: Literal["mlp", "linear"] = Field(
        "mlp", description="'mlp': a neural network (scikit-learn MLPRegressor, Adam, trained epoch by epoch); "
                           "'linear': ridge regression (solved exactly, one epoch)")
    hidden_layers: list[int] = Field(
        default_factory=lambda: [32, 16], max_length=6,
        description="Sizes of the hidden layers of the 'mlp' (each 1…1024)")
    activation: Literal["relu", "tanh", "logistic"] = Field("relu", description="Activation of the hidden layers")
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0, description="Adam's initial learning rate ('mlp')")
    l2: float = Field(1e-4, ge=0.0, le=1e3, description="L2 penalty (the MLP's alpha, the ridge's alpha)")
    horizon: int = Field(
        0, ge=0, le=MAX_WINDOW,
        description="Predict the outputs this many grid points after the window's last point; must be ≥ 1 when "
                    "an output tag is also an input (the forecaster would otherwise copy it)")
    power: float = Field(
        2.0, gt=0.0, le=8.0,
        description="Artifact: mean over the output tags of |scaled prediction error| ** power (2: the MSE)")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Random seed (weights, shuffling): training is deterministic")

    @model_validator(mode="after")
    def _layers(self) -> "ForecasterParams":
        for i, size in enumerate(self.hidden_layers):
            if not 1 <= size <= 1024:
                raise _FieldError(f"hidden_layers[{i}]", f"a hidden layer has 1 to 1024 units, not {size}")
        if self.algorithm == "mlp" and not self.hidden_layers:
            raise _FieldError("hidden_layers", "an 'mlp' needs at least one hidden layer")
        return self


class EnvelopeParams(ArtifactParams):
    """Parameters of an ``envelope``."""

    method: Literal["elliptic", "pca"] = Field(
        "elliptic",
        description="'elliptic': robust covariance (minimum covariance determinant), artifact = squared "
                    "Mahalanobis distance; 'pca': principal components, artifact = T²/k + Q/mean(Q) over the "
                    "training points (Hotelling's T² in the retained components plus the residual Q statistic)")
    support_fraction: float | None = Field(
        None, gt=0.0, le=1.0,
        description="'elliptic': share of the training points the robust covariance is estimated from "
                    "(default: scikit-learn's (n + p + 1) / 2n)")
    components: float = Field(
        0.95, gt=0.0, le=MAX_TAGS,
        description="'pca': below 1, the share of the variance the retained components explain; 1 or more, "
                    "their number")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Random seed of the robust covariance's subsampling")

    @model_validator(mode="after")
    def _components(self) -> "EnvelopeParams":
        if self.components >= 1 and self.components != int(self.components):
            raise _FieldError("components", "a number of components is a whole number")
        return self


class RuleParams(_Params):
    """Parameters of a ``rule``."""

    expression: str = Field(
        min_length=1, max_length=4000,
        description="A Stellar boolean expression over the input tags, evaluated at every grid point: true "
                    "is anomalous (artifact 1), false is normal (0)")
    inconclusive_positive: bool = Field(
        False, description="Treat an inconclusive result (a null value, a missing tag) as anomalous")


PARAMS_MODELS: dict[str, type[_Params]] = {
    "forecaster": ForecasterParams,
    "envelope": EnvelopeParams,
    "rule": RuleParams,
}


class _FieldError(ValueError):
    """Raised inside a validator to name the sub-field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def parse_params(kind: str, params: dict[str, Any] | None) -> Any:
    """``params`` as the kind's pydantic model (defaults filled in); raises InvalidInput."""
    if kind not in PARAMS_MODELS:
        raise InvalidInput(f"unknown element kind {kind!r}; choose from {', '.join(KINDS)}", field="kind")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidInput(f"params must be an object, not {type(params).__name__}", field="params")
    try:
        return PARAMS_MODELS[kind].model_validate(params)
    except ValidationError as exc:
        error = exc.errors()[0]
        inner = error.get("ctx", {}).get("error")
        if isinstance(inner, _FieldError):
            raise InvalidInput(f"params.{inner.field}: {inner.message}", field=f"params.{inner.field}") from None
        location = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
        field = f"params.{location}" if location else "params"
        raise InvalidInput(f"{field}: {error['msg']}", field=field) from None


def _tags(what: str, tags: Any) -> list[str]:
    if tags is None:
        return []
    if not isinstance(tags, (list, tuple)):
        raise InvalidInput(f"{what} must be a list of tag names", field=what)
    if len(tags) > MAX_TAGS:
        raise InvalidInput(f"{what}: at most {MAX_TAGS} tags, not {len(tags)}", field=what)
    seen: set[str] = set()
    for i, tag in enumerate(tags):
        if not isinstance(tag, str) or not tag.strip():
            raise InvalidInput(f"{what}[{i}]: a tag name is a non-empty string", field=f"{what}[{i}]")
        if len(tag) > MAX_TAG_LENGTH:
            raise InvalidInput(f"{what}[{i}]: a tag name has at most {MAX_TAG_LENGTH} characters",
                               field=f"{what}[{i}]")
        if tag in seen:
            raise InvalidInput(f"{what}[{i}]: tag {tag!r} is listed twice", field=f"{what}[{i}]")
        seen.add(tag)
    return list(tags)


def expression_variables(expression: str) -> set[str]:
    """The variable names ``expression`` reads (lambda parameters excluded); raises StellarParseError."""
    found: set[str] = set()

    def walk(node: Any, bound: frozenset[str]) -> None:
        if isinstance(node, (stellar_nodes.Var, stellar_nodes.Exists)):
            if node.name != "_" and node.name not in bound:
                found.add(node.name)
            return
        if isinstance(node, stellar_nodes.Lambda):
            walk(node.body, bound | frozenset(node.params))
            return
        if isinstance(node, stellar_nodes.Node):
            for slot in node.__slots__:
                walk(getattr(node, slot, None), bound)
        elif isinstance(node, (tuple, list)):
            for item in node:
                walk(item, bound)

    walk(stellar_parse(expression), frozenset())
    return found


def rule_variables(tags: list[str]) -> dict[str, str]:
    """Stellar variable → tag for a rule's inputs: the tag's own name, or for a name that is not an
    identifier (a space, a leading digit) its alias, as in markup conditions
    (:func:`lifecycle.markup_eval.tag_variables`: ``motor current`` → ``motor_current``)."""
    from lifecycle.markup_eval import tag_variables  # markup_eval imports pandas; validation rarely needs it

    return tag_variables(tags)


def compile_rule(expression: str) -> stellar_like.CompiledExpression:
    """The compiled rule; raises InvalidInput naming ``params.expression`` and the position."""
    try:
        return stellar_like.compile(expression)
    except stellar_like.StellarError as exc:
        where = f" at line {exc.position.line}, column {exc.position.column}" if exc.position else ""
        raise InvalidInput(f"params.expression: {exc.message}{where}", field="params.expression") from None


def validate_element(kind: str, inputs: Any, outputs: Any, window: Any, params: dict[str, Any] | None) -> dict[str, Any]:
    """Check an element's definition and return its normalized ``params`` (every default filled in).

    ``window`` is the number of grid points a forecaster reads (``None``: :data:`DEFAULT_WINDOW`);
    envelopes and rules read one point. Raises :class:`InvalidInput` naming the field at fault.
    """
    parsed = parse_params(kind, params)
    input_tags = _tags("inputs", inputs)
    output_tags = _tags("outputs", outputs)
    if window is None:
        window = DEFAULT_WINDOW
    if isinstance(window, bool) or not isinstance(window, int):
        raise InvalidInput("window is a whole number of grid points", field="window")
    if not 1 <= window <= MAX_WINDOW:
        raise InvalidInput(f"window is 1 to {MAX_WINDOW} grid points, not {window}", field="window")
    if not input_tags:
        raise InvalidInput(f"a {kind} needs at least one input tag", field="inputs")

    if kind == "forecaster":
        assert isinstance(parsed, ForecasterParams)
        if not output_tags:
            raise InvalidInput("a forecaster needs at least one output tag", field="outputs")
        if window * len(input_tags) > MAX_FEATURES:
            raise InvalidInput(f"window × inputs is {window * len(input_tags)} features, at most {MAX_FEATURES}",
                               field="window")
        if parsed.horizon == 0:
            for i, tag in enumerate(output_tags):
                if tag in input_tags:
                    raise InvalidInput(
                        f"outputs[{i}]: tag {tag!r} is also an input; with params.horizon 0 the forecaster would "
                        "copy it — set params.horizon to 1 or more, or drop it from the inputs",
                        field=f"outputs[{i}]")
    else:
        if output_tags:
            raise InvalidInput(f"a {kind} has no output tags (its artifact is computed from its inputs)",
                               field="outputs")
        if window != 1:
            raise InvalidInput(f"{'an' if kind == 'envelope' else 'a'} {kind} reads one grid point at a time: window must be 1, not {window}",
                               field="window")
    if kind == "envelope":
        assert isinstance(parsed, EnvelopeParams)
        if parsed.method == "elliptic" and len(input_tags) < 1:
            raise InvalidInput("an elliptic envelope needs at least one input tag", field="inputs")
        if parsed.method == "pca" and parsed.components >= 1 and parsed.components > len(input_tags):
            raise InvalidInput(f"params.components: at most one component per input tag ({len(input_tags)})",
                               field="params.components")
    if kind == "rule":
        assert isinstance(parsed, RuleParams)
        compile_rule(parsed.expression)
        unknown = sorted(expression_variables(parsed.expression) - set(rule_variables(input_tags)))
        if unknown:
            raise InvalidInput(
                f"params.expression reads {', '.join(map(repr, unknown))}, which {'is' if len(unknown) == 1 else 'are'} "
                "not among the element's inputs", field="params.expression")
    return parsed.model_dump(mode="json")


def default_params(kind: str) -> dict[str, Any]:
    """Every parameter of ``kind`` with its default (a rule has no default expression)."""
    if kind == "rule":
        return {"inconclusive_positive": False}
    return parse_params(kind, {}).model_dump(mode="json")


def describe_params(kind: str) -> dict[str, dict[str, Any]]:
    """For documentation and the console: each parameter's default and description."""
    if kind not in PARAMS_MODELS:
        raise InvalidInput(f"unknown element kind {kind!r}; choose from {', '.join(KINDS)}", field="kind")
    model = PARAMS_MODELS[kind]
    out: dict[str, dict[str, Any]] = {}
    for name, info in model.model_fields.items():
        default = info.get_default(call_default_factory=True) if not info.is_required() else None
        out[name] = {"default": default, "required": info.is_required(), "description": info.description or ""}
    return out
