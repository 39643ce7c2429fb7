"""The job queue: long work (training, historical inference) queued in the database and run by
worker threads in one or several ``maas_lifecycle serve`` processes (docs/lifecycle.md;
docs/lifecycle.md, "Jobs").

Guarantees
  * A job survives a restart: it is a row in ``jobs`` from the moment it is queued.
  * A job is run by one worker at a time: claiming is one atomic step — on PostgreSQL under a
    transaction-scoped advisory lock with ``SELECT … FOR UPDATE SKIP LOCKED``, on SQLite one
    conditional ``UPDATE … RETURNING`` (SQLite has a single writer) — and every later write of
    the worker (progress, heartbeat, the outcome) is conditional on it still holding the job.
  * FIFO: the oldest queued job that may run is taken first.
  * Per-model serialisation: jobs with the same ``serial_key`` (the model, by default) run one at
    a time; a unique partial index on ``serial_key`` over running jobs makes the database itself
    refuse a second one.
  * A concurrency cap: a claim is refused while ``cap`` jobs are running (all workers sharing the
    database count).
  * Leases: a running job holds a lease that its worker's heartbeat renews. A job whose lease ran
    out (its worker was killed, the machine stopped) is *reaped* by any worker: queued again while
    ``attempts < max_attempts``, else ``failed`` with the reason "worker died". Never lost, never
    stuck in ``running``.
  * Cancelling a queued job ends it at once; a running job gets a flag that the handler sees at its
    next ``ctx.check_cancelled()`` (or ``ctx.cancelled``), after which it ends ``cancelled``.

Why not a library: procrastinate and PgQueuer are PostgreSQL-only (LISTEN/NOTIFY, PL/pgSQL
procedures); huey's SQL storage deletes a task when a worker takes it (a worker that dies loses
it) and has no leases, progress or per-key serialisation; Celery, Dramatiq and RQ need a Redis or
RabbitMQ broker beside the database. None runs on both SQLite and PostgreSQL with the guarantees
above, so this module implements them in about one screen of SQL.

The status machine is the table :data:`TRANSITIONS`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    Index,
    Integer,
    String,
    Text,
    and_,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from lifecycle.db import Base, UTCDateTime, utcnow
from lifecycle.errors import Conflict, InvalidInput, LifecycleError, NotFound
from maas.retry import Backoff

log = logging.getLogger(__name__)

STATES = ("queued", "running", "done", "failed", "cancelled")
FINAL = frozenset({"done", "failed", "cancelled"})

#: The status machine of a job: (state, event) → new state.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("queued", "claim"): "running",  # a worker takes it (attempts + 1, a lease)
    ("queued", "cancel"): "cancelled",  # at once
    ("running", "cancel"): "running",  # cancel_requested set; the handler stops cooperatively
    ("running", "heartbeat"): "running",  # the lease is renewed
    ("running", "succeed"): "done",  # the handler returned (its result recorded)
    ("running", "error"): "failed",  # the handler raised (its error recorded)
    ("running", "stopped"): "cancelled",  # the handler saw the cancel flag and stopped
    ("running", "lease_expired"): "queued",  # its worker died, attempts < max_attempts: run again
    ("running", "lease_expired_last"): "failed",  # its worker died on the last attempt: "worker died"
}

PG_CLAIM_LOCK = 0x6D616173  # the advisory lock key serialising claims ("maas")


def next_state(state: str, event: str) -> str:
    """The state after ``event``; Conflict when the machine does not allow it."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise Conflict(f"a {state} job cannot {event.replace('_', ' ')}", field="state") from None


class Job(Base):
    """One queued, running or finished job."""

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(50))
    model: Mapped[str | None] = mapped_column(String(100), nullable=True, index=True)
    serial_key: Mapped[str | None] = mapped_column(String(100), nullable=True)  # one running job per key
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index("uq_jobs_running_serial_key", "serial_key", unique=True,
              sqlite_where=text("state = 'running'"), postgresql_where=text("state = 'running'")),
    )

    def to_json(self) -> dict[str, Any]:
        """The API's view of a job (``GET /api/v1/jobs/{id}``)."""
        return {
            "id": self.id, "kind": self.kind, "model": self.model, "state": self.state, "params": self.params,
            "created_by": self.created_by, "created_at": _iso(self.created_at), "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at), "attempts": self.attempts, "max_attempts": self.max_attempts,
            "worker": self.worker, "cancel_requested": bool(self.cancel_requested), "progress": self.progress,
            "result": self.result, "error": self.error,
        }


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------
# Time
# ---------------------------------------------------------------------------------------------
class WallClock(Protocol):
    """Wall-clock time (leases are compared across processes) and sleeping."""

    def now(self) -> dt.datetime: ...

    def sleep(self, seconds: float) -> None: ...


