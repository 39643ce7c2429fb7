"""A real MQTT broker for tests: Debian's ``mosquitto`` (``/usr/sbin/mosquitto``) on 127.0.0.1.

:class:`LocalMosquitto` writes a configuration into a temporary directory (a listener on a free
loopback port, anonymous clients allowed, no persistence, the log to a file there), starts the
broker and waits until it accepts connections. When the tests run as root the broker keeps
running as root (``user root``) instead of switching to a ``mosquitto`` user that may not exist.

The pytest fixture ``mosquitto`` gives one broker per test session (import it into a conftest:
``from lifecycle.testing.mosquitto import mosquitto``); ``stop()``/``start()`` on it let a test
take the broker away and bring it back on the same port.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

from lifecycle.testing.postgres import free_port

BINARY = "/usr/sbin/mosquitto"
INSTALL_HINT = "mosquitto is not installed: apt-get install -y mosquitto (Debian's package, /usr/sbin/mosquitto)"


class LocalMosquitto:
    """One mosquitto process on 127.0.0.1:``port``."""

    def __init__(self, binary: str = BINARY) -> None:
        if not Path(binary).is_file():
            raise RuntimeError(INSTALL_HINT)
        self.binary = binary
        self.host = "127.0.0.1"
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="maas-mosquitto-"))
        self.log = self.dir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _config(self) -> Path:
        user = pwd.getpwuid(os.getuid()).pw_name
        conf = self.dir / "mosquitto.conf"
        conf.write_text(
            f"listener {self.port} {self.host}\n"
            "allow_anonymous true\n"
            "persistence false\n"
            f"log_dest file {self.log}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"user {user}\n")
        return conf

    def start(self, timeout: float = 15.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc = subprocess.Popen([self.binary, "-c", str(self._config())], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {self._log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not listen on {self.host}:{self.port} within {timeout}s: {self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return self.log.read_text()[-2000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[LocalMosquitto]:
    """A running broker for the test session (restarted by a test that stopped it)."""
    try:
        broker = LocalMosquitto()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    atexit.register(broker.cleanup)
    broker.start()
    yield broker
    broker.cleanup()
