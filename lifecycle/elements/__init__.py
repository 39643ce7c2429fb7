"""Element kinds and their training: parameters and validation (:mod:`.params`), the learning
indicator (:mod:`.indicator`), forecasters, envelopes and rules, the threshold rule, the ONNX export
and the payload directory that ``model_server`` serves."""
