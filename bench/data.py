"""Data: how fast datasets are validated and gridded, markups evaluated, and jobs claimed.

Generates a dataset of ``ROWS`` one-second samples of ``TAGS`` tags (irregular: 5 % of the rows
dropped, 2 % of the cells empty) and measures, each the best of ``REPEAT`` runs:

- validation and normalisation of the upload (``datasets.normalize_file``) as CSV with ISO 8601
  times and ``,``, as CSV with epoch milliseconds and ``;`` with decimal commas, and as Parquet —
  rows per second, and the CSV/Parquet ratio;
- the grid rule (``datasets.to_grid``) at steps of 1 s and 10 s — grid points per second;
- a markup mask (``markup_eval.evaluate_mask``): recurrent intervals only (vectorised), then a
  Stellar condition on every point, on continuous values and on values with few distinct states
  (where memoisation applies) — grid points per second, and the ratio condition/intervals;
- the job queue: ``JOBS`` no-op jobs taken by a pool of 4 worker threads on SQLite and on a real
  PostgreSQL (``lifecycle.testing.postgres``; skipped if it is not installed) — jobs per second
  end to end (claim, run, record), and the PostgreSQL/SQLite ratio.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from bench.common import Result

SCENARIO = "data"
ROWS = 300_000
TAGS = 6
REPEAT = 3
JOBS = 300


def _result(metric: str, value: float, unit: str, note: str = "") -> Result:
    return Result(SCENARIO, metric, float(value), unit, note)


def _best(fn: Callable[[], Any], repeat: int = REPEAT) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _samples(rows: int, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-03-01", periods=int(rows / 0.95), freq="1s", tz="UTC", unit="ns")
    index = index[np.sort(rng.choice(len(index), size=rows, replace=False))]
    frame = pd.DataFrame({f"tag {i}": rng.normal(10 * i, 1 + i, rows).round(3) for i in range(TAGS)}, index=index)
    cells = rng.random(frame.shape) < 0.02
    return frame.mask(cells)


def _files(tmp: Path, frame: pd.DataFrame) -> dict[str, Path]:
    iso = frame.copy()
    iso.insert(0, "time", frame.index.strftime("%Y-%m-%dT%H:%M:%SZ"))
    iso.to_csv(tmp / "iso.csv", index=False)
    ms = frame.copy()
    ms.insert(0, "Timestamp", frame.index.asi8 // 1_000_000)
    ms.to_csv(tmp / "ms.csv", index=False, sep=";", decimal=",")
    pq = frame.copy()
    pq.insert(0, "time", frame.index)
    pq.to_parquet(tmp / "data.parquet", index=False)
    return {"CSV, ISO 8601, ','": tmp / "iso.csv", "CSV, epoch ms, ';' and decimal commas": tmp / "ms.csv",
            "Parquet": tmp / "data.parquet"}


def _datasets(tmp: Path, frame: pd.DataFrame) -> Iterator[Result]:
    from lifecycle.datasets import normalize_file

    rates = {}
    for label, path in _files(tmp, frame).items():
        seconds = _best(lambda: normalize_file(path, tmp / "out.parquet"))
        rates[label] = len(frame) / seconds
        yield _result(f"upload validation, {label}", rates[label] / 1000, "krows/s",
                      f"{len(frame)} rows x {TAGS} tags, {path.stat().st_size / 1e6:.1f} MB")
    yield _result("upload validation, Parquet / CSV ISO", rates["Parquet"] / rates["CSV, ISO 8601, ','"], "x")


def _grid_and_masks(frame: pd.DataFrame) -> Iterator[Result]:
    from lifecycle.datasets import to_grid
    from lifecycle.markup_eval import MarkupSpec, evaluate_mask

    for step in (1, 10):
        grid = to_grid(frame, step)
        seconds = _best(lambda: to_grid(frame, step))
        yield _result(f"grid rule, step {step} s", len(grid) / seconds / 1000, "kpoints/s",
                      f"{len(frame)} samples -> {len(grid)} points")
    grid = to_grid(frame, 1)
    intervals = MarkupSpec(recurrent=[{"days": ["mon", "tue", "wed", "thu", "fri"], "from_time": "22:00",
                                       "to_time": "06:00"}])
    condition = MarkupSpec(condition="tag_1 > 10 && not(tag_2 < 19)")
    states = grid.copy()
    states["tag_1"] = states["tag 1"].round(0)
    states["tag_2"] = states["tag 2"].round(0)
    discrete = MarkupSpec(condition="tag_1 > 10 && not(tag_2 < 19)")
    t_int = _best(lambda: evaluate_mask(intervals, grid))
    t_cond = _best(lambda: evaluate_mask(condition, grid), repeat=1)
    t_disc = _best(lambda: evaluate_mask(discrete, states[["tag_1", "tag_2"]]), repeat=1)
    n = len(grid)
    yield _result("markup mask, recurrent intervals only", n / t_int / 1000, "kpoints/s", f"{n} points")
    yield _result("markup mask, Stellar condition, continuous values", n / t_cond / 1000, "kpoints/s",
                  "every point evaluated")
    yield _result("markup mask, Stellar condition, few distinct values", n / t_disc / 1000, "kpoints/s",
                  "memoised per distinct value tuple")
    yield _result("markup mask, intervals / condition", t_cond / t_int, "x")


def _queue_rate(url: str) -> float:
    from lifecycle.db import Base, make_engine
    from lifecycle.jobs import Job, WorkerPool, enqueue
    from maas.retry import wait_until
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    engine = make_engine(url)
    Base.metadata.create_all(engine, tables=[Job.__table__])
    with Session(engine) as s:
        for i in range(JOBS):
            enqueue(s, "noop", f"m{i % 16}", {}, "bench")
        s.commit()
    pool = WorkerPool(engine, {"noop": lambda ctx: {"ok": True}}, n=4, poll_s=0.01, lease_s=30)
    t0 = time.perf_counter()
    pool.start()

    def finished() -> bool:
        with Session(engine) as s:
            return s.scalar(select(func.count()).select_from(Job).where(Job.state == "done")) == JOBS

    wait_until(finished, timeout=600, what="the benchmark's jobs")
    seconds = time.perf_counter() - t0
    pool.stop()
    engine.dispose()
    return JOBS / seconds


def _queue(tmp: Path) -> Iterator[Result]:
    sqlite = _queue_rate(f"sqlite:///{tmp / 'queue.db'}")
    yield _result("job queue, SQLite, 4 threads", sqlite, "jobs/s", f"{JOBS} no-op jobs over 16 models")
    try:
        from lifecycle.testing.postgres import LocalPostgres, PostgresNotInstalled

        server = LocalPostgres()
    except PostgresNotInstalled as exc:
        yield _result("job queue, PostgreSQL, 4 threads", float("nan"), "jobs/s", f"skipped: {exc}")
        return
    try:
        server.start()
        pg = _queue_rate(server.url(server.create_database("bench")))
    finally:
        server.cleanup()
    yield _result("job queue, PostgreSQL, 4 threads", pg, "jobs/s", f"{JOBS} no-op jobs over 16 models")
    yield _result("job queue, PostgreSQL / SQLite", pg / sqlite, "x")


def run() -> Iterator[Result]:
    frame = _samples(ROWS)
    with tempfile.TemporaryDirectory(prefix="maas-bench-data-") as tmp:
        yield from _datasets(Path(tmp), frame)
        yield from _grid_and_masks(frame)
        yield from _queue(Path(tmp))
