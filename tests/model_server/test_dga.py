"""The DGA example: training is deterministic and offline, the ONNX model extracts the registered
label exactly as the Python reference does, it is small and it classifies well enough."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper

from tests.model_server.conftest import DGA_DIR


@pytest.mark.parametrize("host,label", [
    ("www.google.com", "google"), ("google.com", "google"), ("GOOGLE.COM.", "google"),
    ("news.bbc.co.uk", "bbc"), ("bbc.co.uk", "bbc"), ("abcnews.go.com", "abcnews"), ("co.uk", "co"),
    ("localhost", "localhost"), ("", ""), ("...", ""), ("a..com", ""), (".com", ""),
    ("xjwqkzvbtpqmd.com", "xjwqkzvbtpqmd"), ("mail.a8f3c9e1b7d24f6e.net", "a8f3c9e1b7d24f6e"),
])
def test_registered_label(dga_train: ModuleType, host: str, label: str) -> None:
    assert dga_train.registered_label(host) == label


@pytest.fixture(scope="module")
def label_session(dga_train: ModuleType) -> ort.InferenceSession:
    """Just the graph's preprocessing nodes: host → registered label."""
    nodes, inits = dga_train.preprocessing_nodes("host", "label")
    graph = helper.make_graph(nodes, "pre", [helper.make_tensor_value_info("host", TensorProto.STRING, ["N"])],
                              [helper.make_tensor_value_info("label", TensorProto.STRING, ["N", 1])], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


HOSTS = st.lists(st.text(alphabet="abcXYZ09-_.ÄéßΣ ", max_size=30), min_size=1, max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hosts=HOSTS)
def test_onnx_preprocessing_equals_the_python_reference(dga_train: ModuleType, label_session: ort.InferenceSession,
                                                        hosts: list[str]) -> None:
    (labels,) = label_session.run(None, {"host": np.array(hosts, dtype=object)})
    assert labels[:, 0].tolist() == [dga_train.registered_label(h) for h in hosts]


def test_quality_and_size(dga_build: tuple[onnx.ModelProto, dict[str, float]]) -> None:
    model, metrics = dga_build
    assert len(model.SerializeToString()) < 2 * 1024 * 1024
    assert metrics["accuracy"] >= 0.8
    assert metrics["max_probability_difference"] < 1e-5  # build_model also checks predictions are equal
    for family in ("cryptolocker", "hex", "alnum", "banjori"):
        assert metrics[f"accuracy[{family}]"] >= 0.9, family
    assert metrics["accuracy[legit]"] >= 0.75
    assert [i.name for i in model.graph.input] == ["host"]
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.STRING


def test_dataset_is_offline_and_balanced_enough(dga_train: ModuleType) -> None:
    data = dga_train.build_dataset()
    legit = [h for h, g in zip(data.hosts, data.groups) if g == "legit"]
    assert len(legit) >= 300
    assert len({dga_train.registered_label(h) for h in data.hosts}) == len(data.hosts)  # no label on both sides
    assert set(data.groups) == {"legit", *dga_train.DGA_FAMILIES}
    assert dga_train.generate_dga(5) == dga_train.generate_dga(5)


def test_train_script_writes_the_same_model_every_time(dga_train: ModuleType, dga_payload: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "model.onnx"
    assert dga_train.main(["--out", str(out)]) == 0
    assert out.read_bytes() == (dga_payload / "model.onnx").read_bytes()
    printed = capsys.readouterr().out
    assert "held-out accuracy" in printed and "onnxruntime = scikit-learn" in printed
    assert not [p for p in out.parent.iterdir() if p.name != "model.onnx"]  # no temporary file left
    # … and in other processes, whatever their string hashing
    for seed in ("1", "2"):
        other = tmp_path / f"hash{seed}" / "model.onnx"
        subprocess.run([sys.executable, str(DGA_DIR / "train.py"), "--out", str(other)], check=True,
                       capture_output=True, env={**os.environ, "PYTHONHASHSEED": seed}, timeout=300)
        assert other.read_bytes() == out.read_bytes(), f"PYTHONHASHSEED={seed}"


def test_payload_holds_exactly_one_script() -> None:
    scripts = sorted(p.name for p in (DGA_DIR / "payload").glob("*.sh"))
    assert scripts == ["rest.sh"]
    text = (DGA_DIR / "payload" / "rest.sh").read_text()
    assert "set -eu" in text and "-m model_server" in text and '"$MAAS_PORT"' in text
