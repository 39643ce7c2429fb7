"""The learning indicator on the grid: which grid points an element trains and validates on.

The indicator is a boolean mask over the dataset's grid (the union of the element's training
markups within its training interval, evaluated by :mod:`lifecycle.markup_eval`). This module
turns it into training samples:

* a sample is a window of ``span`` consecutive grid points (a forecaster's input window plus its
  horizon; 1 for an envelope) that lies entirely inside one uninterrupted stretch of the
  indicator, so **a window never straddles a gap** — neither a point outside the indicator nor a
  hole in the grid's time index;
* the validation part is the last ``validation_split`` of the indicator's points in time: the mask
  is cut at one grid point into a training mask and a validation mask, and windows are formed in
  each separately, so no validation window reads a training point or the other way round.

It also checks the data the element will read, and refuses clearly: an input tag missing from the
dataset, no points in the indicator, NaN values on indicator points, a window longer than any
stretch of the indicator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from lifecycle.elements.errors import TrainingRefused


@dataclass(frozen=True)
class Split:
    """The indicator cut into its training and validation parts (boolean arrays over the grid)."""

    train: np.ndarray
    validation: np.ndarray

    @property
    def points(self) -> int:
        return int(self.train.sum() + self.validation.sum())


def as_mask(frame: pd.DataFrame, mask: pd.Series | np.ndarray | None) -> np.ndarray:
    """``mask`` as a boolean array aligned on ``frame``'s index (``None``: every point)."""
    if mask is None:
        return np.ones(len(frame), dtype=bool)
    if isinstance(mask, pd.Series):
        aligned = mask.reindex(frame.index)
        return aligned.fillna(False).to_numpy(dtype=bool)
    array = np.asarray(mask, dtype=bool)
    if array.shape != (len(frame),):
        raise ValueError(f"the mask has {array.shape} points, the grid {len(frame)}")
    return array


def check_tags(frame: pd.DataFrame, tags: Sequence[str], what: str = "inputs") -> None:
    """Refuse a tag the dataset does not have, naming it and the dataset's tags."""
    for i, tag in enumerate(tags):
        if tag not in frame.columns:
            known = ", ".join(map(repr, list(frame.columns)[:20]))
            raise TrainingRefused("missing_tag", f"{what}[{i}]: tag {tag!r} is not in the dataset (its tags: {known})",
                                  field=f"{what}[{i}]")


def check_values(frame: pd.DataFrame, tags: Sequence[str], used: np.ndarray) -> np.ndarray:
    """The tags' values (float64, grid points × tags); refuses NaN/inf on the points ``used``."""
    values = frame.loc[:, list(tags)].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) & used[:, None]
    if bad.any():
        column = int(np.argmax(bad.any(axis=0)))
        rows = np.flatnonzero(bad[:, column])
        raise TrainingRefused(
            "nan", f"tag {tags[column]!r} has no value (NaN) on {len(rows)} grid point(s) of the learning indicator, "
            f"the first at {frame.index[rows[0]]}: narrow the training markups (e.g. a condition exists({tags[column]})) "
            "or fill the dataset", field="training.markups")
    return values


def contiguous(frame: pd.DataFrame) -> np.ndarray:
    """``breaks[i]`` is True where grid point i does not directly follow point i-1 (a hole in the index)."""
    breaks = np.zeros(len(frame), dtype=bool)
    if len(frame) > 1:
        stamps = frame.index.asi8 if isinstance(frame.index, pd.DatetimeIndex) else np.asarray(frame.index)
        steps = np.diff(stamps)
        step = np.median(steps)
        breaks[1:] = steps != step
    breaks[0] = True
    return breaks


def run_lengths(mask: np.ndarray, breaks: np.ndarray | None = None) -> np.ndarray:
    """For every grid point, how many consecutive indicator points end there (0 outside the indicator)."""
    runs = np.zeros(len(mask), dtype=np.int64)
    count = 0
    for i, inside in enumerate(mask):  # one pass; numpy has no reset-on-false cumulative sum
        if not inside:
            count = 0
        elif breaks is not None and breaks[i]:
            count = 1
        else:
            count += 1
        runs[i] = count
    return runs


def window_ends(mask: np.ndarray, span: int, breaks: np.ndarray | None = None) -> np.ndarray:
    """Positions t such that the ``span`` grid points ending at t are all in ``mask`` without a gap."""
    return np.flatnonzero(run_lengths(mask, breaks) >= span)


def split(mask: np.ndarray, validation_split: float) -> Split:
    """Cut the indicator in time: the last ``validation_split`` of its points validate."""
    positions = np.flatnonzero(mask)
    if len(positions) == 0:
        raise TrainingRefused("no_points", "the learning indicator selects no grid point of the dataset: check the "
                              "training markups and interval", field="training.markups")
    train = mask.copy()
    validation = np.zeros_like(mask)
    n_validation = int(round(len(positions) * validation_split))
    if n_validation > 0:
        cut = positions[len(positions) - n_validation]
        train[cut:] = False
        validation[cut:] = mask[cut:]
    return Split(train=train, validation=validation)


def samples(frame: pd.DataFrame, split_: Split, span: int, *, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    """Window end positions for training and for validation; refuses a window that fits nowhere."""
    breaks = contiguous(frame)
    if span > len(frame):
        raise TrainingRefused("window_too_long", f"the window ({span} grid points with the horizon) is longer than the "
                              f"dataset ({len(frame)} grid points)", field="window")
    train = window_ends(split_.train, span, breaks)
    validation = window_ends(split_.validation, span, breaks)
    if len(train) == 0 and len(validation) == 0:
        longest = int(run_lengths(split_.train | split_.validation, breaks).max(initial=0))
        raise TrainingRefused("window_too_long", f"the window ({span} grid points with the horizon) is longer than "
                              f"every uninterrupted stretch of the learning indicator (the longest has {longest})",
                              field="window")
    if len(train) < minimum:
        raise TrainingRefused("too_few_points", f"only {len(train)} training window(s) fit in the learning indicator; "
                              f"at least {minimum} are needed", field="training.markups")
    if split_.validation.any() and len(validation) == 0:
        raise TrainingRefused("too_few_points", "no window fits in the validation part of the learning indicator (its "
                              "last stretches are shorter than the window): lower training.validation_split's share "
                              "or widen the markups", field="training.validation_split")
    return train, validation


def windows(values: np.ndarray, ends: np.ndarray, window: int, horizon: int = 0) -> np.ndarray:
    """``values[t-horizon-window+1 … t-horizon]`` for every end t: an array samples × window × tags."""
    starts = ends - horizon - window + 1
    index = starts[:, None] + np.arange(window)[None, :]
    return values[index]
