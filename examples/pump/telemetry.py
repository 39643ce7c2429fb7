"""Deterministic telemetry of a centrifugal pump on a variable-speed drive, with injected faults.

``generate(seed=7, days=21, step_s=60)`` returns a grid frame (UTC index, one column per tag) and
the ground truth: every injected fault with its kind and ``[start, end)`` interval, and the
planned shutdowns. The same seed gives the same numbers on every machine (numpy's PCG64).

The physics, in short (speed ``n`` relative to the nominal 1450 rpm, ``r = n / 1450``):

* ``speed`` follows the demand: a daily cycle and a weekly one, set-point steps every few hours,
  and planned shutdowns (speed 0) for maintenance;
* ``flow`` ∝ r (affinity law) × the opening of a downstream valve that wanders slowly;
* ``discharge_pressure`` = shut-off head × r² − a system term ∝ flow², plus the suction pressure;
* ``suction_pressure`` follows the level of the feed tank (slow, with a daily pattern);
* ``motor_current`` ∝ hydraulic power / efficiency + the no-load current;
* ``vibration`` (RMS velocity, mm/s) grows with r² around a healthy baseline;
* ``bearing_temperature`` follows ambient temperature plus friction heat ∝ r², through a
  first-order lag of about 40 minutes;
* every sensor has its own measurement noise.

Faults (the ground truth of ``faults``):

* ``bearing_wear`` — over two and a half days, vibration grows by up to 2.5 mm/s, the bearing
  temperature by up to 9 °C and the motor current by up to 3 %, slowly at first, then faster;
* ``cavitation`` — episodes of a few hours where the suction pressure falls below what the pump
  needs: the discharge pressure and the flow drop and fluctuate, vibration rises with broadband
  noise, the current fluctuates; one episode lies in the training period (the normal-operation
  markup leaves it out) and three in the evaluation period;
* ``sensor_drift`` — the discharge pressure sensor drifts upward linearly by up to 0.8 bar over
  a day and a half while the pump itself is healthy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

START = pd.Timestamp("2026-02-02T00:00:00Z")  # a Monday
NOMINAL_RPM = 1450.0
TAGS = ["speed", "flow", "suction_pressure", "discharge_pressure", "motor_current", "vibration",
        "bearing_temperature", "ambient_temperature"]


@dataclass(frozen=True)
class Fault:
    kind: str
    start: pd.Timestamp
    end: pd.Timestamp
    description: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "from": _iso(self.start), "to": _iso(self.end), "description": self.description}


def _iso(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def at(day: float, hour: float = 0.0) -> pd.Timestamp:
    return START + pd.Timedelta(days=day) + pd.Timedelta(hours=hour)


#: Training period: the first two weeks; evaluation: the third.
TRAIN_END = at(14)
FAULTS = [
    Fault("cavitation", at(5, 13), at(5, 16), "suction tank drawn down during a transfer (training period)"),
    Fault("bearing_wear", at(15, 6), at(17, 18), "outboard bearing wearing out, replaced at the end"),
    Fault("cavitation", at(18, 9), at(18, 12), "suction strainer clogging"),
    Fault("cavitation", at(18, 20), at(18, 22), "suction strainer clogging"),
    Fault("cavitation", at(19, 3), at(19, 5), "suction strainer clogging"),
    Fault("sensor_drift", at(19, 12), at(21, 0), "discharge pressure transmitter drifting"),
]
SHUTDOWNS = [(at(3, 10), at(3, 14)), (at(10, 8), at(10, 11)), (at(16, 22), at(17, 1)), (at(20, 2), at(20, 4))]


def _smooth_noise(rng: np.random.Generator, n: int, scale: float, memory: int) -> np.ndarray:
    """An AR(1) process with a correlation time of ``memory`` points and stationary deviation ``scale``."""
    phi = np.exp(-1.0 / memory)
    shocks = rng.normal(scale=scale * np.sqrt(1 - phi ** 2), size=n)
    out = np.empty(n)
    out[0] = rng.normal(scale=scale)
    for t in range(1, n):  # a recurrence
        out[t] = phi * out[t - 1] + shocks[t]
    return out


def _ramp(index: pd.DatetimeIndex, start: pd.Timestamp, end: pd.Timestamp, shape: float = 1.0) -> np.ndarray:
    """0 before ``start``, rising to 1 at ``end`` as ((t - start)/(end - start)) ** shape, 0 after."""
    t = ((index - start) / (end - start)).to_numpy(dtype=np.float64)
    return np.where((t >= 0) & (t < 1), np.clip(t, 0, 1) ** shape, 0.0)


def _inside(index: pd.DatetimeIndex, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    return np.asarray((index >= start) & (index < end))


def generate(seed: int = 7, days: int = 21, step_s: int = 60) -> tuple[pd.DataFrame, list[Fault]]:
    """The telemetry frame and the faults injected into it."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(START, periods=int(days * 86_400 / step_s), freq=f"{step_s}s")
    n = len(index)
    hours = ((index - START) / pd.Timedelta(hours=1)).to_numpy(dtype=np.float64)
    points_per_hour = 3600 / step_s

    # demand: daily and weekly cycles, set-point steps every 2-6 hours
    daily = 0.5 + 0.5 * np.sin(2 * np.pi * (hours - 8) / 24)
    weekend = np.isin(index.day_of_week, [5, 6])
    steps = np.zeros(n)
    t = 0
    while t < n:
        length = int(rng.uniform(2, 6) * points_per_hour)
        steps[t:t + length] = rng.uniform(-0.08, 0.08)
        t += length
    demand = np.clip(0.55 + 0.3 * daily - 0.12 * weekend + steps + _smooth_noise(rng, n, 0.02, 30), 0.2, 1.0)
    speed_true = NOMINAL_RPM * (0.72 + 0.3 * demand)
    running = np.ones(n, dtype=bool)
    for start, end in SHUTDOWNS:
        running &= ~_inside(index, start, end)
    speed_true = np.where(running, speed_true, 0.0)
    r = speed_true / NOMINAL_RPM

    level = 2.2 + 0.25 * np.sin(2 * np.pi * (hours - 3) / 24) + _smooth_noise(rng, n, 0.08, 240)
    suction = 0.1 * level + 0.8 + _smooth_noise(rng, n, 0.01, 10)  # bar
    valve = np.clip(0.8 + _smooth_noise(rng, n, 0.06, 180), 0.55, 1.0)
    flow = 120.0 * r * valve  # m3/h
    discharge = suction + 6.5 * r ** 2 - 1.6e-4 * flow ** 2 * (1.4 - valve)  # bar
    efficiency = 0.78 - 0.25 * (valve - 0.8) ** 2
    hydraulic_kw = flow / 3600 * (discharge - suction) * 100.0
    current = np.where(running, 18.0 + hydraulic_kw / efficiency * 2.1, 0.0)  # A
    vibration = np.where(running, 1.1 + 1.0 * r ** 2, 0.15)  # mm/s RMS
    ambient = 14 + 6 * np.sin(2 * np.pi * (hours - 9) / 24) + _smooth_noise(rng, n, 0.8, 600)

    # faults on the true process
    friction_extra = np.zeros(n)
    for fault in FAULTS:
        inside = _inside(index, fault.start, fault.end) & running
        if fault.kind == "bearing_wear":
            wear = _ramp(index, fault.start, fault.end, shape=1.6)
            vibration = vibration + 2.5 * wear * running
            current = current * (1 + 0.03 * wear)
            friction_extra = friction_extra + 9.0 * wear
        elif fault.kind == "cavitation":
            k = inside.astype(float)
            suction = suction - 0.55 * k
            surge = rng.normal(size=n) * k
            discharge = discharge - k * (0.9 + 0.35 * np.abs(surge))
            flow = flow * (1 - k * (0.10 + 0.04 * np.abs(rng.normal(size=n))))
            vibration = vibration + k * (1.6 + 0.8 * np.abs(rng.normal(size=n)))
            current = current * (1 - 0.05 * k + 0.02 * surge)
    friction = 28.0 * r ** 2 + friction_extra
    temperature = np.empty(n)
    lag = np.exp(-1.0 / (40 * 60 / step_s))
    temperature[0] = ambient[0] + friction[0]
    for t in range(1, n):  # first-order thermal lag
        temperature[t] = lag * temperature[t - 1] + (1 - lag) * (ambient[t] + friction[t])

    measured_discharge = discharge.copy()
    for fault in FAULTS:
        if fault.kind == "sensor_drift":
            measured_discharge = measured_discharge + 0.8 * _ramp(index, fault.start, fault.end) + \
                0.8 * np.asarray(index >= fault.end)

    frame = pd.DataFrame({
        "speed": speed_true + rng.normal(scale=3.0, size=n) * running,
        "flow": np.maximum(flow + rng.normal(scale=0.8, size=n), 0.0) * running,
        "suction_pressure": suction + rng.normal(scale=0.01, size=n),
        "discharge_pressure": np.where(running, measured_discharge, suction) + rng.normal(scale=0.03, size=n),
        "motor_current": current + rng.normal(scale=0.25, size=n) * running,
        "vibration": np.maximum(vibration + rng.normal(scale=0.06, size=n), 0.0),
        "bearing_temperature": temperature + rng.normal(scale=0.15, size=n),
        "ambient_temperature": ambient + rng.normal(scale=0.2, size=n),
    }, index=index)
    frame.index.name = "time"
    return frame.round(4), list(FAULTS)


def truth_mask(index: pd.DatetimeIndex, faults: list[Fault], kinds: set[str] | None = None) -> np.ndarray:
    """True on the grid points inside an injected fault (of ``kinds``)."""
    mask = np.zeros(len(index), dtype=bool)
    for fault in faults:
        if kinds is None or fault.kind in kinds:
            mask |= _inside(index, fault.start, fault.end)
    return mask


def normal_operation_intervals(faults: list[Fault], end: pd.Timestamp = TRAIN_END) -> list[dict[str, str]]:
    """The normal-operation markup's intervals: the training period minus every fault and shutdown
    in it (the markup's condition ``speed > 300`` also leaves out any other stop)."""
    cuts = sorted([(f.start, f.end) for f in faults if f.start < end] + [s for s in SHUTDOWNS if s[0] < end])
    out, cursor = [], START
    for start, stop in cuts:
        if start > cursor:
            out.append({"from": _iso(cursor), "to": _iso(start)})
        cursor = max(cursor, stop)
    if cursor < end:
        out.append({"from": _iso(cursor), "to": _iso(end)})
    return out
