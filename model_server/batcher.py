"""Adaptive batching: concurrent requests to one model coalesced into one onnxruntime call.

The loop is a "continuous batching" loop, like Triton's dynamic batcher with no queue delay:

* a request that reaches an idle runner with an empty queue is dispatched at once, by its own
  coroutine (no hand-over to the loop): at low load nothing waits;
* requests that arrive while an inference runs queue up. When the runner frees up it takes every
  queued request that fits — the same input names, dtypes and per-row shapes and the same
  requested outputs, ``max_batch_size`` rows in all — stacks their tensors along the first (batch)
  dimension and runs them as one call. With ``max_queue_delay`` > 0 such a batch (never a lone
  request at an idle runner) may wait that long for more requests while it is not full;
* the outputs are split back along the first dimension, one slice per request, in order.

A lone one-row request at an idle runner normally still hops to the runner thread and back (two
thread wake-ups, about as long as a small model's inference). When the model has shown itself
cheap — its recent one-row calls took at most ``max_inline`` seconds (an exponentially weighted
mean) — such a request is run on the event loop itself instead. It first yields to the loop once,
so requests that arrived with it queue behind it (the runner is claimed) and, if any did, it goes
to the runner thread as before and the others are batched after it: under load, batching is
unchanged; a single caller saves the hop. A model call slower than ``max_inline`` (or a request
of several rows) never blocks the loop.

Requests are validated by the protocols before they reach the batcher, so a malformed row never
joins a batch. Should a coalesced call still fail, or return an output that cannot be split by
rows, every request of that batch is run again on its own: one request's problem never reaches
another, and batching never changes a result. Models that cannot be batched (an input's first
dimension fixed at 1, a fixed-size output) and ``--no-batching`` run each request by itself,
concurrently, in the thread pool.

The queue is bounded: a request that would bring the rows waiting for the model (queued behind the
running call; without batching, submitted and not finished) over ``max_queue_rows`` is refused at
once with :class:`~model_server.errors.Overloaded` (503, ``Retry-After``), so an overloaded server
answers quickly instead of letting latency grow without bound; what already waits is not affected.

The runner is one dedicated thread — onnxruntime releases the GIL while it computes — so the event
loop goes on parsing requests, and so filling the next batch, while a batch runs. :meth:`Batcher.stop`
finishes every queued request before it returns (graceful shutdown).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping, Protocol, Sequence

import numpy as np
from starlette.concurrency import run_in_threadpool

from model_server.errors import InferenceError, ModelNotReady, ModelServerError, Overloaded

log = logging.getLogger("model_server.batcher")

#: ``ModelRuntime.infer``: named input tensors, the output names to compute → named outputs.
InferFn = Callable[[Mapping[str, np.ndarray], Sequence[str]], dict[str, Any]]


class BatchObserver(Protocol):
    """What the batcher reports (implemented by :class:`model_server.metrics.Metrics`)."""

    def observe_queue(self, seconds: float) -> None:
        """A request waited ``seconds`` between its submission and the start of its inference."""

    def observe_batch(self, rows: int, requests: int, seconds: float) -> None:
        """One onnxruntime call on ``rows`` rows from ``requests`` requests took ``seconds``."""


class _NullObserver:
    def observe_queue(self, seconds: float) -> None:
        pass

    def observe_batch(self, rows: int, requests: int, seconds: float) -> None:
        pass


Outcome = dict[str, Any] | BaseException


@dataclass(eq=False)
class _Request:
    inputs: Mapping[str, np.ndarray]
    outputs: tuple[str, ...]
    rows: int
    key: Hashable
    future: asyncio.Future[dict[str, Any]]
    enqueued: float


class _Unsplittable(Exception):
    """A coalesced call returned an output whose first dimension is not the batch's rows."""


def rows_of(inputs: Mapping[str, np.ndarray]) -> int:
    """The rows of a request: the first dimension of its tensors (the protocols check they agree)."""
    for value in inputs.values():
        return int(value.shape[0]) if value.ndim else 1
    return 0


