"""The signature file of a payload, and its binding to a model's inputs and outputs.

A signature (``signature.json`` next to ``model.onnx``; format in ``docs/payload.md``) names the
model's function (``apply``), maps the function's named arguments to the model's inputs (with
dtype, shape and an optional default) and the model's outputs to the keys of the response (with
an optional element to select and optional class labels).

:func:`bind` checks a :class:`Signature` against what the model declares (:class:`TensorInfo`,
filled from onnxruntime's metadata by the runtime) and resolves everything the signature leaves
out, giving a :class:`Binding` the codec and the runtime work from. This module does not import
onnxruntime: it only knows onnxruntime's type strings (``tensor(float)``,
``seq(map(int64,tensor(float)))``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from model_server import jsonio
from model_server.errors import SignatureError

DType = Literal[
    "float16", "float32", "float64", "int8", "int16", "int32", "int64",
    "uint8", "uint16", "uint32", "uint64", "bool", "string",
]

# onnxruntime's element type names → ours
ONNX_ELEMENT_TYPES: dict[str, str] = {
    "float16": "float16", "float": "float32", "double": "float64",
    "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
    "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "bool": "bool", "string": "string",
}

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]*$"
RESERVED_FUNCTIONS = {"v2", "metrics"}  # the Open Inference Protocol's prefix, Prometheus' path

Dim = Annotated[int, Field(ge=-1)] | None


def numpy_dtype(dtype: str) -> np.dtype[Any]:
    """The numpy dtype that holds a tensor of ``dtype`` (strings are Python objects)."""
    return np.dtype(object) if dtype == "string" else np.dtype(dtype)


# -- the file format ----------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    """One argument of the function, fed to one model input."""

    name: str = Field(min_length=1, description="The model's input name")
    arg: str | None = Field(None, pattern=NAME_PATTERN, description="The argument name callers use; default: name")
    dtype: DType | None = Field(None, description="Element type; default: the model's")
    shape: list[Dim] | None = Field(
        None, min_length=1,
        description="The tensor's shape, batch dimension first (-1 or null); -1/null elsewhere means any size; "
                    "default: the model's",
    )
    default: Any = Field(None, description="Value used when a row leaves the argument out (absent: required)")
    description: str = ""

    @property
    def argument(self) -> str:
        return self.arg or self.name

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set

    @field_validator("shape")
    @classmethod
    def _dims(cls, shape: list[int | None] | None) -> list[int | None] | None:
        if shape is None:
            return None
        if shape[0] not in (-1, None):
            raise ValueError("the first dimension is the batch dimension and must be -1 or null")
        if any(d == 0 for d in shape):
            raise ValueError("dimensions must be positive, or -1/null for any size")
        return [None if d == -1 else d for d in shape]


class OutputSpec(_Strict):
    """One model output, returned under one key of the response."""

    name: str = Field(min_length=1, description="The model's output name")
    key: str | None = Field(None, min_length=1, description="Key in the response; default: name")
    select: int | str | None = Field(
        None, description="Per row, keep only this element: an index of a vector output, or a key (class) of a "
                          "map output such as a ZipMap of class probabilities",
    )
    labels: dict[str, Any] | None = Field(
        None, description="Replace values by labels, e.g. {\"1\": \"malicious\", \"0\": \"legit\"}; keys are the "
                          "values as text (true/false for booleans); values not listed are returned as they are",
    )
    description: str = ""

    @property
    def response_key(self) -> str:
        return self.key or self.name


class Signature(_Strict):
    """The whole signature file."""

    function: str = Field("apply", pattern=NAME_PATTERN, description="The function's name (the URL path)")
    inputs: list[InputSpec] | None = Field(None, description="Default: every model input, argument = input name")
    outputs: list[OutputSpec] | None = Field(None, description="Default: every model output, key = output name")
    description: str = ""

    @field_validator("function")
    @classmethod
    def _not_reserved(cls, function: str) -> str:
        if function in RESERVED_FUNCTIONS:
            raise ValueError(f"{function!r} is reserved")
        return function

    @model_validator(mode="after")
    def _unique(self) -> "Signature":
        for what, values in (
            ("input name", [i.name for i in self.inputs or []]),
            ("argument", [i.argument for i in self.inputs or []]),
            ("output key", [o.response_key for o in self.outputs or []]),
        ):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"duplicate {what}: {', '.join(dupes)}")
        return self


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_signature(data: str | bytes, *, source: str = "signature") -> Signature:
    """A signature from JSON text; :class:`SignatureError` naming the problem otherwise."""
    try:
        raw = jsonio.loads(data)
    except (ValueError, RecursionError) as exc:
        raise SignatureError(f"{source} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise SignatureError(f"{source} must hold a JSON object")
    try:
        return Signature.model_validate(raw)
    except ValidationError as exc:
        raise SignatureError(f"{source} is invalid: {_describe(exc)}") from exc


def load_signature(path: Path) -> Signature:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SignatureError(f"cannot read signature file {path}: {exc.strerror or exc}") from exc
    return parse_signature(data, source=str(path))


# -- binding to a model -------------------------------------------------------------------------

@dataclass(frozen=True)
class TensorInfo:
    """What a model declares about one input or output (onnxruntime's ``NodeArg``)."""

    name: str
    type: str                              # onnxruntime's type string, e.g. "tensor(float)"
    shape: tuple[int | str | None, ...] | None  # None: unknown rank; str/None: a dynamic dimension


@dataclass(frozen=True)
class InputBinding:
    """An argument, resolved: the model input it feeds, its element type and per-row shape."""

    arg: str
    name: str
    dtype: str                         # one of DType
    row_shape: tuple[int | None, ...]  # the shape of one row's value (None: any size)
    has_default: bool
    default: Any


@dataclass(frozen=True)
class OutputBinding:
    """A model output, resolved: its kind, the response key and the post-processing."""

    name: str
    key: str
    kind: Literal["tensor", "map_sequence", "sequence"]
    select: int | str | None
    labels: dict[str, Any] | None


@dataclass(frozen=True)
class Binding:
    """A signature bound to a model."""

    function: str
    inputs: tuple[InputBinding, ...]
    outputs: tuple[OutputBinding, ...]
    max_batch: int | None  # 1 when the model's batch dimension is fixed at 1; None: any

    @property
    def arguments(self) -> dict[str, InputBinding]:
        return {i.arg: i for i in self.inputs}


_TENSOR = re.compile(r"^tensor\((\w+)\)$")
_MAP_SEQ = re.compile(r"^seq\(map\((\w+),\s*tensor\((\w+)\)\)\)$")


def _element_type(info: TensorInfo) -> str:
    match = _TENSOR.match(info.type)
    if not match or match.group(1) not in ONNX_ELEMENT_TYPES:
        raise SignatureError(f"model input {info.name!r} has type {info.type}, which the model server cannot feed")
    return ONNX_ELEMENT_TYPES[match.group(1)]


def _bind_input(spec: InputSpec, info: TensorInfo) -> tuple[InputBinding, bool]:
    """The binding, and whether the model's batch dimension is fixed at 1."""
    where = f"input {spec.name!r}"
    model_dtype = _element_type(info)
    if spec.dtype is not None and spec.dtype != model_dtype:
        raise SignatureError(f"{where}: the signature says dtype {spec.dtype} but the model takes {model_dtype}")
    model_shape = info.shape
    if spec.shape is None and model_shape is None:
        raise SignatureError(f"{where}: the model does not declare its shape; give one in the signature")
    if model_shape is not None and len(model_shape) == 0:
        raise SignatureError(f"{where}: the model takes a scalar, which has no batch dimension")
    batch_fixed_one = False
    if model_shape is not None:
        first = model_shape[0]
        if isinstance(first, int) and first > 1:
            raise SignatureError(f"{where}: the model's first dimension is fixed at {first}; it must be the batch "
                                 f"dimension (dynamic, or 1)")
        batch_fixed_one = first == 1
    if spec.shape is not None:
        if model_shape is not None:
            if len(spec.shape) != len(model_shape):
                raise SignatureError(f"{where}: the signature's shape has {len(spec.shape)} dimensions, the model's "
                                     f"{len(model_shape)} ({list(model_shape)})")
            for axis, (ours, theirs) in enumerate(zip(spec.shape[1:], model_shape[1:]), start=1):
                if isinstance(theirs, int) and theirs > 0 and ours is not None and ours != theirs:
                    raise SignatureError(f"{where}: dimension {axis} is {ours} in the signature but {theirs} in "
                                         f"the model")
        row_shape = tuple(spec.shape[1:])
        if model_shape is not None:  # the model's fixed sizes win over the signature's "any"
            row_shape = tuple(
                theirs if ours is None and isinstance(theirs, int) and theirs > 0 else ours
                for ours, theirs in zip(row_shape, model_shape[1:])
            )
    else:
        assert model_shape is not None
        row_shape = tuple(d if isinstance(d, int) and d > 0 else None for d in model_shape[1:])
    return InputBinding(spec.argument, spec.name, model_dtype, row_shape, spec.has_default, spec.default), batch_fixed_one


def _bind_output(spec: OutputSpec, info: TensorInfo) -> OutputBinding:
    where = f"output {spec.name!r}"
    select = spec.select
    if _TENSOR.match(info.type):
        kind: Literal["tensor", "map_sequence", "sequence"] = "tensor"
        if select is not None:
            if isinstance(select, str):
                if not re.fullmatch(r"-?\d+", select):
                    raise SignatureError(f"{where}: select must be an index for a tensor output, not {select!r}")
                select = int(select)
            shape = info.shape
            if shape is not None and len(shape) < 2:
                raise SignatureError(f"{where}: select needs an output with a dimension beyond the batch one")
            if shape is not None and isinstance(shape[1], int) and shape[1] > 0 and not -shape[1] <= select < shape[1]:
                raise SignatureError(f"{where}: select index {select} is out of range for dimension 1 of size "
                                     f"{shape[1]}")
    elif match := _MAP_SEQ.match(info.type):
        kind = "map_sequence"
        if select is not None and match.group(1) != "string":
            try:
                select = int(select)
            except ValueError as exc:
                raise SignatureError(f"{where}: the map's keys are {match.group(1)}, select {select!r} is not") from exc
        elif select is not None:
            select = str(select)
    elif info.type.startswith("seq("):
        kind = "sequence"
        if select is not None:
            raise SignatureError(f"{where}: select is not supported for outputs of type {info.type}")
    else:
        raise SignatureError(f"{where} has type {info.type}, which the model server cannot return")
    return OutputBinding(spec.name, spec.response_key, kind, select, spec.labels)


def bind(signature: Signature, inputs: Sequence[TensorInfo], outputs: Sequence[TensorInfo]) -> Binding:
    """Check ``signature`` against the model's declared inputs and outputs and resolve it.

    Every model input must be fed by exactly one argument; every output the signature names must
    exist. Raises :class:`SignatureError` naming the problem.
    """
    model_inputs = {i.name: i for i in inputs}
    model_outputs = {o.name: o for o in outputs}
    input_specs = signature.inputs if signature.inputs is not None else [InputSpec(name=i.name) for i in inputs]
    output_specs = signature.outputs if signature.outputs is not None else [OutputSpec(name=o.name) for o in outputs]
    if not output_specs:
        raise SignatureError("the signature returns no outputs")

    bound_inputs: list[InputBinding] = []
    fixed_batch = False
    for spec in input_specs:
        if spec.name not in model_inputs:
            raise SignatureError(f"input {spec.name!r} is not an input of the model (it has: "
                                 f"{', '.join(sorted(model_inputs)) or 'none'})")
        binding, fixed = _bind_input(spec, model_inputs[spec.name])
        bound_inputs.append(binding)
        fixed_batch = fixed_batch or fixed
    unfed = sorted(set(model_inputs) - {b.name for b in bound_inputs})
    if unfed:
        raise SignatureError(f"model input(s) {', '.join(map(repr, unfed))} have no argument in the signature")

    bound_outputs: list[OutputBinding] = []
    for out in output_specs:
        if out.name not in model_outputs:
            raise SignatureError(f"output {out.name!r} is not an output of the model (it has: "
                                 f"{', '.join(sorted(model_outputs))})")
        bound_outputs.append(_bind_output(out, model_outputs[out.name]))
    return Binding(signature.function, tuple(bound_inputs), tuple(bound_outputs), 1 if fixed_batch else None)
