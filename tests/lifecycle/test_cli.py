"""``maas_model`` and ``maas_lifecycle`` against a real ``maas_lifecycle serve`` process, on SQLite
and PostgreSQL: the commands of docs/lifecycle.md, their tables and --json output, and the exit
codes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from lifecycle.cli.client import run
from lifecycle.testing.service import ServiceProcess
from maas.local_zookeeper import free_port

pytestmark = pytest.mark.e2e
TOKEN = "cli-admin-token-0123456789"
BIN = Path(sys.executable).parent


@pytest.fixture
def service(db_url: str, tmp_path: Path) -> Iterator[ServiceProcess]:
    s = ServiceProcess(db_url, tmp_path / "data", TOKEN, workers=1)
    yield s
    s.stop()


@pytest.fixture
def cli(service: ServiceProcess, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Runs ``maas_model`` in-process against the service: returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("MAAS_LIFECYCLE_URL", service.url)
    monkeypatch.setenv("MAAS_TOKEN", TOKEN)

    def call(*args: str, token: str | None = None) -> tuple[int, str, str]:
        if token is not None:
            monkeypatch.setenv("MAAS_TOKEN", token)
        try:
            code = run(list(args))
        finally:
            monkeypatch.setenv("MAAS_TOKEN", TOKEN)
        out, err = capsys.readouterr()
        return code, out, err

    return call


def test_a_model_from_creation_to_publication(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("role", "create", "engineer", "--right", "models.create", "--right", "models.edit",
               "--right", "models.prepare", "--right", "markups.edit")[0] == 0
    assert cli("role", "create", "approver", "--right", "models.publish")[0] == 0
    code, out, _ = cli("--json", "user", "create", "eve", "--role", "engineer")
    assert code == 0
    eve = json.loads(out)["token"]
    code, out, _ = cli("user", "create", "pat", "--role", "approver")
    pat = out.strip().splitlines()[-1]
    assert code == 0 and pat.startswith("mlt_")

    assert cli("markup", "create", "night", "--recurrent", "mon,tue 22:00-06:00", "--condition", "Current > 0.5",
               token=eve)[0] == 0
    code, out, _ = cli("markup", "list")
    assert code == 0 and "night" in out and "Current > 0.5" in out
    assert cli("create", "pump7", "--asset", "plant1/pump7", "--inference-markup", "night", token=eve)[0] == 0
    code, out, err = cli("element", "add", "pump7", "overpressure", "--kind", "rule", "--input", "Pressure",
                         "--expression", "Pressure > 10", token=eve)
    assert code == 0, err
    assert "added rule overpressure to pump7 (trained)" in out

    code, out, _ = cli("list")
    assert code == 0
    header, row = out.splitlines()[:2]
    assert header.split()[:3] == ["NAME", "STATUS", "ASSET"] and row.split()[:3] == ["pump7", "TRAINED", "plant1/pump7"]
    code, out, _ = cli("show", "pump7")
    assert "overpressure" in out and "TRAINED" in out

    # eve may prepare but not publish; four-eyes is off, the right decides
    code, out, err = cli("publish", "pump7")
    assert code == 5 and "only a READY_FOR_PUBLICATION model" in err
    assert cli("prepare", "pump7", token=eve)[0] == 0
    code, out, err = cli("publish", "pump7", token=eve)
    assert code == 3 and "models.publish" in err
    code, out, _ = cli("--json", "publish", "pump7", token=pat)
    assert code == 0 and json.loads(out)["status"] == "PUBLISHED"

    code, out, err = cli("element", "change", "pump7", "overpressure", "--expression", "Pressure > 11", token=eve)
    assert code == 5 and "frozen" in err
    code, out, err = cli("markup", "edit", "night", "--condition", "Current > 0.7", token=eve)
    assert code == 5 and "frozen model 'pump7'" in err

    # a new iteration is a clone
    code, out, _ = cli("--json", "clone", "pump7", "pump7-v2", token=eve)
    assert code == 0 and json.loads(out)["status"] == "TRAINED"

    # export → import → activate: the same sha256
    archive = tmp_path / "pump7.tar.gz"
    assert cli("export", "pump7", "-o", str(archive))[0] == 0 and archive.stat().st_size > 0
    code, out, _ = cli("--json", "import", str(archive), "--name", "pump7-copy")
    assert code == 0 and json.loads(out)["status"] == "NOT_ACTIVATED"
    assert cli("activate", "pump7-copy")[0] == 0
    code, out, _ = cli("--json", "prepare", "pump7-copy")
    code2, out2, _ = cli("--json", "show", "pump7")
    assert json.loads(out)["sha256"] == json.loads(out2)["sha256"]

    # the audit trail says who published what, and what was refused
    code, out, _ = cli("--json", "audit", "--action", "models.publish")
    entries = json.loads(out)["entries"]
    assert [(e["actor"], e["outcome"]) for e in entries] == [("admin", "refused"), ("eve", "refused"), ("pat", "ok")]
    code, out, _ = cli("audit", "--object", "pump7", "--action", "models.publish", "--outcome", "ok")
    assert code == 0 and re.search(r"pat\s+models\.publish\s+pump7\s+READY_FOR_PUBLICATION\s+PUBLISHED\s+ok", out)


def test_exit_codes(cli, service: ServiceProcess) -> None:  # type: ignore[no-untyped-def]
    code, _out, err = cli("show", "ghost")
    assert code == 4 and "no model 'ghost'" in err
    code, _out, err = cli("create", "x" * 101)
    assert code == 2 and "[name]" in err
    code, _out, err = cli("create", "m", token="mlt_0123456789abcdef_" + "y" * 30)
    assert code == 3 and "unknown token" in err
    code, _out, err = cli("--url", f"http://127.0.0.1:{free_port()}", "list")
    assert code == 6 and "cannot be reached" in err
    code, _out, err = cli("element", "add", "m", "e")
    assert code == 2 and "--kind" in err
    # the installed console script exits the same way
    env = {**os.environ, "MAAS_LIFECYCLE_URL": service.url}
    env.pop("MAAS_TOKEN", None)
    done = subprocess.run([str(BIN / "maas_model"), "list"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 3 and "no token" in done.stderr


def test_bootstrap_token_is_printed_once_and_admin_create_token(db_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MAAS_LIFECYCLE_ADMIN_TOKEN"}
    first = ServiceProcess(db_url, tmp_path / "data", None)
    try:
        printed = re.search(r"^\s+(mlt_\S+)$", first.log.read_text(), re.M)
        assert printed, first.log.read_text()
        token = printed.group(1)
        r = httpx.get(first.url + "/api/v1/whoami", headers={"Authorization": f"Bearer {token}"})
        assert r.json()["name"] == "admin"
        made = subprocess.run([str(BIN / "maas_lifecycle"), "admin", "create-token", "admin", "--db", db_url,
                               "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, env=env,
                              timeout=120)
        assert made.returncode == 0, made.stderr
        other = made.stdout.strip()
        r = httpx.get(first.url + "/api/v1/whoami", headers={"Authorization": f"Bearer {other}"})
        assert r.status_code == 200 and r.json()["name"] == "admin"
        missing = subprocess.run([str(BIN / "maas_lifecycle"), "admin", "create-token", "ghost", "--db", db_url],
                                 capture_output=True, text=True, env=env, timeout=120)
        assert missing.returncode == 4 and "no user 'ghost'" in missing.stderr
    finally:
        first.stop()
    second = ServiceProcess(db_url, tmp_path / "data", None)  # not empty any more: nothing printed
    try:
        assert "mlt_" not in second.log.read_text()
    finally:
        second.stop()


def test_dataset_markup_training_with_a_real_worker(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The documented flow: upload a dataset, mark up normal operation, train --wait, publish."""
    rows = ["Timestamp;Flow;Motor current;Pressure"]
    for i in range(600):
        load = (i % 50) / 50.0
        rows.append(f"{1772323200 + 10 * i};{40 + 4 * load:.4f};{12 + 1.5 * load:.4f};{1 + 0.2 * load + 0.001 * (i % 7):.4f}")
    csv = tmp_path / "pump7 march.csv"
    csv.write_text("\n".join(rows) + "\n")
    code, out, err = cli("dataset", "upload", "pump7-march", str(csv), "--time-column", "Timestamp", "--grid-step", "10")
    assert code == 0, err
    assert "600 rows, 3 tags" in out
    code, out, _ = cli("--json", "dataset", "show", "pump7-march")
    assert json.loads(out)["tags"] == ["Flow", "Motor current", "Pressure"]
    assert cli("markup", "create", "normal", "--interval", "2026-03-01T00:00:00Z/2026-03-01T01:00:00Z")[0] == 0
    code, out, err = cli("--json", "markup", "mask", "normal", "--dataset", "pump7-march")
    assert code == 0, err
    assert json.loads(out)["points"] == 360
    assert cli("create", "pump7")[0] == 0
    code, out, err = cli("element", "add", "pump7", "pressure", "--kind", "forecaster", "--input", "Flow",
                         "--input", "Motor current", "--output", "Pressure", "--window", "2",
                         "--params", '{"algorithm": "linear"}', "--dataset", "pump7-march", "--training-markup", "normal")
    assert code == 0, err
    assert "(not_trained)" in out
    code, out, err = cli("train", "pump7", "--wait", "--wait-timeout", "300")
    assert code == 0, out + err
    assert "model pump7: TRAINED" in out
    # the closing summary: epochs, best validation loss and threshold of the trained element
    assert re.search(r"pressure: trained \(epochs \d+, best validation loss [\d.e+-]+, threshold [\d.e+-]+\)", out), out
    code, out, _ = cli("--json", "show", "pump7")
    trained = json.loads(out)["elements"][0]
    assert trained["training_status"] == "trained" and trained["artifact"]["sha256"]
    code, out, _ = cli("jobs", "--model", "pump7")
    assert code == 0 and re.search(r"\btrain\s+pump7\s+done\b", out)
    # historical inference over the same data (in process: no MaaS cluster configured)
    assert cli("prepare", "pump7")[0] == 0 and cli("publish", "pump7")[0] == 0
    code, out, err = cli("infer", "pump7", "--dataset", "pump7-march", "--from", "2026-03-01T00:00:00Z",
                         "--to", "2026-03-01T02:00:00Z", "--wait", "--wait-timeout", "300")
    assert code == 0, out + err
    code, out, err = cli("--json", "results", "pump7", "--element", "pressure", "--limit", "5")
    assert code == 0, err
    points = json.loads(out)["points"]
    assert len(points) == 5 and all(p["element"] == "pressure" for p in points)
    # a model that cannot be trained: the job fails and --wait says why (exit 7)
    assert cli("create", "bad")[0] == 0
    assert cli("element", "add", "bad", "e", "--kind", "forecaster", "--input", "Flow", "--output", "Nope",
               "--params", '{"algorithm": "linear"}', "--dataset", "pump7-march")[0] == 0
    code, out, err = cli("train", "bad", "--wait", "--wait-timeout", "300")
    assert code == 7 and "Nope" in out + err


