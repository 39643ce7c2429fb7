"""What a markup means over gridded telemetry: its specification (:class:`MarkupSpec`) and its
evaluation to a boolean mask over the grid (:func:`evaluate_mask`); also the union of markups that
forms a learning or inference indicator (:func:`union_mask`, :func:`indicator_mask`).

Pure: no database, no store. The markup records themselves are :mod:`lifecycle.markups`.

Semantics (docs/lifecycle.md, "Markups"). A grid point ``t`` (UTC) is in the markup when

    (no intervals at all  OR  t in a fixed interval  OR  t in a recurrent interval)
    AND the condition holds at t (no condition: it holds everywhere).

* A fixed interval is half-open ``[from, to)`` in UTC (a time without an offset is UTC).
* A recurrent interval is ``{days, from_time, to_time}``: on each of ``days`` (``mon`` … ``sun``,
  all days when omitted) from ``from_time`` to ``to_time``, times of day in UTC, half-open. When
  ``to_time <= from_time`` the interval runs across midnight into the next day (``fri 22:00 →
  sat 06:00`` for ``days: [fri]``); equal times mean 24 hours from ``from_time``.
* The condition is a Stellar boolean expression (``stellar_like``) over the tags at that grid
  point. Tags are variables by name; a tag whose name is not a Stellar identifier (it has a
  space, a ``-``, starts with a digit …) or is a keyword is reachable by its *alias*: every
  character other than letters, digits, ``_``, ``.`` and ``$`` replaced by ``_``, a leading ``_``
  added before a digit or ``.``, and ``_`` appended to a keyword — ``Motor current`` is
  ``Motor_current``, ``1st stage`` is ``_1st_stage``, ``in`` is ``in_``. An alias that would be
  the name or alias of another tag is not defined.
* The condition is *inconclusive* at a point when evaluating it there reads a tag that has no
  value (NaN on the grid, or a name that is not a tag of the dataset), fails with an evaluation
  error, or gives something other than ``true``/``false`` (null, NaN, a number). ``and``/``or``
  short-circuit, so ``A > 1 || B > 1`` is conclusive where ``A > 1`` even if ``B`` is missing.
  An inconclusive point is in the markup iff ``inconclusive_positive`` is true.

Intervals are evaluated vectorised with numpy; the condition row by row through the compiled
Stellar expression (only on points inside the intervals, with results memoized per distinct
tuple of the values it reads).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

import stellar_like
from lifecycle.errors import InvalidInput
from stellar_like import nodes
from stellar_like.parser import parse as parse_stellar

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NS = 1_000_000_000
DAY_NS = 86_400 * NS
MAX_CONDITION = 4000
#: Keywords of the Stellar grammar (either case), which cannot name a variable.
KEYWORDS = frozenset({"if", "then", "else", "not", "in", "and", "or", "true", "false", "null", "exists", "match",
                      "default"})
IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_.$]*$")
_MEMO_LIMIT = 200_000


class SpecError(ValueError):
    """A bad markup field; ``field`` names it (pydantic keeps this in the error's ``ctx``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)


class Interval(BaseModel):
    """A fixed interval ``[from, to)`` in UTC."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: dt.datetime = Field(alias="from")
    end: dt.datetime = Field(alias="to")

    @field_validator("start", "end")
    @classmethod
    def _to_utc(cls, value: dt.datetime) -> dt.datetime:
        return _utc(value)

    @model_validator(mode="after")
    def _ordered(self) -> "Interval":
        if self.end <= self.start:
            raise ValueError(f"'to' ({self.end.isoformat()}) must be after 'from' ({self.start.isoformat()})")
        return self


class Recurrent(BaseModel):
    """On each of ``days``, from ``from_time`` to ``to_time`` (UTC); across midnight when to ≤ from."""

    model_config = ConfigDict(extra="forbid")

    days: list[str] = Field(default_factory=lambda: list(DAYS), min_length=1, max_length=7)
    from_time: dt.time
    to_time: dt.time

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for i, day in enumerate(value):
            key = str(day).strip().lower()[:3] if isinstance(day, str) else None
            if key not in DAYS:
                raise ValueError(f"days[{i}]: {day!r} is not a day of the week ({', '.join(DAYS)})")
            if key in out:
                raise ValueError(f"days[{i}]: {day!r} is given twice")
            out.append(key)
        return out

    @field_validator("from_time", "to_time")
    @classmethod
    def _utc_time(cls, value: dt.time) -> dt.time:
        if value.tzinfo is not None:
            offset = value.utcoffset()
            if offset:
                raise ValueError("times of day are UTC: give them without an offset (or with Z)")
            value = value.replace(tzinfo=None)
        return value

    @property
    def crosses_midnight(self) -> bool:
        return self.to_time <= self.from_time


class MarkupSpec(BaseModel):
    """A markup as users write it (API ``POST /api/v1/markups``): what the evaluator accepts."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str | None = Field(None, min_length=1, max_length=100)
    description: str = Field("", max_length=2000)
    grid_step_s: float | None = Field(None, gt=0, le=7 * 86_400)
    intervals: list[Interval] = Field(default_factory=list, max_length=10_000)
    recurrent: list[Recurrent] = Field(default_factory=list, max_length=1_000)
    condition: str | None = Field(None, max_length=MAX_CONDITION)
    inconclusive_positive: bool = False

    @field_validator("grid_step_s")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("grid_step_s must be a finite number of seconds")
        return value

    @field_validator("condition")
    @classmethod
    def _condition(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        compile_condition(value)
        return value

    def compiled(self) -> stellar_like.CompiledExpression | None:
        return compile_condition(self.condition) if self.condition is not None else None


def compile_condition(text: str) -> stellar_like.CompiledExpression:
    """The compiled condition; :class:`SpecError` with the position when it does not parse."""
    try:
        return stellar_like.compile(text)
    except stellar_like.StellarParseError as exc:
        where = f" at {exc.position} (character {exc.position.offset + 1})" if exc.position is not None else ""
        raise SpecError(f"the condition does not parse{where}: {exc.message}", "condition") from None


def parse_spec(data: Mapping[str, Any]) -> MarkupSpec:
    """``data`` as a :class:`MarkupSpec`; :class:`InvalidInput` naming the field otherwise."""
    try:
        return MarkupSpec.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        inner = (err.get("ctx") or {}).get("error")
        loc = ".".join(str(p) for p in err.get("loc", ())) or "spec"
        if isinstance(inner, SpecError):
            raise InvalidInput(f"{inner.field}: {inner.message}", field=inner.field) from None
        raise InvalidInput(f"{loc}: {err.get('msg', 'invalid value')}", field=loc) from None


# ---------------------------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mask:
    """A boolean per grid point, and how many points the condition could not decide."""

    index: pd.DatetimeIndex
    values: np.ndarray  # bool, one per grid point
    inconclusive: np.ndarray = field(repr=False)  # bool: the condition was inconclusive there
    missing_tags: tuple[str, ...] = ()  # names the condition reads that are not tags of the data
    step_s: float | None = None

    @property
    def count(self) -> int:
        return int(self.values.sum())

    @property
    def inconclusive_count(self) -> int:
        return int(self.inconclusive.sum())

    @property
    def intervals(self) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
        return mask_intervals(self.values, self.index, self.step_s)

    def series(self) -> pd.Series:
        return pd.Series(self.values, index=self.index, name="mask")

    def to_json(self) -> dict[str, Any]:
        """The API's answer to ``GET /api/v1/markups/{name}/mask``."""
        return {
            "points": self.count,
            "grid_points": int(len(self.values)),
            "inconclusive_points": self.inconclusive_count,
            "grid_step_s": self.step_s,
            "missing_tags": list(self.missing_tags),
            "intervals": [{"from": _iso(a), "to": _iso(b)} for a, b in self.intervals],
        }


def _iso(ts: pd.Timestamp) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def _grid_step_s(index: pd.DatetimeIndex) -> float | None:
    if len(index) < 2:
        return None
    diffs = np.diff(index.asi8)
    return float(diffs.min()) / NS


def _utc_index(index: pd.Index) -> pd.DatetimeIndex:
    if not isinstance(index, pd.DatetimeIndex):
        raise InvalidInput("the grid must be indexed by time", field="dataset")
    idx = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    idx = idx.as_unit("ns")
    if len(idx) > 1 and not (np.diff(idx.asi8) > 0).all():
        raise InvalidInput("the grid's times must increase strictly", field="dataset")
    return idx


def mask_intervals(mask: np.ndarray | pd.Series, grid: pd.DatetimeIndex,
                   step_s: float | None = None) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The runs of consecutive true grid points as ``[first point, last point + step)``.

    A run also ends where the grid itself has a hole (two points more than one step apart).
    ``step_s`` defaults to the grid's smallest spacing.
    """
    values = np.asarray(mask, dtype=bool)
    idx = _utc_index(grid)
    if values.shape != (len(idx),):
        raise InvalidInput(f"the mask has {values.shape[0]} points, the grid {len(idx)}", field="mask")
    if not values.any():
        return []
    step = step_s if step_s is not None else (_grid_step_s(idx) or 0.0)
    step_ns = int(round(step * NS))
    t = idx.asi8
    on = np.flatnonzero(values)
    breaks = np.flatnonzero((np.diff(on) != 1) | (np.diff(t[on]) > step_ns))
    starts = np.concatenate(([on[0]], on[breaks + 1]))
    ends = np.concatenate((on[breaks], [on[-1]]))
    return [(pd.Timestamp(int(t[a]), tz="UTC"), pd.Timestamp(int(t[b]) + step_ns, tz="UTC"))
            for a, b in zip(starts, ends)]


def interval_mask(spec: MarkupSpec, index: pd.DatetimeIndex) -> np.ndarray:
    """Points inside a fixed or a recurrent interval (every point when the spec has none)."""
    idx = _utc_index(index)
    n = len(idx)
    if not spec.intervals and not spec.recurrent:
        return np.ones(n, dtype=bool)
    t = idx.asi8
    # fixed intervals: +1 at each start position, −1 at each end position, a point is in when the sum > 0
    delta = np.zeros(n + 1, dtype=np.int64)
    for iv in spec.intervals:
        lo = int(np.searchsorted(t, pd.Timestamp(iv.start).as_unit("ns").value, side="left"))
        hi = int(np.searchsorted(t, pd.Timestamp(iv.end).as_unit("ns").value, side="left"))
        if hi > lo:
            delta[lo] += 1
            delta[hi] -= 1
    inside = np.cumsum(delta[:-1]) > 0
    if spec.recurrent:
        day_start = np.floor_divide(t, DAY_NS) * DAY_NS
        tod = t - day_start
        weekday = ((day_start // DAY_NS) + 3) % 7  # 1970-01-01 was a Thursday (mon = 0)
        for rec in spec.recurrent:
            on_day = np.zeros(7, dtype=bool)
            on_day[[DAYS.index(d) for d in rec.days]] = True
            f, e = _tod_ns(rec.from_time), _tod_ns(rec.to_time)
            if not rec.crosses_midnight:
                inside |= on_day[weekday] & (tod >= f) & (tod < e)
            else:  # from f on a listed day until e on the day after
                inside |= (on_day[weekday] & (tod >= f)) | (on_day[(weekday - 1) % 7] & (tod < e))
    return inside


def _tod_ns(value: dt.time) -> int:
    return ((value.hour * 60 + value.minute) * 60 + value.second) * NS + value.microsecond * 1000


def tag_variables(columns: Sequence[str]) -> dict[str, str]:
    """Stellar variable name → tag (column) name: the tag's own name, or its alias (module docstring)."""
    names: dict[str, str] = {}
    taken = {c for c in columns if IDENTIFIER.match(c) and c.lower() not in KEYWORDS}
    for c in taken:
        names[c] = c
    aliases: dict[str, list[str]] = {}
    for c in columns:
        if c in taken:
            continue
        alias = re.sub(r"[^A-Za-z0-9_.$]", "_", c)
        if not alias or not re.match(r"[A-Za-z_$]", alias[0]):
            alias = "_" + alias
        if alias.lower() in KEYWORDS:
            alias += "_"
        aliases.setdefault(alias, []).append(c)
    for alias, cols in aliases.items():
        if len(cols) == 1 and alias not in taken:
            names[alias] = cols[0]
    return names


def condition_names(text: str) -> set[str]:
    """The variable names a condition refers to (lambda parameters excluded)."""
    found: set[str] = set()

    def walk(node: Any, bound: frozenset[str]) -> None:
        if isinstance(node, nodes.Var):
            if node.name != "_" and node.name not in bound:
                found.add(node.name)
        elif isinstance(node, nodes.Exists):
            if node.name not in bound:
                found.add(node.name)
        elif isinstance(node, nodes.Lambda):
            walk(node.body, bound | frozenset(node.params))
        elif isinstance(node, nodes.Node):
            for slot in node.__slots__:
                walk(getattr(node, slot), bound)
        elif isinstance(node, tuple):
            for item in node:
                walk(item, bound)

    walk(parse_stellar(text), frozenset())
    return found


class _Row(Mapping[str, Any]):
    """The variables of one grid point; notes whether evaluation read a variable without a value."""

    __slots__ = ("values", "read_missing")

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.read_missing = False

    def get(self, key: str, default: Any = None) -> Any:
        value = self.values.get(key)
        if value is None:
            self.read_missing = True
            return default
        return value

    def __getitem__(self, key: str) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.values.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)


def condition_mask(spec: MarkupSpec, grid_frame: pd.DataFrame,
                   where: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """``(holds, inconclusive, missing_tags)`` of the condition at the points ``where`` (all by default)."""
    n = len(grid_frame)
    holds = np.ones(n, dtype=bool)
    inconclusive = np.zeros(n, dtype=bool)
    compiled = spec.compiled()
    if compiled is None or spec.condition is None:
        return holds, inconclusive, ()
    variables = tag_variables([str(c) for c in grid_frame.columns])
    referenced = condition_names(spec.condition)
    missing = tuple(sorted(referenced - variables.keys()))
    used = sorted(referenced & variables.keys())
    columns: dict[str, list[Any]] = {}
    for name in used:
        col = pd.to_numeric(grid_frame[variables[name]], errors="coerce").to_numpy(dtype="float64")
        columns[name] = [None if math.isnan(v) else v for v in col.tolist()]
    positions = np.flatnonzero(where) if where is not None else np.arange(n)
    row = _Row()
    memo: dict[tuple[Any, ...], tuple[bool, bool]] = {}
    for i in positions.tolist():
        key = tuple(columns[name][i] for name in used)
        outcome = memo.get(key)
        if outcome is None:
            row.values = dict(zip(used, key))
            row.read_missing = False
            try:
                result = compiled.evaluate(row)
                decided = not row.read_missing and isinstance(result, bool)
                outcome = (bool(result) if decided else False, not decided)
            except stellar_like.StellarError:
                outcome = (False, True)
            if len(memo) < _MEMO_LIMIT:
                memo[key] = outcome
        holds[i], inconclusive[i] = outcome
    holds[inconclusive] = spec.inconclusive_positive
    if where is not None:
        holds &= where
        inconclusive &= where
    return holds, inconclusive, missing


def evaluate_mask(spec: MarkupSpec, grid_frame: pd.DataFrame) -> Mask:
    """The markup over ``grid_frame`` (a UTC DatetimeIndex on a grid, one column per tag)."""
    idx = _utc_index(grid_frame.index)
    inside = interval_mask(spec, idx)
    holds, inconclusive, missing = condition_mask(spec, grid_frame, inside)
    step = _grid_step_s(idx) or spec.grid_step_s
    return Mask(idx, inside & holds, inconclusive, missing, step)


def union_mask(masks: Sequence[Mask]) -> Mask:
    """The points in any of ``masks`` (all over the same grid)."""
    if not masks:
        raise InvalidInput("no masks to unite", field="markups")
    first = masks[0]
    values = first.values.copy()
    inconclusive = first.inconclusive.copy()
    missing = set(first.missing_tags)
    for m in masks[1:]:
        if len(m.index) != len(first.index) or not (m.index.asi8 == first.index.asi8).all():
            raise InvalidInput("the masks are over different grids", field="markups")
        values |= m.values
        inconclusive |= m.inconclusive
        missing.update(m.missing_tags)
    return Mask(first.index, values, inconclusive, tuple(sorted(missing)), first.step_s)


def indicator_mask(specs: Sequence[MarkupSpec], grid_frame: pd.DataFrame) -> Mask:
    """A learning or inference indicator: the union of ``specs``; every grid point when there are none."""
    if not specs:
        idx = _utc_index(grid_frame.index)
        return Mask(idx, np.ones(len(idx), dtype=bool), np.zeros(len(idx), dtype=bool), (), _grid_step_s(idx))
    return union_mask([evaluate_mask(s, grid_frame) for s in specs])
