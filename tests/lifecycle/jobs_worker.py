"""A job-worker process for the queue's multi-process tests, and the handlers the tests use.

``python -m tests.lifecycle.jobs_worker DB_URL --threads N --lease S`` runs a WorkerPool until
SIGTERM. Handlers record every run in the table ``job_runs`` (its own metadata, not the
service's), so a test can count how often each job ran and when.
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
import time
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, insert, update

from lifecycle.db import Base, make_engine
from lifecycle.jobs import Job, JobContext, WorkerPool

runs_metadata = MetaData()
job_runs = Table(
    "job_runs", runs_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Integer, nullable=False),
    Column("worker", String(200), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started", Float, nullable=False),
    Column("ended", Float, nullable=True),
)


def create_tables(engine: Any) -> None:
    Base.metadata.create_all(engine, tables=[Job.__table__])
    runs_metadata.create_all(engine)


def _record_start(ctx: JobContext) -> int:
    with ctx.sessions() as session:
        run_id = session.execute(insert(job_runs).values(job_id=ctx.job_id, worker=ctx.worker, pid=os.getpid(),
                                                         started=time.time())).inserted_primary_key[0]
        session.commit()
    return int(run_id)


def _record_end(ctx: JobContext, run_id: int) -> None:
    with ctx.sessions() as session:
        session.execute(update(job_runs).where(job_runs.c.id == run_id).values(ended=time.time()))
        session.commit()


def record(ctx: JobContext) -> dict[str, Any]:
    """Runs for ``params.sleep`` seconds, reporting progress, checking for cancellation."""
    run_id = _record_start(ctx)
    steps = int(ctx.params.get("steps", 1))
    for i in range(steps):
        ctx.check_cancelled()
        time.sleep(float(ctx.params.get("sleep", 0.0)) / steps)
        ctx.report_progress({"step": i + 1, "of": steps})
    _record_end(ctx, run_id)
    return {"pid": os.getpid(), "job": ctx.job_id}


def hang(ctx: JobContext) -> dict[str, Any]:
    """Runs until cancelled (or ``params.seconds`` pass), polling the cancel flag."""
    run_id = _record_start(ctx)
    deadline = time.monotonic() + float(ctx.params.get("seconds", 60))
    while time.monotonic() < deadline:
        ctx.check_cancelled()
        time.sleep(0.02)
    _record_end(ctx, run_id)
    return {"hung": True}


def fail(ctx: JobContext) -> None:
    raise RuntimeError(f"the handler broke on {ctx.params.get('what', 'purpose')}")


HANDLERS = {"record": record, "hang": hang, "fail": fail}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db_url")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--cap", type=int, default=None)
    args = parser.parse_args()
    engine = make_engine(args.db_url)
    pool = WorkerPool(engine, HANDLERS, n=args.threads, cap=args.cap, lease_s=args.lease, poll_s=0.05)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pool.start()
    print("ready", flush=True)
    stop.wait()
    pool.stop(timeout=10)
    engine.dispose()


if __name__ == "__main__":
    main()
