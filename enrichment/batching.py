"""Micro-batching of model calls: many events' ``MAAS_MODEL_APPLY`` calls as one request.

Stellar evaluates an expression to the end in one go, so a call cannot be "sent later" from
inside it. The pipeline instead evaluates each field for a whole batch of events in rounds:

1. **collect** — every event's expression is evaluated with a :class:`DeferringGateway`. A model
   call whose answer is already known (in the batch's :class:`CallMemo`) is answered at once; the
   first one that is not raises :class:`Deferred` (a ``BaseException``, so neither
   ``MAAS_MODEL_APPLY``'s "never raise" guard nor the evaluator catches it), which abandons that
   evaluation and hands the pending :class:`ModelCall` to the pipeline.
2. **resolve** — :func:`resolve` groups the pending calls of the round by (model, version,
   function) and makes one ``apply_batch`` per group (one plain ``apply`` when a group has one
   row); the answers go into the memo.
3. the deferred events are evaluated **again**; now their calls are answered from the memo, so
   they complete (or defer on a further call that depended on the first answer: another round).

An expression's final value therefore always comes from one complete, ordinary evaluation in which
every model call returned what the model answered for exactly those arguments — the unbatched
semantics, event for event. Calls are keyed by model name, version, function and arguments, not by
instance URL: any instance of a model version gives the answer. ``MAAS_GET_ENDPOINT`` is looked up
once per model and version for a batch — one of the model's instances, as unbatched, but the same
one for every event of the batch, which is where its calls go.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from stellar_like.gateway import ModelGateway

__all__ = [
    "BatchModelGateway",
    "CallMemo",
    "Deferred",
    "DeferringGateway",
    "ModelCall",
    "call_group",
    "canonical_args",
    "resolve",
]

log = logging.getLogger(__name__)

CallKey = tuple[Any, ...]


@runtime_checkable
class BatchModelGateway(ModelGateway, Protocol):
    """A gateway that can also answer many rows for one endpoint and function at once.

    ``apply_batch`` returns one result (or None) per row, in order, each what ``apply`` would have
    returned for that row; it handles its own retries and never raises for a model failure.
    """

    def apply_batch(self, endpoint: dict[str, Any], function: str | None,
                    rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any] | None]: ...


@dataclass(frozen=True)
class ModelCall:
    """One ``gateway.apply(endpoint, function, args)`` an evaluation needs answered."""

    endpoint: dict[str, Any]
    function: str | None
    args: dict[str, Any]
    group: CallKey  # calls with the same group go in one batched request
    key: CallKey  # the same key ⇒ the same answer

    @classmethod
    def of(cls, endpoint: Mapping[str, Any], function: str | None, args: Mapping[str, Any]) -> ModelCall:
        group = call_group(endpoint, function)
        return cls(dict(endpoint), function, dict(args), group, (*group, canonical_args(args)))


def call_group(endpoint: Mapping[str, Any], function: str | None) -> CallKey:
    """Calls to a named model go to whichever of its instances; a nameless endpoint is its URL."""
    name = endpoint.get("name")
    if name:
        return ("model", str(name), _text(endpoint.get("version")), function)
    return ("url", _text(endpoint.get("url")), function)


_SCALARS = (str, int, float, bool, type(None))


def canonical_args(args: Mapping[str, Any]) -> Any:
    """A hashable form of ``args``, equal for equal maps (key order aside) and different when a
    value's type differs (``1``, ``1.0``, ``True`` and ``'1'`` are different arguments)."""
    try:
        if all(type(v) in _SCALARS for v in args.values()):
            return tuple(sorted((k, type(v).__name__, v) for k, v in args.items()))
    except TypeError:  # keys of mixed types
        pass
    return _canonical(args)


class Deferred(BaseException):
    """Raised by :class:`DeferringGateway` to suspend an evaluation until ``call`` is answered.

    A ``BaseException`` on purpose: it must travel through ``MAAS_MODEL_APPLY`` (which turns every
    ``Exception`` of a gateway into null) and the evaluator up to the pipeline.
    """

    def __init__(self, call: ModelCall) -> None:
        super().__init__(call.key)
        self.call = call


