"""The health prober: checks every running instance's endpoint on a jittered period, in a
background thread, and counts consecutive failures. The plan stops and replaces an instance
whose count reaches the threshold."""

from __future__ import annotations

import logging
import random
import threading
from typing import Callable

import httpx

from maas.endpoint_auth import EndpointCredentials
from maas.instance import Instance, InstanceState
from maas.probe import check_http

log = logging.getLogger(__name__)

Check = Callable[[str], "str | None"]


class Prober:
    def __init__(self, period: float, *, check: Check | None = None, timeout: float = 2.0,
                 rng: random.Random | None = None, credentials: EndpointCredentials | None = None) -> None:
        self.period = period
        self.rng = rng or random.Random()
        options = (credentials or EndpointCredentials()).http_options()
        self._http = httpx.Client(timeout=timeout, **options) if check is None else None
        self._check: Check = check or (lambda url: check_http(self._http, url))  # type: ignore[arg-type]
        self._targets: dict[str, str] = {}
        self._failures: dict[str, int] = {}
        self._reasons: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="prober", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._http is not None:
            self._http.close()

    def update(self, instances: list[Instance]) -> None:
        """Probe exactly the running instances that have a URL."""
        with self._lock:
            self._targets = {i.instance_id: i.url for i in instances if i.state is InstanceState.RUNNING and i.url}
            for gone in set(self._failures) - set(self._targets):
                self._failures.pop(gone, None)
                self._reasons.pop(gone, None)

    def failures(self, instance_id: str) -> tuple[int, str | None]:
        with self._lock:
            return self._failures.get(instance_id, 0), self._reasons.get(instance_id)

    def probe_once(self) -> None:
        with self._lock:
            targets = dict(self._targets)
        for instance_id, url in targets.items():
            problem = self._check(url)
            with self._lock:
                if instance_id not in self._targets:
                    continue
                if problem is None:
                    self._failures.pop(instance_id, None)
                    self._reasons.pop(instance_id, None)
                else:
                    self._failures[instance_id] = self._failures.get(instance_id, 0) + 1
                    self._reasons[instance_id] = problem
                    log.info("health check of %s failed (%d): %s", instance_id, self._failures[instance_id], problem)

    def _loop(self) -> None:
        while not self._stop.wait(self.period * (0.75 + 0.5 * self.rng.random())):
            try:
                self.probe_once()
            except Exception:
                log.exception("health probing failed; continuing")
