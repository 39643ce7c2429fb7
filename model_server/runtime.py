"""The data plane: an ONNX model behind a signature, independent of any protocol.

:class:`ModelRuntime` loads ``model.onnx`` into an onnxruntime ``InferenceSession`` and binds the
payload's signature to it. It offers two levels, which protocols sit on top of:

* :meth:`ModelRuntime.infer` — named input tensors (by the model's input names) → named outputs,
  for tensor protocols such as the Open Inference Protocol;
* :meth:`ModelRuntime.predict` — rows of named arguments → rows of named outputs, for the
  Metron-style REST protocol (:mod:`model_server.rest`); its two halves, :meth:`ModelRuntime.decode`
  and :meth:`ModelRuntime.encode`, let a server put :mod:`model_server.batcher` between them.

onnxruntime's errors are translated here into :mod:`model_server.errors`.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import onnxruntime as ort
from onnxruntime.capi.onnxruntime_pybind11_state import InvalidArgument

from model_server.codec import OutputEncoder, RowDecoder
from model_server.errors import (InferenceError, InvalidInput, ModelLoadError, ModelNotReady, ModelServerError,
                                 PayloadError, SignatureError)
from model_server.signature import Binding, Signature, TensorInfo, bind, load_signature

log = logging.getLogger("model_server.runtime")


def _tensor_info(arg: Any) -> TensorInfo:
    shape = arg.shape
    return TensorInfo(arg.name, arg.type, tuple(shape) if isinstance(shape, (list, tuple)) else None)


def open_session(model_path: Path, *, threads: int = 1) -> ort.InferenceSession:
    """An onnxruntime session on the CPU, with ``threads`` intra-op threads."""
    if not model_path.is_file():
        raise PayloadError(f"model file {model_path} does not exist")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only; problems reach the caller as exceptions
    try:
        return ort.InferenceSession(str(model_path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's exceptions derive from Exception only
        raise ModelLoadError(f"onnxruntime cannot load {model_path}: {exc}") from exc


class ModelRuntime:
    """One loaded model and its bound signature."""

    def __init__(self, session: ort.InferenceSession, signature: Signature, *, name: str = "model",
                 version: str = "", max_batch_size: int | None = None) -> None:
        self.session = session
        self.signature = signature
        self.name = name
        self.version = version
        self.max_batch_size = max_batch_size
        self.model_inputs = [_tensor_info(i) for i in session.get_inputs()]
        self.model_outputs = [_tensor_info(o) for o in session.get_outputs()]
        self.binding: Binding = bind(signature, self.model_inputs, self.model_outputs)
        self.decoder = RowDecoder(self.binding)
        self.encoder = OutputEncoder(self.binding)
        self._ready = threading.Event()

    @classmethod
    def load(cls, model_path: Path, signature_path: Path | None = None, *, threads: int = 1, name: str = "model",
             version: str = "", max_batch_size: int | None = None) -> "ModelRuntime":
        """Load the model and its signature (derived from the model when ``signature_path`` is
        None). Raises a :class:`~model_server.errors.PayloadError` naming what is broken."""
        signature = load_signature(signature_path) if signature_path is not None else Signature()
        session = open_session(model_path, threads=threads)
        try:
            return cls(session, signature, name=name, version=version, max_batch_size=max_batch_size)
        except SignatureError as exc:
            source = signature_path if signature_path is not None else f"the signature derived from {model_path}"
            raise SignatureError(f"{source}: {exc.message}") from exc

    # -- state ----------------------------------------------------------------------------------
    @property
    def function(self) -> str:
        return self.binding.function

    @property
    def ready(self) -> bool:
        """Loaded and the warm-up inference passed."""
        return self._ready.is_set()

    def check_ready(self) -> None:
        """Raise :class:`ModelNotReady` before the warm-up passed."""
        if not self._ready.is_set():
            raise ModelNotReady(f"model {self.name} is not ready")

    @property
    def batchable(self) -> bool:
        """Whether requests can be stacked along the first dimension into one call: every input's
        first dimension is dynamic (not fixed at 1) and no tensor output declares a fixed one."""
        if self.binding.max_batch is not None:
            return False
        for out in self.model_outputs:
            if out.type.startswith("tensor(") and out.shape is not None:
                if len(out.shape) == 0 or (isinstance(out.shape[0], int) and out.shape[0] > 0):
                    return False
        return True

    def warm_up(self) -> None:
        """Run one inference on an example row (defaults, else zeros / empty strings); the
        runtime is ready once it passed. Raises :class:`ModelLoadError` if it fails."""
        example = self.decoder.example()
        try:
            self._predict([example])
        except ModelServerError as exc:
            raise ModelLoadError(f"the warm-up inference on {example!r} failed: {exc}") from exc
        self._ready.set()
        log.info("model %r (version %r) is ready", self.name, self.version)

    def metadata(self) -> dict[str, Any]:
        """What the model offers, for humans and for probes."""
        return {
            "name": self.name,
            "version": self.version,
            "ready": self.ready,
            "functions": {self.function: self.function},
            "inputs": [{"arg": i.arg, "name": i.name, "dtype": i.dtype,
                        "shape": [-1, *(-1 if d is None else d for d in i.row_shape)],
                        **({"default": i.default} if i.has_default else {})} for i in self.binding.inputs],
            "outputs": [{"key": o.key, "name": o.name} for o in self.binding.outputs],
        }

    # -- inference ------------------------------------------------------------------------------
    def infer(self, inputs: Mapping[str, np.ndarray], output_names: Sequence[str] | None = None) -> dict[str, Any]:
        """Run the model on named tensors (model input names, batch dimension first); returns the
        named outputs (arrays, or lists of dicts for ZipMap-style outputs)."""
        names = list(output_names) if output_names is not None else [o.name for o in self.model_outputs]
        rows = len(next(iter(inputs.values()))) if inputs else 0
        if self.binding.max_batch == 1 and rows > 1:
            parts = [self._run({k: v[i:i + 1] for k, v in inputs.items()}, names) for i in range(rows)]
            return {name: _concat([p[name] for p in parts]) for name in names}
        return self._run(inputs, names)

    def _run(self, inputs: Mapping[str, np.ndarray], names: list[str]) -> dict[str, Any]:
        try:
            values = self.session.run(names, dict(inputs))
        except InvalidArgument as exc:
            raise InvalidInput(f"the model rejected the input: {_first_line(exc)}") from exc
        except Exception as exc:  # onnxruntime's exceptions derive from Exception only
            raise InferenceError(f"inference failed: {_first_line(exc)}") from exc
        return dict(zip(names, values))

    def predict(self, rows: Sequence[Mapping[str, Any]], *, text: bool = False) -> list[dict[str, Any]]:
        """Rows of arguments → rows of outputs (keyed by the signature's response keys).

        ``text``: the values are query-string text, parsed by each argument's dtype.
        Raises :class:`InvalidInput` for rows that do not fit the signature, and
        :class:`ModelNotReady` before the warm-up passed.
        """
        self.check_ready()
        return self._predict(rows, text=text)

    def _predict(self, rows: Sequence[Mapping[str, Any]], *, text: bool = False) -> list[dict[str, Any]]:
        tensors = self.decode(rows, text=text)
        return self.encode(self.infer(tensors, self.encoder.names), len(rows))

    def decode(self, rows: Sequence[Mapping[str, Any]], *, text: bool = False) -> dict[str, np.ndarray]:
        """Rows of arguments → the model's input tensors (batch dimension first), every value checked
        against the signature. Raises :class:`InvalidInput`."""
        if not rows:
            raise InvalidInput("no rows to predict")
        if self.max_batch_size is not None and len(rows) > self.max_batch_size:
            raise InvalidInput(f"a batch holds at most {self.max_batch_size} rows, got {len(rows)}")
        return self.decoder.decode(rows, text=text)

    @property
    def output_names(self) -> list[str]:
        """The model outputs :meth:`encode` needs."""
        return self.encoder.names

    def encode(self, results: Mapping[str, Any], rows: int) -> list[dict[str, Any]]:
        """The model's outputs (from :meth:`infer` with :attr:`output_names`) → one dict per row,
        keyed by the signature's response keys."""
        return self.encoder.encode(results, rows)


def _concat(parts: list[Any]) -> Any:
    if all(isinstance(p, np.ndarray) for p in parts):
        return np.concatenate(parts, axis=0)
    out: list[Any] = []
    for p in parts:
        out.extend(p)
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
