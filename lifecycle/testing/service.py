"""``maas_lifecycle serve`` in a process of its own, for tests and benchmarks: started on a free
loopback port with a bootstrap administrator token, waited for until it answers ``/metrics``, and
stopped (SIGTERM, then SIGKILL after a grace period). Its output goes to ``<data dir>/serve.log``."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from maas.local_zookeeper import free_port

BIN = Path(sys.executable).parent


class ServiceProcess:
    """A running ``maas_lifecycle serve --db DB_URL --data-dir DATA_DIR --workers N EXTRA…``."""

    def __init__(self, db_url: str, data_dir: Path, admin_token: str | None, *extra: str, workers: int = 0,
                 env: dict[str, str] | None = None, start_timeout: float = 60.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_url, self.data_dir, self.admin_token = db_url, data_dir, admin_token
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / "serve.log"
        self._log = open(self.log, "wb")
        environ = dict(os.environ if env is None else env)
        environ.pop("MAAS_LIFECYCLE_ADMIN_TOKEN", None)  # None: the service prints a new one on an empty database
        if admin_token is not None:
            environ["MAAS_LIFECYCLE_ADMIN_TOKEN"] = admin_token
        self.proc = subprocess.Popen(
            [str(BIN / "maas_lifecycle"), "serve", "--db", db_url, "--port", str(self.port), "--workers",
             str(workers), "--data-dir", str(data_dir), *extra], stdout=self._log, stderr=subprocess.STDOUT,
            env=environ)
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                if httpx.get(self.url + "/metrics", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                ServiceProcess.stop(self)  # not an override: a subclass has not finished its own start
                raise RuntimeError("maas_lifecycle serve did not start:\n" + self.log.read_text(errors="replace"))
            time.sleep(0.2)

    def client(self, token: str | None = None, timeout: float = 30) -> httpx.Client:
        """An API client (``/api/v1``) with ``token``, the administrator's by default."""
        token = token or self.admin_token
        return httpx.Client(base_url=self.url + "/api/v1", timeout=timeout,
                            headers={"Authorization": f"Bearer {token}"} if token else {})

    def stop(self, grace: float = 20) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
