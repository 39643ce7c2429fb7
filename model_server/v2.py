"""The Open Inference Protocol (KServe V2 / Triton) over REST, independent of the web framework.

:class:`V2Protocol` answers the protocol's routes for the one model a process serves — server
metadata (``GET /v2``), model metadata and readiness, and inference — over
:meth:`model_server.runtime.ModelRuntime.infer` through :mod:`model_server.batcher`. It works on
the model's own tensors: input and output names are the model's (not the signature's arguments
and keys), and the signature's ``select``/``labels``/defaults do not apply.

* Datatypes: ``BOOL``, ``INT8/16/32/64``, ``UINT8/16/32/64``, ``FP16``, ``FP32``, ``FP64`` and
  ``BYTES`` (UTF-8 strings) — whatever the model's inputs are. Shapes in metadata use ``-1`` for
  a variable dimension; the first dimension is the batch.
* Tensor data in JSON (``data``: flat or nested, row-major; only the element count must match the
  shape), or in the binary tensor data extension (``parameters.binary_data_size`` and the
  ``Inference-Header-Content-Length`` header; numbers little-endian, ``BYTES`` elements each
  prefixed by a 4-byte little-endian length) — both in requests and, when asked for with
  ``binary_data`` / ``binary_data_output``, in responses.
* A ZipMap output (``seq(map(K, V))``, e.g. scikit-learn class probabilities) is returned as a
  ``[N, classes]`` tensor of its values, columns in the map's (the model's class) order. Other
  non-tensor outputs are not offered.

Problems raise :mod:`model_server.errors`: :class:`~model_server.errors.ModelNotFound` (404) for an
unknown model or version, :class:`~model_server.errors.BadRequest` /
:class:`~model_server.errors.InvalidTensor` (400) for a malformed request or a tensor that does not
fit the model, naming the input or output.
"""

from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Literal, Mapping

import numpy as np

from starlette.concurrency import run_in_threadpool

from model_server import jsonio
from model_server.batcher import Batcher
from model_server.codec import json_type_name
from model_server.errors import BadRequest, InferenceError, InvalidTensor, ModelNotFound, ModelNotReady
from model_server.runtime import ModelRuntime
from model_server.signature import ONNX_ELEMENT_TYPES, numpy_dtype

#: Open Inference Protocol datatype → our dtype names (numpy's, and "string").
V2_DTYPES: dict[str, str] = {
    "BOOL": "bool", "UINT8": "uint8", "UINT16": "uint16", "UINT32": "uint32", "UINT64": "uint64",
    "INT8": "int8", "INT16": "int16", "INT32": "int32", "INT64": "int64",
    "FP16": "float16", "FP32": "float32", "FP64": "float64", "BYTES": "string",
}
DTYPE_V2: dict[str, str] = {dtype: v2 for v2, dtype in V2_DTYPES.items()}
_NUMPY_V2: dict[np.dtype[Any], str] = {np.dtype(dtype): v2 for v2, dtype in V2_DTYPES.items() if dtype != "string"}

SERVER_NAME = "maas-model-server"
PLATFORM = "onnxruntime_onnx"
EXTENSIONS = ["binary_tensor_data"]
HEADER_LENGTH = "inference-header-content-length"
OFFLOAD_BYTES = 64 * 1024     # bodies larger than this are parsed in the thread pool
OFFLOAD_ELEMENTS = 16 * 1024  # responses with more output elements are encoded in the thread pool

_TENSOR = re.compile(r"^tensor\((\w+)\)$")
_MAP_SEQ = re.compile(r"^seq\(map\((\w+),\s*tensor\((\w+)\)\)\)$")
_U32 = struct.Struct("<I")




def _server_version() -> str:
    try:
        return metadata.version("maas")
    except metadata.PackageNotFoundError:
        return "0"


# -- the model's tensors ----------------------------------------------------------------------------

@dataclass(frozen=True)
class InputTensor:
    """A model input as the protocol offers it."""

    name: str
    datatype: str                      # V2 datatype
    dtype: np.dtype[Any]               # numpy dtype of the tensor fed to onnxruntime
    kind: str                          # "b", "i", "u", "f" or "string"
    row_shape: tuple[int | None, ...]  # beyond the batch dimension; None: any size

    @property
    def shape(self) -> list[int]:
        """The V2 shape: the batch dimension first, -1 for any size."""
        return [-1, *(-1 if d is None else d for d in self.row_shape)]

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


