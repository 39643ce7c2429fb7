"""``maas_zookeeper``: a local ZooKeeper a user starts by hand — on loopback, with its data kept in
``--data-dir`` across restarts, stopped cleanly by Ctrl-C, and a clear refusal of a busy port."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from maas.local_zookeeper import four_letter, free_port, zookeeper_available
from maas.retry import wait_until
from maas.zk import connect
from tests.cluster import REPO

pytestmark = [pytest.mark.zk, pytest.mark.skipif(not zookeeper_available(), reason="ZooKeeper is not installed")]


def start(data_dir: Path, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-m", "maas.local_zookeeper", "--data-dir", str(data_dir),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    wait_until(lambda: proc.poll() is not None or "Mode: standalone" in four_letter(port, "srvr"), timeout=60,
               what="maas_zookeeper to serve")
    assert proc.poll() is None, proc.communicate()
    return proc


def ctrl_c(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    return proc.returncode, err


def test_serves_on_loopback_keeps_its_data_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "zk"
    proc = start(data_dir, port)
    try:
        config = (data_dir / "zoo.cfg").read_text()
        assert "clientPortAddress=127.0.0.1" in config and f"clientPort={port}" in config
        client = connect(f"127.0.0.1:{port}")
        client.create("/kept", b"across restarts")
        client.stop()
        client.close()
    finally:
        code, err = ctrl_c(proc)
    assert code == 0, err
    assert f"ZooKeeper serving on 127.0.0.1:{port}" in err and "ZooKeeper stopped." in err
    assert four_letter(port, "srvr") == ""  # nothing left listening

    proc = start(data_dir, port)
    try:
        client = connect(f"127.0.0.1:{port}")
        assert client.get("/kept")[0] == b"across restarts"
        client.stop()
        client.close()
    finally:
        assert ctrl_c(proc)[0] == 0


def test_a_busy_port_is_refused_with_the_reason(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "maas.local_zookeeper", "--data-dir", str(tmp_path),
                                 "--port", str(port)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
