"""ML models for anomaly detection on top of MaaS (docs/lifecycle.md).

A user adds an ML model made of elements (forecasters, envelopes, Stellar rules), marks up
time intervals of telemetry, trains the elements into ONNX payloads served by MaaS, prepares
the model for publication (frozen), publishes it, and runs inference that registers incidents.

Layout: ``errors`` (the package's exception tree), ``db`` (SQLAlchemy base and engine),
one module per concept below it, ``api`` (the thin REST routes of ``maas_lifecycle serve``)
and ``cli`` (``maas_lifecycle`` and ``maas_model``).
"""
