"""Trained elements as payloads: a real ``model_server`` process serving the exported payload
returns the predictions and artifacts the training code computes.

Tolerance: the training code computes in float64. A forecaster's graph computes in float32, so its
values agree to a relative 1e-4 (predictions, in the tags' units, with an absolute floor of 1e-4 of
the tag's scale) and 1e-3 (artifacts and contributions, which square small differences, absolute
floor 1e-6). An envelope's graph computes in float64, but from float32 arguments (a speed of 1450
rpm is rounded by 1e-4): relative 1e-4, absolute floor 1e-5.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pandas as pd
import pytest

from lifecycle.elements.envelope import train_envelope
from lifecycle.elements.export import argument_names
from lifecycle.elements.forecaster import train_forecaster
from lifecycle.elements.loop import TrainingSettings
from lifecycle.elements.payload import write_payload
from lifecycle.elements.trained import TrainedElement
from tests.model_server.conftest import ServedModel

SETTINGS = TrainingSettings(max_epochs=30, batch_size=32)


def telemetry(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    load = np.zeros(n)
    for t in range(1, n):  # a stationary AR(1) load
        load[t] = 0.9 * load[t - 1] + rng.normal(scale=0.3)
    index = pd.date_range("2026-03-01", periods=n, freq="30s", tz="UTC")
    return pd.DataFrame({
        "flow rate": 40 + 4 * load + rng.normal(scale=0.3, size=n),
        "Speed": 1450 + 20 * np.tanh(load) + rng.normal(scale=2.0, size=n),
        "pump7.pressure": 2.5 + 0.1 * load ** 2 + rng.normal(scale=0.01, size=n),
    }, index=index)


@pytest.fixture(scope="module")
def forecaster() -> TrainedElement:
    return train_forecaster(telemetry(600, 1), None, ["flow rate", "Speed"], ["pump7.pressure", "flow rate"], 3,
                            {"horizon": 1}, SETTINGS)


@pytest.fixture(scope="module", params=["elliptic", "pca"])
def envelope(request: pytest.FixtureRequest) -> TrainedElement:
    return train_envelope(telemetry(600, 2), None, ["flow rate", "Speed", "pump7.pressure"],
                          {"method": request.param}, SETTINGS)


def served(trained: TrainedElement, directory: Path) -> Iterator[ServedModel]:
    write_payload(trained, directory)
    server = ServedModel(directory, []).wait_ready()
    try:
        yield server
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def forecaster_server(forecaster: TrainedElement, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedModel]:
    yield from served(forecaster, tmp_path_factory.mktemp("forecaster") / "payload")


@pytest.fixture(scope="module")
def envelope_server(envelope: TrainedElement, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedModel]:
    yield from served(envelope, tmp_path_factory.mktemp("envelope") / "payload")


def test_served_forecaster_returns_the_training_code_numbers(forecaster: TrainedElement,
                                                            forecaster_server: ServedModel) -> None:
    frame = telemetry(200, 3)  # unseen data
    scores = forecaster.model.score(frame)
    rows: list[dict[str, Any]] = []
    for t in scores.positions[:80]:
        window = frame.iloc[t - 1 - 2: t - 1 + 1]  # horizon 1: the window ends one point before t
        rows.append({"flow_rate": window["flow rate"].tolist(), "Speed": window["Speed"].tolist(),
                     "actual.pump7.pressure": float(frame["pump7.pressure"].iloc[t]),
                     "actual.flow_rate": float(frame["flow rate"].iloc[t])})
    response = httpx.post(f"{forecaster_server.url}/apply", json=rows, timeout=30)
    assert response.status_code == 200, response.text
    answers = response.json()
    scale = forecaster.model.y_scaler.scale
    for j, tag in enumerate(["pump7.pressure", "flow rate"]):
        np.testing.assert_allclose([a[tag] for a in answers], scores.predictions[:80, j], rtol=1e-4, atol=1e-4 * scale[j])
    np.testing.assert_allclose([a["artifact"] for a in answers], scores.artifact[:80], rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose([a["contributions"] for a in answers], scores.contributions[:80], rtol=1e-3, atol=1e-6)


def test_served_envelope_returns_the_training_code_numbers(envelope: TrainedElement, envelope_server: ServedModel) -> None:
    frame = telemetry(100, 4)
    frame.iloc[50:60, 2] += 0.5  # some points far outside the envelope too
    scores = envelope.model.score(frame)
    rows = [{"flow_rate": float(r["flow rate"]), "Speed": float(r["Speed"]), "pump7.pressure": float(r["pump7.pressure"])}
            for _, r in frame.iterrows()]
    answers = httpx.post(f"{envelope_server.url}/apply", json=rows, timeout=30).json()
    np.testing.assert_allclose([a["artifact"] for a in answers], scores.artifact, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose([a["contributions"] for a in answers], scores.contributions, rtol=1e-4, atol=1e-5)
    one = httpx.get(f"{envelope_server.url}/apply", params=rows[55], timeout=30).json()
    assert one["artifact"] == pytest.approx(scores.artifact[55], rel=1e-3)
    assert one["artifact"] > envelope.threshold


def test_a_row_missing_a_tag_is_refused_by_name(envelope_server: ServedModel) -> None:
    response = httpx.post(f"{envelope_server.url}/apply", json={"flow_rate": 1.0, "Speed": 2.0}, timeout=30)
    assert response.status_code == 422 and "pump7.pressure" in response.json()["error"]


def test_payload_holds_one_script_the_model_signature_and_metadata(forecaster: TrainedElement, tmp_path: Path) -> None:
    directory = write_payload(forecaster, tmp_path / "p", extra={"model": "pump7", "element": "pressure"})
    assert sorted(p.name for p in directory.iterdir()) == ["element.json", "model.onnx", "serve.sh", "signature.json"]
    script = (directory / "serve.sh").read_text()
    assert "exec \"${MAAS_PYTHON:-python3}\" -m model_server --payload . --port \"$MAAS_PORT\"" in script
    metadata = json.loads((directory / "element.json").read_text())
    assert metadata["arguments"] == {"flow_rate": "flow rate", "Speed": "Speed",
                                     "actual.pump7.pressure": "pump7.pressure", "actual.flow_rate": "flow rate"}
    assert metadata["window"] == 3 and metadata["horizon"] == 1 and metadata["threshold"] == forecaster.threshold
    assert metadata["model"] == "pump7"
    assert set(metadata["scaling"]["outputs"]) == {"pump7.pressure", "flow rate"}
    with pytest.raises(FileExistsError):
        write_payload(forecaster, directory)


def test_argument_names_are_valid_and_unique() -> None:
    assert argument_names(["Flow", "flow rate", "flow_rate", "7th bearing", "a-b.c"]) == [
        "Flow", "flow_rate", "flow_rate_2", "_7th_bearing", "a-b.c"]


def test_payload_scorer_gives_the_training_code_numbers_in_process(forecaster: TrainedElement,
                                                                  envelope: TrainedElement, tmp_path: Path) -> None:
    from lifecycle.elements.artifact import smooth_runs
    from lifecycle.elements.runner import PayloadScorer

    frame = telemetry(300, 5)
    frame.iloc[100, 0] = np.nan  # a gap: windows around it are not scored
    for i, trained in enumerate((forecaster, envelope)):
        scorer = PayloadScorer(write_payload(trained, tmp_path / f"p{i}"))
        served, local = scorer.score(frame), trained.model.score(frame)
        assert served.positions.tolist() == local.positions.tolist()
        assert 100 not in served.positions.tolist()
        np.testing.assert_allclose(served.artifact, local.artifact, rtol=1e-3, atol=1e-5)
        detection = scorer.detect(frame)
        expected = smooth_runs(local.artifact, local.positions, trained.params["smoothing_halflife"],
                               trained.params["despike"])
        np.testing.assert_allclose(detection.smoothed, expected, rtol=1e-3, atol=1e-5)
        assert detection.threshold == trained.threshold
        assert (detection.anomalous == (detection.smoothed > trained.threshold)).all()


def test_the_payload_script_starts_model_server_as_the_runner_does(envelope: TrainedElement, tmp_path: Path) -> None:
    """The runner's contract (docs/payload.md): copy the payload to a working directory, run its one
    ``*.sh`` there with MAAS_PORT and MAAS_PYTHON, wait for endpoint.dat."""
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time

    from tests.model_server.conftest import free_port

    payload = write_payload(envelope, tmp_path / "payload")
    work = tmp_path / "instance"
    shutil.copytree(payload, work)
    scripts = list(work.glob("*.sh"))
    assert len(scripts) == 1
    port = free_port()
    process = subprocess.Popen(["/bin/bash", scripts[0].name], cwd=work, start_new_session=True,
                               env={**os.environ, "MAAS_PORT": str(port), "MAAS_PYTHON": sys.executable,
                                    "MAAS_MODEL_NAME": "pump7-envelope", "MAAS_MODEL_VERSION": "1"},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (work / "endpoint.dat").exists():
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "no endpoint.dat"
            time.sleep(0.1)
        endpoint = json.loads((work / "endpoint.dat").read_text())
        answer = httpx.post(f"{endpoint['url']}/apply", json={"flow_rate": 40.0, "Speed": 1450.0, "pump7.pressure": 2.5},
                            timeout=30).json()
        expected = envelope.model.evaluate(np.array([[40.0, 1450.0, 2.5]]))[1][0]
        assert answer["artifact"] == pytest.approx(expected, rel=1e-4)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(30) == 0


@pytest.mark.parametrize("params", [{"algorithm": "linear"}, {"algorithm": "mlp", "activation": "tanh", "power": 1.0}])
def test_other_forecasters_export_with_the_same_numbers(params: dict[str, Any], tmp_path: Path) -> None:
    from lifecycle.elements.runner import PayloadScorer

    trained = train_forecaster(telemetry(400, 6), None, ["Speed"], ["flow rate", "pump7.pressure"], 1, params,
                               TrainingSettings(max_epochs=5, batch_size=32))
    frame = telemetry(100, 7)
    served = PayloadScorer(write_payload(trained, tmp_path / "p")).score(frame)
    local = trained.model.score(frame)
    np.testing.assert_allclose(served.predictions, local.predictions, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(served.artifact, local.artifact, rtol=1e-3, atol=1e-6)
