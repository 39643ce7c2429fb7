#!/bin/bash
# The DGA example payload: the built-in ONNX runtime serves model.onnx (built by
# examples/dga/train.py) with signature.json; it writes endpoint.dat once it listens.
set -eu
exec "${MAAS_PYTHON:-python3}" -m model_server --payload . --port "$MAAS_PORT" --endpoint-file endpoint.dat
