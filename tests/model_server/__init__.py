"""Tests of the built-in ONNX model runtime and the DGA example payload."""
