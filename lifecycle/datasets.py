"""Datasets: tables of tag values over time, uploaded once, validated, kept immutable in the model
store, and read back onto a regular time grid (docs/lifecycle.md; docs/lifecycle.md, "Datasets").

Accepted files
  * CSV, UTF-8 (a byte-order mark is allowed), a header row, fields separated by ``,`` or ``;``
    (sniffed: the separator that splits the first lines into the same number of fields, two or
    more; with ``;`` a decimal comma ``1,5`` is accepted). Column names keep inner spaces;
    surrounding whitespace is stripped.
  * Parquet (detected by its ``PAR1`` magic bytes), read with pyarrow batch by batch.

  One column is the timestamp: the one named by ``time_column``, else the column called ``time``,
  ``timestamp``, ``datetime``, ``date``, ``date_time``, ``ts`` … (case-insensitive), else the only
  column whose name contains ``time`` or ``date`` (or, in Parquet, the only timestamp-typed column).
  Every other column is a tag and must be numeric; an empty cell (or ``NA``, ``NaN``, ``null``) is a
  missing value.

Timestamps
  The first row's value decides the format for the whole file: a number is epoch time — seconds,
  or milliseconds when its magnitude is at least 10^11 (10^11 s is the year 5138, 10^11 ms is 1973);
  anything else is ISO 8601 (``2024-03-01T12:00:00Z``, ``…+02:00``, ``2024-03-01 12:00``), converted
  to UTC, a value without an offset being UTC already. Timestamps must increase strictly from row
  to row: a duplicate or an earlier timestamp is refused naming the row.

Errors
  Every problem is an :class:`~lifecycle.errors.InvalidInput` naming the column and the first bad
  row (row 1 is the first data row after the header; in a CSV without quoted line breaks it is
  file line 2). Nothing is stored unless the whole file is valid.

Storage
  The validated data is written as one Parquet file (``time`` as UTC timestamps, tags as float64)
  with a ``dataset.json`` description, uploaded as a directory to ``/datasets/<name>/<digest>`` in the model
  store (``maas.store``: a sha256 manifest, committed by one rename, verified on every download).
  The ``datasets`` table records the description, the sha256 of the uploaded file and the store
  digest, which every read checks. Files are parsed in chunks of ``chunk_rows`` rows, so memory
  stays bounded by the chunk, not the file.

The grid rule (:func:`to_grid`)
  Grid points are the multiples of the step since the Unix epoch (UTC) from ``start`` to ``end``
  (by default the first and last sample). The value of tag ``T`` at grid point ``g`` is the last
  non-missing sample of ``T`` in the half-open window ``(g − step, g]`` — the latest value at or
  before ``g`` no older than one step; when that window holds no sample of ``T`` the value is NaN.
  The rule is causal (a grid point never uses a later sample, as in live inference), does not
  invent values across gaps longer than a step (they stay NaN: inconclusive for markup
  conditions, skipped by training), and each sample can only be the value of the one grid point
  whose window contains it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sqlalchemy import JSON, Float, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lifecycle.db import Base, UTCDateTime, utcnow
from lifecycle.errors import Conflict, InvalidInput, NotFound, Unavailable
from maas.errors import MaasError
from maas.store import ModelStore

#: Column names taken for the timestamp, in order of preference (compared case-insensitively).
TIME_COLUMN_NAMES = ("time", "timestamp", "datetime", "date_time", "date", "ts", "time_stamp", "zeit", "datum")
#: Cells read as a missing value.
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "-"})
#: Epoch values of at least this magnitude are milliseconds, below it seconds.
EPOCH_MS_THRESHOLD = 1e11
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
STORE_ROOT = "/datasets"
DATA_FILE = "data.parquet"
DESCRIPTION_FILE = "dataset.json"
MAX_GRID_POINTS = 20_000_000
NS = 1_000_000_000


class DatasetRecord(Base):
    """One uploaded dataset. The data itself is in the model store under ``store_path``."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    tags: Mapped[list[str]] = mapped_column(JSON)
    rows: Mapped[int] = mapped_column(Integer)
    start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    end: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    grid_step_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    time_column: Mapped[str] = mapped_column(String(200))
    time_format: Mapped[str] = mapped_column(String(20))  # iso8601 | epoch_s | epoch_ms | timestamp
    source_format: Mapped[str] = mapped_column(String(10))  # csv | parquet
    source_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    source_sha256: Mapped[str] = mapped_column(String(64))
    source_bytes: Mapped[int] = mapped_column(Integer)
    store_path: Mapped[str] = mapped_column(String(300))
    store_digest: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is: the API's ``{name, tags, rows, start, end, …}``."""

    name: str
    tags: list[str]
    rows: int
    start: dt.datetime
    end: dt.datetime
    grid_step_s: float | None
    time_column: str
    time_format: str
    source_format: str
    source_name: str | None
    sha256: str
    created_by: str
    created_at: dt.datetime

    @classmethod
    def of(cls, rec: DatasetRecord) -> "DatasetInfo":
        return cls(rec.name, list(rec.tags), rec.rows, rec.start, rec.end, rec.grid_step_s, rec.time_column,
                   rec.time_format, rec.source_format, rec.source_name, rec.source_sha256, rec.created_by,
                   rec.created_at)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "tags": self.tags, "rows": self.rows, "start": iso(self.start), "end": iso(self.end),
            "grid_step_s": self.grid_step_s, "time_column": self.time_column, "time_format": self.time_format,
            "format": self.source_format, "source_name": self.source_name, "sha256": self.sha256,
            "created_by": self.created_by, "created_at": iso(self.created_at),
        }


