"""Size-bounded log files of an instance: the runner's own log and the service's stdout/stderr,
rotated by :class:`logging.handlers.RotatingFileHandler` (``name``, ``name.1`` … ``name.N``), and
reading a log's tail without reading the whole file."""

from __future__ import annotations

import logging
import logging.handlers
import os
import threading
from pathlib import Path
from typing import BinaryIO

#: Size of one log file before it is rotated, and how many rotated files are kept.
MAX_BYTES = 5 << 20
BACKUPS = 2
#: Longest line written as one record; a longer one (or output without newlines) is split.
LINE_LIMIT = 64 << 10


def rotating_handler(path: Path, *, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> logging.Handler:
    return logging.handlers.RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")


class OutputPump:
    """Copies a child's pipe into a rotating file, in a daemon thread, until the pipe closes."""

    def __init__(self, pipe: BinaryIO, path: Path, *, max_bytes: int = MAX_BYTES, backups: int = BACKUPS) -> None:
        self.pipe = pipe
        self.handler = rotating_handler(path, max_bytes=max_bytes, backups=backups)
        self.handler.setFormatter(logging.Formatter("%(message)s"))
        self.handler.terminator = ""
        self.thread = threading.Thread(target=self._run, name=f"pump-{path.name}", daemon=True)

    def start(self) -> "OutputPump":
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            while chunk := self.pipe.readline(LINE_LIMIT):
                record = logging.LogRecord("service", logging.INFO, "", 0, chunk.decode("utf-8", "replace"), None, None)
                self.handler.emit(record)
        except (OSError, ValueError):
            pass  # the pipe was closed under us: the service is gone
        finally:
            self.handler.close()

    def join(self, timeout: float = 2.0) -> None:
        self.thread.join(timeout)


def tail(path: Path, limit: int = 2000) -> str:
    """The last ``limit`` bytes of ``path`` as text (seeking from the end); "" when unreadable."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - limit))
            data = fh.read(limit)
    except OSError:
        return ""
    return data.decode("utf-8", "replace").strip()
