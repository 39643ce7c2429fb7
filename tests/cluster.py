"""A MaaS cluster for end-to-end tests: a real ``maas_service`` process on the test's ZooKeeper
chroot, a file store and a work directory in tmp, and helpers to inspect what runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from kazoo.exceptions import NoNodeError

from deploy_client.api import DeployClient
from maas.retry import wait_until

REPO = Path(__file__).resolve().parents[1]
PAYLOADS = Path(__file__).resolve().parent / "payloads"


class Cluster:
    def __init__(self, quorum: str, tmp: Path) -> None:
        self.quorum = quorum
        self.tmp = tmp
        self.store = tmp / "store"
        self.work = tmp / "work"
        self.store.mkdir(parents=True)
        self.controllers: list[subprocess.Popen[bytes]] = []
        self._client: DeployClient | None = None

    def start_controller(self, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """Start ``maas_service``; ``env`` is added to this process's environment for it."""
        log = open(self.tmp / f"controller-{len(self.controllers)}.log", "ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "maas.cli", "-zq", self.quorum, "--store-uri", f"file://{self.store}",
             "--work-dir", str(self.work), "--reconcile-interval", "0.5", "--stop-grace", "5",
             "--start-timeout", "30", *extra],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, **(env or {})},
        )
        log.close()
        self.controllers.append(proc)
        return proc

    @property
    def client(self) -> DeployClient:
        if self._client is None:
            # The controller publishes the config znode; wait for it so the client sees the store.
            def published() -> bool:
                c = DeployClient(self.quorum)
                ok = c.config.store_uri == f"file://{self.store}"
                if ok:
                    self._client = c
                else:
                    c.close()
                return ok

            wait_until(published, timeout=20, what="the controller to publish its config")
        assert self._client is not None
        return self._client

    def deploy(self, payload: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.maas_deploy("-lmp", str(PAYLOADS / payload), *args, check=check)

    def maas_deploy(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "deploy_client.cli", "-zq", self.quorum, *args],
            capture_output=True, text=True, cwd=REPO, timeout=180,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"maas_deploy {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def runner_processes(self) -> list[psutil.Process]:
        """Runner and service processes belonging to this cluster's work directory."""
        found = []
        marker = str(self.work)
        for proc in psutil.process_iter(["cmdline", "cwd"]):
            try:
                cmd = " ".join(proc.info["cmdline"] or [])
                cwd = proc.info["cwd"] or ""
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            is_runner = "maas.runner" in cmd and marker in cmd
            if proc.pid != os.getpid() and (is_runner or cwd.startswith(marker)):
                found.append(proc)
        return found

    def registrations(self, name: str) -> dict[str, dict]:
        """``instanceId -> ServiceInstance JSON`` of the model's registrations."""
        zk = self.client.client
        root = f"{self.client.layout.service_root}/{name}"
        if not zk.exists(root):
            return {}
        found = {}
        for child in zk.get_children(root):
            try:
                found[child] = json.loads(zk.get(f"{root}/{child}")[0])
            except NoNodeError:  # deregistered between the listing and the read
                continue
        return found

    def status_of(self, name: str):  # type: ignore[no-untyped-def]
        """The model's published ModelStatus, or None."""
        return {s.name: s for s in self.client.model_statuses()}.get(name)

    @staticmethod
    def service_pid(port: int) -> int:
        """The process listening on ``port`` (a model service)."""
        return next(c.pid for c in psutil.net_connections("tcp")
                    if c.laddr and c.laddr.port == port and c.status == "LISTEN")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        for proc in self.controllers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
        # Whatever a failed test left behind must not outlive it.
        for proc in self.runner_processes():
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        time.sleep(0.1)

    def controller_log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("controller-*.log")))
