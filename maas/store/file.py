"""The ``file://`` model store: payload directories under a root directory on this machine."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import unquote, urlsplit

from maas.errors import StoreError, StoreNotFound
from maas.store import ModelStore, normalize_path


class FileStore(ModelStore):
    """Payloads stored as directories below ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.uri = self.uri_for(self.root)

    @staticmethod
    def uri_for(root: Path) -> str:
        return "file://" + str(root.resolve())

    @classmethod
    def from_uri(cls, uri: str) -> "FileStore":
        parts = urlsplit(uri)
        if parts.netloc not in ("", "localhost"):
            raise StoreError(f"file store URI {uri!r} must not name a host")
        if not parts.path.startswith("/"):
            raise StoreError(f"file store URI {uri!r} must hold an absolute path")
        return cls(Path(unquote(parts.path)))

    def _local(self, path: str) -> Path:
        rel = normalize_path(path).lstrip("/")
        local = self.root / rel
        real = local.resolve()
        if real != self.root and self.root not in real.parents:
            raise StoreError(f"{self.uri}: path {path!r} escapes the store")
        return local

    def _fail(self, what: str, path: str, exc: OSError) -> StoreError:
        kind = StoreNotFound if isinstance(exc, FileNotFoundError) else StoreError
        return kind(f"{self.uri}: cannot {what} {path}: {exc.strerror or exc}")

    def _walk(self, path: str) -> list[tuple[str, int]]:
        base = self._local(path)
        if not base.is_dir():
            raise StoreNotFound(f"{self.uri}: no payload at {path}")
        return sorted((p.relative_to(base).as_posix(), p.stat().st_size) for p in base.rglob("*") if p.is_file())

    def _is_dir(self, path: str) -> bool:
        return self._local(path).is_dir()

    def _read(self, path: str) -> Iterator[bytes]:
        local = self._local(path)
        try:
            fh = open(local, "rb")
        except OSError as exc:
            raise self._fail("read", path, exc) from exc
        with fh:
            while chunk := fh.read(1 << 20):
                yield chunk

    def _write(self, path: str, chunks: Iterable[bytes]) -> None:
        local = self._local(path)
        try:
            local.parent.mkdir(parents=True, exist_ok=True)
            with open(local, "wb") as fh:
                for chunk in chunks:
                    fh.write(chunk)
        except OSError as exc:
            raise self._fail("write", path, exc) from exc

    def _rename(self, src: str, dst: str) -> None:
        target = self._local(dst)
        if target.exists():
            raise StoreError(f"{self.uri}: cannot rename {src} to {dst}: target exists")
        try:
            os.rename(self._local(src), target)
        except OSError as exc:
            raise self._fail("rename", src, exc) from exc

    def _delete(self, path: str) -> None:
        local = self._local(path)
        if local.is_dir() and not local.is_symlink():
            shutil.rmtree(local, ignore_errors=True)
        else:
            local.unlink(missing_ok=True)
