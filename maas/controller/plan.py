"""The reconcile plan: a pure function from desired and actual state to the actions that close
the gap. No I/O, no clock: ``now`` is an argument, so every decision is unit-testable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Collection, Iterable, Mapping, Union

from maas.controller.desired import DesiredModel, ModelKey
from maas.instance import Instance, InstanceState


@dataclass(frozen=True)
class Health:
    """Per-model restart bookkeeping, kept by the executor."""

    failures: int = 0  # consecutive failed starts / unexpected exits
    restarts: int = 0  # failures over the model's lifetime in this controller
    retry_at: float = 0.0  # no new start before this (monotonic) time
    last_error: str | None = None
    last_failure_at: float | None = None
    #: Where the logs of the instance behind ``last_error`` are (a path, a ``kubectl logs`` line).
    last_logs: str | None = None
    last_error_time: float | None = None  # wall-clock time of the last failure, for users


@dataclass(frozen=True)
class StartInstance:
    model: DesiredModel


@dataclass(frozen=True)
class StopInstance:
    key: ModelKey
    instance_id: str
    reason: str
    failure: bool = False  # stopped because it is unhealthy: counts towards the model's backoff


@dataclass(frozen=True)
class KillInstance:
    """An instance asked to stop did not within its grace: force it."""

    key: ModelKey
    instance_id: str


@dataclass(frozen=True)
class ForgetInstance:
    """An instance is gone; ``failure`` is set when it was not asked to stop."""

    key: ModelKey
    instance_id: str
    failure: str | None


Action = Union[StartInstance, StopInstance, KillInstance, ForgetInstance]

_STOP_PREFERENCE = {InstanceState.STARTING: 0, InstanceState.RUNNING: 1}


def plan(
    desired: Mapping[ModelKey, DesiredModel],
    actual: Iterable[Instance],
    health: Mapping[ModelKey, Health],
    now: float,
    *,
    max_probe_failures: int = 3,
    hold: Collection[ModelKey] = (),
) -> list[Action]:
    """Actions that move ``actual`` towards ``desired``.

    - exited instances are forgotten (a failure if nobody asked them to stop);
    - stopping instances past their stop deadline are killed;
    - running instances that failed ``max_probe_failures`` health checks in a row are stopped
      (a failure) and no longer count;
    - missing instances are started, unless the model is backing off after failures (or has
      a failure being recorded in this very pass);
    - surplus instances are stopped, not-yet-ready ones first, then the newest;
    - models in ``hold`` (their desired state is unknown: quarantined) are left as they are:
      nothing started, nothing stopped; only their exited instances are forgotten.
    """
    actions: list[Action] = []
    alive: dict[ModelKey, list[Instance]] = {}
    just_failed: set[ModelKey] = set()
    for inst in actual:
        key = ModelKey(inst.name, inst.version)
        if inst.state is InstanceState.EXITED:
            failure = None if inst.stop_requested else (inst.reason or "instance exited")
            actions.append(ForgetInstance(key, inst.instance_id, failure))
            if failure is not None:
                just_failed.add(key)  # its backoff is decided once the failure is recorded
        elif inst.state is InstanceState.STOPPING and inst.stop_overdue:
            actions.append(KillInstance(key, inst.instance_id))
        elif key in hold:
            continue
        elif inst.state is InstanceState.RUNNING and inst.probe_failures >= max_probe_failures:
            reason = f"failed {inst.probe_failures} consecutive health checks ({inst.probe_reason})"
            actions.append(StopInstance(key, inst.instance_id, reason, failure=True))
            just_failed.add(key)
        elif inst.alive:
            alive.setdefault(key, []).append(inst)

    for key in sorted((set(desired) | set(alive)) - set(hold)):
        want = desired[key].instances if key in desired else 0
        have = alive.get(key, [])
        if len(have) > want:
            surplus = sorted(have, key=lambda i: (_STOP_PREFERENCE[i.state], -i.started_at, i.instance_id))
            reason = "scaled down" if key in desired else "model removed"
            actions.extend(StopInstance(key, i.instance_id, reason) for i in surplus[: len(have) - want])
        elif len(have) < want:
            h = health.get(key, Health())
            if now >= h.retry_at and key not in just_failed:
                actions.extend(StartInstance(desired[key]) for _ in range(want - len(have)))
    return actions
