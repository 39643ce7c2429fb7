"""The enrichment pipeline: JSON lines in, enriched JSON lines and error records out.

:class:`EnrichmentPipeline` takes a batch of input lines at a time. Each line is parsed (a JSON
object, or an error record), then the config's assignments are evaluated in order for every event
of the batch — with model calls micro-batched across the events (:mod:`.batching`) unless
``batch_calls`` is off — and each event is either written enriched or, when an expression raised,
sent whole to the error output with the reason and the original line. Nothing an event holds stops
the stream.

Error records follow Metron's error messages: ``error_type`` (``parser_error`` for a line that is
not JSON, ``parser_invalid`` for JSON that is not an object, ``enrichment_error`` /
``threat_intel_error`` for a failed expression), ``message``, ``raw_message`` (the original line)
and ``timestamp``, plus ``source`` (``file:line``) and, for a failed expression, ``field``,
``expression`` and ``position``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from stellar_like.context import Context
from enrichment.batching import CallMemo, Deferred, DeferringGateway, ModelCall, resolve
from enrichment.config import Assignment, EnrichmentConfig
from stellar_like.errors import StellarError
from stellar_like.gateway import ModelGateway

__all__ = ["EnrichmentPipeline", "Failure", "Line", "Outcome", "PipelineStats"]

log = logging.getLogger(__name__)

#: Rounds one field of one event may defer before it is evaluated with direct (unbatched) calls.
MAX_ROUNDS = 16


@dataclass(frozen=True)
class Line:
    """One input line: its text and where it came from (``path:line``)."""

    text: str
    source: str = ""
    error: str | None = None  # set when the bytes were not UTF-8 (``text`` is then a lossy decoding)


@dataclass(frozen=True)
class Failure:
    """Why an event was not enriched; :meth:`record` is the JSON error record."""

    error_type: str
    message: str
    line: Line | None = None
    field: str | None = None
    expression: str | None = None
    position: tuple[int, int] | None = None  # (line, column) in the expression

    def record(self) -> dict[str, Any]:
        data: dict[str, Any] = {"error_type": self.error_type, "message": self.message}
        if self.field is not None:
            data["field"] = self.field
        if self.expression is not None:
            data["expression"] = self.expression
        if self.position is not None:
            data["position"] = {"line": self.position[0], "column": self.position[1]}
        if self.line is not None:
            data["raw_message"] = self.line.text
            if self.line.source:
                data["source"] = self.line.source
        data["timestamp"] = int(time.time() * 1000)
        return data


@dataclass(frozen=True)
class Outcome:
    """What became of one line: ``text`` is the JSON line to write, to the output when ``ok``,
    to the error output otherwise (then ``failure`` says why)."""

    ok: bool
    text: str
    failure: Failure | None = None


@dataclass
class PipelineStats:
    """Counters since the pipeline was made."""

    lines: int = 0
    enriched: int = 0
    errors: int = 0
    batches: int = 0
    rounds: int = 0  # collect/resolve rounds (batched mode)
    model_calls: int = 0  # distinct model calls resolved in batches
    model_requests: int = 0  # groups resolved: one batched (or single) request each
    extra: dict[str, Any] = field(default_factory=dict)


class _Event:
    """An event being enriched: its variables and how far it got."""

    __slots__ = ("assigned", "cursor", "failure", "rounds", "variables")

    def __init__(self, variables: dict[str, Any]) -> None:
        self.variables = variables
        self.cursor = 0
        self.rounds = 0
        self.failure: Failure | None = None
        self.assigned: dict[str, None] = {}  # fields set by the config, in order


class EnrichmentPipeline:
    """Applies an :class:`EnrichmentConfig` to batches of events.

    ``gateway`` serves MAAS_GET_ENDPOINT / MAAS_MODEL_APPLY (None: those functions fail, as with no
    gateway configured). ``context`` supplies other services (its gateway is replaced). With
    ``batch_calls`` (the default) the model calls of a batch are grouped into batched requests;
    without, every call is made as it is evaluated — the reference semantics, which batching keeps.
    """

    def __init__(self, config: EnrichmentConfig, gateway: ModelGateway | None = None, *,
                 context: Context | None = None, batch_calls: bool = True, max_rounds: int = MAX_ROUNDS) -> None:
        self.config = config
        self.gateway = gateway
        self.batch_calls = batch_calls and gateway is not None
        self.max_rounds = max_rounds
        self._base = context if context is not None else Context()
        self._direct = self._base.replace(gateway=gateway)
        self.stats = PipelineStats()
        self._lock = threading.Lock()  # batches may be processed on several threads (run's in_flight)

    def _count(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                setattr(self.stats, name, getattr(self.stats, name) + delta)

    # -- lines ------------------------------------------------------------------------------------
    def process(self, lines: Sequence[Line]) -> list[Outcome]:
        """Parse, enrich and encode a batch of lines; one outcome per line, in order. Batches may be
        processed concurrently (each on its own thread)."""
        parsed: list[dict[str, Any] | Failure] = [_parse(line) for line in lines]
        events = [p for p in parsed if not isinstance(p, Failure)]
        enriched = iter(self.enrich(events))
        outcomes: list[Outcome] = []
        for line, item in zip(lines, parsed):
            result = item if isinstance(item, Failure) else next(enriched)
            if isinstance(result, Failure):
                outcomes.append(self._failed(result, line))
                continue
            try:
                text = _encode(result)
            except ValueError as exc:
                outcomes.append(self._failed(Failure("enrichment_error", str(exc)), line))
                continue
            outcomes.append(Outcome(True, text))
        done = sum(1 for o in outcomes if o.ok)
        self._count(batches=1, lines=len(lines), enriched=done, errors=len(outcomes) - done)
        return outcomes

    def _failed(self, failure: Failure, line: Line) -> Outcome:
        if failure.line is None:
            failure = Failure(failure.error_type, failure.message, line, failure.field, failure.expression,
                              failure.position)
        return Outcome(False, json.dumps(failure.record(), ensure_ascii=False, default=str), failure)

    def run(self, batches: Iterable[Sequence[Line]], write: Callable[[str], object],
            write_error: Callable[[str], object], flush: Callable[[], object] | None = None, *,
            in_flight: int = 1) -> PipelineStats:
        """Process every batch, writing each outcome as a line (``flush`` after each batch).

        With ``in_flight`` > 1, that many batches are processed at once, on threads, so that one
        is evaluated while another waits for its model calls; the output keeps the input order.
        """
        def emit(outcomes: list[Outcome]) -> None:
            for outcome in outcomes:
                (write if outcome.ok else write_error)(outcome.text)
            if flush is not None:
                flush()

        if in_flight <= 1:
            for batch in batches:
                emit(self.process(batch))
            return self.stats
        with ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="enrich") as pool:
            pending: deque[Future[list[Outcome]]] = deque()
            for batch in batches:
                pending.append(pool.submit(self.process, batch))
                while len(pending) >= in_flight:
                    emit(pending.popleft().result())
            while pending:
                emit(pending.popleft().result())
        return self.stats

    # -- events -----------------------------------------------------------------------------------
    def enrich(self, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any] | Failure]:
        """The enriched events (new dicts), or a :class:`Failure` for each event an expression
        failed on; same order."""
        states = [_Event(dict(e)) for e in events]
        if self.batch_calls:
            self._enrich_batched(states)
        else:
            for state in states:
                self._advance(state, self._direct, None)
        return [s.failure if s.failure is not None else self._finish(s) for s in states]

    def _enrich_batched(self, states: list[_Event]) -> None:
        assert self.gateway is not None
        memo = CallMemo()
        collecting = self._base.replace(gateway=DeferringGateway(self.gateway, memo))
        pending = states
        while pending:
            calls: dict[Any, ModelCall] = {}
            waiting: list[_Event] = []
            for state in pending:
                call = self._advance(state, collecting, memo)
                if call is not None:
                    calls.setdefault(call.key, call)
                    waiting.append(state)
            if calls:
                self._count(rounds=1, model_calls=len(calls), model_requests=len({c.group for c in calls.values()}))
                memo.update(resolve(self.gateway, list(calls.values())))
            pending = waiting

    def _advance(self, state: _Event, context: Context, memo: CallMemo | None) -> ModelCall | None:
        """Evaluate the event's next fields until one needs a model call not answered yet (returned)
        or all are done; a failing expression ends the event with a :class:`Failure`."""
        assignments = self.config.assignments
        while state.cursor < len(assignments):
            assignment = assignments[state.cursor]
            ctx = context
            if memo is not None and state.rounds >= self.max_rounds:
                ctx = self._direct  # calls that keep changing: stop batching this field
            try:
                value = assignment.compiled.evaluate(state.variables, ctx)
            except Deferred as deferred:
                state.rounds += 1
                return deferred.call
            except StellarError as exc:
                state.failure = _failure(assignment, exc)
                state.cursor = len(assignments)
                return None
            self._assign(state, assignment, value)
            state.cursor += 1
            state.rounds = 0
        return None

    def _assign(self, state: _Event, assignment: Assignment, value: Any) -> None:
        name = assignment.field
        if value is None and self.config.nulls == "drop":
            state.variables.pop(name, None)
        else:
            state.variables[name] = value
        state.assigned[name] = None

    def _finish(self, state: _Event) -> dict[str, Any]:
        """The output event: nulls, maps and ``keep`` applied to the fields the config set."""
        variables = state.variables
        keep = self.config.keep
        unfold = self.config.maps == "unfold"
        if keep is None and not unfold:
            return variables
        out: dict[str, Any] = {}
        for name, value in variables.items():
            if name in state.assigned:
                if keep is not None and name not in keep:
                    continue
                if unfold and isinstance(value, Mapping):
                    for key, item in value.items():
                        out[f"{name}.{key}" if name else str(key)] = item
                    continue
            out[name] = value
        return out


def _parse(line: Line) -> dict[str, Any] | Failure:
    if line.error is not None:
        return Failure("parser_error", line.error, line)
    try:
        data = json.loads(line.text, parse_constant=_reject_constant)
    except RecursionError:
        return Failure("parser_error", "the line is nested too deeply", line)
    except ValueError as exc:
        return Failure("parser_error", f"not valid JSON: {exc}", line)
    if not isinstance(data, dict):
        return Failure("parser_invalid", f"a JSON {_json_kind(data)}, not an object: an event must be a JSON object",
                       line)
    return data


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _failure(assignment: Assignment, exc: StellarError) -> Failure:
    position = (exc.position.line, exc.position.column) if exc.position is not None else None
    error_type = "threat_intel_error" if assignment.stage == "threat_intel" else "enrichment_error"
    return Failure(error_type, f"field {assignment.field!r}: {exc.message}", None, assignment.field,
                   assignment.expression, position)


def _encode(event: Mapping[str, Any]) -> str:
    """One JSON line; raises ValueError naming the field when a value has no JSON form."""
    try:
        try:
            return json.dumps(event, ensure_ascii=False, allow_nan=False)
        except TypeError:  # a set, or another value JSON has no type for
            return json.dumps(_jsonable(event), ensure_ascii=False, allow_nan=False)
    except ValueError:
        for name, value in event.items():
            try:
                json.dumps(_jsonable(value), allow_nan=False)
            except ValueError:
                raise ValueError(f"field {name!r} holds {value!r}, which JSON cannot represent") from None
        raise


def _jsonable(value: Any) -> Any:
    """``value`` with JSON's types: maps with text keys, lists; anything else as its text."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {k if isinstance(k, str) else _key(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return [_jsonable(v) for v in sorted(value, key=repr)]
    return str(value)


def _key(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "list"
