"""The job queue on SQLite and PostgreSQL: FIFO claims, per-model serialisation, the cap, leases
and reaping (fake wall clock), cancellation, and several worker processes on one database —
each job runs exactly once; a worker killed with SIGKILL leaves its job retried or failed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lifecycle import jobs
from lifecycle.db import make_engine
from lifecycle.errors import Conflict, InvalidInput, NotFound
from lifecycle.jobs import FakeWallClock, Job, JobContext, WorkerPool
from maas.retry import wait_until
from tests.lifecycle.jobs_worker import HANDLERS, create_tables, job_runs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    create_tables(eng)
    yield eng
    eng.dispose()


def queue(engine: Engine, kind: str, model: str | None = None, params: dict[str, Any] | None = None,
          **kwargs: Any) -> int:
    with Session(engine) as s:
        job = jobs.enqueue(s, kind, model, params, "alice", **kwargs)
        s.commit()
        return job.id


def job(engine: Engine, job_id: int) -> Job:
    with Session(engine) as s:
        found = jobs.get(s, job_id)
        s.expunge(found)
        return found


def runs_of(engine: Engine) -> dict[int, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(job_runs.c.job_id, func.count()).group_by(job_runs.c.job_id)).all()
    return {int(j): int(n) for j, n in rows}


def claim(engine: Engine, worker: str, *, cap: int | None = None, clock: Any = jobs.SYSTEM_WALL_CLOCK,
          lease_s: float = 30.0) -> int | None:
    with Session(engine) as s:
        got = jobs.claim(s, worker, sorted(HANDLERS), lease_s=lease_s, cap=cap, clock=clock)
        return None if got is None else got.id


def test_fifo_run_with_progress_and_result(engine: Engine) -> None:
    ids = [queue(engine, "record", f"m{i}", {"steps": 2}) for i in range(3)]
    pool = WorkerPool(engine, HANDLERS, n=0)
    assert [pool.run_once("w1") for _ in range(3)] == ids
    assert pool.run_once("w1") is None
    done = job(engine, ids[0])
    assert (done.state, done.attempts, done.progress, done.created_by) == ("done", 1, {"step": 2, "of": 2}, "alice")
    assert done.result == {"pid": os.getpid(), "job": ids[0]}
    assert done.started_at is not None and done.ended_at is not None and done.ended_at >= done.started_at
    assert done.to_json()["state"] == "done" and done.to_json()["created_at"].endswith("Z")
    assert runs_of(engine) == {i: 1 for i in ids}


def test_handler_errors_fail_the_job_with_the_message(engine: Engine) -> None:
    job_id = queue(engine, "fail", "m1", {"what": "a bad row"})
    WorkerPool(engine, HANDLERS, n=0).run_once()
    failed = job(engine, job_id)
    assert failed.state == "failed" and failed.error == "RuntimeError: the handler broke on a bad row"
    assert failed.attempts == 1  # a handler's error is not retried: it would fail again


def test_enqueue_checks_its_input(engine: Engine) -> None:
    with Session(engine) as s:
        with pytest.raises(InvalidInput, match="JSON"):
            jobs.enqueue(s, "record", "m", {"x": float("nan")}, "alice")
        with pytest.raises(InvalidInput):
            jobs.enqueue(s, "", "m", {}, "alice")
        with pytest.raises(NotFound):
            jobs.get(s, 12345)
        with pytest.raises(InvalidInput, match="state must be one of"):
            jobs.list_jobs(s, state="sleeping")


def test_a_models_jobs_run_one_at_a_time(engine: Engine) -> None:
    a = queue(engine, "record", "m1")
    b = queue(engine, "record", "m1")
    c = queue(engine, "record", "m2")
    d = queue(engine, "record", "m1", serial=False)  # not serialised with the model's other jobs
    assert claim(engine, "w1") == a
    assert claim(engine, "w2") == c  # b waits for a
    assert claim(engine, "w3") == d
    assert claim(engine, "w4") is None
    with Session(engine) as s:  # the database itself refuses a second running job of m1
        with pytest.raises(IntegrityError):
            s.execute(update(Job).where(Job.id == b).values(state="running"))
            s.flush()
        s.rollback()
        s.execute(update(Job).where(Job.id == a).values(state="done"))
        s.commit()
    assert claim(engine, "w1") == b


def test_the_cap_limits_running_jobs(engine: Engine) -> None:
    ids = [queue(engine, "record", f"m{i}") for i in range(3)]
    assert claim(engine, "w1", cap=2) == ids[0]
    assert claim(engine, "w2", cap=2) == ids[1]
    assert claim(engine, "w3", cap=2) is None
    assert claim(engine, "w3", cap=3) == ids[2]


def test_only_kinds_with_a_handler_are_claimed(engine: Engine) -> None:
    other = queue(engine, "inference", "m1")
    mine = queue(engine, "record", "m2")
    assert WorkerPool(engine, HANDLERS, n=0).run_once() == mine
    assert job(engine, other).state == "queued"


def test_expired_lease_is_retried_then_failed_as_worker_died(engine: Engine) -> None:
    clock = FakeWallClock()
    job_id = queue(engine, "record", "m1", max_attempts=2, clock=clock)
    assert claim(engine, "w1", clock=clock, lease_s=10) == job_id
    clock.advance(5)
    with Session(engine) as s:
        assert jobs.reap(s, clock=clock) == []  # the lease still runs
    clock.advance(6)
    with Session(engine) as s:
        assert jobs.reap(s, clock=clock) == [(job_id, "queued")]
    retried = job(engine, job_id)
    assert retried.state == "queued" and retried.worker is None and "worker died: w1" in (retried.error or "")
    assert claim(engine, "w2", clock=clock, lease_s=10) == job_id
    clock.advance(11)
    with Session(engine) as s:
        assert jobs.reap(s, clock=clock) == [(job_id, "failed")]
    failed = job(engine, job_id)
    assert failed.state == "failed" and failed.attempts == 2 and failed.ended_at is not None
    assert failed.error is not None and failed.error.startswith("worker died: w2") and "attempt 2 of 2" in failed.error


def test_heartbeat_keeps_a_long_job(engine: Engine) -> None:
    clock = FakeWallClock()
    pool = WorkerPool(engine, n=0, clock=clock, lease_s=10)
    reaped: list[Any] = []

    def long_job(ctx: JobContext) -> dict[str, Any]:
        for _ in range(5):  # 40 s in all, four times the lease
            clock.advance(8)
            pool.heartbeat()
            with Session(engine) as s:
                reaped.extend(jobs.reap(s, clock=clock))
        return {"ok": True}

    pool.register_handler("long", long_job)
    job_id = queue(engine, "long", "m1")
    assert pool.run_once() == job_id
    assert reaped == [] and job(engine, job_id).state == "done"


def test_a_worker_that_lost_its_lease_drops_its_outcome(engine: Engine) -> None:
    clock = FakeWallClock()
    pool = WorkerPool(engine, n=0, clock=clock, lease_s=10)

    def stalled(ctx: JobContext) -> dict[str, Any]:
        clock.advance(11)  # the worker stalls past its lease; another worker reaps the job
        with Session(engine) as s:
            jobs.reap(s, clock=clock)
        ctx.report_progress({"late": True})  # raises LeaseLost
        return {"never": "recorded"}

    pool.register_handler("stall", stalled)
    job_id = queue(engine, "stall", "m1")
    pool.run_once()
    after = job(engine, job_id)
    assert after.state == "queued" and after.result is None and after.progress is None


def test_cancel_queued_at_once_running_cooperatively(engine: Engine) -> None:
    queued = queue(engine, "record", "m1")
    with Session(engine) as s:
        assert jobs.cancel(s, queued).state == "cancelled"
        s.commit()
        with pytest.raises(Conflict, match="a cancelled job cannot cancel"):
            jobs.cancel(s, queued)
    running = queue(engine, "hang", "m2", {"seconds": 60})
    pool = WorkerPool(engine, HANDLERS, n=1, lease_s=0.6, poll_s=0.02)
    pool.start()
    try:
        wait_until(lambda: job(engine, running).state == "running" and runs_of(engine).get(running), timeout=20,
                   what="the job to start")
        with Session(engine) as s:
            flagged = jobs.cancel(s, running)
            s.commit()
            assert flagged.state == "running" and flagged.cancel_requested
        wait_until(lambda: job(engine, running).state == "cancelled", timeout=20, what="the handler to stop")
    finally:
        pool.stop()
    assert job(engine, running).error == "cancelled on request"


def test_jobs_survive_a_restart(db_url: str, engine: Engine) -> None:
    ids = [queue(engine, "record", f"m{i}") for i in range(4)]
    first = WorkerPool(engine, HANDLERS, n=0)
    first.run_once()
    engine.dispose()  # the service stops; a new one starts on the same database
    again = make_engine(db_url)
    try:
        second = WorkerPool(again, HANDLERS, n=0)
        while second.run_once() is not None:
            pass
        assert runs_of(again) == {i: 1 for i in ids}
    finally:
        again.dispose()


def test_the_worker_loop_survives_database_errors(engine: Engine) -> None:
    pool = WorkerPool(engine, HANDLERS, n=1, poll_s=0.02, backoff=jobs.Backoff(0.01, 1.0, 0.02))
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE jobs RENAME TO jobs_away"))
    pool.start()
    try:
        wait_until(lambda: pool.failures >= 2, timeout=20, what="failed claims")
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE jobs_away RENAME TO jobs"))
        job_id = queue(engine, "record", "m1")
        wait_until(lambda: job(engine, job_id).state == "done", timeout=20, what="the job after the outage")
    finally:
        pool.stop()


# -- several processes ---------------------------------------------------------------------------
@pytest.fixture
def workers(db_url: str) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []

    def start(*flags: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, "-m", "tests.lifecycle.jobs_worker", db_url, *flags], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_two_worker_processes_run_each_of_50_jobs_exactly_once(engine: Engine, workers: Any) -> None:
    a = workers("--threads", "2", "--lease", "3")
    b = workers("--threads", "2", "--lease", "3")
    with Session(engine) as s:  # all at once, while both processes poll
        ids = [jobs.enqueue(s, "record", f"m{i % 7}", {"sleep": 0.05}, "alice").id for i in range(50)]
        s.commit()
    wait_until(lambda: all(job(engine, i).state == "done" for i in ids[-5:]) and
               sum(runs_of(engine).values()) >= 50, timeout=120, what="50 jobs done")
    wait_until(lambda: all(job(engine, i).state == "done" for i in ids), timeout=60, what="every job done")
    assert runs_of(engine) == {i: 1 for i in ids}
    with Session(engine) as s:
        pids = {j.result["pid"] for j in s.scalars(select(Job)) if j.result}
        assert pids == {a.pid, b.pid}  # both processes took jobs
        assert all(j.attempts == 1 for j in s.scalars(select(Job)))
    with engine.connect() as conn:  # a model's runs never overlapped in time
        rows = conn.execute(select(job_runs.c.job_id, job_runs.c.started, job_runs.c.ended)).all()
    by_job = {r.job_id: r for r in rows}
    for m in range(7):
        spans = sorted((by_job[i].started, by_job[i].ended) for k, i in enumerate(ids) if k % 7 == m)
        assert all(prev[1] <= nxt[0] for prev, nxt in zip(spans, spans[1:])), f"model m{m} ran two jobs at once"


@pytest.mark.parametrize("max_attempts, final", [(2, "done"), (1, "failed")])
def test_a_worker_killed_mid_job_leaves_it_retried_or_failed(engine: Engine, workers: Any, max_attempts: int,
                                                             final: str) -> None:
    job_id = queue(engine, "hang", "m1", {"seconds": 1.0}, max_attempts=max_attempts)
    victim = workers("--threads", "1", "--lease", "1")
    wait_until(lambda: runs_of(engine).get(job_id), timeout=30, what="the job to start")
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert job(engine, job_id).state == "running"  # until its lease runs out
    workers("--threads", "1", "--lease", "1")
    wait_until(lambda: job(engine, job_id).state in jobs.FINAL, timeout=60, what="the job to end")
    ended = job(engine, job_id)
    assert ended.state == final
    assert ended.error is not None and f"worker died: {socket_prefix()}" in ended.error
    assert ended.error.count(str(victim.pid)) == 1
    assert runs_of(engine)[job_id] == (2 if final == "done" else 1)


def socket_prefix() -> str:
    import socket

    return socket.gethostname() + ":"


def test_stopping_the_pool_keeps_running_jobs_leases_until_they_finish(engine: Engine) -> None:
    job_id = queue(engine, "record", "m1", {"sleep": 2.0, "steps": 4})
    pool = WorkerPool(engine, HANDLERS, n=1, lease_s=0.6, poll_s=0.02)
    pool.start()
    wait_until(lambda: runs_of(engine).get(job_id), timeout=20, what="the job to start")
    pool.stop(timeout=30)  # waits for the handler, renewing its lease meanwhile
    with Session(engine) as s:
        assert jobs.reap(s) == []
    done = job(engine, job_id)
    assert done.state == "done" and done.attempts == 1 and done.error is None
