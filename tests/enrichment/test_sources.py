"""Inputs and batching: stdin, files and directories (followed like ``tail -F``), and batches cut
by size or by linger — counted as model requests through the pipeline."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from enrichment import EnrichmentPipeline, Line, parse_config
from enrichment.sources import LineReader, batches
from tests.enrichment.conftest import FakeGateway

CONFIG = {"enrichments": {"label": "MAP_GET('is_malicious', MAAS_MODEL_APPLY(MAAS_GET_ENDPOINT('dga'), {'host': host}))"}}


def event_lines(n: int, start: int = 0) -> list[Line]:
    return [Line(json.dumps({"host": f"h{i}"}), f"t:{i}") for i in range(start, start + n)]


def test_batch_size_is_honoured_and_each_batch_is_one_request() -> None:
    gw = FakeGateway()
    pipeline = EnrichmentPipeline(parse_config(CONFIG), gw)
    out: list[str] = []
    sizes = [len(b) for b in batches(iter(event_lines(250)), 100, linger=5.0)]
    assert sizes == [100, 100, 50]  # the end of the input does not wait for the linger
    pipeline.run(batches(iter(event_lines(250)), 100, linger=5.0), out.append, out.append)
    assert len(out) == 250 and [len(b) for b in gw.batches] == [100, 100, 50] and gw.applies == []
    assert pipeline.stats.batches == 3 and pipeline.stats.model_requests == 3


def slow_source(groups: list[tuple[float, int]]) -> Iterator[Line]:
    """Yields ``count`` lines after sleeping ``pause`` seconds, for each (pause, count)."""
    n = 0
    for pause, count in groups:
        time.sleep(pause)
        yield from event_lines(count, n)
        n += count


def test_linger_cuts_a_batch_that_does_not_fill() -> None:
    # 5 lines, a 0.6 s pause, 5 more: with a 0.2 s linger they are two batches of 5, not one of 10.
    gw = FakeGateway()
    pipeline = EnrichmentPipeline(parse_config(CONFIG), gw)
    got: list[list[Line]] = []
    t0 = time.monotonic()
    for batch in batches(slow_source([(0, 5), (0.6, 5)]), 100, linger=0.2):
        got.append(batch)
        pipeline.process(batch)
    assert [len(b) for b in got] == [5, 5]
    assert [len(b) for b in gw.batches] == [5, 5]
    assert time.monotonic() - t0 < 2


def test_linger_waits_for_the_batch_to_fill() -> None:
    # Lines trickle in every 20 ms: a 1 s linger gathers them into one batch of 10.
    def trickle() -> Iterator[Line]:
        for line in event_lines(10):
            time.sleep(0.02)
            yield line

    t0 = time.monotonic()
    got = [len(b) for b in batches(trickle(), 10, linger=1.0)]
    assert got == [10]
    assert time.monotonic() - t0 < 0.9  # cut when full, not at the linger


def test_zero_linger_takes_what_is_already_there() -> None:
    sizes = [len(b) for b in batches(iter(event_lines(30)), 8, linger=0)]
    assert sum(sizes) == 30 and max(sizes) <= 8


def test_reader_errors_reach_the_consumer() -> None:
    def broken() -> Iterator[Line]:
        yield from event_lines(2)
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        list(batches(broken(), 10, linger=0.05))


def test_stdin_blank_lines_crlf_and_bad_utf8() -> None:
    data = b'{"a": 1}\r\n\n   \n{"a": 2}\n\xff\xfe{"a": 3}\n{"a": 4}'
    got = list(LineReader(["-"], stdin=io.BytesIO(data)))
    assert [line.text for line in got[:2]] == ['{"a": 1}', '{"a": 2}']
    assert [line.source for line in got] == ["<stdin>:1", "<stdin>:4", "<stdin>:5", "<stdin>:6"]
    assert got[2].error is not None and "UTF-8" in got[2].error
    assert got[3].text == '{"a": 4}'


def test_files_and_directories_in_order(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.jsonl").write_text('{"f": "b1"}\n')
    (tmp_path / "d" / "a.jsonl").write_text('{"f": "a1"}\n{"f": "a2"}')  # last line without newline
    (tmp_path / "d" / ".hidden").write_text('{"f": "hidden"}\n')
    (tmp_path / "one.jsonl").write_text('{"f": "one"}\n')
    got = list(LineReader([tmp_path / "one.jsonl", tmp_path / "d"]))
    assert [json.loads(line.text)["f"] for line in got] == ["one", "a1", "a2", "b1"]
    assert got[2].source == f"{tmp_path / 'd' / 'a.jsonl'}:2"
    with pytest.raises(ValueError, match="does not exist"):
        LineReader([tmp_path / "absent"])
    with pytest.raises(ValueError, match="stdin"):
        LineReader(["-", tmp_path / "one.jsonl"])


def test_follow_a_directory_appends_new_files_rotation(tmp_path: Path) -> None:
    stop = threading.Event()
    log = tmp_path / "events.log"
    log.write_text('{"n": 1}\n{"n": 2')  # an unfinished line waits for its newline
    reader = LineReader([tmp_path], follow=True, poll_interval=0.02, stop=stop)
    seen: list[int] = []
    done = threading.Event()

    def consume() -> None:
        for batch in batches(reader, 100, linger=0.01, stop=stop):
            seen.extend(json.loads(line.text)["n"] for line in batch)
        done.set()

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()

    def wait_for(count: int) -> None:
        deadline = time.monotonic() + 5
        while len(seen) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(seen) >= count, seen

    wait_for(1)
    time.sleep(0.1)
    assert seen == [1]
    with open(log, "a") as fh:
        fh.write('}\n{"n": 3}\n')
    wait_for(3)
    (tmp_path / "later.log").write_text('{"n": 4}\n')
    wait_for(4)
    os.rename(log, tmp_path / "events.log.1")  # rotation: the old file keeps its name's successor…
    log.write_text('{"n": 5}\n')  # …and a new file takes the name
    wait_for(5)
    time.sleep(0.2)
    stop.set()
    assert done.wait(5)
    assert seen == [1, 2, 3, 4, 5]  # nothing read twice, nothing lost


def test_lines_across_read_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from enrichment import sources

    monkeypatch.setattr(sources, "CHUNK", 7)  # lines straddle many reads
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"i": i, "pad": "x" * (i % 13)}) + "\n" for i in range(500)) + '{"i": 500}')
    got = [json.loads(line.text)["i"] for line in LineReader([path])]
    assert got == list(range(501))


def test_batches_in_flight_overlap_and_keep_the_order() -> None:
    class Slow(FakeGateway):
        def apply_batch(self, endpoint, function, rows):  # type: ignore[no-untyped-def]
            time.sleep(0.1)  # a distant model
            return super().apply_batch(endpoint, function, rows)

    timings = {}
    for in_flight in (1, 3):
        gw = Slow()
        pipeline = EnrichmentPipeline(parse_config(CONFIG), gw)
        out: list[str] = []
        t0 = time.monotonic()
        pipeline.run(batches(iter(event_lines(60)), 10, linger=0.5), out.append, out.append, in_flight=in_flight)
        timings[in_flight] = time.monotonic() - t0
        assert [json.loads(text)["host"] for text in out] == [f"h{i}" for i in range(60)]
        assert len(gw.batches) == 6 and pipeline.stats.enriched == 60 and pipeline.stats.batches == 6
    assert timings[1] >= 0.6 and timings[3] < timings[1] * 0.75


def test_an_endless_line_is_reported_and_skipped_not_buffered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from enrichment import sources

    monkeypatch.setattr(sources, "CHUNK", 64)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"i": 1}\n' + b"x" * 5000)  # a writer that never ends its line
    stop = threading.Event()
    reader = LineReader([path], follow=True, poll_interval=0.01, stop=stop, max_line_bytes=100)
    lines = iter(reader)
    assert next(lines).text == '{"i": 1}'
    too_long = next(lines)
    assert too_long.error == "the line is longer than 100 bytes; skipped" and too_long.source == f"{path}:2"
    with open(path, "ab") as fh:
        fh.write(b"x" * 5000 + b'\n{"i": 3}\n')  # the long line ends; the next one is read
    assert next(lines).text == '{"i": 3}'
    stop.set()


def test_an_overlong_stdin_line_is_reported_and_skipped() -> None:
    data = io.BytesIO(b'{"i": 1}\n' + b"y" * 1000 + b'\n{"i": 3}\n')
    got = list(LineReader(["-"], stdin=data, max_line_bytes=100))
    assert [(line.text, line.error is not None) for line in got] == [('{"i": 1}', False), ("", True), ('{"i": 3}', False)]
    assert got[1].source == "<stdin>:2"