def batch_key(inputs: Mapping[str, np.ndarray], outputs: Sequence[str]) -> Hashable:
    """Requests with equal keys can be stacked: same inputs, dtypes, per-row shapes and outputs."""
    return (tuple(sorted(outputs)),
            tuple(sorted((name, value.dtype.str, value.shape[1:]) for name, value in inputs.items())))



class Batcher:
    """Coalesces concurrent :meth:`infer` calls into batched calls of ``infer_fn``.

    ``enabled`` False (``--no-batching``, or a model that cannot be batched) runs every call by
    itself in the thread pool. Until :meth:`start` ran in the serving event loop — and from
    another event loop — calls also run by themselves.
    """

    def __init__(self, infer_fn: InferFn, *, max_batch_size: int, max_queue_delay: float = 0.0,
                 max_queue_rows: int | None = None, enabled: bool = True, max_inline: float = 0.0,
                 observer: BatchObserver | None = None) -> None:
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be at least 1")
        if max_queue_rows is not None and max_queue_rows < 1:
            raise ValueError("max_queue_rows must be at least 1")
        if max_queue_delay < 0:
            raise ValueError("max_queue_delay must not be negative")
        if max_inline < 0:
            raise ValueError("max_inline must not be negative")
        self._infer = infer_fn
        self.max_batch_size = max_batch_size
        self.max_queue_delay = max_queue_delay
        self.max_queue_rows = max_queue_rows
        self.enabled = enabled
        self.max_inline = max_inline
        self.inline_calls = 0  # requests run on the event loop (see the module's docstring)
        self._one_row_cost: float | None = None  # EWMA of one-row call durations, seconds
        self.observer: BatchObserver = observer or _NullObserver()
        self._queue: deque[_Request] = deque()
        self._queued_rows = 0
        self._direct_rows = 0  # rows submitted to the thread pool and not finished (no batching)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False
        self._busy = False  # an onnxruntime call is running (or about to)
        self._alone: asyncio.Future[list[Outcome]] | None = None  # the call of a request that went at once
        self._filling = False  # a batch waits for more requests (max_queue_delay)
        self._warned_fallback = False

    # -- state ----------------------------------------------------------------------------------
    @property
    def queued_rows(self) -> int:
        """Rows waiting for the model: queued for the runner, or (without batching) submitted to the
        thread pool and not finished."""
        return self._queued_rows + self._direct_rows

    def _admit(self, rows: int) -> None:
        """Refuse a request whose rows would bring the wait over ``max_queue_rows``."""
        waiting = self.queued_rows
        if self.max_queue_rows is not None and waiting + rows > self.max_queue_rows:
            raise Overloaded(f"the model server is overloaded: {waiting} rows are waiting for the model and this "
                             f"request brings {rows} more (at most {self.max_queue_rows} may wait); retry later")

    @property
    def queued_requests(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> bool:
        """The coalescing loop runs (started, not stopped)."""
        return self._task is not None and not self._task.done()

    # -- life cycle -----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the coalescing loop in the running event loop (no-op when batching is disabled)."""
        self._closing = False
        if not self.enabled or self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-server-batcher")
        self._task = self._loop.create_task(self._run_loop(), name="model-server-batcher")

    async def stop(self) -> None:
        """Refuse new requests, finish every queued one, then stop the loop and its thread."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            assert self._wake is not None
            self._wake.set()
            await task
        if self._alone is not None:
            await asyncio.wait([self._alone])
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    # -- requests -------------------------------------------------------------------------------
    async def infer(self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]) -> dict[str, Any]:
        """The outputs for one request's validated input tensors (batch dimension first)."""
        if self._closing:
            raise ModelNotReady("the model server is shutting down")
        loop = asyncio.get_running_loop()
        if not self.running or loop is not self._loop:
            return await self._direct(inputs, outputs)
        rows = rows_of(inputs)
        request = _Request(inputs, tuple(outputs), rows, batch_key(inputs, outputs), loop.create_future(),
                           time.perf_counter())
        if not self._busy and not self._queue:  # an idle runner: go at once
            if rows == 1 and self._cheap():
                return await self._run_inline(request)
            return await self._dispatch_alone(request)
        self._admit(rows)
        self._queue.append(request)
        self._queued_rows += rows
        if not self._busy or self._filling:  # else the end of the running call looks at the queue anyway
            assert self._wake is not None
            self._wake.set()
        return await request.future

    async def _dispatch_alone(self, request: _Request) -> dict[str, Any]:
        """Run a request that found the runner idle, from its own coroutine. The runner stays busy
        until the call ends, even if the caller goes away; then the loop takes what queued meanwhile."""
        assert self._loop is not None and self._executor is not None
        self._busy = True
        self.observer.observe_queue(time.perf_counter() - request.enqueued)
        call = self._loop.run_in_executor(self._executor, self._run_batch, [request])
        call.add_done_callback(self._runner_free)
        self._alone = call
        (outcome,) = await asyncio.shield(call)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _cheap(self) -> bool:
        """One-row calls of this model are known to take at most ``max_inline``."""
        cost = self._one_row_cost
        return cost is not None and cost <= self.max_inline

    async def _run_inline(self, request: _Request) -> dict[str, Any]:
        """Run a lone one-row request on the event loop (the model is cheap): claim the runner, let
        the requests that arrived with it queue, then run it here if none did, else on the runner
        thread as :meth:`_dispatch_alone` does."""
        self._busy = True
        try:
            await asyncio.sleep(0)
        except BaseException:
            self._runner_free(None)
            raise
        if self._queue or self._closing:
            self._busy = False  # hand it to the thread; the queue is taken when that call ends
            return await self._dispatch_alone(request)
        self.observer.observe_queue(time.perf_counter() - request.enqueued)
        try:
            (outcome,) = self._run_batch([request])
            self.inline_calls += 1
        finally:
            self._runner_free(None)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _runner_free(self, _: asyncio.Future[Any] | None) -> None:
        self._busy = False
        self._alone = None
        if self._queue and self._wake is not None:
            self._wake.set()

    async def _direct(self, inputs: Mapping[str, np.ndarray], outputs: Sequence[str]) -> dict[str, Any]:
        """One request by itself, in the thread pool (concurrently with others)."""
        enqueued = time.perf_counter()
        rows = rows_of(inputs)
        self._admit(rows)

        def run() -> dict[str, Any]:
            start = time.perf_counter()
            self.observer.observe_queue(start - enqueued)
            try:
                return self._infer(inputs, outputs)
            finally:
                self.observer.observe_batch(rows, 1, time.perf_counter() - start)

        self._direct_rows += rows
        try:
            return await run_in_threadpool(run)
        finally:
            self._direct_rows -= rows

    # -- the loop -------------------------------------------------------------------------------
    async def _run_loop(self) -> None:
        assert self._wake is not None and self._loop is not None
        try:
            while True:
                # A request only queues when it found the runner busy (or others queued): every batch
                # formed here queued behind a running inference, so it may wait for more.
                if not self._queue or self._busy:
                    if self._closing and not self._queue:
                        return
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                batch, rows = self._take([], 0)
                if not batch:
                    continue
                self._busy = True
                try:
                    if self.max_queue_delay > 0 and rows < self.max_batch_size and not self._closing:
                        batch, rows = await self._fill(batch, rows)
                    await self._execute(batch)
                finally:
                    self._busy = False
        except asyncio.CancelledError:
            self._fail_queued(ModelNotReady("the model server stopped before running the request"))
            raise
        except BaseException as exc:  # a bug: answer what is queued rather than leave it hanging
            log.exception("the batching loop failed; requests now run one by one")
            self._fail_queued(InferenceError(f"internal error in the batcher: {type(exc).__name__}"))
            raise

    async def _fill(self, batch: list[_Request], rows: int) -> tuple[list[_Request], int]:
        """Wait up to ``max_queue_delay`` for more compatible requests while the batch is not full."""
        assert self._wake is not None and self._loop is not None
        deadline = self._loop.time() + self.max_queue_delay
        self._filling = True
        try:
            while rows < self.max_batch_size and not self._closing:
                remaining = deadline - self._loop.time()
                if remaining <= 0:
                    break
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), remaining)
                except TimeoutError:
                    break
                batch, rows = self._take(batch, rows)
        finally:
            self._filling = False
        return self._take(batch, rows)

    def _take(self, batch: list[_Request], rows: int) -> tuple[list[_Request], int]:
        """Move queued requests that fit into ``batch``: same key as its first request, at most
        ``max_batch_size`` rows. Others keep their order; a request of the batch's key that does not
        fit stops the scan, so a large request is never overtaken for ever."""
        key = batch[0].key if batch else None
        kept: deque[_Request] = deque()
        while self._queue:
            if rows >= self.max_batch_size:
                break
            request = self._queue.popleft()
            if request.future.done():  # its caller went away (cancelled)
                self._queued_rows -= request.rows
                continue
            if key is None or (request.key == key and rows + request.rows <= self.max_batch_size):
                key = request.key
                batch.append(request)
                rows += request.rows
                self._queued_rows -= request.rows
                continue
            kept.append(request)
            if request.key == key:
                break
        if kept:
            kept.extend(self._queue)
            self._queue = kept
        return batch, rows

    async def _execute(self, batch: list[_Request]) -> None:
        assert self._loop is not None and self._executor is not None
        started = time.perf_counter()
        for request in batch:
            self.observer.observe_queue(started - request.enqueued)
        outcomes: Sequence[Outcome]
        try:
            outcomes = await self._loop.run_in_executor(self._executor, self._run_batch, batch)
        except asyncio.CancelledError:
            self._answer(batch, [ModelNotReady("the model server stopped before running the request")] * len(batch))
            raise
        except Exception as exc:  # the executor itself failed
            log.exception("the batch runner failed")
            outcomes = [InferenceError(f"internal error in the batch runner: {type(exc).__name__}")] * len(batch)
        self._answer(batch, outcomes)

    @staticmethod
    def _answer(batch: Sequence[_Request], outcomes: Sequence[Outcome]) -> None:
        for request, outcome in zip(batch, outcomes):
            if request.future.done():
                continue
            if isinstance(outcome, BaseException):
                request.future.set_exception(outcome)
            else:
                request.future.set_result(outcome)

    def _fail_queued(self, error: ModelServerError) -> None:
        while self._queue:
            request = self._queue.popleft()
            if not request.future.done():
                request.future.set_exception(error)
        self._queued_rows = 0

    # -- the runner thread ----------------------------------------------------------------------
    def _run_batch(self, batch: list[_Request]) -> list[Outcome]:
        if len(batch) == 1:
            return [self._run_one(batch[0])]
        start = time.perf_counter()
        rows = sum(r.rows for r in batch)
        try:
            merged = {name: np.concatenate([r.inputs[name] for r in batch], axis=0) for name in batch[0].inputs}
            outcomes = self._split(self._infer(merged, batch[0].outputs), batch, rows)
        except Exception as exc:  # run each request alone: only a culprit gets an error
            level = logging.DEBUG if self._warned_fallback else logging.WARNING
            self._warned_fallback = True
            log.log(level, "a batch of %d requests failed (%s: %s); running them one by one",
                    len(batch), type(exc).__name__, exc)
            return [self._run_one(r) for r in batch]
        self.observer.observe_batch(rows, len(batch), time.perf_counter() - start)
        return outcomes

    @staticmethod
    def _split(results: Mapping[str, Any], batch: Sequence[_Request], rows: int) -> list[Outcome]:
        for name, value in results.items():
            if len(value) != rows:
                raise _Unsplittable(f"output {name!r} has {len(value)} rows for {rows} input rows")
        outcomes: list[Outcome] = []
        offset = 0
        for request in batch:
            end = offset + request.rows
            outcomes.append({name: value[offset:end] for name, value in results.items()})
            offset = end
        return outcomes

    def _run_one(self, request: _Request) -> Outcome:
        start = time.perf_counter()
        try:
            return self._infer(request.inputs, request.outputs)
        except ModelServerError as exc:
            return exc
        except Exception as exc:  # not translated by the runtime: a bug, reported as such
            error = InferenceError(f"inference failed: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            return error
        finally:
            seconds = time.perf_counter() - start
            if request.rows == 1:
                previous = self._one_row_cost
                self._one_row_cost = seconds if previous is None else 0.8 * previous + 0.2 * seconds
            self.observer.observe_batch(request.rows, 1, seconds)