@dataclass(frozen=True)
class OutputTensor:
    """A model output as the protocol offers it."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    kind: Literal["tensor", "map"]     # map: a sequence of maps, returned as [N, classes]
    dtype: np.dtype[Any]

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def describe_inputs(runtime: ModelRuntime) -> dict[str, InputTensor]:
    """The model's inputs with their V2 datatypes and shapes (from the bound signature)."""
    tensors: dict[str, InputTensor] = {}
    for binding in runtime.binding.inputs:
        kind = "string" if binding.dtype == "string" else numpy_dtype(binding.dtype).kind
        tensors[binding.name] = InputTensor(binding.name, DTYPE_V2[binding.dtype], numpy_dtype(binding.dtype), kind,
                                            binding.row_shape)
    return tensors


def describe_outputs(runtime: ModelRuntime) -> dict[str, OutputTensor]:
    """The model's outputs the protocol can return: tensors of a V2 datatype, and ZipMaps."""
    tensors: dict[str, OutputTensor] = {}
    for info in runtime.model_outputs:
        if (match := _TENSOR.match(info.type)) and match.group(1) in ONNX_ELEMENT_TYPES:
            dtype = ONNX_ELEMENT_TYPES[match.group(1)]
            shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in info.shape) if info.shape else (-1,)
            tensors[info.name] = OutputTensor(info.name, DTYPE_V2[dtype], (-1, *shape[1:]), "tensor",
                                              numpy_dtype(dtype))
        elif (match := _MAP_SEQ.match(info.type)) and match.group(2) in ONNX_ELEMENT_TYPES \
                and match.group(2) != "string":
            dtype = ONNX_ELEMENT_TYPES[match.group(2)]
            tensors[info.name] = OutputTensor(info.name, DTYPE_V2[dtype], (-1, -1), "map", numpy_dtype(dtype))
    return tensors


# -- requests ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class InferRequest:
    """A parsed, validated inference request."""

    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: tuple[str, ...]  # the model outputs to return, in the order asked
    binary: frozenset[str]    # the outputs to return as binary data
    rows: int


_ALLOWED_TYPES: dict[str, set[type]] = {"b": {bool}, "i": {int}, "u": {int}, "f": {int, float}, "string": {str}}
_WANTED: dict[str, str] = {"b": "booleans", "i": "integers", "u": "integers", "f": "numbers", "string": "strings"}


