"""Payload manifests: the sha256 and size of every file of a payload, stored beside it as
``.maas-manifest.json``. A manifest's own digest names the payload's content (for the node cache
and for telling an identical re-upload from a different one)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from maas.errors import PayloadError

MANIFEST_NAME = ".maas-manifest.json"
CHUNK = 1 << 20


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, POSIX separators
    size: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    files: tuple[FileEntry, ...]

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.to_json()).hexdigest()

    def paths(self) -> list[str]:
        return [f.path for f in self.files]

    def to_json(self) -> bytes:
        body = {"version": 1, "files": [{"path": f.path, "size": f.size, "sha256": f.sha256} for f in self.files]}
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes, *, source: str) -> "Manifest":
        try:
            raw = json.loads(data)
            files = tuple(
                FileEntry(check_relative(str(f["path"])), int(f["size"]), str(f["sha256"])) for f in raw["files"]
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise PayloadError(f"{source}: unreadable manifest: {exc}") from exc
        return cls(tuple(sorted(files, key=lambda f: f.path)))


def check_relative(path: str) -> str:
    """``path`` if it is a plain relative path inside the payload; PayloadError otherwise."""
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts or path.startswith("\\"):
        raise PayloadError(f"payload path {path!r} escapes the payload directory")
    return pure.as_posix()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def scan_directory(root: Path, *, max_bytes: int | None = None) -> Manifest:
    """The manifest of a local payload directory.

    Refuses symlinks that lead outside ``root`` and payloads larger than ``max_bytes``.
    """
    root = Path(root)
    if not root.is_dir():
        raise PayloadError(f"{root} is not a directory")
    real_root = root.resolve()
    entries: list[FileEntry] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in list(dirnames) + filenames:
            full = Path(dirpath) / name
            if full.is_symlink():
                target = full.resolve()
                if target != real_root and real_root not in target.parents:
                    raise PayloadError(f"{full.relative_to(root)} is a symlink pointing outside the payload ({target})")
        for name in filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            if rel == MANIFEST_NAME or not full.is_file():
                continue
            size = full.stat().st_size
            total += size
            if max_bytes is not None and total > max_bytes:
                raise PayloadError(f"payload {root} is larger than the limit of {max_bytes} bytes")
            entries.append(FileEntry(check_relative(rel), size, sha256_file(full)))
    return Manifest(tuple(sorted(entries, key=lambda f: f.path)))
