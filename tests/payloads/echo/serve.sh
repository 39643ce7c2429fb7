#!/bin/bash
# A minimal non-ONNX payload: any REST service that writes endpoint.dat is a valid model service.
set -eu
exec "${MAAS_PYTHON:-python3}" echo_server.py
