"""Where events come from, and how they are grouped into batches.

:class:`LineReader` yields the lines of stdin, files and directories (every regular, non-hidden
file, by name). With ``follow`` it then keeps polling, like ``tail -F``: lines appended to a file,
new files in a directory, a file replaced (rotated) or truncated read again from its start. A line
is only taken once its newline is written (a last line without one is taken at the end of a
non-followed input). A line longer than ``max_line_bytes`` (1 MiB) is not buffered: it becomes one
error record (``parser_error``, naming where it starts) and is skipped up to its newline, so a
writer that never ends its line cannot grow the reader's memory.

:func:`batches` reads the lines on a thread of its own and groups them: a batch is yielded when it
holds ``batch_size`` lines or ``linger`` seconds after its first line arrived, whichever is first
(lines already waiting are taken without waiting, even after the linger).
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from enrichment.pipeline import Line

__all__ = ["LineReader", "batches"]

STDIN = "-"
CHUNK = 1 << 20  # bytes read from a file at a time
MAX_LINE_BYTES = 1 << 20  # longest line taken as an event


@dataclass
class _Tail:
    """A file being read: where we are in it and the partial line after the last newline."""

    path: Path
    handle: BinaryIO
    ident: tuple[int, int]  # (device, inode) of the file being read
    offset: int = 0
    number: int = 0  # lines taken so far
    partial: bytes = b""
    max_line: int = MAX_LINE_BYTES
    skipping: bool = False  # inside an overlong line: discard up to its newline

    @classmethod
    def open(cls, path: Path, max_line: int = MAX_LINE_BYTES) -> _Tail:
        handle = open(path, "rb")
        return cls(path, handle, _ident(os.fstat(handle.fileno())), max_line=max_line)

    def read(self, final: bool = False) -> Iterator[Line]:
        """Complete lines written since the last read, a chunk at a time (and, when ``final``, a
        last line without its newline)."""
        while True:
            chunk = self.handle.read(CHUNK)
            if chunk:
                self.offset += len(chunk)
                *complete, rest = (self.partial + chunk).split(b"\n")
                for raw in complete:
                    if self.skipping:  # the end of an overlong line, reported already
                        self.skipping = False
                        continue
                    line = self._line(raw)
                    if line is not None:
                        yield line
                if self.skipping:
                    rest = b""
                elif len(rest) > self.max_line:
                    yield self._too_long()
                    self.skipping, rest = True, b""
                self.partial = rest
            if len(chunk) < CHUNK:
                break
        if final and self.partial:
            line = self._line(self.partial)
            self.partial = b""
            if line is not None:
                yield line

    def _line(self, raw: bytes) -> Line | None:
        self.number += 1
        if len(raw) > self.max_line:
            return Line("", f"{self.path}:{self.number}", _too_long(self.max_line))
        return _decode(raw, f"{self.path}:{self.number}")

    def _too_long(self) -> Line:
        self.number += 1
        return Line("", f"{self.path}:{self.number}", _too_long(self.max_line))

    def replaced(self) -> bool:
        """The path now names another file (rotation) or this one shrank (truncation)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return _ident(st) != self.ident or st.st_size < self.offset

    def reopen(self) -> None:
        self.handle.close()
        self.handle = open(self.path, "rb")
        self.ident = _ident(os.fstat(self.handle.fileno()))
        self.offset = 0
        self.number = 0
        self.partial = b""
        self.skipping = False

    def close(self) -> None:
        self.handle.close()


def _too_long(limit: int) -> str:
    return f"the line is longer than {limit} bytes; skipped"


def _ident(st: os.stat_result) -> tuple[int, int]:
    return (st.st_dev, st.st_ino)


def _decode(raw: bytes, source: str) -> Line | None:
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    if not raw.strip():
        return None  # blank lines are not events
    try:
        return Line(raw.decode("utf-8"), source)
    except UnicodeDecodeError as exc:
        return Line(raw.decode("utf-8", errors="replace"), source, f"the line is not UTF-8 text: {exc.reason} "
                    f"at byte {exc.start}")


