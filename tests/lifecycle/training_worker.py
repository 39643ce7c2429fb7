"""A training worker process for the tests that kill one mid-training.

``python -m tests.lifecycle.training_worker DB_URL STORE_URI --lease S`` runs a job worker pool with
the ``train`` handler of :mod:`lifecycle.training` (the one ``maas_lifecycle serve`` runs) on that
database and model store, with a short lease, until SIGTERM; it prints ``ready`` once started.
"""

from __future__ import annotations

import argparse
import signal
import threading

from lifecycle import training
from lifecycle.datasets import DatasetService
from lifecycle.db import make_engine
from lifecycle.jobs import WorkerPool
from maas.store import open_store


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db_url")
    parser.add_argument("store_uri")
    parser.add_argument("--lease", type=float, default=2.0)
    args = parser.parse_args()
    engine = make_engine(args.db_url)
    store = open_store(args.store_uri)
    pool = WorkerPool(engine, {training.JOB_KIND: training.run_training}, n=1, lease_s=args.lease, poll_s=0.05,
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
