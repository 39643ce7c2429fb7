"""Web console: time to the first chart on the monitoring page at 10⁵ and 10⁶ points, the
downsampling routes, and the incidents list at 10⁵ incidents.

Runs a real ``maas_lifecycle serve`` (SQLite in a temporary directory) and Debian's headless
Chromium (``/usr/bin/chromium`` through Playwright; the scenario is skipped without it). Measures,
each the median of ``REPEAT`` runs:

- ``GET /api/v1/datasets/{d}/series`` for one tag of 10⁵ and 10⁶ one-second samples reduced to
  1280 buckets (min/max per bucket) — server time per request, and the 10⁶/10⁵ ratio;
- time to the first chart: from navigating to ``#/monitor?dataset=…`` (the page already loaded
  once, so its scripts are cached) until the chart has drawn the series — at 10⁵ and 10⁶ points;
- a zoom at 10⁶ points: from the end of a drag across a fifth of the chart until it is redrawn
  with that range (the page stays responsive: it never holds more than ~2 points per pixel);
- ``GET /api/v1/models/{m}/results/series`` over 10⁶ stored inference results of an element;
- ``GET /api/v1/incidents`` (first page of 100, newest first) with 10⁵ incidents stored, without
  and with filters (model + status, production) — p50.
"""

from __future__ import annotations

import datetime as dt
import io
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from bench.common import Result
from lifecycle.testing.service import ServiceProcess

SCENARIO = "console"
REPEAT = 5
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "bench-console-admin-token-0123456789"
T0 = dt.datetime(2024, 3, 1, tzinfo=dt.timezone.utc)
INCIDENTS = 100_000
RESULTS = 1_000_000


def _result(metric: str, value: float, unit: str, note: str = "") -> Result:
    return Result(SCENARIO, metric, float(value), unit, note)


def _median(fn: Callable[[], Any], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class _Service(ServiceProcess):
    """The service on a SQLite file in ``tmp``, with an administrator API client."""

    def __init__(self, tmp: Path) -> None:
        self.db = f"sqlite:///{tmp / 'lifecycle.db'}"
        super().__init__(self.db, tmp, TOKEN)
        self.api = self.client(timeout=300)

    def close(self) -> None:
        self.api.close()
        self.stop()


def _upload(svc: _Service, name: str, n: int) -> None:
    t = np.arange(n)
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"time": pd.to_datetime(T0) + pd.to_timedelta(t, unit="s"),
                          "Pressure": np.sin(t / 5000.0) * 5 + rng.normal(0, 0.3, n)})
    buf = io.BytesIO()
    frame.to_parquet(buf, index=False)
    r = svc.api.post("/datasets", data={"name": name}, files={"file": ("d.parquet", buf.getvalue())})
    r.raise_for_status()


def _fill_database(svc: _Service) -> None:
    """10⁵ incidents and 10⁶ inference results, written as the service's workers would."""
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    from lifecycle.db import make_engine
    from lifecycle.incidents import DEFAULT_STATUSES, Incident
    from lifecycle.inference import InferenceResult

    svc.api.post("/models", json={"name": "pump7"}).raise_for_status()
    svc.api.post("/models/pump7/elements", json={"name": "flow", "kind": "rule", "inputs": ["Pressure"],
                                                 "params": {"expression": "Pressure > 4"}}).raise_for_status()
    engine = make_engine(svc.db)
    now = dt.datetime.now(dt.timezone.utc)
    with Session(engine) as session, session.begin():
        chunk = []
        for i in range(INCIDENTS):
            start = T0 + dt.timedelta(minutes=i)
            chunk.append({"model": f"model{i % 20}", "element": f"e{i % 3}", "kind": "rule", "start": start,
                          "end": start + dt.timedelta(seconds=30), "registered_at": start,
                          "top_tags": [{"tag": "Pressure", "value": 1.0, "share": 1.0}], "top_tag": "Pressure",
                          "artifact": 1.0, "threshold": 0.5, "status": DEFAULT_STATUSES[i % 7],
                          "production": i % 2 == 0, "source": "historical", "run": 1, "seq": i, "group": i + 1,
                          "created_at": now, "updated_at": now})
            if len(chunk) == 20_000:
                session.execute(insert(Incident), chunk)
                chunk = []
        if chunk:
            session.execute(insert(Incident), chunk)
    with Session(engine) as session, session.begin():
        values = np.sin(np.arange(RESULTS) / 5000.0) * 5
        for lo in range(0, RESULTS, 50_000):
            session.execute(insert(InferenceResult), [
                {"model": "pump7", "element": "flow", "time": T0 + dt.timedelta(seconds=i),
                 "artifact": float(values[i] > 4), "threshold": 0.5, "anomalous": bool(values[i] > 4),
                 "counted": True, "predictions": None, "run": 1} for i in range(lo, min(lo + 50_000, RESULTS))])
    engine.dispose()


