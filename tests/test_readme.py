"""The README's "Using it" section, run as a user runs it: every shell line of its ``sh`` blocks in
order (the long-running ``maas_zookeeper`` and ``maas_service`` in the background, as in their own
terminals), and its Python block, with only the port (2181 → a free one) and ``$HOME`` (→ a
temporary directory) changed. A README step that stops working fails this test."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from maas.local_zookeeper import free_port, four_letter, zookeeper_available
from maas.retry import wait_until
from tests.cluster import REPO

pytestmark = [pytest.mark.zk, pytest.mark.e2e]

BACKGROUND = ("maas_zookeeper", "maas_service")


def using_it() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("## Using it")
    return text[start:text.index("\n### ", start)]


def blocks(section: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block, in order."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w+)\n(.*?)^```", section, re.M | re.S)]


def shell_lines(code: str) -> list[str]:
    return [line.strip() for line in code.replace("\\\n", " ").splitlines() if line.strip() and not line.startswith("#")]


def test_the_section_has_what_a_newcomer_needs() -> None:
    section = using_it()
    commands = [line for lang, code in blocks(section) if lang == "sh" for line in shell_lines(code)]
    assert commands[0].startswith("make ") and "model" in commands[0].split()
    assert [c.split()[0] for c in commands if c.split()[0] in BACKGROUND] == list(BACKGROUND)
    assert any(lang == "python" for lang, _ in blocks(section))


@pytest.mark.skipif(not zookeeper_available(), reason="ZooKeeper is not installed")
def test_using_it_runs_as_written(tmp_path: Path) -> None:
    port = free_port()
    metrics_port = free_port()
    env = dict(os.environ, HOME=str(tmp_path), PYTHONUNBUFFERED="1")
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])

    def localize(text: str) -> str:
        return text.replace("2181", str(port)).replace("9180", str(metrics_port))

    background: list[tuple[str, subprocess.Popen[str], Path]] = []
    outputs: dict[str, list[str]] = {}
    prelude: list[str] = []  # lines whose effect later lines need (the venv's activation)
    try:
        for lang, code in blocks(using_it()):
            if lang == "python":
                result = subprocess.run([sys.executable, "-c", localize(code)], capture_output=True, text=True,
                                        cwd=REPO, env=env, timeout=60)
                assert result.returncode == 0, result.stderr
                outputs.setdefault("python", []).append(result.stdout)
                continue
            assert lang == "sh"
            for line in shell_lines(code):
                command = localize(line)
                program = command.split()[0]
                if program == ".":
                    prelude.append(command)
                    continue
                script = "\n".join([*prelude, command])
                if program in BACKGROUND:
                    log = tmp_path / f"{program}.log"
                    with open(log, "w") as out:  # exec: the signals below reach the command itself
                        proc = subprocess.Popen(["bash", "-c", "\n".join([*prelude, f"exec {command}"])],
                                                stdout=out, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env)
                    background.append((program, proc, log))
                    if program == "maas_zookeeper":
                        wait_until(lambda: "Mode:" in four_letter(port, "srvr"), timeout=60, what="ZooKeeper to serve")
                    else:
                        wait_until(lambda: _healthy(metrics_port), timeout=60, what="the controller's /healthz")
                    continue
                result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, cwd=REPO, env=env,
                                        timeout=300)
                assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}\n{_logs(background)}"
                outputs.setdefault(" ".join(command.split()[:5]), []).append(result.stdout)

        joined = {k: "\n".join(v) for k, v in outputs.items()}
        add = next(v for k, v in joined.items() if "-mo ADD" in k)
        assert "ready" in add and add.rstrip().endswith("done")
        listed = next(v for k, v in joined.items() if "-mo LIST" in k)
        assert "Model dga @ 1.0" in listed and len(re.findall(r"^\thttp://127\.0\.0\.1:\d+$", listed, re.M)) == 2
        status = next(v for k, v in joined.items() if "-mo STATUS" in k)
        assert re.search(r"^Leader: \S+ \(pid \d+\), since ", status, re.M), status
        assert re.search(r"^dga\s+1\.0\s+2\s+2\s+2\s+0", status, re.M), status
        enriched = next(v for k, v in joined.items() if k.startswith("maas_enrich"))
        assert '"is_malicious": "malicious"' in enriched and '"is_malicious": "legit"' in enriched
        assert joined["python"].strip() == "malicious"
        assert next(v for k, v in joined.items() if "-mo REMOVE" in k).rstrip().endswith("done")
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert "maas_controller_leader 1.0" in metrics
        assert 'maas_controller_requests_total{state="done"} 3.0' in metrics

        # Ctrl-C stops the controller, then ZooKeeper, cleanly.
        for program, proc, log in reversed(background):
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=30) == 0, log.read_text()
        assert "ZooKeeper stopped." in background[0][2].read_text()
        assert (tmp_path / "maas" / "zookeeper" / "data").is_dir()
    finally:
        for _program, proc, _log in background:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _logs(background: list[tuple[str, subprocess.Popen[str], Path]]) -> str:
    return "\n".join(f"--- {program}\n{log.read_text()[-4000:]}" for program, _p, log in background)
