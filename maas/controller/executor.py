"""The executor: the one place where planned actions touch the world (through the launcher).

It never raises: a failed action is recorded in the model's :class:`Health` (which drives the
plan's backoff) and the loop goes on.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from typing import Callable, Iterable

from maas.clock import Clock
from maas.controller.desired import DesiredModel, ModelKey
from maas.controller.plan import Action, ForgetInstance, Health, KillInstance, StartInstance, StopInstance
from maas.errors import MaasError
from maas.instance import Instance, InstanceSpec, InstanceState
from maas.launcher import Launcher
from maas.model_status import error_detail, error_headline, quoted
from maas.retry import Backoff

log = logging.getLogger(__name__)

SpecFactory = Callable[[DesiredModel, str], InstanceSpec]


def new_instance_id(model: DesiredModel) -> str:
    return f"{model.name}-{model.version}-{uuid.uuid4().hex[:10]}"


class Executor:
    """Applies actions; keeps per-model health."""

    def __init__(
        self,
        launcher: Launcher,
        spec_for: SpecFactory,
        clock: Clock,
        *,
        backoff: Backoff,
        stable_after: float,
        rng: random.Random | None = None,
    ) -> None:
        self.launcher = launcher
        self.spec_for = spec_for
        self.clock = clock
        self.backoff = backoff
        self.stable_after = stable_after
        self.rng = rng or random.Random()
        self.health: dict[ModelKey, Health] = {}

    def execute(self, actions: Iterable[Action]) -> None:
        for action in actions:
            try:
                self._execute(action)
            except MaasError as exc:
                key = action.model.key if isinstance(action, StartInstance) else action.key
                log.error("%s failed: %s", type(action).__name__, exc)
                self.record_failure(key, str(exc))
            except Exception as exc:  # the loop never dies
                log.exception("%s crashed", action)
                key = action.model.key if isinstance(action, StartInstance) else action.key
                self.record_failure(key, f"internal error: {exc!r}")

    def _execute(self, action: Action) -> None:
        if isinstance(action, StartInstance):
            self.launcher.start(self.spec_for(action.model, new_instance_id(action.model)))
        elif isinstance(action, StopInstance):
            log.info("stopping %s (%s): %s", action.instance_id, action.key, action.reason)
            if action.failure:
                self.record_failure(action.key, action.reason)
            self.launcher.stop(action.instance_id)
        elif isinstance(action, KillInstance):
            log.warning("instance %s of %s did not stop in time; killing it", action.instance_id, action.key)
            self.launcher.kill(action.instance_id)
        elif isinstance(action, ForgetInstance):
            if action.failure is not None:
                logs = self.launcher.logs_hint(action.instance_id)
                detail = error_detail(action.failure)
                log.warning("instance %s of %s failed: %s%s%s", action.instance_id, action.key,
                            error_headline(action.failure), f" (logs: {logs})" if logs else "",
                            "\n" + quoted(detail) if detail else "")
                self.record_failure(action.key, action.failure, logs=logs)
            self.launcher.forget(action.instance_id)

    def record_failure(self, key: ModelKey, reason: str, *, logs: str | None = None) -> None:
        previous = self.health.get(key, Health())
        now = self.clock.monotonic()
        delay = self.backoff.delay(previous.failures, self.rng)
        self.health[key] = Health(
            failures=previous.failures + 1, restarts=previous.restarts + 1, retry_at=now + delay,
            last_error=reason, last_failure_at=now, last_error_time=time.time(), last_logs=logs,
        )
        log.info("%s: %d consecutive failure(s); next start in %.1fs", key, previous.failures + 1, delay)

    def observe(self, instances: Iterable[Instance]) -> None:
        """Forget the failures of models whose instances have been running stably."""
        now = self.clock.monotonic()
        for inst in instances:
            if inst.state is not InstanceState.RUNNING or inst.running_since is None:
                continue
            key = ModelKey(inst.name, inst.version)
            h = self.health.get(key)
            if h is not None and h.failures and now - inst.running_since >= self.stable_after:
                self.health[key] = Health(restarts=h.restarts, last_error=h.last_error, last_failure_at=h.last_failure_at,
                                          last_logs=h.last_logs, last_error_time=h.last_error_time)