class CallMemo:
    """The answers to the model calls of one batch of events, by :attr:`ModelCall.key`."""

    def __init__(self) -> None:
        self._answers: dict[CallKey, dict[str, Any] | None] = {}

    def __contains__(self, key: CallKey) -> bool:
        return key in self._answers

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: CallKey) -> dict[str, Any] | None:
        return self._answers[key]

    def update(self, answers: Mapping[CallKey, dict[str, Any] | None]) -> None:
        self._answers.update(answers)


class DeferringGateway:
    """The gateway expressions see while a batch is collected: model calls are answered from the
    memo or deferred; endpoint lookups go to the real gateway once per model and version for the
    batch (its calls to a model go to one instance anyway, so every event sees that one)."""

    def __init__(self, gateway: ModelGateway, memo: CallMemo) -> None:
        self.gateway = gateway
        self.memo = memo
        self._endpoints: dict[tuple[str, str | None], dict[str, Any] | None] = {}

    def get_endpoint(self, name: str, version: str | None = None) -> dict[str, Any] | None:
        key = (name, version)
        if key not in self._endpoints:
            self._endpoints[key] = self.gateway.get_endpoint(name, version)
        return self._endpoints[key]

    def apply(self, endpoint: dict[str, Any], function: str | None, args: dict[str, Any]) -> dict[str, Any] | None:
        group = call_group(endpoint, function)
        key = (*group, canonical_args(args))
        if key in self.memo:
            return self.memo.get(key)
        raise Deferred(ModelCall(dict(endpoint), function, dict(args), group, key))


def resolve(gateway: ModelGateway, calls: Sequence[ModelCall], *, max_workers: int = 8) -> dict[CallKey, Any]:
    """Answer ``calls`` (distinct keys) with one request per group; returns answers by key.

    A group with several calls goes to ``gateway.apply_batch`` when the gateway has it, with the
    first call's endpoint (any instance of the model will do); a group of one, or a gateway without
    batches, gets plain ``apply`` calls. If ``apply_batch`` raises or answers the wrong number of
    rows, its rows are asked one by one. Groups are resolved concurrently. Never raises: a call
    that fails is answered None, as ``MAAS_MODEL_APPLY`` would make it.
    """
    groups: dict[CallKey, list[ModelCall]] = {}
    for call in calls:
        groups.setdefault(call.group, []).append(call)
    batches = list(groups.values())
    answers: dict[CallKey, Any] = {}
    if len(batches) == 1:
        answers.update(_resolve_group(gateway, batches[0]))
    elif batches:
        with ThreadPoolExecutor(max_workers=min(max_workers, len(batches)), thread_name_prefix="maas-batch") as pool:
            for part in pool.map(lambda group: _resolve_group(gateway, group), batches):
                answers.update(part)
    return answers


def _resolve_group(gateway: ModelGateway, calls: list[ModelCall]) -> dict[CallKey, Any]:
    batch = getattr(gateway, "apply_batch", None)
    if len(calls) > 1 and callable(batch):
        first = calls[0]
        try:
            results = batch(first.endpoint, first.function, [c.args for c in calls])
        except Exception as exc:  # a broken gateway must not stop the stream: ask row by row
            log.warning("batched call to %s failed (%s); calling row by row", _describe(first), exc)
        else:
            if isinstance(results, list) and len(results) == len(calls):
                return {c.key: r for c, r in zip(calls, results)}
            log.warning("batched call to %s answered %s for %d rows; calling row by row", _describe(first),
                        f"{len(results)} results" if isinstance(results, list) else type(results).__name__,
                        len(calls))
    return {c.key: _apply_one(gateway, c) for c in calls}


def _apply_one(gateway: ModelGateway, call: ModelCall) -> Any:
    try:
        return gateway.apply(call.endpoint, call.function, call.args)
    except Exception as exc:  # MAAS_MODEL_APPLY would turn it into null: so do we
        log.warning("MAAS_MODEL_APPLY on %s failed: %s", _describe(call), exc)
        return None


def _describe(call: ModelCall) -> str:
    name = call.endpoint.get("name") or call.endpoint.get("url")
    version = call.endpoint.get("version")
    return f"{name}@{version}/{call.function or 'apply'}" if version is not None else f"{name}/{call.function or 'apply'}"


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _canonical(value: Any) -> str:
    """A text equal for equal argument maps (key order aside) and different for different types."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr, allow_nan=True)
    except (TypeError, ValueError):  # keys of mixed types, or a cycle
        return repr(value)
