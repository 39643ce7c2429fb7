"""The ``file://`` model store: payload directories under a root directory on this machine."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

from maas.errors import StoreError
from maas.store import ModelStore, normalize_path


class FileStore(ModelStore):
    """Payloads stored as directories below ``root``; uploads are committed by a rename."""

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
        local = (self.root / rel).resolve()
        if local != self.root and self.root not in local.parents:
            raise StoreError(f"{self.uri}: path {path!r} escapes the store")
        return local

    def upload(self, local_dir: Path, path: str, *, force: bool = False) -> None:
        src = Path(local_dir)
        if not src.is_dir():
            raise StoreError(f"cannot upload {src}: not a directory")
        dest = self._local(path)
        if dest == self.root:
            raise StoreError(f"{self.uri}: refusing to upload onto the store root")
        tmp = dest.parent / f".{dest.name}.uploading-{uuid.uuid4().hex}"
        old = dest.parent / f".{dest.name}.replaced-{uuid.uuid4().hex}"
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(src, tmp, symlinks=False)
            if dest.exists():
                os.rename(dest, old)
            os.rename(tmp, dest)
        except OSError as exc:
            raise StoreError(f"{self.uri}: cannot upload {src} to {path}: {exc.strerror or exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)

    def download(self, path: str, dest: Path) -> None:
        src = self._local(path)
        if not src.is_dir():
            raise StoreError(f"{self.uri}: no payload at {path}")
        try:
            shutil.copytree(src, dest, symlinks=False, dirs_exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.uri}: cannot download {path}: {exc}") from exc

    def list(self, path: str) -> list[str]:
        src = self._local(path)
        if not src.is_dir():
            raise StoreError(f"{self.uri}: no payload at {path}")
        return sorted(str(p.relative_to(src)) for p in src.rglob("*") if p.is_file())

    def exists(self, path: str) -> bool:
        return self._local(path).is_dir()
