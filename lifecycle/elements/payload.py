"""The payload directory of a trained element, as ``model_server`` serves it (docs/payload.md):

* ``model.onnx`` and ``signature.json`` (:mod:`.export`);
* ``serve.sh``, the one-line script that starts ``model_server`` (the only ``*.sh``);
* ``element.json``: what a caller needs besides the model — the element's kind, tags, window,
  horizon, argument names, scaling statistics, despiking and smoothing, threshold and the training
  summary (without the per-epoch losses, which stay with the element). No secrets.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx

from lifecycle.elements.export import to_onnx
from lifecycle.elements.trained import TrainedElement

SCRIPT = """#!/bin/bash
# A trained element of an ML model: model_server serves model.onnx with signature.json and writes
# endpoint.dat once it listens.
set -eu
exec "${MAAS_PYTHON:-python3}" -m model_server --payload . --port "$MAAS_PORT" --endpoint-file endpoint.dat
"""
METADATA_FORMAT = 1


def element_metadata(trained: TrainedElement, arguments: dict[str, str], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    model = trained.model
    scaling: dict[str, Any] = {}
    if trained.kind == "forecaster":
        scaling = {"inputs": model.x_scaler.as_dict(model.inputs), "outputs": model.y_scaler.as_dict(model.outputs)}
    elif trained.kind == "envelope":
        scaling = {"inputs": model.scaler.as_dict(model.inputs)}
    summary = trained.summary()
    summary.pop("losses")
    return {
        "format": METADATA_FORMAT,
        "kind": trained.kind,
        "inputs": trained.inputs,
        "outputs": trained.outputs,
        "window": trained.window,
        "horizon": trained.params.get("horizon", 0),
        "arguments": arguments,
        "params": trained.params,
        "smoothing_halflife": trained.params.get("smoothing_halflife", 0.0),
        "despike": trained.params.get("despike", 1),
        "threshold": trained.threshold,
        "scaling": scaling,
        "training": summary,
        **(extra or {}),
    }


def write_payload(trained: TrainedElement, directory: Path, extra: dict[str, Any] | None = None) -> Path:
    """Write the payload of ``trained`` into ``directory`` (created; must be empty or absent)."""
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise FileExistsError(f"{directory} is not empty")
    model, signature, arguments = to_onnx(trained)
    onnx.save(model, directory / "model.onnx")
    (directory / "signature.json").write_text(json.dumps(signature, indent=2, ensure_ascii=False) + "\n")
    (directory / "element.json").write_text(
        json.dumps(element_metadata(trained, arguments, extra), indent=2, ensure_ascii=False) + "\n")
    script = directory / "serve.sh"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    return directory