def _render(page: Any, url: str, selector: str, previous: str | None) -> float:
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(selector + ("" if previous is None else f":not([data-rendered='{previous}'])"),
                           timeout=120_000)
    return time.perf_counter() - t0


def run() -> Iterator[Result]:
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp_s:
        svc = _Service(Path(tmp_s))
        try:
            yield from _run(svc, Path(tmp_s))
        finally:
            svc.close()


def _run(svc: _Service, tmp: Path) -> Iterator[Result]:
    sizes = {"1e5": 100_000, "1e6": 1_000_000}
    for label, n in sizes.items():
        _upload(svc, f"d{label}", n)
    api_s = {}
    for label in sizes:
        svc.api.get(f"/datasets/d{label}/series", params={"tag": "Pressure", "buckets": 1280})  # local copy cached
        api_s[label] = _median(lambda: svc.api.get(f"/datasets/d{label}/series",
                                                   params={"tag": "Pressure", "buckets": 1280}).raise_for_status())
        yield _result(f"dataset series, {label} points → 1280 buckets", api_s[label] * 1000, "ms", "server, p50")
    yield _result("dataset series time 1e6 / 1e5", api_s["1e6"] / api_s["1e5"], "x")

    if CHROMIUM.exists():
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(str(tmp / "profile"), executable_path=str(CHROMIUM),
                                                           headless=True, args=CHROMIUM_ARGS,
                                                           viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(svc.url + "/")
            page.fill("#token", TOKEN)
            page.click("#signin-form button[type=submit]")
            page.wait_for_selector("#user-name")
            render = {}
            for label in sizes:
                url = svc.url + f"/#/monitor?dataset=d{label}"
                page.goto(svc.url + "/#/models")
                page.wait_for_selector("h1:text-is('Models')")
                times = []
                for _ in range(REPEAT):
                    page.goto(svc.url + "/#/models")
                    page.wait_for_selector("h1:text-is('Models')")
                    times.append(_render(page, url, "#monitor-chart[data-rendered]", None))
                render[label] = statistics.median(times)
                yield _result(f"first chart render, {label} points", render[label] * 1000, "ms",
                              "navigation → chart drawn, p50")
            yield _result("first chart render 1e6 / 1e5", render["1e6"] / render["1e5"], "x")
            # zoom at 10⁶: drag across a fifth of the chart, wait for the redraw of that range
            zooms = []
            for _ in range(REPEAT):
                page.goto(svc.url + "/#/models")
                page.wait_for_selector("h1:text-is('Models')")
                _render(page, svc.url + "/#/monitor?dataset=d1e6", "#monitor-chart[data-rendered]", None)
                before = page.get_attribute("#monitor-chart", "data-rendered")
                box = page.locator("#monitor-chart .u-over").bounding_box()
                y = box["y"] + box["height"] / 2
                page.mouse.move(box["x"] + box["width"] * 0.4, y)
                page.mouse.down()
                page.mouse.move(box["x"] + box["width"] * 0.6, y, steps=4)
                t0 = time.perf_counter()
                page.mouse.up()
                page.wait_for_selector(f"#monitor-chart[data-rendered]:not([data-rendered='{before}'])")
                zooms.append(time.perf_counter() - t0)
            yield _result("zoom redraw, 1e6 points", statistics.median(zooms) * 1000, "ms", "drag end → redrawn, p50")
            context.close()
    else:
        yield _result("first chart render", float("nan"), "ms", f"skipped: {CHROMIUM} missing")

    _fill_database(svc)
    res = _median(lambda: svc.api.get("/models/pump7/results/series",
                                      params={"element": "flow", "buckets": 1280}).raise_for_status(), 3)
    yield _result("results series, 1e6 results → 1280 buckets", res * 1000, "ms", "server, p50 of 3")
    for what, params in [("first page", {}), ("model + status", {"model": "model7", "status": "Ignore"}),
                         ("production", {"production": "true"})]:
        svc.api.get("/incidents", params=params).raise_for_status()
        times = []
        for _ in range(30):
            t0 = time.perf_counter()
            svc.api.get("/incidents", params={**params, "limit": 100}).raise_for_status()
            times.append(time.perf_counter() - t0)
        yield _result(f"incidents list at 1e5 incidents, {what}", statistics.median(times) * 1000, "ms",
                      "100 per page, p50 of 30")
