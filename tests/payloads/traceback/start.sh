#!/bin/bash
# A payload whose service fails at start with a Python traceback on stderr, as a runtime whose
# model file is missing does.
exec "${MAAS_PYTHON:-python3}" -c "open('model.onnx')"