class LineReader:
    """The lines of ``inputs`` (paths of files or directories, or ``-`` for stdin), in order."""

    def __init__(self, inputs: Sequence[str | Path], *, follow: bool = False, poll_interval: float = 0.25,
                 stop: threading.Event | None = None, stdin: BinaryIO | None = None,
                 max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.inputs = [str(i) for i in inputs] or [STDIN]
        if STDIN in self.inputs and len(self.inputs) > 1:
            raise ValueError("stdin ('-') cannot be read together with files or directories")
        for item in self.inputs:
            if item != STDIN and not os.path.exists(item):
                raise ValueError(f"input {item} does not exist")
        self.follow = follow
        self.poll_interval = poll_interval
        self.stop = stop or threading.Event()
        self.stdin = stdin
        self.max_line_bytes = max_line_bytes

    def __iter__(self) -> Iterator[Line]:
        if self.inputs == [STDIN]:
            yield from self._stream(self.stdin or sys.stdin.buffer, "<stdin>")
            return
        tails: dict[Path, _Tail] = {}
        drained: dict[tuple[int, int], int] = {}  # (device, inode) of files read to the end → size
        try:
            while True:
                produced = False
                reading = {tail.ident for tail in tails.values()}
                for path in self._files():
                    if path not in tails:
                        try:
                            st = os.stat(path)
                            ident = _ident(st)
                            if ident in reading or drained.get(ident) == st.st_size:
                                continue  # a file we read under another name (rotated away)
                            tails[path] = _Tail.open(path, self.max_line_bytes)
                        except FileNotFoundError:
                            continue
                for path, tail in list(tails.items()):
                    if self.stop.is_set():
                        return
                    for line in tail.read(final=not self.follow):
                        produced = True
                        yield line
                    if self.follow and (tail.replaced() or not path.exists()):
                        for line in tail.read(final=True):  # what the old file still held
                            produced = True
                            yield line
                        drained[tail.ident] = tail.offset
                        if path.exists():
                            tail.reopen()
                        else:
                            tail.close()
                            del tails[path]
                if not self.follow or self.stop.is_set():
                    return
                if not produced:
                    self.stop.wait(self.poll_interval)
        finally:
            for tail in tails.values():
                tail.close()

    def _files(self) -> list[Path]:
        found: list[Path] = []
        for item in self.inputs:
            path = Path(item)
            if path.is_dir():
                found += sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            elif path.exists():
                found.append(path)
        return found

    def _stream(self, stream: BinaryIO, name: str) -> Iterator[Line]:
        number = 0
        while raw := stream.readline(self.max_line_bytes + 1):  # bounded: never a whole endless line
            number += 1
            if len(raw) > self.max_line_bytes and not raw.endswith(b"\n"):
                yield Line("", f"{name}:{number}", _too_long(self.max_line_bytes))
                while (rest := stream.readline(CHUNK)) and not rest.endswith(b"\n"):
                    pass  # the rest of the overlong line
                continue
            line = _decode(raw.rstrip(b"\n"), f"{name}:{number}")
            if line is not None:
                yield line
            if self.stop.is_set():
                return


class _End:
    """Marks the end of the input (with the error that ended it, if one did)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


def batches(lines: Iterable[Line], batch_size: int, linger: float, *, stop: threading.Event | None = None,
            capacity: int | None = None) -> Iterator[list[Line]]:
    """Group ``lines`` (read on a background thread) into batches of at most ``batch_size``,
    each yielded at the latest ``linger`` seconds after its first line arrived.

    When ``stop`` is set, the lines already read are still yielded, then the iteration ends.
    """
    if batch_size < 1:
        raise ValueError("the batch size must be at least 1")
    stop = stop or threading.Event()
    items: queue.Queue[Line | _End] = queue.Queue(maxsize=capacity or max(1024, 4 * batch_size))

    def produce() -> None:
        end = _End()
        try:
            for line in lines:
                while True:
                    try:
                        items.put(line, timeout=0.1)
                        break
                    except queue.Full:
                        if stop.is_set():
                            return
        except BaseException as exc:  # handed to the consumer, which raises it
            end = _End(exc)
        finally:
            items.put(end)

    reader = threading.Thread(target=produce, name="enrich-reader", daemon=True)
    reader.start()
    while True:
        first = _get(items, stop)
        if first is None or isinstance(first, _End):
            _raise(first)
            return
        batch = [first]
        deadline = time.monotonic() + linger
        ended: _End | None = None
        while len(batch) < batch_size:
            remaining = deadline - time.monotonic()
            try:
                item = items.get(timeout=remaining) if remaining > 0 else items.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _End):
                ended = item
                break
            batch.append(item)
        yield batch
        if ended is not None:
            _raise(ended)
            return


def _get(items: queue.Queue[Line | _End], stop: threading.Event) -> Line | _End | None:
    """The next item; None once ``stop`` is set and nothing more is waiting."""
    while True:
        try:
            return items.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                return None


def _raise(end: _End | None) -> None:
    if end is not None and end.error is not None:
        raise end.error