class SystemWallClock:
    def now(self) -> dt.datetime:
        return utcnow()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeWallClock:
    """A wall clock that moves only when told to, for tests of leases and reaping."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)

    def now(self) -> dt.datetime:
        return self._now

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        self._now += dt.timedelta(seconds=max(0.0, seconds))


SYSTEM_WALL_CLOCK = SystemWallClock()


# ---------------------------------------------------------------------------------------------
# Queue operations (each takes a Session; the caller's transaction commits them)
# ---------------------------------------------------------------------------------------------
def enqueue(session: Session, kind: str, model: str | None, params: dict[str, Any] | None, actor: str, *,
            max_attempts: int = 3, serial: bool = True, clock: WallClock = SYSTEM_WALL_CLOCK) -> Job:
    """Queue a job; with ``serial`` (default) it runs only while no other job of ``model`` runs."""
    if not isinstance(kind, str) or not 0 < len(kind) <= 50:
        raise InvalidInput("a job kind is 1-50 characters", field="kind")
    if model is not None and not 0 < len(model) <= 100:
        raise InvalidInput("a model name is 1-100 characters", field="model")
    if not 1 <= max_attempts <= 100:
        raise InvalidInput("max_attempts is 1-100", field="max_attempts")
    params = dict(params or {})
    try:
        json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"job parameters must be JSON: {exc}", field="params") from exc
    job = Job(kind=kind, model=model, serial_key=model if serial else None, params=params, state="queued",
              created_by=actor, created_at=clock.now(), attempts=0, max_attempts=max_attempts,
              cancel_requested=False)
    session.add(job)
    session.flush()
    return job


def get(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"no job {job_id}", field="id")
    return job


def list_jobs(session: Session, *, state: str | None = None, model: str | None = None, kind: str | None = None,
              limit: int = 100, before_id: int | None = None) -> list[Job]:
    """Jobs newest first, optionally filtered; ``before_id`` pages backwards."""
    if state is not None and state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}", field="state")
    query = select(Job).order_by(Job.id.desc()).limit(max(1, min(limit, 1000)))
    if state is not None:
        query = query.where(Job.state == state)
    if model is not None:
        query = query.where(Job.model == model)
    if kind is not None:
        query = query.where(Job.kind == kind)
    if before_id is not None:
        query = query.where(Job.id < before_id)
    return list(session.scalars(query))


def cancel(session: Session, job_id: int, *, clock: WallClock = SYSTEM_WALL_CLOCK) -> Job:
    """Cancel: a queued job ends ``cancelled`` now; a running one is asked to stop."""
    job = get(session, job_id)
    new = next_state(job.state, "cancel")
    if job.state == "queued":
        done = session.execute(_update().where(Job.id == job_id, Job.state == "queued")
                               .values(state=new, ended_at=clock.now(), cancel_requested=True))
        if done.rowcount == 0:  # claimed meanwhile: ask the worker instead
            session.execute(_update().where(Job.id == job_id, Job.state == "running").values(cancel_requested=True))
    else:
        session.execute(_update().where(Job.id == job_id, Job.state == "running").values(cancel_requested=True))
    session.flush()
    session.refresh(job)
    return job


def _update() -> Any:
    """An UPDATE of jobs by SQL only (the ORM does not try to mirror it into loaded objects)."""
    return update(Job).execution_options(synchronize_session=False)


def _runnable(kinds: list[str]) -> Any:
    running_keys = select(Job.serial_key).where(Job.state == "running", Job.serial_key.is_not(None))
    return and_(Job.state == "queued", Job.kind.in_(kinds),
                or_(Job.serial_key.is_(None), Job.serial_key.not_in(running_keys)))


def claim(session: Session, worker: str, kinds: list[str], *, lease_s: float, cap: int | None = None,
          clock: WallClock = SYSTEM_WALL_CLOCK) -> Job | None:
    """Take the oldest runnable queued job of ``kinds`` for ``worker``; None when there is none.

    Commits (or rolls back) the session's transaction itself: a claim must be its own transaction.
    """
    if not kinds:
        return None
    now = clock.now()
    values = dict(state=next_state("queued", "claim"), worker=worker, started_at=now,
                  lease_expires=now + dt.timedelta(seconds=lease_s), attempts=Job.attempts + 1)
    running = select(func.count()).select_from(Job).where(Job.state == "running").scalar_subquery()
    try:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(select(func.pg_advisory_xact_lock(PG_CLAIM_LOCK)))
            if cap is not None and session.scalar(select(func.count()).select_from(Job)
                                                  .where(Job.state == "running")) >= cap:
                session.rollback()
                return None
            job_id = session.scalar(select(Job.id).where(_runnable(kinds)).order_by(Job.id).limit(1)
                                    .with_for_update(skip_locked=True))
            if job_id is None:
                session.rollback()
                return None
            session.execute(_update().where(Job.id == job_id).values(**values))
        else:
            # One statement: SQLite runs it under its single write lock, so the choice and the
            # update are atomic across threads and processes.
            oldest = select(Job.id).where(_runnable(kinds)).order_by(Job.id).limit(1).scalar_subquery()
            condition = [Job.id == oldest]
            if cap is not None:
                condition.append(running < cap)
            job_id = session.scalar(_update().where(*condition).values(**values).returning(Job.id))
            if job_id is None:
                session.rollback()
                return None
        session.commit()
    except IntegrityError:  # another worker started a job of the same serial key first
        session.rollback()
        return None
    return session.get(Job, job_id, populate_existing=True)


def reap(session: Session, *, clock: WallClock = SYSTEM_WALL_CLOCK) -> list[tuple[int, str]]:
    """Jobs whose lease expired: queued again (attempts left) or failed "worker died".

    Commits per job; each update is conditional on the job being as it was read, so several
    reapers at once are harmless. Returns ``(job id, new state)``.
    """
    now = clock.now()
    expired = session.execute(
        select(Job.id, Job.worker, Job.attempts, Job.max_attempts, Job.cancel_requested, Job.lease_expires)
        .where(Job.state == "running", Job.lease_expires < now).order_by(Job.id)).all()
    session.rollback()  # end the read before writing (SQLite: no lock upgrade)
    out: list[tuple[int, str]] = []
    for job_id, worker, attempts, max_attempts, cancel_requested, lease in expired:
        reason = (f"worker died: {worker} stopped renewing its lease (expired {_iso(lease)}) "
                  f"on attempt {attempts} of {max_attempts}")
        if cancel_requested:
            new, values = "cancelled", dict(ended_at=now, error=reason + "; the job had been cancelled")
        elif attempts < max_attempts:
            new, values = next_state("running", "lease_expired"), dict(error=reason + "; queued again")
        else:
            new, values = next_state("running", "lease_expired_last"), dict(ended_at=now, error=reason)
        result = session.execute(
            _update().where(Job.id == job_id, Job.state == "running", Job.worker == worker,
                              Job.attempts == attempts, Job.lease_expires < now)
            .values(state=new, worker=None, lease_expires=None, **values))
        session.commit()
        if result.rowcount:
            log.warning("job %d: %s → %s", job_id, reason, new)
            out.append((job_id, new))
    return out


# ---------------------------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------------------------
class Cancelled(LifecycleError):
    """Raised by :meth:`JobContext.check_cancelled` once the job was cancelled."""

    http_status = 409


class LeaseLost(LifecycleError):
    """The worker no longer holds the job (its lease ran out and it was reaped)."""


@dataclass
class JobContext:
    """What a handler gets: the job's fields, progress reporting, cancellation, the database."""

    job_id: int
    kind: str
    model: str | None
    params: dict[str, Any]
    attempt: int
    created_by: str
    worker: str
    sessions: sessionmaker[Session]
    _pool: "WorkerPool" = field(repr=False)
    services: dict[str, Any] = field(default_factory=dict, repr=False)  # the store, settings … of the process
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)
    _lost: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        """Raise :class:`Cancelled` once the job was cancelled (call it between units of work)."""
        if self._lost.is_set():
            raise LeaseLost(f"job {self.job_id}: this worker lost its lease")
        if self._cancel.is_set():
            raise Cancelled(f"job {self.job_id} was cancelled")

    def report_progress(self, progress: dict[str, Any]) -> None:
        """Replace the job's ``progress`` (JSON), written at once; raises if the job was taken away."""
        json.dumps(progress, allow_nan=False)
        with self.sessions() as session:
            result = session.execute(_update().where(Job.id == self.job_id, Job.worker == self.worker,
                                                       Job.state == "running").values(progress=progress))
            session.commit()
        if result.rowcount == 0:
            self._lost.set()
            raise LeaseLost(f"job {self.job_id}: this worker lost its lease")

    progress = report_progress


