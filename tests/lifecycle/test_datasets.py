"""Datasets: parsing and validation of CSV and Parquet, the grid rule, storage in the model store,
on SQLite and PostgreSQL. The files are small handmade ones under tests/data/lifecycle/."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from lifecycle.datasets import DatasetRecord, DatasetService, grid_index, normalize_file, to_grid
from lifecycle.db import Base, make_engine
from lifecycle.errors import Conflict, InvalidInput, NotFound, Unavailable
from maas.store.file import FileStore

DATA = Path(__file__).resolve().parents[1] / "data" / "lifecycle"
T0 = pd.Timestamp("2024-03-01T00:00:00Z")
SECONDS = [0, 10, 20, 25, 50]
PRESSURE = [1.0, 1.5, 2.0, 2.5, 3.0]
CURRENT = [0.1, math.nan, 0.7, 0.9, 1.1]


@pytest.fixture
def session(db_url: str) -> Iterator[Session]:
    engine = make_engine(db_url)
    Base.metadata.create_all(engine, tables=[DatasetRecord.__table__])
    with Session(engine) as s:
        yield s
    engine.dispose()


@pytest.fixture
def service(tmp_path: Path) -> DatasetService:
    return DatasetService(FileStore(tmp_path / "store"), work_dir=tmp_path)


def parse(tmp_path: Path, name: str, **kwargs: object) -> pd.DataFrame:
    out = tmp_path / f"{name}.parquet"
    normalize_file(DATA / name, out, **kwargs)  # type: ignore[arg-type]
    return pd.read_parquet(out).set_index("time")


def expected_index() -> pd.DatetimeIndex:
    return pd.DatetimeIndex([T0 + pd.Timedelta(seconds=s) for s in SECONDS]).as_unit("ns")


@pytest.mark.parametrize("name, time_format", [
    ("comma_iso.csv", "iso8601"),
    ("semicolon_epoch_ms.csv", "epoch_ms"),  # ';' with decimal commas
    ("iso_offsets.csv", "iso8601"),  # +01:00, +02:00, -05:00, no offset (UTC), Z with fractions
    ("epoch_s.csv", "epoch_s"),
])
def test_csv_variants_give_the_same_table(tmp_path: Path, name: str, time_format: str) -> None:
    out = tmp_path / "d.parquet"
    parsed = normalize_file(DATA / name, out)
    assert parsed.time_format == time_format
    assert parsed.tags == ["Pressure", "Motor current"]  # the space is kept
    assert parsed.rows == 5
    frame = pd.read_parquet(out).set_index("time")
    assert list(frame.index) == list(expected_index())
    assert frame["Pressure"].tolist() == PRESSURE
    np.testing.assert_array_equal(frame["Motor current"].to_numpy(), np.array(CURRENT))


def test_parquet_with_a_typed_time_column_in_another_zone(tmp_path: Path) -> None:
    out = tmp_path / "d.parquet"
    parsed = normalize_file(DATA / "typed_time.parquet", out)
    assert (parsed.fmt, parsed.time_column, parsed.time_format) == ("parquet", "recorded at", "timestamp")
    assert parsed.tags == ["Pressure", "Motor current", "count"]
    frame = pd.read_parquet(out).set_index("time")
    assert list(frame.index) == list(expected_index())  # 01:00 Berlin is 00:00 UTC
    assert frame["count"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize("name, message", [
    ("no_time.csv", "no timestamp column"),
    ("non_numeric.csv", "row 2 (line 3): column 'Motor current' holds 'abc', not a finite number"),
    ("unsorted.csv", "row 3 (line 4): timestamps not sorted: 2024-03-01T00:00:10Z is not after the previous "
                     "row's 2024-03-01T00:00:20Z"),
    ("duplicate.csv", "row 3 (line 4): duplicate timestamp: 2024-03-01T00:00:10Z"),
    ("header_only.csv", "a header but no data rows"),
    ("empty.csv", "the file is empty"),
    ("not_a_table.txt", "not a table"),
    ("bad_time.csv", "row 2 (line 3): timestamp 'yesterday' in column 'time' is not ISO 8601"),
    ("string_tag.parquet", "row 1: column 'state' holds 'on', not a finite number"),
])
def test_bad_files_name_the_row_and_column(tmp_path: Path, name: str, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        normalize_file(DATA / name, tmp_path / "d.parquet")
    assert message in err.value.message
    assert err.value.http_status == 422
    assert err.value.field in {"file", "time_column"}


def test_bad_rows_are_found_across_chunks(tmp_path: Path) -> None:
    lines = ["time,a"] + [f"{1700000000 + i},{i}" for i in range(10)] + ["1700000005,1"]
    (tmp_path / "f.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput, match=r"row 11 \(line 12\): timestamps not sorted"):
        normalize_file(tmp_path / "f.csv", tmp_path / "d.parquet", chunk_rows=3)
    lines[7] = "1700000006,x"
    (tmp_path / "g.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(InvalidInput, match=r"row 7 \(line 8\): column 'a' holds 'x'"):
        normalize_file(tmp_path / "g.csv", tmp_path / "d.parquet", chunk_rows=3)


def test_time_column_by_flag_and_ambiguity(tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_text("start date,end time,v\n1,5,1\n2,6,2\n")
    with pytest.raises(InvalidInput, match="several columns could be the timestamp") as err:
        normalize_file(tmp_path / "f.csv", tmp_path / "d.parquet")
    assert err.value.field == "time_column"
    parsed = normalize_file(tmp_path / "f.csv", tmp_path / "d.parquet", time_column="end time")
    assert parsed.tags == ["start date", "v"] and parsed.first_ns == 5 * 10**9
    with pytest.raises(InvalidInput, match="time_column 'when' is not a column"):
        normalize_file(tmp_path / "f.csv", tmp_path / "d.parquet", time_column="when")


def test_header_problems(tmp_path: Path) -> None:
    (tmp_path / "dup.csv").write_text("time,a,a\n1,2,3\n")
    with pytest.raises(InvalidInput, match="names 'a' more than once"):
        normalize_file(tmp_path / "dup.csv", tmp_path / "d.parquet")
    (tmp_path / "only.csv").write_text("time;x\n1;\n")
    parsed = normalize_file(tmp_path / "only.csv", tmp_path / "d.parquet")
    assert parsed.rows == 1  # a missing value is allowed
    (tmp_path / "bin.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4)
    with pytest.raises(InvalidInput, match="not a table"):
        normalize_file(tmp_path / "bin.csv", tmp_path / "d.parquet")
    (tmp_path / "ragged.csv").write_text("time,a\n1,2\n2,3\n3,4,5\n")
    with pytest.raises(InvalidInput, match="not a table: .*line 4"):
        normalize_file(tmp_path / "ragged.csv", tmp_path / "d.parquet")


def samples() -> pd.DataFrame:
    return pd.DataFrame({"Pressure": PRESSURE, "Motor current": CURRENT}, index=expected_index())


def test_grid_rule_takes_the_last_sample_of_the_window_no_older_than_a_step() -> None:
    grid = to_grid(samples(), 10)
    assert list(grid.index) == [T0 + pd.Timedelta(seconds=s) for s in (0, 10, 20, 30, 40, 50)]
    np.testing.assert_array_equal(grid["Pressure"].to_numpy(), [1.0, 1.5, 2.0, 2.5, np.nan, 3.0])
    # the missing current at 00:00:10 is not filled from 00:00:00: that sample belongs to (−10 s, 0]
    np.testing.assert_array_equal(grid["Motor current"].to_numpy(), [0.1, np.nan, 0.7, 0.9, np.nan, 1.1])


def test_grid_rule_with_a_coarser_step_takes_the_latest_non_missing_value_per_tag() -> None:
    frame = pd.DataFrame({"a": [1.0, 2.0, math.nan], "b": [5.0, math.nan, math.nan]},
                         index=[T0 + pd.Timedelta(seconds=s) for s in (31, 40, 59)])
    grid = to_grid(frame, 30, T0, T0 + pd.Timedelta(seconds=90))
    # grid 0, 30, 60, 90: (30, 60] holds all three samples; a's last non-missing is 2.0, b's is 5.0
    np.testing.assert_array_equal(grid["a"].to_numpy(), [np.nan, np.nan, 2.0, np.nan])
    np.testing.assert_array_equal(grid["b"].to_numpy(), [np.nan, np.nan, 5.0, np.nan])


def test_grid_points_are_multiples_of_the_step_since_the_epoch() -> None:
    idx = grid_index(60, "2024-03-01T00:00:30Z", "2024-03-01T00:03:00Z")
    assert [t.isoformat() for t in idx] == ["2024-03-01T00:01:00+00:00", "2024-03-01T00:02:00+00:00",
                                            "2024-03-01T00:03:00+00:00"]
    assert len(grid_index(0.5, T0, T0 + pd.Timedelta(seconds=2))) == 5
    for bad in (0, -1, math.nan):
        with pytest.raises(InvalidInput, match="grid_step_s"):
            grid_index(bad, T0, T0)
    with pytest.raises(InvalidInput, match="more than"):
        grid_index(0.001, "2000-01-01T00:00:00Z", "2024-01-01T00:00:00Z")


def test_upload_describe_list_read(session: Session, service: DatasetService) -> None:
    info = service.upload(session, name="pump7-march", source=DATA / "semicolon_epoch_ms.csv", actor="alice",
                          filename="semicolon_epoch_ms.csv", grid_step_s=10)
    session.commit()
    assert (info.name, info.tags, info.rows) == ("pump7-march", ["Pressure", "Motor current"], 5)
    assert info.start == T0.to_pydatetime() and info.end == (T0 + pd.Timedelta(seconds=50)).to_pydatetime()
    assert info.to_json()["start"] == "2024-03-01T00:00:00Z"
    assert len(info.sha256) == 64 and info.time_format == "epoch_ms" and info.created_by == "alice"
    assert service.describe(session, "pump7-march") == info
    assert [d.name for d in service.list(session)] == ["pump7-march"]
    frame = service.read(session, "pump7-march")
    pd.testing.assert_frame_equal(frame, samples(), check_names=False, check_freq=False)
    part = service.read(session, "pump7-march", start="2024-03-01T00:00:10Z", end="2024-03-01T00:00:25Z")
    assert part["Pressure"].tolist() == [1.5, 2.0, 2.5]
    grid = service.read_grid(session, "pump7-march")  # the dataset's own step: 10 s
    np.testing.assert_array_equal(grid["Pressure"].to_numpy(), [1.0, 1.5, 2.0, 2.5, np.nan, 3.0])
    # a window of the grid only reads the samples it needs, with the same values as the full grid
    window = service.read_grid(session, "pump7-march", 10, start="2024-03-01T00:00:15Z", end="2024-03-01T00:00:40Z")
    assert [t.second for t in window.index] == [20, 30, 40]
    np.testing.assert_array_equal(window["Pressure"].to_numpy(), [2.0, 2.5, np.nan])


def test_datasets_are_immutable_and_names_checked(session: Session, service: DatasetService) -> None:
    service.upload(session, name="d1", source=DATA / "comma_iso.csv", actor="alice")
    session.commit()
    with pytest.raises(Conflict, match="exists already"):
        service.upload(session, name="d1", source=DATA / "epoch_s.csv", actor="alice")
    for bad in ("", "a/b", "../x", ".hidden", "x" * 101, "with space"):
        with pytest.raises(InvalidInput) as err:
            service.upload(session, name=bad, source=DATA / "comma_iso.csv", actor="alice")
        assert err.value.field == "name"
    with pytest.raises(NotFound):
        service.describe(session, "nope")
    with pytest.raises(InvalidInput, match="no grid step of its own"):
        service.read_grid(session, "d1")


def test_a_bad_file_stores_nothing(session: Session, service: DatasetService, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="row 3"):
        service.upload(session, name="bad", source=io.BytesIO((DATA / "duplicate.csv").read_bytes()), actor="a")
    assert service.list(session) == []
    assert not (Path(service.store.root) / "datasets").exists()  # type: ignore[attr-defined]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("maas-dataset-")] == []


def test_a_changed_store_copy_is_detected(session: Session, service: DatasetService) -> None:
    service.upload(session, name="d1", source=DATA / "comma_iso.csv", actor="alice")
    session.commit()
    [stored] = session.scalars(select(DatasetRecord.store_path))
    assert stored.startswith("/datasets/d1/")
    data = Path(service.store.root) / stored.lstrip("/") / "data.parquet"  # type: ignore[attr-defined]
    data.write_bytes(data.read_bytes()[:-8] + b"garbage!")
    with pytest.raises(Unavailable, match="checksum mismatch"):
        service.read(session, "d1")


def test_a_leftover_of_an_uncommitted_upload_is_reused(session: Session, service: DatasetService) -> None:
    service.upload(session, name="d1", source=DATA / "comma_iso.csv", actor="alice", grid_step_s=10)
    session.rollback()  # the store has the copy, the database does not
    again = service.upload(session, name="d1", source=DATA / "comma_iso.csv", actor="bob", grid_step_s=10)
    session.commit()
    assert again.created_by == "bob" and service.read(session, "d1")["Pressure"].tolist() == PRESSURE
    other = service.upload(session, name="d2", source=DATA / "comma_iso.csv", actor="bob", grid_step_s=5)
    session.commit()
    paths = set(session.scalars(select(DatasetRecord.store_path)))
    assert len(paths) == 2 and other.grid_step_s == 5


def test_a_cache_keeps_verified_copies_and_evicts_the_least_recent(session: Session, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store = FileStore(tmp_path / "store")
    service = DatasetService(store, work_dir=tmp_path, cache_dir=tmp_path / "cache", cache_bytes=1)
    service.upload(session, name="d1", source=DATA / "comma_iso.csv", actor="alice")
    service.upload(session, name="d2", source=DATA / "epoch_s.csv", actor="alice")
    session.commit()
    downloads: list[str] = []
    real = store.download
    monkeypatch.setattr(store, "download", lambda path, dest: downloads.append(path) or real(path, dest))
    first = service.read(session, "d1")
    assert service.read(session, "d1").equals(first) and len(downloads) == 1  # the second read is local
    assert service.read_grid(session, "d1", 10)["Pressure"].iloc[0] == 1.0 and len(downloads) == 1
    service.read(session, "d2")  # over the (tiny) limit: d1's copy goes, the one just read stays
    d2_digest = session.scalar(select(DatasetRecord.store_digest).where(DatasetRecord.name == "d2"))
    assert len(downloads) == 2 and [p.name for p in (tmp_path / "cache").iterdir()] == [d2_digest]
    service.read(session, "d1")
    assert len(downloads) == 3


def test_bom_crlf_and_quoted_names_with_the_separator(tmp_path: Path) -> None:
    out = tmp_path / "d.parquet"
    parsed = normalize_file(DATA / "bom_crlf_quoted.csv", out)
    assert parsed.time_column == "time" and parsed.tags == ["Flow, m3/h", "Motor current"]
    frame = pd.read_parquet(out)
    assert frame["Flow, m3/h"].tolist() == [1.5, 2.5] and frame["Motor current"].tolist() == [2.0, 3.0]
