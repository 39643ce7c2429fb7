"""Instance logs: rotation keeps them bounded, the tail is read from the end."""

from __future__ import annotations

import os
from pathlib import Path

from maas.logfiles import OutputPump, tail


def test_a_chatty_service_fills_a_bounded_set_of_rotated_files(tmp_path: Path) -> None:
    read_fd, write_fd = os.pipe()
    pump = OutputPump(os.fdopen(read_fd, "rb"), tmp_path / "service.err.log", max_bytes=10_000, backups=2).start()
    with os.fdopen(write_fd, "wb") as out:
        for i in range(2000):
            out.write(f"line {i:05d} {'x' * 40}\n".encode())
        out.write(b"y" * 200_000)  # one endless line without a newline: split, not buffered whole
    pump.join(timeout=10)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["service.err.log", "service.err.log.1", "service.err.log.2"]
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 3 * (10_000 + 64 * 1024)
    assert tail(tmp_path / "service.err.log", 10) == "y" * 10


def test_tail_seeks_from_the_end(tmp_path: Path) -> None:
    big = tmp_path / "big.log"
    with open(big, "wb") as fh:
        fh.truncate(1 << 30)  # a sparse 1 GiB file: reading it whole would take a while and the memory
        fh.seek(0, os.SEEK_END)
        fh.write(b"the reason\n")
    assert tail(big, 11) == "the reason"
    assert tail(tmp_path / "absent.log") == ""