def test_the_readme_example_runs(tmp_path: Path) -> None:
    """The commands of README's "ML models for anomaly detection", as written (port and data
    directory moved by their MAAS_LIFECYCLE_* variables)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### ML models for anomaly detection", 1)[1].split("###", 1)[0]
    lines = [ln[4:] for ln in section.splitlines() if ln.startswith("    ")]
    assert any("maas_lifecycle serve &" in ln for ln in lines) and any(ln.startswith("maas_model") for ln in lines)
    wait = ('SERVE_PID=$!; trap "kill $SERVE_PID" EXIT; '
            'python -c "import httpx, time, os\n'
            'for _ in range(300):\n'
            '    try:\n'
            '        httpx.get(os.environ[\'MAAS_LIFECYCLE_URL\'] + \'/metrics\'); break\n'
            '    except httpx.TransportError: time.sleep(0.2)"')
    script = "set -e\n" + "\n".join(ln + ("\n" + wait if ln.endswith("serve &") else "") for ln in lines) + "\n"
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MAAS_")},
           "PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(tmp_path), "MAAS_LIFECYCLE_PORT": str(port),
           "MAAS_LIFECYCLE_DATA_DIR": str(tmp_path / "data"), "MAAS_LIFECYCLE_WORKERS": "0",
           "MAAS_LIFECYCLE_URL": f"http://127.0.0.1:{port}"}
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "published model pump7: PUBLISHED" in done.stdout
    assert re.search(r"admin\s+models\.publish\s+pump7\s+READY_FOR_PUBLICATION\s+PUBLISHED\s+ok", done.stdout)


def test_incident_commands(cli, service: ServiceProcess, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("incidents")
    assert code == 0 and out.split()[:3] == ["ID", "MODEL", "ELEMENT"]
    assert cli("incident", "add-status", "Sent to maintenance")[0] == 0
    code, out, _ = cli("incident", "statuses")
    assert "Under review" in out and "Sent to maintenance" in out
    code, _out, err = cli("incident", "triage", "999", "--status", "Ignore")
    assert code == 4, err
    code, _out, err = cli("incident", "triage", "999")
    assert code == 2 and "nothing to change" in err
    target = tmp_path / "incidents.csv"
    code, out, _ = cli("incident", "export", "--model", "pump7", "-o", str(target))
    assert code == 0 and target.read_text().startswith("id,")
    assert cli("incident", "remove-status", "Sent to maintenance")[0] == 0


def test_the_progress_bar_of_a_running_training_job() -> None:
    from lifecycle.cli.client import progress_bar

    job = {"state": "running", "progress": {"element": "pressure", "epoch": 12, "max_epochs": 500,
                                            "validation_loss": 0.012345678, "fraction": 0.5}}
    assert progress_bar(job, width=10) == "[#####-----]  50% running pressure epoch 12/500 val loss 0.01235"
    assert progress_bar({"state": "queued", "progress": None}, width=4) == "[----]   0% queued"
