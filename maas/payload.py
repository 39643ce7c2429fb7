"""The payload contract (docs/contracts.md): exactly one ``*.sh`` at the payload's top level, and the
``endpoint.dat`` file the started service writes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable
from urllib.parse import urlsplit, urlunsplit

from maas.errors import PayloadError

ENDPOINT_FILE = "endpoint.dat"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0", "::1", "::", ""}


def find_script(files: Iterable[str]) -> str:
    """The payload's single top-level ``*.sh``, given its relative file paths."""
    scripts = sorted(f for f in files if "/" not in f and f.endswith(".sh"))
    if not scripts:
        raise PayloadError("payload has no *.sh script at its top level")
    if len(scripts) > 1:
        raise PayloadError(f"payload has {len(scripts)} *.sh scripts ({', '.join(scripts)}); exactly one is allowed")
    return scripts[0]


@dataclass(frozen=True)
class EndpointInfo:
    """What a started service announced in ``endpoint.dat``."""

    url: str
    functions: dict[str, str] = field(default_factory=lambda: {"apply": "apply"})

    def advertised(self, host: str) -> "EndpointInfo":
        """The same endpoint with a local host replaced by the node's advertised address."""
        parts = urlsplit(self.url)
        if (parts.hostname or "") not in LOCAL_HOSTS:
            return self
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        return EndpointInfo(urlunsplit(parts._replace(netloc=netloc)), dict(self.functions))


def parse_endpoint(data: str, *, source: str = ENDPOINT_FILE) -> EndpointInfo:
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise PayloadError(f"{source} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("url"), str):
        raise PayloadError(f"{source} must be a JSON object with a string 'url'")
    parts = urlsplit(raw["url"])
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PayloadError(f"{source}: url {raw['url']!r} is not an http(s) URL with a host")
    functions = raw.get("functions") or {"apply": "apply"}
    if not isinstance(functions, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in functions.items()
    ):
        raise PayloadError(f"{source}: 'functions' must map names to paths (strings)")
    return EndpointInfo(raw["url"].rstrip("/"), functions)


def read_endpoint(workdir: Path) -> EndpointInfo | None:
    """The endpoint announced in ``workdir``, or None while the file is absent."""
    path = workdir / ENDPOINT_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return parse_endpoint(text, source=str(path))
