"""Rows ⇄ tensors, following a :class:`~model_server.signature.Binding`.

:class:`RowDecoder` turns rows (one mapping of argument name → value per row, values from JSON or
from a query string) into one batched numpy array per model input, checking every value against
the argument's dtype and shape; problems raise :class:`~model_server.errors.InvalidInput` naming
the row and the argument. :class:`OutputEncoder` splits the model's outputs back into one JSON-
ready dict per row, applying each output's ``select`` and ``labels``.

Nothing here knows about HTTP or onnxruntime.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from model_server import jsonio
from model_server.errors import InferenceError, InvalidInput, SignatureError
from model_server.signature import Binding, InputBinding, OutputBinding, numpy_dtype

TRUE_TEXT = {"true", "1", "yes", "on"}
FALSE_TEXT = {"false", "0", "no", "off"}


def json_type_name(value: Any) -> str:
    """How a (JSON-decoded) value is named in error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


class InputCodec:
    """Converts one argument's values (JSON values, or query-string text) to arrays."""

    def __init__(self, binding: InputBinding) -> None:
        self.binding = binding
        self.dtype = numpy_dtype(binding.dtype)
        self.kind = "string" if binding.dtype == "string" else self.dtype.kind  # f, i, u, b
        self.scalar_ok = all(d in (1, None) for d in binding.row_shape)
        self._convert: Callable[[Any], Any] = {
            "f": self._float, "i": self._int, "u": self._int, "b": self._bool, "string": self._string,
        }[self.kind]
        if self.kind in ("i", "u"):
            info = np.iinfo(self.dtype)
            self._int_range = (int(info.min), int(info.max))
        if self.kind == "f":
            self._float_max = float(np.finfo(self.dtype).max)

    # -- scalars --------------------------------------------------------------------------------
    def _float(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {json_type_name(value)}")
        try:
            number = float(value)
        except OverflowError:
            raise ValueError(f"{value} is out of range for {self.binding.dtype}") from None
        if not math.isfinite(number):
            raise ValueError("expected a finite number")
        if abs(number) > self._float_max:
            raise ValueError(f"{value!r} is out of range for {self.binding.dtype}")
        return number

    def _int(self, value: Any) -> int:
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {json_type_name(value)}" +
                             (f" {value!r}" if isinstance(value, float) else ""))
        low, high = self._int_range
        if not low <= value <= high:
            raise ValueError(f"{value} is out of range for {self.binding.dtype} ({low}..{high})")
        return value

    def _bool(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected a boolean, got {json_type_name(value)}")
        return value

    def _string(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {json_type_name(value)}")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError("the string is not valid Unicode (it holds a lone surrogate)") from exc
        return value

    # -- values ---------------------------------------------------------------------------------
    def from_json(self, value: Any) -> Any:
        """One row's value: a Python scalar when the row shape is ``[]``, else an array of the row
        shape. Raises ``ValueError``."""
        shape = self.binding.row_shape
        if not shape:
            return self._convert(value)
        if not isinstance(value, list):
            if self.scalar_ok:
                return np.array(self._convert(value), dtype=self.dtype).reshape((1,) * len(shape))
            raise ValueError(f"expected a list of shape {self.shape_text}, got {json_type_name(value)}")
        flat: list[Any] = []
        actual: list[int | None] = [None] * len(shape)
        self._walk(value, 0, actual, flat)
        array = np.array(flat, dtype=self.dtype)
        # a dimension never reached (inside an empty list) has its fixed size, else 0
        return array.reshape([a if a is not None else (e or 0) for a, e in zip(actual, shape)])

    def _walk(self, value: Any, depth: int, actual: list[int | None], flat: list[Any]) -> None:
        if not isinstance(value, list):
            raise ValueError(f"expected a list of shape {self.shape_text}, got a {json_type_name(value)} at depth {depth}")
        expected = self.binding.row_shape[depth]
        if expected is not None and len(value) != expected:
            raise ValueError(f"expected shape {self.shape_text}, got {len(value)} elements at depth {depth}")
        if actual[depth] is None:
            actual[depth] = len(value)
        elif actual[depth] != len(value):
            raise ValueError(f"ragged list: {actual[depth]} and {len(value)} elements at depth {depth}")
        if depth + 1 == len(self.binding.row_shape):
            flat.extend(self._convert(v) for v in value)
        else:
            for v in value:
                self._walk(v, depth + 1, actual, flat)

    def from_text(self, text: str) -> Any:
        """One row's value given as query-string text. Raises ``ValueError``."""
        shape = self.binding.row_shape
        if text.lstrip().startswith("[") and (shape or self.kind != "string"):
            try:
                return self.from_json(jsonio.loads(text))
            except RecursionError as exc:
                raise ValueError("the list is nested too deeply") from exc
            except json.JSONDecodeError as exc:
                raise ValueError(f"not a valid JSON list: {exc.msg}") from exc
        if shape and not self.scalar_ok:
            raise ValueError(f"expected a JSON list of shape {self.shape_text}")
        return self.from_json(self._parse_text(text))

    def _parse_text(self, text: str) -> Any:
        if self.kind == "string":
            return text
        stripped = text.strip()
        if self.kind == "b":
            if stripped.lower() in TRUE_TEXT:
                return True
            if stripped.lower() in FALSE_TEXT:
                return False
            raise ValueError(f"expected a boolean (true/false), got {text!r}")
        if self.kind in ("i", "u"):
            try:
                return int(stripped)
            except ValueError:
                pass
        try:
            number = float(stripped)
        except ValueError:
            raise ValueError(f"expected a number, got {text!r}") from None
        return number

    @property
    def shape_text(self) -> str:
        return "[" + ", ".join("*" if d is None else str(d) for d in self.binding.row_shape) + "]"

    def example(self) -> Any:
        """A JSON value to warm the model up with: the default, else zeros / empty strings."""
        if self.binding.has_default:
            return self.binding.default
        shape = tuple(1 if d is None else d for d in self.binding.row_shape)
        fill: Any = "" if self.kind == "string" else False if self.kind == "b" else 0
        return np.full(shape, fill, dtype=self.dtype).tolist() if shape else fill

    def stack(self, values: list[Any]) -> np.ndarray:
        """The batch tensor of the rows' values (from :meth:`from_json`). Raises ``InvalidInput``."""
        if not self.binding.row_shape:
            return np.array(values, dtype=self.dtype)
        shapes = {v.shape for v in values}
        if len(shapes) > 1:
            raise InvalidInput(f"argument {self.binding.arg!r}: the rows' values have different shapes "
                               f"({', '.join(str(list(s)) for s in sorted(shapes))}); a batch needs one shape")
        return np.stack(values)


class RowDecoder:
    """Rows → one batched array per model input."""

    def __init__(self, binding: Binding) -> None:
        self.codecs = {i.arg: InputCodec(i) for i in binding.inputs}
        self.defaults: dict[str, Any] = {}
        for arg, codec in self.codecs.items():
            if codec.binding.has_default:
                try:
                    self.defaults[arg] = codec.from_json(codec.binding.default)
                except ValueError as exc:
                    raise SignatureError(f"input {codec.binding.name!r}: default {codec.binding.default!r} does not "
                                         f"fit: {exc}") from exc

    def decode(self, rows: Sequence[Mapping[str, Any]], *, text: bool = False) -> dict[str, np.ndarray]:
        """Model input name → array with the batch dimension first. ``text``: values are query-string
        text to parse by each argument's dtype. Raises :class:`InvalidInput`."""
        columns: dict[str, list[Any]] = {arg: [] for arg in self.codecs}
        for index, row in enumerate(rows):
            where = f"row {index}: " if len(rows) > 1 else ""
            unknown = [k for k in row if k not in self.codecs]
            if unknown:
                raise InvalidInput(f"{where}unknown argument{'s' if len(unknown) > 1 else ''} "
                                   f"{', '.join(repr(k) for k in sorted(map(str, unknown)))} "
                                   f"(the function takes: {', '.join(sorted(self.codecs))})")
            for arg, codec in self.codecs.items():
                if arg in row:
                    try:
                        value = codec.from_text(row[arg]) if text else codec.from_json(row[arg])
                    except ValueError as exc:
                        raise InvalidInput(f"{where}argument {arg!r}: {exc}") from exc
                elif arg in self.defaults:
                    value = self.defaults[arg]
                else:
                    raise InvalidInput(f"{where}missing argument {arg!r}")
                columns[arg].append(value)
        return {self.codecs[arg].binding.name: self.codecs[arg].stack(values) for arg, values in columns.items()}

    def example(self) -> dict[str, Any]:
        """One row (argument → JSON value) that the decoder accepts."""
        return {arg: codec.example() for arg, codec in self.codecs.items()}


# -- outputs ------------------------------------------------------------------------------------

def to_json(value: Any) -> Any:
    """A JSON-ready copy of an output value: numpy → Python, non-finite floats → None,
    map keys → strings."""
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, np.generic):
        return to_json(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {label_key(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def label_key(value: Any) -> str:
    """The text form of a value, as used for the keys of ``labels`` and of maps in responses."""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)


class OutputEncoder:
    """Model outputs → one dict per row, keyed by the signature's response keys."""

    def __init__(self, binding: Binding) -> None:
        self.outputs = binding.outputs

    @property
    def names(self) -> list[str]:
        return [o.name for o in self.outputs]

    def encode(self, results: Mapping[str, Any], rows: int) -> list[dict[str, Any]]:
        encoded: list[dict[str, Any]] = [{} for _ in range(rows)]
        for out in self.outputs:
            value = results[out.name]
            if len(value) != rows:
                raise InferenceError(f"output {out.name!r} has {len(value)} rows for {rows} input rows")
            for i in range(rows):
                encoded[i][out.key] = self._row(out, value[i])
        return encoded

    @staticmethod
    def _row(out: OutputBinding, value: Any) -> Any:
        if out.select is not None:
            try:
                value = value[out.select]
            except (IndexError, KeyError, TypeError) as exc:
                raise InferenceError(f"output {out.name!r}: cannot select {out.select!r} from {value!r}") from exc
        value = to_json(value)
        if out.labels is not None:
            value = _apply_labels(value, out.labels)
        return value


def _apply_labels(value: Any, labels: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_apply_labels(v, labels) for v in value]
    if isinstance(value, dict):  # a map output: its keys are classes
        return {label_key(labels.get(k, k)): v for k, v in value.items()}
    if value is None:
        return None
    return labels.get(label_key(value), value)
