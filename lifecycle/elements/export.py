"""Trained elements as ONNX models with their ``model_server`` signature.

The served model computes what the training code computes, in one graph, so that a payload gives
the same numbers as :mod:`.forecaster` / :mod:`.envelope` (up to float32 rounding):

* **forecaster** — one argument per input tag (its last ``window`` values, oldest first; a scalar
  when the window is 1) and one ``actual.<tag>`` argument per output tag (its value at the
  predicted grid point). The graph stacks the windows, scales them with the training statistics,
  runs the estimator (converted by skl2onnx and spliced in), unscales the predictions, and
  computes the point artifact ``mean |scaled error| ** power``. Response keys: one per output tag
  (its prediction), ``artifact`` and ``contributions`` (per output tag, in the outputs' order).
* **envelope** — one scalar argument per input tag; the graph scales and centres the point and
  computes the quadratic form ``zᵀ A z`` and the tags' contributions (:mod:`.envelope`). No converter exists for a robust
  Mahalanobis distance or the T²/Q statistic, so this graph is built with :mod:`onnx.helper`; it
  computes in float64 (arguments and results are float32).
  Response keys: ``artifact`` and ``contributions`` (per input tag, in the inputs' order).

The artifact served is the point artifact; smoothing over time happens where points arrive in
order (:mod:`.artifact`). Argument names follow the signature's name rule: a tag whose name has
other characters (a space, say) is renamed by :func:`argument_names` and the mapping is written
to the payload's ``element.json``.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

import numpy as np
import onnx
import onnx.compose
from onnx import TensorProto, helper, numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType

from lifecycle.elements.envelope import EnvelopeModel
from lifecycle.elements.forecaster import ForecasterModel
from lifecycle.elements.trained import TrainedElement
from lifecycle.errors import InvalidInput

OPSET = 17
ML_OPSET = 3
IR_VERSION = 8
_ARG_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


def argument_names(tags: Sequence[str], taken: set[str] | None = None) -> list[str]:
    """A valid, unique argument name per tag: the tag itself when it is one, else the tag with
    every other character replaced by ``_`` (and a ``_`` in front of a leading digit), numbered
    when two tags would meet."""
    used = set(taken or ())
    names: list[str] = []
    for tag in tags:
        name = tag if _ARG_OK.match(tag) else re.sub(r"[^A-Za-z0-9_.\-]", "_", tag)
        if not re.match(r"^[A-Za-z_]", name):
            name = "_" + name
        base, n = name, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        names.append(name)
    return names


def _const(name: str, values: Any, dtype: Any = np.float32) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name)


def _finish(graph: onnx.GraphProto, extra_opsets: Sequence[onnx.OperatorSetIdProto] = ()) -> onnx.ModelProto:
    opsets = {"": OPSET}
    for opset in extra_opsets:
        if opset.domain:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                              producer_name="maas-lifecycle")
    model.ir_version = IR_VERSION
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:  # a bug in the exporter, reported as such
        raise InvalidInput(f"the exported ONNX model is invalid: {exc}") from exc
    return model


def _stack(names: Sequence[str], axis: int, out: str, nodes: list[onnx.NodeProto]) -> None:
    """Unsqueeze each input at ``axis`` and concatenate them along it."""
    parts = []
    for i, name in enumerate(names):
        nodes.append(helper.make_node("Unsqueeze", [name, f"axis{axis}"], [f"{out}_{i}"]))
        parts.append(f"{out}_{i}")
    nodes.append(helper.make_node("Concat", parts, [out], axis=axis))


def forecaster_onnx(model: ForecasterModel) -> onnx.ModelProto:
    n_in, n_out, features = len(model.inputs), len(model.outputs), model.window * len(model.inputs)
    core = convert_sklearn(model.estimator, initial_types=[("X", FloatTensorType([None, features]))],
                           target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET})
    core = onnx.compose.add_prefix(core, "core_")
    core_in, core_out = core.graph.input[0].name, core.graph.output[0].name
    x_names = [f"x{i}" for i in range(n_in)]
    y_names = [f"actual{j}" for j in range(n_out)]
    nodes: list[onnx.NodeProto] = []
    _stack(x_names, 2, "window", nodes)  # N × window × inputs
    nodes += [
        helper.make_node("Sub", ["window", "x_center"], ["window_c"]),
        helper.make_node("Div", ["window_c", "x_scale"], ["window_s"]),
        helper.make_node("Flatten", ["window_s"], [core_in], axis=1),
        *core.graph.node,
        helper.make_node("Reshape", [core_out, "out_shape"], ["pred_s"]),
        helper.make_node("Mul", ["pred_s", "y_scale"], ["pred_u"]),
        helper.make_node("Add", ["pred_u", "y_center"], ["predictions"]),
    ]
    _stack(y_names, 1, "actual", nodes)  # N × outputs
    nodes += [
        helper.make_node("Sub", ["actual", "predictions"], ["error"]),
        helper.make_node("Div", ["error", "y_scale"], ["error_s"]),
        helper.make_node("Abs", ["error_s"], ["error_abs"]),
        helper.make_node("Pow", ["error_abs", "power"], ["error_pow"]),
        helper.make_node("Div", ["error_pow", "n_outputs"], ["contributions"]),
        helper.make_node("ReduceSum", ["contributions", "axis1"], ["artifact"], keepdims=0),
    ]
    initializers = [
        *core.graph.initializer,
        _const("axis1", [1], np.int64), _const("axis2", [2], np.int64), _const("out_shape", [-1, n_out], np.int64),
        _const("x_center", model.x_scaler.center), _const("x_scale", model.x_scaler.scale),
        _const("y_center", model.y_scaler.center), _const("y_scale", model.y_scaler.scale),
        _const("power", model.power), _const("n_outputs", float(n_out)),
    ]
    graph = helper.make_graph(
        nodes, "forecaster",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", model.window]) for name in x_names]
        + [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N"]) for name in y_names],
        [helper.make_tensor_value_info("predictions", TensorProto.FLOAT, ["N", n_out]),
         helper.make_tensor_value_info("artifact", TensorProto.FLOAT, ["N"]),
         helper.make_tensor_value_info("contributions", TensorProto.FLOAT, ["N", n_out])],
        initializer=initializers)
    return _finish(graph, core.opset_import)


def envelope_onnx(model: EnvelopeModel) -> onnx.ModelProto:
    x_names = [f"x{i}" for i in range(len(model.inputs))]
    nodes: list[onnx.NodeProto] = []
    _stack(x_names, 1, "point_f", nodes)  # N × inputs
    nodes += [
        # in float64: the quadratic form subtracts nearly equal numbers, float32 would lose digits
        helper.make_node("Cast", ["point_f"], ["point"], to=TensorProto.DOUBLE),
        helper.make_node("Sub", ["point", "x_center"], ["point_c"]),
        helper.make_node("Div", ["point_c", "x_scale"], ["point_s"]),
        helper.make_node("Sub", ["point_s", "location"], ["z"]),
        helper.make_node("MatMul", ["z", "matrix"], ["az"]),
        helper.make_node("Mul", ["z", "az"], ["zaz"]),
        helper.make_node("ReduceSum", ["zaz", "axis1"], ["artifact_d"], keepdims=0),
        helper.make_node("Mul", ["az", "az"], ["az2"]),
        helper.make_node("Div", ["az2", "diagonal"], ["contributions_d"]),
        helper.make_node("Cast", ["artifact_d"], ["artifact"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["contributions_d"], ["contributions"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes, f"envelope_{model.method}",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N"]) for name in x_names],
        [helper.make_tensor_value_info("artifact", TensorProto.FLOAT, ["N"]),
         helper.make_tensor_value_info("contributions", TensorProto.FLOAT, ["N", len(model.inputs)])],
        initializer=[_const("axis1", [1], np.int64), _const("x_center", model.scaler.center, np.float64),
                     _const("x_scale", model.scaler.scale, np.float64), _const("location", model.location, np.float64),
                     _const("matrix", model.matrix, np.float64), _const("diagonal", np.diag(model.matrix), np.float64)])
    return _finish(graph)


def to_onnx(trained: TrainedElement) -> tuple[onnx.ModelProto, dict[str, Any], dict[str, str]]:
    """The ONNX model, its signature (``signature.json``'s content) and the argument name per
    argument (``{arg: tag}``, ``actual.<arg>`` for a forecaster's outputs)."""
    if trained.kind == "forecaster":
        model: ForecasterModel = trained.model
        onnx_model = forecaster_onnx(model)
        in_args = argument_names(model.inputs)
        out_args = [f"actual.{name}" for name in argument_names(model.outputs)]
        window = model.window
        inputs = [{"name": f"x{i}", "arg": arg, "dtype": "float32", "shape": [-1, window],
                   "description": f"tag {tag!r}: its last {window} value(s), oldest first" if window > 1
                   else f"tag {tag!r}: its value"} for i, (arg, tag) in enumerate(zip(in_args, model.inputs))]
        horizon = f"{model.horizon} grid point(s) after the window's last point" if model.horizon else "the window's last point"
        inputs += [{"name": f"actual{j}", "arg": arg, "dtype": "float32", "shape": [-1],
                    "description": f"tag {tag!r}: its actual value at {horizon}"}
                   for j, (arg, tag) in enumerate(zip(out_args, model.outputs))]
        outputs = [{"name": "predictions", "key": tag, "select": j, "description": f"prediction of tag {tag!r}"}
                   for j, tag in enumerate(model.outputs)]
        outputs += [
            {"name": "artifact", "key": "artifact",
             "description": f"point artifact: mean over the output tags of |scaled error| ** {model.power:g}"},
            {"name": "contributions", "key": "contributions",
             "description": "each output tag's share of the artifact, in the order " + ", ".join(map(repr, model.outputs))},
        ]
        mapping = dict(zip(in_args, model.inputs)) | dict(zip(out_args, model.outputs))
    elif trained.kind == "envelope":
        envelope: EnvelopeModel = trained.model
        onnx_model = envelope_onnx(envelope)
        in_args = argument_names(envelope.inputs)
        inputs = [{"name": f"x{i}", "arg": arg, "dtype": "float32", "shape": [-1], "description": f"tag {tag!r}: its value"}
                  for i, (arg, tag) in enumerate(zip(in_args, envelope.inputs))]
        what = "squared Mahalanobis distance" if envelope.method == "elliptic" else "T²/k + Q/mean(Q)"
        outputs = [
            {"name": "artifact", "key": "artifact", "description": f"point artifact: {what}"},
            {"name": "contributions", "key": "contributions",
             "description": "per input tag, in the order " + ", ".join(map(repr, envelope.inputs)) + ": how much the "
                            "artifact would drop if that tag alone took its most likely value given the others"},
        ]
        mapping = dict(zip(in_args, envelope.inputs))
    else:
        raise InvalidInput(f"a {trained.kind} element has no ONNX form", field="kind")
    signature = {"function": "apply", "description": f"{trained.kind} over {', '.join(trained.inputs)}",
                 "inputs": inputs, "outputs": outputs}
    return onnx_model, signature, mapping
