"""The built-in model runtime of MaaS: serves an ONNX model payload over HTTP.

A payload holds ``model.onnx`` and a ``signature.json`` (:mod:`model_server.signature`); its
script starts ``python -m model_server --payload . --port "$MAAS_PORT" --endpoint-file
endpoint.dat``. Layers, from the edge inwards:

* :mod:`model_server.__main__` — the command line; :mod:`model_server.server` — uvicorn and the
  endpoint file; :mod:`model_server.settings` — typed, validated settings;
* :mod:`model_server.app` — FastAPI routes (behind a small ASGI front for the two inference
  routes); :mod:`model_server.metrics` — Prometheus metrics at ``/metrics``;
* :mod:`model_server.rest` — the Metron-style REST protocol (query strings and JSON bodies → rows);
  :mod:`model_server.v2` — the Open Inference Protocol (KServe V2 / Triton REST);
* :mod:`model_server.batcher` — adaptive batching of concurrent requests into one onnxruntime call;
* :mod:`model_server.runtime` — the protocol-neutral data plane over onnxruntime;
  :mod:`model_server.codec` — rows ⇄ tensors; :mod:`model_server.signature` — the signature file;
* :mod:`model_server.errors` — the exception tree.

``docs/model_server.md`` describes the runtime; ``docs/payload.md`` the payload it serves.
"""


# Importing the package stays cheap: onnxruntime and FastAPI load with the modules that use them.