Handler = Callable[[JobContext], "dict[str, Any] | None"]

#: Handlers by job kind, filled by the modules that define them (``lifecycle.training`` registers
#: ``train``): ``jobs.register_handler("train", fn)``. A pool made without handlers runs these.
DEFAULT_HANDLERS: dict[str, Handler] = {}


def register_handler(kind: str, fn: Handler) -> None:
    """Make every pool built without its own handlers run ``fn`` for jobs of ``kind``."""
    DEFAULT_HANDLERS[kind] = fn


def _worker_name(index: int) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{index}:{uuid.uuid4().hex[:8]}"


class WorkerPool:
    """``n`` worker threads running registered handlers, a heartbeat thread renewing their leases.

    ``cap`` limits the jobs running at once across every worker of the database (default: no cap
    beyond ``n`` per process). ``lease_s`` is how long a job stays held without a heartbeat; the
    heartbeat runs every ``lease_s / 3``. ``poll_s`` is the pause between claims when nothing is
    queued.
    """

    def __init__(self, engine: Engine, handlers: dict[str, Handler] | None = None, n: int = 2,
                 clock: WallClock = SYSTEM_WALL_CLOCK, *, cap: int | None = None, lease_s: float = 30.0,
                 poll_s: float = 1.0, reap_every_s: float | None = None, backoff: Backoff = Backoff(0.2, 2.0, 10.0),
                 services: dict[str, Any] | None = None) -> None:
        if n < 0:
            raise ValueError("n must be >= 0")
        if cap is not None and cap < 1:
            raise ValueError("cap must be >= 1")
        self.engine = engine
        self.sessions = sessionmaker(engine, expire_on_commit=False)
        # without handlers of its own, the pool runs the registered ones (also those registered later)
        self.handlers: dict[str, Handler] = dict(handlers) if handlers is not None else DEFAULT_HANDLERS
        self.services: dict[str, Any] = dict(services or {})
        self.n = n
        self.clock = clock
        self.cap = cap
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.reap_every_s = reap_every_s if reap_every_s is not None else max(lease_s / 3, 0.1)
        self.backoff = backoff
        self._stop = threading.Event()  # stop claiming
        self._halt = threading.Event()  # stop the heartbeat (after the workers)
        self._threads: list[threading.Thread] = []
        self._heartbeat_thread: threading.Thread | None = None
        self._active: dict[int, JobContext] = {}
        self._lock = threading.Lock()
        self._last_reap: dt.datetime | None = None
        self.failures = 0  # loop iterations that failed (database down…), for metrics and tests

    def register_handler(self, kind: str, fn: Handler) -> None:
        """Run ``fn(ctx)`` for jobs of ``kind`` in this pool."""
        if self.handlers is DEFAULT_HANDLERS:
            self.handlers = dict(DEFAULT_HANDLERS)
        self.handlers[kind] = fn

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        if self._threads:
            return
        self._stop.clear()
        for i in range(self.n):
            t = threading.Thread(target=self._worker_loop, args=(_worker_name(i),), name=f"job-worker-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        if self.n:
            self._halt.clear()
            self._heartbeat_thread = threading.Thread(target=self._heartbeat_loop, name="job-heartbeat", daemon=True)
            self._heartbeat_thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming and wait up to ``timeout`` for running handlers to finish.

        A handler still running after that keeps its thread (a daemon) until the process ends; its
        job's lease then runs out and another worker runs the job again.
        """
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = [t for t in self._threads if t.is_alive()]
        # the heartbeat keeps the leases of running handlers until they finished (or the timeout)
        self._halt.set()
        if self._heartbeat_thread is not None:
            self._heartbeat_thread.join(5.0)
            self._heartbeat_thread = None

    @property
    def active_jobs(self) -> list[int]:
        with self._lock:
            return sorted(self._active)

    # -- one step each, also usable from tests without threads -------------------------------
    def run_once(self, worker: str | None = None) -> int | None:
        """Reap if due, claim one job and run it in this thread; its id, or None if none was queued."""
        worker = worker or _worker_name(0)
        self._maybe_reap()
        with self.sessions() as session:
            job = claim(session, worker, sorted(self.handlers), lease_s=self.lease_s, cap=self.cap, clock=self.clock)
            if job is None:
                return None
            ctx = JobContext(job.id, job.kind, job.model, dict(job.params or {}), job.attempts, job.created_by,
                             worker, self.sessions, self, self.services)
            if job.cancel_requested:
                ctx._cancel.set()
        self._run(ctx)
        return ctx.job_id

    def heartbeat(self) -> None:
        """Renew the leases of the jobs this pool runs and pick up cancellations of them."""
        with self._lock:
            active = list(self._active.values())
        if not active:
            return
        expires = self.clock.now() + dt.timedelta(seconds=self.lease_s)
        with self.sessions() as session:
            for ctx in active:
                result = session.execute(_update().where(Job.id == ctx.job_id, Job.worker == ctx.worker,
                                                           Job.state == "running").values(lease_expires=expires))
                if result.rowcount == 0:
                    ctx._lost.set()
            session.commit()
            ids = [c.job_id for c in active]
            flagged = set(session.scalars(select(Job.id).where(Job.id.in_(ids), Job.cancel_requested.is_(True))))
            session.rollback()
        for ctx in active:
            if ctx.job_id in flagged:
                ctx._cancel.set()

    def _maybe_reap(self) -> None:
        now = self.clock.now()
        if self._last_reap is not None and (now - self._last_reap).total_seconds() < self.reap_every_s:
            return
        self._last_reap = now
        with self.sessions() as session:
            reap(session, clock=self.clock)

    def _run(self, ctx: JobContext) -> None:
        with self._lock:
            self._active[ctx.job_id] = ctx
        outcome: dict[str, Any]
        try:
            handler = self.handlers[ctx.kind]
            result = handler(ctx)
            if result is not None and not isinstance(result, dict):
                result = {"value": result}
            json.dumps(result, allow_nan=False)
            outcome = dict(state=next_state("running", "succeed"), result=result)
        except Cancelled:
            outcome = dict(state=next_state("running", "stopped"), error="cancelled on request")
        except LeaseLost:
            log.warning("job %d: lease lost by %s; its outcome is dropped", ctx.job_id, ctx.worker)
            outcome = {}
        except LifecycleError as exc:
            outcome = dict(state=next_state("running", "error"), error=exc.message)
        except Exception as exc:  # a handler's bug must fail its job, not the worker
            log.exception("job %d (%s) failed", ctx.job_id, ctx.kind)
            outcome = dict(state=next_state("running", "error"), error=f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._active.pop(ctx.job_id, None)
        if outcome:
            self._finish(ctx, outcome)

    def _finish(self, ctx: JobContext, outcome: dict[str, Any]) -> None:
        # Retried: the outcome of work done must not be lost to a passing database error.
        for attempt in range(8):
            try:
                with self.sessions() as session:
                    result = session.execute(
                        _update().where(Job.id == ctx.job_id, Job.worker == ctx.worker, Job.state == "running")
                        .values(ended_at=self.clock.now(), lease_expires=None, **outcome))
                    session.commit()
                if result.rowcount == 0:
                    log.warning("job %d: %s no longer holds it; outcome %s dropped", ctx.job_id, ctx.worker,
                                outcome.get("state"))
                return
            except SQLAlchemyError:
                log.exception("job %d: recording its outcome failed (try %d)", ctx.job_id, attempt + 1)
                self.clock.sleep(self.backoff.delay(attempt))

    # -- loops -------------------------------------------------------------------------------
    def _worker_loop(self, worker: str) -> None:
        errors = 0
        while not self._stop.is_set():
            try:
                ran = self.run_once(worker)
                errors = 0
            except Exception:  # the loop never dies: record, back off, go on
                self.failures += 1
                log.exception("job worker %s: claiming failed", worker)
                self._stop.wait(self.backoff.delay(errors))
                errors += 1
                continue
            if ran is None:
                self._stop.wait(self.poll_s)

    def _heartbeat_loop(self) -> None:
        errors = 0
        interval = max(self.lease_s / 3, 0.05)
        while not self._halt.wait(interval if errors == 0 else min(interval, self.backoff.delay(errors))):
            try:
                self.heartbeat()
                errors = 0
            except Exception:  # the loop never dies: record, back off, go on
                self.failures += 1
                errors += 1
                log.exception("job heartbeat failed")