class RequestParser:
    """An inference request's body → :class:`InferRequest`, checked against the model."""

    def __init__(self, inputs: Mapping[str, InputTensor], outputs: Mapping[str, OutputTensor], *, max_rows: int) -> None:
        self.inputs = dict(inputs)
        self.outputs = dict(outputs)
        self.max_rows = max_rows
        self._shapes = {name: spec.shape for name, spec in self.inputs.items()}

    def parse(self, body: bytes, header_length: str | None = None) -> InferRequest:
        header, binary = self._split(body, header_length)
        doc = self._json(header)
        if not isinstance(doc, dict):
            raise BadRequest(f"the request body is a JSON {json_type_name(doc)}; send an inference request object "
                             f"with 'inputs'")
        request_id = doc.get("id")
        if request_id is not None and not isinstance(request_id, str):
            raise BadRequest(f"'id' must be a string, not a {json_type_name(request_id)}")
        parameters = self._parameters(doc.get("parameters"), "'parameters'")
        binary_default = self._bool(parameters.get("binary_data_output", False), "parameters.binary_data_output")
        if "classification" in parameters:
            raise BadRequest("parameters.classification: the classification extension is not supported")
        inputs, rows = self._inputs(doc.get("inputs"), binary)
        outputs, binary_outputs = self._outputs(doc.get("outputs"), binary_default)
        return InferRequest(request_id, inputs, outputs, binary_outputs, rows)

    # -- framing --------------------------------------------------------------------------------------
    @staticmethod
    def _split(body: bytes, header_length: str | None) -> tuple[bytes, memoryview]:
        if header_length is None:
            return body, memoryview(b"")
        text = header_length.strip()
        if not text.isdigit() or not text.isascii():
            raise BadRequest(f"the Inference-Header-Content-Length header {header_length!r} is not a byte count")
        length = int(text)
        if not 0 < length <= len(body):
            raise BadRequest(f"the Inference-Header-Content-Length header says {length} bytes of JSON but the body "
                             f"has {len(body)} bytes")
        return body[:length], memoryview(body)[length:]

    @staticmethod
    def _json(data: bytes) -> Any:
        if not data.strip():
            raise BadRequest("the request body is empty; send an inference request object with 'inputs'")
        try:
            return jsonio.loads(data)
        except RecursionError as exc:
            raise BadRequest("the request body is nested too deeply") from exc
        except UnicodeDecodeError as exc:
            raise BadRequest(f"the request body is not UTF-8 text: {exc.reason}") from exc
        except ValueError as exc:
            raise BadRequest(f"the request body is not valid JSON: {exc}") from exc

    @staticmethod
    def _parameters(value: Any, where: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise BadRequest(f"{where} must be a JSON object, not a {json_type_name(value)}")
        return value

    @staticmethod
    def _bool(value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise BadRequest(f"{where} must be true or false, not a {json_type_name(value)}")
        return value

    # -- inputs ---------------------------------------------------------------------------------------
    def _inputs(self, raw_inputs: Any, binary: memoryview) -> tuple[dict[str, np.ndarray], int]:
        if not isinstance(raw_inputs, list) or not raw_inputs:
            what = "missing" if raw_inputs is None else f"a {json_type_name(raw_inputs)}" if raw_inputs != [] else "empty"
            raise BadRequest(f"'inputs' must be a non-empty list of input tensors; it is {what}")
        tensors: dict[str, np.ndarray] = {}
        offset = 0
        for index, raw in enumerate(raw_inputs):
            if not isinstance(raw, dict):
                raise InvalidTensor(f"inputs[{index}] must be a JSON object, not a {json_type_name(raw)}")
            name = raw.get("name")
            if not isinstance(name, str):
                raise InvalidTensor(f"inputs[{index}]: 'name' must be a string, not a {json_type_name(name)}")
            if name in tensors:
                raise InvalidTensor(f"input {name!r} is given more than once")
            spec = self.inputs.get(name)
            if spec is None:
                raise InvalidTensor(f"unknown input {name!r} (the model's inputs: {', '.join(map(repr, self.inputs))})")
            where = f"input {name!r}"
            self._check_datatype(spec, raw.get("datatype"), where)
            shape = self._shape(spec, raw.get("shape"), where)
            parameters = self._parameters(raw.get("parameters"), f"{where}: 'parameters'")
            size = parameters.get("binary_data_size")
            if size is not None:
                if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                    raise InvalidTensor(f"{where}: parameters.binary_data_size must be a byte count")
                if "data" in raw:
                    raise InvalidTensor(f"{where}: give either 'data' or parameters.binary_data_size, not both")
                if offset + size > len(binary):
                    raise InvalidTensor(f"{where}: binary_data_size {size} runs past the end of the body "
                                        f"({len(binary) - offset} bytes of binary data left)")
                tensors[name] = tensor_from_binary(spec, shape, binary[offset:offset + size], where)
                offset += size
            elif "data" not in raw:
                raise InvalidTensor(f"{where}: 'data' is missing")
            else:
                tensors[name] = tensor_from_json(spec, shape, raw["data"], where)
        if offset != len(binary):
            raise BadRequest(f"{len(binary) - offset} bytes of binary data after the JSON header belong to no input")
        missing = [n for n in self.inputs if n not in tensors]
        if missing:
            raise InvalidTensor(f"missing input{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}")
        rows = {name: int(t.shape[0]) for name, t in tensors.items()}
        if len(set(rows.values())) > 1:
            raise InvalidTensor("the inputs disagree on the batch size (first dimension): "
                                + ", ".join(f"{n!r} has {r}" for n, r in rows.items()))
        return {name: tensors[name] for name in self.inputs}, next(iter(rows.values()))

    @staticmethod
    def _check_datatype(spec: InputTensor, datatype: Any, where: str) -> None:
        if not isinstance(datatype, str):
            raise InvalidTensor(f"{where}: 'datatype' must be a string such as {spec.datatype!r}, not a "
                                f"{json_type_name(datatype)}")
        if datatype not in V2_DTYPES:
            raise InvalidTensor(f"{where}: unknown datatype {datatype!r} (one of {', '.join(V2_DTYPES)})")
        if datatype != spec.datatype:
            raise InvalidTensor(f"{where}: datatype {datatype} does not match the model's {spec.datatype}")

    def _shape(self, spec: InputTensor, shape: Any, where: str) -> tuple[int, ...]:
        expected = self._shapes[spec.name]
        if type(shape) is not list or not all(type(d) is int for d in shape):
            raise InvalidTensor(f"{where}: 'shape' must be a list of integers such as {expected}")
        if len(shape) != len(expected):
            raise InvalidTensor(f"{where}: shape {shape} has {len(shape)} dimensions; the model's {expected} has "
                                f"{len(expected)}")
        if any(d < 0 for d in shape):
            raise InvalidTensor(f"{where}: shape {shape} has a negative dimension")
        for axis, (got, want) in enumerate(zip(shape, expected)):
            if want >= 0 and got != want:
                raise InvalidTensor(f"{where}: shape {shape} does not fit the model's {expected} (dimension {axis} "
                                    f"must be {want})")
        if shape[0] == 0:
            raise InvalidTensor(f"{where}: the batch dimension is 0; send at least one row")
        if shape[0] > self.max_rows:
            raise InvalidTensor(f"{where}: the batch has {shape[0]} rows; at most {self.max_rows} are allowed")
        if math.prod(shape) > 100_000_000:
            raise InvalidTensor(f"{where}: shape {shape} is too large")
        return tuple(shape)

    # -- outputs --------------------------------------------------------------------------------------
    def _outputs(self, raw_outputs: Any, binary_default: bool) -> tuple[tuple[str, ...], frozenset[str]]:
        if raw_outputs is None or raw_outputs == []:
            every = tuple(self.outputs)
            return every, frozenset(every) if binary_default else frozenset()
        if not isinstance(raw_outputs, list):
            raise BadRequest(f"'outputs' must be a list of requested outputs, not a {json_type_name(raw_outputs)}")
        names: list[str] = []
        binary: set[str] = set()
        for index, raw in enumerate(raw_outputs):
            if not isinstance(raw, dict):
                raise InvalidTensor(f"outputs[{index}] must be a JSON object, not a {json_type_name(raw)}")
            name = raw.get("name")
            if not isinstance(name, str):
                raise InvalidTensor(f"outputs[{index}]: 'name' must be a string, not a {json_type_name(name)}")
            if name not in self.outputs:
                raise InvalidTensor(f"unknown output {name!r} (the model's outputs: "
                                    f"{', '.join(map(repr, self.outputs))})")
            if name in names:
                raise InvalidTensor(f"output {name!r} is requested more than once")
            parameters = self._parameters(raw.get("parameters"), f"output {name!r}: 'parameters'")
            if "classification" in parameters:
                raise InvalidTensor(f"output {name!r}: the classification extension is not supported")
            if self._bool(parameters.get("binary_data", binary_default), f"output {name!r}: parameters.binary_data"):
                binary.add(name)
            names.append(name)
        return tuple(names), frozenset(binary)


def tensor_from_json(spec: InputTensor, shape: tuple[int, ...], data: Any, where: str) -> np.ndarray:
    """A tensor from JSON ``data`` (flat or nested, row-major), every element type-checked."""
    flat = _flatten(data, len(shape), where)
    count = math.prod(shape)
    if len(flat) != count:
        raise InvalidTensor(f"{where}: shape {list(shape)} holds {count} elements but 'data' has {len(flat)}")
    types = set(map(type, flat))
    if spec.kind in ("i", "u") and float in types:
        for value in flat:
            if type(value) is float and not (math.isfinite(value) and value.is_integer()):
                raise InvalidTensor(f"{where}: expected integers for {spec.datatype}, got {value!r}")
        flat = [int(v) if type(v) is float else v for v in flat]
        types = set(map(type, flat))
    unexpected = types - _ALLOWED_TYPES[spec.kind]
    if unexpected:
        example = next(v for v in flat if type(v) in unexpected)
        raise InvalidTensor(f"{where}: expected {_WANTED[spec.kind]} for {spec.datatype}, got "
                            f"{json_type_name(example)} {_short(example)}")
    if spec.kind == "string":
        try:
            "".join(flat).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidTensor(f"{where}: a string is not valid Unicode (it holds a lone surrogate)") from exc
        array = np.empty(count, dtype=object)
        array[:] = flat
        return array.reshape(shape)
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            array = np.array(flat, dtype=spec.dtype)
    except (OverflowError, ValueError, TypeError) as exc:
        raise InvalidTensor(f"{where}: a value is out of range for {spec.datatype} ({exc})") from exc
    if spec.kind == "f" and not np.isfinite(array).all():
        raise InvalidTensor(f"{where}: a value is out of range for {spec.datatype}")
    return array.reshape(shape)


def _flatten(data: Any, rank: int, where: str) -> list[Any]:
    if not isinstance(data, list):
        raise InvalidTensor(f"{where}: 'data' must be a JSON list, not a {json_type_name(data)}")
    level = data
    for _ in range(rank):
        nested = sum(1 for v in level if type(v) is list)
        if nested == 0:
            return level
        if nested != len(level):
            raise InvalidTensor(f"{where}: 'data' mixes lists and values at one level")
        level = [x for sub in level for x in sub]
    if any(type(v) is list for v in level):
        raise InvalidTensor(f"{where}: 'data' is nested deeper than the shape's {rank} dimensions")
    return level


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


def tensor_from_binary(spec: InputTensor, shape: tuple[int, ...], data: memoryview, where: str) -> np.ndarray:
    """A tensor from the binary tensor data extension's bytes."""
    count = math.prod(shape)
    if spec.kind == "string":
        items: list[str] = []
        pos, end = 0, len(data)
        while pos < end:
            if pos + 4 > end:
                raise InvalidTensor(f"{where}: the binary BYTES data is truncated (element {len(items)})")
            (length,) = _U32.unpack_from(data, pos)
            pos += 4
            if pos + length > end:
                raise InvalidTensor(f"{where}: the binary BYTES data is truncated (element {len(items)})")
            try:
                items.append(bytes(data[pos:pos + length]).decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise InvalidTensor(f"{where}: element {len(items)} is not UTF-8 text") from exc
            pos += length
            if len(items) > count:
                break
        if len(items) != count:
            raise InvalidTensor(f"{where}: shape {list(shape)} holds {count} elements but the binary data has "
                                f"{'more' if len(items) > count else len(items)}")
        array = np.empty(count, dtype=object)
        array[:] = items
        return array.reshape(shape)
    needed = count * spec.dtype.itemsize
    if len(data) != needed:
        raise InvalidTensor(f"{where}: {len(data)} bytes of binary data, but shape {list(shape)} of "
                            f"{spec.datatype} takes {needed}")
    if spec.kind == "b":
        raw = np.frombuffer(data, dtype=np.uint8)
        if raw.size and int(raw.max()) > 1:
            raise InvalidTensor(f"{where}: BOOL binary data must hold bytes 0 or 1")
        return raw.astype(bool).reshape(shape)
    return np.frombuffer(data, dtype=spec.dtype.newbyteorder("<")).astype(spec.dtype).reshape(shape)


# -- responses --------------------------------------------------------------------------------------

def output_tensor(spec: OutputTensor, value: Any) -> np.ndarray:
    """A model output as a tensor: arrays as they are, a sequence of maps as [N, classes]."""
    if spec.kind == "tensor":
        if not isinstance(value, np.ndarray):
            raise InferenceError(f"output {spec.name!r} is a {type(value).__name__}, not a tensor")
        return value
    rows = list(value)
    if not rows:
        return np.zeros((0, 0), dtype=spec.dtype)
    keys = list(rows[0])
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or list(row) != keys:
            raise InferenceError(f"output {spec.name!r}: row {index} has other classes than row 0")
    return np.array([[row[k] for k in keys] for row in rows], dtype=spec.dtype)


def datatype_of(array: np.ndarray) -> str:
    if array.dtype.kind in "OUS":
        return "BYTES"
    datatype = _NUMPY_V2.get(array.dtype)
    if datatype is None:
        raise InferenceError(f"the model returned a tensor of {array.dtype}, which has no V2 datatype")
    return datatype


def json_data(array: np.ndarray) -> list[Any]:
    """The flat, row-major JSON data of a tensor; non-finite floats become null."""
    flat = array.reshape(-1)
    kind = flat.dtype.kind
    if kind == "f":
        values = flat.tolist()
        if all(map(math.isfinite, values)) if len(values) < 64 else bool(np.isfinite(flat).all()):
            return values
        return [v if math.isfinite(v) else None for v in values]
    if kind in "OUS":
        return [v if isinstance(v, str) else v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                for v in flat.tolist()]
    return flat.tolist()


def binary_data(array: np.ndarray) -> bytes:
    """A tensor in the binary tensor data extension's layout."""
    flat = array.reshape(-1)
    if flat.dtype.kind in "OUS":
        parts = []
        for v in flat.tolist():
            raw = v if isinstance(v, bytes) else str(v).encode("utf-8", "surrogatepass")
            parts.append(_U32.pack(len(raw)))
            parts.append(raw)
        return b"".join(parts)
    if flat.dtype.kind == "b":
        return flat.astype(np.uint8).tobytes()
    return np.ascontiguousarray(flat, dtype=flat.dtype.newbyteorder("<")).tobytes()


def encode_response(request: InferRequest, results: Mapping[str, Any], outputs: Mapping[str, OutputTensor], *,
                    model_name: str, model_version: str) -> tuple[bytes, dict[str, str]]:
    """The response body and its headers (``Inference-Header-Content-Length`` with binary data)."""
    entries: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name in request.outputs:
        array = output_tensor(outputs[name], results[name])
        entry: dict[str, Any] = {"name": name, "datatype": datatype_of(array), "shape": list(array.shape)}
        if name in request.binary:
            raw = binary_data(array)
            entry["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            entry["data"] = json_data(array)
        entries.append(entry)
    doc: dict[str, Any] = {"model_name": model_name}
    if model_version:
        doc["model_version"] = model_version
    if request.id is not None:
        doc["id"] = request.id
    doc["outputs"] = entries
    header = jsonio.dumps(doc)
    if not chunks:
        return header, {"content-type": "application/json"}
    return header + b"".join(chunks), {"content-type": "application/octet-stream",
                                       "inference-header-content-length": str(len(header))}


# -- the protocol -----------------------------------------------------------------------------------

class V2Protocol:
    """The Open Inference Protocol's answers for one model served through ``batcher``."""

    def __init__(self, runtime: ModelRuntime, batcher: Batcher, *, max_rows: int,
                 ready: Callable[[], bool] | None = None) -> None:
        self.runtime = runtime
        self.batcher = batcher
        self.inputs = describe_inputs(runtime)
        self.outputs = describe_outputs(runtime)
        self.parser = RequestParser(self.inputs, self.outputs, max_rows=max_rows)
        self._ready = ready or (lambda: runtime.ready)

    # -- metadata and health --------------------------------------------------------------------------
    def server_metadata(self) -> dict[str, Any]:
        return {"name": SERVER_NAME, "version": _server_version(), "extensions": list(EXTENSIONS)}

    def check_model(self, name: str, version: str | None = None) -> None:
        """Raise :class:`ModelNotFound` unless ``name`` (and ``version``, when given) is served here."""
        if name != self.runtime.name:
            raise ModelNotFound(f"Not Found: unknown model {name!r} (this server serves {self.runtime.name!r})")
        if version is not None and version != self.runtime.version:
            served = f"version {self.runtime.version!r}" if self.runtime.version else "no numbered version"
            raise ModelNotFound(f"Not Found: model {name!r} has no version {version!r} (it serves {served})")

    def model_metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        self.check_model(name, version)
        return {
            "name": self.runtime.name,
            "versions": [self.runtime.version] if self.runtime.version else [],
            "platform": PLATFORM,
            "inputs": [t.metadata() for t in self.inputs.values()],
            "outputs": [t.metadata() for t in self.outputs.values()],
        }

    def model_ready(self, name: str, version: str | None = None) -> bool:
        self.check_model(name, version)
        return self._ready()

    # -- inference --------------------------------------------------------------------------------------
    async def infer(self, name: str, version: str | None, body: bytes,
                    header_length: str | None = None) -> tuple[bytes, dict[str, str]]:
        """The response body and headers for an inference request's body."""
        self.check_model(name, version)
        if not self._ready():
            raise ModelNotReady(f"model {self.runtime.name} is not ready")
        if len(body) > OFFLOAD_BYTES:  # large: parse in the thread pool, keep the event loop free
            request = await run_in_threadpool(self.parser.parse, body, header_length)
        else:
            request = self.parser.parse(body, header_length)
        results = await self.batcher.infer(request.inputs, request.outputs)
        elements = sum(int(np.size(v)) if isinstance(v, np.ndarray) else len(v) for v in results.values())
        if elements > OFFLOAD_ELEMENTS:
            return await run_in_threadpool(self._encode, request, results)
        return self._encode(request, results)

    def _encode(self, request: InferRequest, results: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        return encode_response(request, results, self.outputs, model_name=self.runtime.name,
                               model_version=self.runtime.version)
