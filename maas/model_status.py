"""Per-model status that the controller publishes under ``<stateRoot>/status/<name>/<version>``
and ``maas_deploy -mo STATUS`` prints."""

from __future__ import annotations

import time

from pydantic import BaseModel, Field


class ModelStatus(BaseModel):
    name: str
    version: str
    desired: int = 0
    running: int = Field(0, description="Instances whose process is up (starting or ready)")
    ready: int = Field(0, description="Instances registered and serving")
    restarts: int = Field(0, description="Failed starts, crashes and health-check kills")
    last_error: str | None = None
    last_logs: str | None = Field(None, description="Where the logs of the instance behind last_error are")
    last_error_at: float | None = Field(None, description="Wall-clock time of the last error")
    backoff_seconds: float | None = Field(None, description="Seconds until the next start is allowed")
    updated: float = Field(default_factory=time.time)

    def same_as(self, other: "ModelStatus | None") -> bool:
        """Equal but for the timestamp (and a backoff that only counted down)."""
        if other is None:
            return False
        ignore = {"updated", "backoff_seconds"}
        return self.model_dump(exclude=ignore) == other.model_dump(exclude=ignore) and (
            (self.backoff_seconds is None) == (other.backoff_seconds is None)
        )

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


def error_headline(text: str | None) -> str:
    """One line saying what went wrong, for tables and progress lines.

    The first line of ``text``, except where that line opens a Python traceback (which says
    nothing by itself): then what precedes the traceback, with the traceback's last line, the
    exception.
    """
    lines = [line.rstrip() for line in (text or "").strip().splitlines() if line.strip()]
    if not lines:
        return ""
    marker = "Traceback (most recent call last):"
    if marker in lines[0]:
        prefix = lines[0].split(marker, 1)[0].rstrip(" ;:")
        last = lines[-1].strip()
        return f"{prefix}: {last}" if prefix else last
    return lines[0]


def error_detail(text: str | None) -> str:
    """What a multi-line error holds beyond its first line's own words: a payload's stderr (what
    follows ``stderr:``) or the lines after the first; '' for a one-line error."""
    text = (text or "").strip()
    first, _, rest = text.partition("\n")
    if "stderr: " in first:
        return (first.split("stderr: ", 1)[1] + "\n" + rest).strip() if rest else ""
    return rest.strip()


def quoted(text: str, prefix: str = "    | ") -> str:
    """``text`` (a payload's stderr, a multi-line reason) as an indented, quoted block, so that it
    reads as one unit in a log or a terminal and cannot be mistaken for the program's own lines."""
    return "\n".join(prefix + line for line in text.rstrip().splitlines())
