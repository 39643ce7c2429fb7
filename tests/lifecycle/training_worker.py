"""A training worker process for the tests that kill one mid-training.

``python -m tests.lifecycle.training_worker DB_URL STORE_URI --lease S`` runs a job worker pool with
the ``train`` handler of :mod:`lifecycle.training` (the one ``maas_lifecycle serve`` runs) on that
database and model store, with a short lease, until SIGTERM; it prints ``ready`` once started. With ``--stall-at-epoch N`` it
stops making progress once a job reports epoch N (its lease still renewed), so a test can kill it
mid-training however fast the machine trains.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any, Callable

from lifecycle import training
from lifecycle.datasets import DatasetService
from lifecycle.db import make_engine
from lifecycle.jobs import JobContext, WorkerPool
from maas.store import open_store


def stalling(handler: Callable[[JobContext], Any], at_epoch: int) -> Callable[[JobContext], Any]:
    """``handler``, whose progress reports block for ever from epoch ``at_epoch`` on."""

    def run(ctx: JobContext) -> Any:
        report = ctx.report_progress

        def report_then_stall(progress: dict[str, Any]) -> None:
            report(progress)
            if (progress.get("epoch") or 0) >= at_epoch:
                threading.Event().wait()  # until this process is killed

        ctx.report_progress = report_then_stall  # type: ignore[method-assign]
        return handler(ctx)

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db_url")
    parser.add_argument("store_uri")
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--stall-at-epoch", type=int, default=None)
    args = parser.parse_args()
    handler = training.run_training if args.stall_at_epoch is None else stalling(training.run_training,
                                                                                  args.stall_at_epoch)
    engine = make_engine(args.db_url)
    store = open_store(args.store_uri)
    pool = WorkerPool(engine, {training.JOB_KIND: handler}, n=1, lease_s=args.lease, poll_s=0.05,
                      services={"store": store, "datasets": DatasetService(store=store)})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    pool.start()
    print("ready", flush=True)
    stop.wait()
    pool.stop(timeout=30)
    engine.dispose()


if __name__ == "__main__":
    main()
