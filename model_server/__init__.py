"""The built-in model runtime of MaaS: serves an ONNX model payload over HTTP.

A payload holds ``model.onnx`` and a ``signature.json`` (:mod:`model_server.signature`); its
script starts ``python -m model_server --payload . --port "$MAAS_PORT" --endpoint-file
endpoint.dat``. Layers, from the edge inwards:

* :mod:`model_server.__main__` — the command line; :mod:`model_server.server` — uvicorn and the
  endpoint file; :mod:`model_server.settings` — typed, validated settings;
* :mod:`model_server.app` — FastAPI routes; :mod:`model_server.rest` — the Metron-style REST
  protocol (query strings and JSON bodies → rows);
* :mod:`model_server.runtime` — the protocol-neutral data plane over onnxruntime;
  :mod:`model_server.codec` — rows ⇄ tensors; :mod:`model_server.signature` — the signature file;
* :mod:`model_server.errors` — the exception tree.
"""


# Importing the package stays cheap: onnxruntime and FastAPI load with the modules that use them.