def iso(value: dt.datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, the API's spelling of a time."""
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------------
# Parsing and validation (pure: a file in, normalized chunks out)
# ---------------------------------------------------------------------------------------------
@dataclass
class _TimeState:
    column: str
    fmt: str | None = None  # decided by the first row
    last_ns: int | None = None
    rows: int = 0
    first_ns: int | None = None


def _bad(message: str, column: str | None = None) -> InvalidInput:
    return InvalidInput(message, field="file")


def _row_ref(row: int, csv_lines: bool) -> str:
    return f"row {row} (line {row + 1})" if csv_lines else f"row {row}"


def find_time_column(columns: list[str], time_column: str | None, typed: list[str] | None = None) -> str:
    """The timestamp column among ``columns`` (see the module docstring for the rule)."""
    if time_column is not None:
        if time_column not in columns:
            raise InvalidInput(f"time_column {time_column!r} is not a column of the file (columns: "
                               f"{', '.join(map(repr, columns[:20]))})", field="time_column")
        return time_column
    lowered = {c.strip().lower(): c for c in columns}
    for name in TIME_COLUMN_NAMES:
        if name in lowered:
            return lowered[name]
    fuzzy = [c for c in columns if "time" in c.lower() or "date" in c.lower()]
    if len(fuzzy) == 1:
        return fuzzy[0]
    if typed and len(typed) == 1:
        return typed[0]
    if len(fuzzy) > 1:
        raise InvalidInput(f"several columns could be the timestamp ({', '.join(map(repr, fuzzy))}): name one "
                           "with time_column", field="time_column")
    raise InvalidInput(f"no timestamp column: none is named {', '.join(TIME_COLUMN_NAMES[:5])} … "
                       f"(columns: {', '.join(map(repr, columns[:20]))}); name it with time_column", field="time_column")


def _parse_times(raw: pd.Series, state: _TimeState, row0: int, csv_lines: bool) -> np.ndarray:
    """Epoch nanoseconds (int64) of one chunk's timestamps; validates order across chunks."""
    col = state.column
    if pd.api.types.is_datetime64_any_dtype(raw.dtype):
        if state.fmt is None:
            state.fmt = "timestamp"
        ts = raw.dt.tz_localize("UTC") if raw.dt.tz is None else raw.dt.tz_convert("UTC")
        missing = ts.isna().to_numpy()
        ns = ts.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").astype("int64")
    else:
        text = raw.astype("string") if not pd.api.types.is_numeric_dtype(raw.dtype) else None
        if text is not None:
            stripped = text.str.strip()
            missing = (stripped.isna() | stripped.str.lower().isin(MISSING)).to_numpy(dtype=bool)
        else:
            missing = raw.isna().to_numpy()
        if missing.any():
            i = int(np.argmax(missing))
            raise _bad(f"{_row_ref(row0 + i, csv_lines)}: no timestamp in column {col!r}", col)
        if state.fmt is None:
            first = raw.iloc[0] if text is None else stripped.iloc[0]
            try:
                float(first)
                is_number = True
            except (TypeError, ValueError):
                is_number = False
            if is_number:
                state.fmt = "epoch_ms" if abs(float(first)) >= EPOCH_MS_THRESHOLD else "epoch_s"
            else:
                state.fmt = "iso8601"
        if state.fmt in ("epoch_s", "epoch_ms"):
            nums = pd.to_numeric(raw if text is None else stripped, errors="coerce")
            bad = nums.isna().to_numpy() | ~np.isfinite(nums.to_numpy(dtype="float64", na_value=np.nan))
            if bad.any():
                i = int(np.argmax(bad))
                shown = (raw if text is None else stripped).iloc[i]
                raise _bad(f"{_row_ref(row0 + i, csv_lines)}: timestamp {shown!r} in column {col!r} is not an epoch "
                           f"number like the first row's ({state.fmt.replace('_', ' ')})", col)
            factor = NS if state.fmt == "epoch_s" else NS // 1000
            if pd.api.types.is_integer_dtype(nums.dtype):
                ns = nums.to_numpy(dtype="int64") * factor
            else:
                ns = np.round(nums.to_numpy(dtype="float64") * factor).astype("int64")
        elif state.fmt == "iso8601":
            parsed = pd.to_datetime(stripped, format="ISO8601", utc=True, errors="coerce")
            bad = parsed.isna().to_numpy()
            if bad.any():
                i = int(np.argmax(bad))
                raise _bad(f"{_row_ref(row0 + i, csv_lines)}: timestamp {stripped.iloc[i]!r} in column {col!r} is not "
                           "ISO 8601 like the first row's (e.g. 2024-03-01T12:00:00Z)", col)
            ns = parsed.dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").astype("int64")
        else:  # a typed timestamp column in the first batch, a text one later: cannot happen in Parquet
            raise _bad(f"column {col!r} changes type within the file", col)
    if pd.api.types.is_datetime64_any_dtype(raw.dtype) and missing.any():
        i = int(np.argmax(missing))
        raise _bad(f"{_row_ref(row0 + i, csv_lines)}: no timestamp in column {col!r}", col)
    if len(ns):
        prev = np.concatenate(([state.last_ns], ns[:-1])) if state.last_ns is not None else None
        if prev is not None:
            order = ns <= prev
        else:
            order = np.concatenate(([False], ns[1:] <= ns[:-1]))
        if order.any():
            i = int(np.argmax(order))
            before = prev[i] if prev is not None else ns[i - 1]
            what = "duplicate timestamp" if ns[i] == before else "timestamps not sorted"
            raise _bad(f"{_row_ref(row0 + i, csv_lines)}: {what}: {_ns_iso(int(ns[i]))} is not after the previous "
                       f"row's {_ns_iso(int(before))} (timestamps must increase strictly)", col)
        if state.first_ns is None:
            state.first_ns = int(ns[0])
        state.last_ns = int(ns[-1])
    state.rows += len(ns)
    return ns


def _ns_iso(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").isoformat().replace("+00:00", "Z")


def _parse_tag(raw: pd.Series, tag: str, row0: int, csv_lines: bool, decimal_comma: bool) -> np.ndarray:
    """A tag column of one chunk as float64 (NaN for missing cells)."""
    if pd.api.types.is_bool_dtype(raw.dtype):
        raise _bad(f"column {tag!r} is boolean; tags must be numeric", tag)
    if pd.api.types.is_numeric_dtype(raw.dtype):
        values = raw.to_numpy(dtype="float64", na_value=np.nan)
        bad = np.isinf(values)
        shown = raw
    else:
        text = raw.astype("string").str.strip()
        missing = (text.isna() | text.str.lower().isin(MISSING)).to_numpy(dtype=bool)
        if decimal_comma:
            text = text.str.replace(",", ".", regex=False)
        try:  # Arrow's C parser first; pandas finds the bad cell when it refuses one
            parsed = pc.cast(pa.array(text.where(~missing).to_numpy(dtype=object, na_value=None), type=pa.string()),
                             pa.float64())
            values = parsed.to_numpy(zero_copy_only=False)
            bad = np.isinf(values)
        except pa.ArrowInvalid:
            nums = pd.to_numeric(text.where(~missing), errors="coerce")
            values = nums.to_numpy(dtype="float64", na_value=np.nan)
            bad = (np.isnan(values) & ~missing) | np.isinf(values)
        shown = raw
    if bad.any():
        i = int(np.argmax(bad))
        raise _bad(f"{_row_ref(row0 + i, csv_lines)}: column {tag!r} holds {shown.iloc[i]!r}, not a finite number "
                   "(tags must be numeric)", tag)
    return values


def _sniff_separator(sample: str) -> str:
    """``,`` or ``;``: the one splitting the first lines into equal field counts (≥ 2)."""
    lines = sample.splitlines()[:50]
    if len(sample) >= 65536 and len(lines) > 1:
        lines = lines[:-1]  # the last line of a cut sample may be partial
    best: tuple[int, int, str] | None = None
    for sep in (",", ";"):
        rows = [r for r in csv.reader(lines, delimiter=sep) if r]
        if not rows or len(rows[0]) < 2:
            continue
        consistent = all(len(r) == len(rows[0]) for r in rows)
        score = (int(consistent), len(rows[0]), sep)
        if best is None or score[:2] > best[:2]:
            best = score
    if best is None:
        raise _bad("not a table: the header has a single column; expected a timestamp column and tag columns "
                   "separated by ',' or ';'")
    return best[2]


@dataclass
class _Parsed:
    fmt: str
    time_column: str
    time_format: str
    tags: list[str]
    rows: int
    first_ns: int
    last_ns: int


def _csv_chunks(path: Path, time_column: str | None, chunk_rows: int) -> tuple[str, list[str], Iterator[pd.DataFrame], bool]:
    with open(path, "rb") as fh:
        head = fh.read(65536)
    try:
        sample = head.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a multi-byte character cut by the sample's end
            raise _bad(f"not a table: the file is neither Parquet nor UTF-8 text (byte {exc.start} is not UTF-8)") from exc
        sample = head[: exc.start].decode("utf-8-sig")
    if not sample.strip():
        raise _bad("the file is empty")
    if "\x00" in sample:
        raise _bad("not a table: the file is neither Parquet nor CSV text (it holds NUL bytes)")
    sep = _sniff_separator(sample)
    header = next(csv.reader(io.StringIO(sample), delimiter=sep))
    columns = [c.strip() for c in header]
    for i, c in enumerate(columns):
        if not c:
            raise _bad(f"column {i + 1} of the header has no name")
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise _bad(f"the header names {dupes[0]!r} more than once", dupes[0])
    tcol = find_time_column(columns, time_column)
    try:
        reader = pd.read_csv(path, sep=sep, header=0, names=columns, dtype=str, keep_default_na=False,
                             encoding="utf-8-sig", chunksize=chunk_rows, skip_blank_lines=True, engine="c")
    except (ValueError, pd.errors.ParserError) as exc:
        raise _bad(f"not a table: {exc}") from exc

    def chunks() -> Iterator[pd.DataFrame]:
        try:
            yield from reader
        except pd.errors.ParserError as exc:
            raise _bad(f"not a table: {exc}".replace("line", "file line")) from exc
        except UnicodeDecodeError as exc:
            raise _bad(f"not a table: the file is not UTF-8 text after byte {exc.start}") from exc
        finally:
            reader.close()

    return tcol, [c for c in columns if c != tcol], chunks(), sep == ";"


def _parquet_chunks(path: Path, time_column: str | None, chunk_rows: int) -> tuple[str, list[str], Iterator[pd.DataFrame]]:
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise _bad(f"not a readable Parquet file: {exc}") from exc
    schema = pf.schema_arrow
    columns = list(schema.names)
    if len(columns) < 2:
        raise _bad("not a table: a timestamp column and at least one tag column are needed")
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    if dupes:
        raise _bad(f"the file names the column {dupes[0]!r} more than once", dupes[0])
    typed = [f.name for f in schema if pa.types.is_timestamp(f.type) or pa.types.is_date(f.type)]
    tcol = find_time_column(columns, time_column, typed)

    def chunks() -> Iterator[pd.DataFrame]:
        try:
            for batch in pf.iter_batches(batch_size=chunk_rows):
                yield batch.to_pandas()
        except pa.ArrowException as exc:
            raise _bad(f"not a readable Parquet file: {exc}") from exc

    return tcol, [c for c in columns if c != tcol], chunks()


def normalize_file(path: Path, out: Path, *, time_column: str | None = None, chunk_rows: int = 100_000) -> _Parsed:
    """Validate the CSV or Parquet file ``path`` and write it to ``out`` as the dataset's Parquet.

    Raises :class:`InvalidInput` naming the row and column of the first problem.
    """
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if not magic:
        raise _bad("the file is empty")
    is_parquet = magic == b"PAR1"
    decimal_comma = False
    if is_parquet:
        tcol, tags, chunks = _parquet_chunks(path, time_column, chunk_rows)
    else:
        tcol, tags, chunks, decimal_comma = _csv_chunks(path, time_column, chunk_rows)
    if not tags:
        raise _bad(f"no tag columns: the file has only the timestamp column {tcol!r}")
    state = _TimeState(tcol)
    schema = pa.schema([pa.field("time", pa.timestamp("ns", tz="UTC"), nullable=False)]
                       + [pa.field(t, pa.float64()) for t in tags])
    writer: pq.ParquetWriter | None = None
    try:
        for chunk in chunks:
            if chunk.empty:
                continue
            row0 = state.rows + 1
            ns = _parse_times(chunk[tcol], state, row0, not is_parquet)
            arrays = [pa.array(ns.view("datetime64[ns]"), type=pa.timestamp("ns", tz="UTC"))]
            for tag in tags:
                arrays.append(pa.array(_parse_tag(chunk[tag], tag, row0, not is_parquet, decimal_comma), type=pa.float64()))
            if writer is None:
                writer = pq.ParquetWriter(out, schema, compression="zstd")
            writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
    finally:
        if writer is not None:
            writer.close()
    if state.rows == 0 or state.first_ns is None or state.last_ns is None:
        raise _bad("the file has a header but no data rows")
    return _Parsed("parquet" if is_parquet else "csv", tcol, state.fmt or "iso8601", tags, state.rows,
                   state.first_ns, state.last_ns)


# ---------------------------------------------------------------------------------------------
# The grid rule (pure)
# ---------------------------------------------------------------------------------------------
def _to_ns(value: dt.datetime | pd.Timestamp | str | None, what: str) -> int | None:
    if value is None:
        return None
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{what} {value!r} is not an ISO 8601 time", field=what) from exc
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.tz_convert("UTC").as_unit("ns").value)


def grid_index(step_s: float, start: Any, end: Any) -> pd.DatetimeIndex:
    """The grid points (UTC) from ``start`` to ``end``: the multiples of ``step_s`` since the epoch."""
    if not (isinstance(step_s, (int, float)) and math.isfinite(step_s) and step_s > 0):
        raise InvalidInput(f"grid_step_s must be a positive number of seconds, not {step_s!r}", field="grid_step_s")
    step = int(round(step_s * NS))
    if step <= 0:
        raise InvalidInput("grid_step_s is below a nanosecond", field="grid_step_s")
    lo, hi = _to_ns(start, "start"), _to_ns(end, "end")
    assert lo is not None and hi is not None
    if hi < lo:
        raise InvalidInput("the end of the grid is before its start", field="end")
    first = -(-lo // step) * step
    count = (hi - first) // step + 1 if hi >= first else 0
    if count > MAX_GRID_POINTS:
        raise InvalidInput(f"the grid would have {count} points (more than {MAX_GRID_POINTS}): use a larger "
                           "grid_step_s or a shorter interval", field="grid_step_s")
    return pd.DatetimeIndex((first + step * np.arange(count, dtype="int64")).view("datetime64[ns]"),
                            name="time").tz_localize("UTC")


def to_grid(samples: pd.DataFrame, step_s: float, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Samples (a UTC DatetimeIndex, one float column per tag) on the grid, by the module's rule.

    Each grid point ``g`` gets, per tag, the last non-missing sample in ``(g − step, g]``, else NaN.
    """
    if start is None and end is None and samples.empty:
        raise InvalidInput("no samples to put on a grid", field="dataset")
    start = samples.index[0] if start is None else start
    end = samples.index[-1] if end is None else end
    grid = grid_index(step_s, start, end)
    step = int(round(step_s * NS))
    if samples.empty or grid.empty:
        return pd.DataFrame(np.nan, index=grid, columns=list(samples.columns), dtype="float64")
    t = samples.index.as_unit("ns").asi8
    slot = -(-t // step) * step  # the grid point whose window (g − step, g] holds the sample
    frame = samples.copy()
    frame.index = pd.DatetimeIndex(slot.view("datetime64[ns]")).tz_localize("UTC")
    last = frame.groupby(level=0, sort=True).last()  # last non-missing value per tag and window
    out = last.reindex(grid)
    out.index.name = "time"
    return out.astype("float64")


# ---------------------------------------------------------------------------------------------
# The service (side effects: the store and the database)
# ---------------------------------------------------------------------------------------------
@dataclass
class DatasetService:
    """Upload, list, describe and read datasets; ``store`` is the model store they live in."""

    store: ModelStore
    work_dir: Path | None = None  # temporary files; the system's temp dir by default
    chunk_rows: int = 100_000
    max_upload_bytes: int = 4 << 30
    #: Verified local copies of datasets by store digest (datasets never change), so repeated reads
    #: do not download again; None: download on every read. Least recently read copies are removed
    #: beyond ``cache_bytes``.
    cache_dir: Path | None = None
    cache_bytes: int = 8 << 30

    def _tempdir(self) -> Path:
        return Path(tempfile.mkdtemp(prefix="maas-dataset-", dir=self.work_dir))

    @staticmethod
    def check_name(name: str) -> str:
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise InvalidInput("name must be 1 to 100 characters: letters, digits, '.', '_' or '-', starting with a "
                               "letter or digit", field="name")
        return name

    def upload(self, session: Session, *, name: str, source: BinaryIO | Path, actor: str,
               filename: str | None = None, time_column: str | None = None,
               grid_step_s: float | None = None) -> DatasetInfo:
        """Validate ``source`` and store it as the dataset ``name``; raises InvalidInput / Conflict."""
        self.check_name(name)
        if grid_step_s is not None and not (math.isfinite(grid_step_s) and grid_step_s > 0):
            raise InvalidInput("grid_step_s must be a positive number of seconds", field="grid_step_s")
        if time_column is not None and not time_column.strip():
            time_column = None
        if session.scalar(select(DatasetRecord.id).where(DatasetRecord.name == name)) is not None:
            raise Conflict(f"a dataset named {name!r} exists already; datasets are immutable (upload under a new "
                           "name)", field="name")
        tmp = self._tempdir()
        try:
            src = tmp / "source"
            digest, size = _copy_hashing(source, src, self.max_upload_bytes)
            payload = tmp / "payload"
            payload.mkdir()
            parsed = normalize_file(src, payload / DATA_FILE, time_column=time_column, chunk_rows=self.chunk_rows)
            info = DatasetInfo(
                name=name, tags=parsed.tags, rows=parsed.rows, start=_ns_dt(parsed.first_ns), end=_ns_dt(parsed.last_ns),
                grid_step_s=grid_step_s, time_column=parsed.time_column, time_format=parsed.time_format,
                source_format=parsed.fmt, source_name=(filename or None) and str(filename)[:255], sha256=digest,
                created_by=actor, created_at=utcnow(),
            )
            described = {k: v for k, v in info.to_json().items() if k not in ("created_at", "created_by")}
            description = json.dumps(described, indent=1, sort_keys=True).encode()
            (payload / DESCRIPTION_FILE).write_bytes(description)
            # The path names the content (the description holds the file's sha256): two uploads
            # racing for one name cannot overwrite each other's files (the loser's insert fails on
            # the unique name, its copy stays unused), and the leftover of an upload whose
            # transaction did not commit is reused when identical.
            store_path = f"{STORE_ROOT}/{name}/{hashlib.sha256(description).hexdigest()[:16]}"
            try:
                result = self.store.upload(payload, store_path)
            except MaasError as exc:
                raise Unavailable(f"model store: {exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        rec = DatasetRecord(
            name=name, tags=info.tags, rows=info.rows, start=info.start, end=info.end, grid_step_s=grid_step_s,
            time_column=info.time_column, time_format=info.time_format, source_format=info.source_format,
            source_name=info.source_name, source_sha256=digest, source_bytes=size, store_path=store_path,
            store_digest=result.digest, created_by=actor, created_at=info.created_at,
        )
        session.add(rec)
        session.flush()
        return DatasetInfo.of(rec)

    def _record(self, session: Session, name: str) -> DatasetRecord:
        rec = session.scalar(select(DatasetRecord).where(DatasetRecord.name == name))
        if rec is None:
            raise NotFound(f"no dataset named {name!r}", field="dataset")
        return rec

    def list(self, session: Session) -> list[DatasetInfo]:
        return [DatasetInfo.of(r) for r in session.scalars(select(DatasetRecord).order_by(DatasetRecord.name))]

    def describe(self, session: Session, name: str) -> DatasetInfo:
        return DatasetInfo.of(self._record(session, name))

    def read(self, session: Session, name: str, start: Any = None, end: Any = None,
             tags: list[str] | None = None) -> pd.DataFrame:
        """The dataset's samples in ``[start, end]``: a UTC DatetimeIndex ``time``, a float column per tag."""
        rec = self._record(session, name)
        return self._read(rec, _to_ns(start, "start"), _to_ns(end, "end"), tags)

    def _read(self, rec: DatasetRecord, lo: int | None, hi: int | None, tags: list[str] | None) -> pd.DataFrame:
        if tags is not None:
            unknown = [t for t in tags if t not in rec.tags]
            if unknown:
                raise InvalidInput(f"dataset {rec.name!r} has no tag {unknown[0]!r}", field="tags")
        filters: list[tuple[str, str, Any]] = []
        if lo is not None:
            filters.append(("time", ">=", pd.Timestamp(lo, tz="UTC")))
        if hi is not None:
            filters.append(("time", "<=", pd.Timestamp(hi, tz="UTC")))
        columns = ["time", *(tags if tags is not None else rec.tags)]
        if self.cache_dir is not None:
            try:
                table = pq.read_table(self._cached(rec) / DATA_FILE, columns=columns, filters=filters or None)
            except FileNotFoundError:  # evicted by another reader between lookup and open: fill again
                table = pq.read_table(self._cached(rec) / DATA_FILE, columns=columns, filters=filters or None)
        else:
            tmp = self._tempdir()
            try:
                self._download(rec, tmp)
                table = pq.read_table(tmp / DATA_FILE, columns=columns, filters=filters or None)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        frame = table.to_pandas().set_index("time")
        frame.index = pd.DatetimeIndex(frame.index).tz_convert("UTC").as_unit("ns")
        return frame.astype("float64")

    def _download(self, rec: DatasetRecord, dest: Path) -> None:
        try:
            manifest = self.store.download(rec.store_path, dest)
        except MaasError as exc:
            raise Unavailable(f"model store: dataset {rec.name!r}: {exc}") from exc
        if manifest is None or manifest.digest != rec.store_digest:
            raise Unavailable(f"model store: dataset {rec.name!r} at {rec.store_path} is not the one uploaded "
                              "(its digest differs)")

    def _cached(self, rec: DatasetRecord) -> Path:
        """The verified local copy of ``rec`` (filled by one rename, so readers never see half of it)."""
        assert self.cache_dir is not None
        entry = self.cache_dir / rec.store_digest
        if entry.is_dir():
            os.utime(entry)  # recently used
            return entry
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".fill-", dir=self.cache_dir))
        try:
            self._download(rec, tmp)
            try:
                os.rename(tmp, entry)
            except OSError:
                if not entry.is_dir():  # not a concurrent fill of the same entry
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._evict(keep=entry)
        return entry

    def _evict(self, keep: Path) -> None:
        assert self.cache_dir is not None
        entries = []
        for d in self.cache_dir.iterdir():
            if d.is_dir() and not d.name.startswith(".") and d != keep:
                size = sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
                entries.append((d.stat().st_mtime, size, d))
        total = sum(size for _, size, _ in entries) + sum(f.stat().st_size for f in keep.rglob("*") if f.is_file())
        for _, size, d in sorted(entries):
            if total <= self.cache_bytes:
                break
            shutil.rmtree(d, ignore_errors=True)
            total -= size

    def read_grid(self, session: Session, name: str, step_s: float | None = None, start: Any = None,
                  end: Any = None, tags: list[str] | None = None) -> pd.DataFrame:
        """The dataset on the grid of ``step_s`` (default: its upload's ``grid_step_s``) by the grid rule."""
        rec = self._record(session, name)
        step = step_s if step_s is not None else rec.grid_step_s
        if step is None:
            raise InvalidInput(f"dataset {name!r} has no grid step of its own: give grid_step_s", field="grid_step_s")
        lo = _to_ns(start, "start") if start is not None else int(pd.Timestamp(rec.start).as_unit("ns").value)
        hi = _to_ns(end, "end") if end is not None else int(pd.Timestamp(rec.end).as_unit("ns").value)
        step_ns = int(round(float(step) * NS))
        grid = grid_index(float(step), pd.Timestamp(lo, tz="UTC"), pd.Timestamp(hi, tz="UTC"))
        if grid.empty:
            return pd.DataFrame(columns=tags if tags is not None else rec.tags, index=grid, dtype="float64")
        samples = self._read(rec, int(grid[0].value) - step_ns + 1, int(grid[-1].value), tags)
        return to_grid(samples, float(step), grid[0], grid[-1])


def _ns_dt(ns: int) -> dt.datetime:
    return pd.Timestamp(ns, tz="UTC").to_pydatetime()


def _copy_hashing(source: BinaryIO | Path, dest: Path, limit: int) -> tuple[str, int]:
    """Copy an upload to a local file; its sha256 and size. Refuses more than ``limit`` bytes."""
    digest = hashlib.sha256()
    size = 0
    fh: BinaryIO = open(source, "rb") if isinstance(source, Path) else source
    try:
        with open(dest, "wb") as out:
            while chunk := fh.read(1 << 20):
                size += len(chunk)
                if size > limit:
                    raise InvalidInput(f"the file is larger than the limit of {limit} bytes", field="file")
                digest.update(chunk)
                out.write(chunk)
    finally:
        if isinstance(source, Path):
            fh.close()
    return digest.hexdigest(), size
