"""File stores behind the LOCAL_* and HDFS_* functions, OBJECT_GET and the MaxMind look-ups.

A :class:`FileStore` lists, reads, writes and removes files. ``LOCAL_*`` use a
:class:`LocalFileStore`; ``HDFS_*`` use the store the evaluation :class:`~stellar_like.Context`
supplies as its ``hdfs`` service — any object with these four methods, for example
:class:`WebHdfsFileStore` around an ``hdfs`` library client::

    from hdfs import InsecureClient
    context = Context(hdfs=WebHdfsFileStore(InsecureClient("http://namenode:9870", user="metron")))

Every failure is a :class:`FileStoreError` naming the path.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from stellar_like.errors import StellarError

__all__ = ["FileInfo", "FileStore", "FileStoreError", "LocalFileStore", "WebHdfsFileStore"]


class FileStoreError(StellarError):
    """A file could not be listed, read, written or removed."""


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One entry of a directory listing."""

    name: str
    size: int
    modified: float  # epoch seconds
    permission: str = ""
    owner: str = ""
    group: str = ""
    is_dir: bool = False


@runtime_checkable
class FileStore(Protocol):
    """What the file functions need of a file system."""

    def list(self, path: str) -> list[FileInfo]: ...

    def read(self, path: str) -> bytes: ...

    def write(self, path: str, data: bytes) -> None: ...

    def remove(self, path: str, recursive: bool = False) -> None: ...


class LocalFileStore:
    """The local file system; writes go to a temporary file renamed into place, never half-written."""

    def list(self, path: str) -> list[FileInfo]:
        target = Path(path).expanduser()
        try:
            entries = [target] if target.is_file() else sorted(target.iterdir())
            return [self._info(entry) for entry in entries]
        except OSError as exc:
            raise FileStoreError(f"cannot list {path}: {exc.strerror or exc}") from exc

    @staticmethod
    def _info(entry: Path) -> FileInfo:
        status = entry.stat()
        owner = group = ""
        try:
            import grp
            import pwd

            owner = pwd.getpwuid(status.st_uid).pw_name
            group = grp.getgrgid(status.st_gid).gr_name
        except (ImportError, KeyError):
            owner, group = str(status.st_uid), str(status.st_gid)
        return FileInfo(
            name=entry.name,
            size=status.st_size,
            modified=status.st_mtime,
            permission=stat.filemode(status.st_mode),
            owner=owner,
            group=group,
            is_dir=entry.is_dir(),
        )

    def read(self, path: str) -> bytes:
        try:
            return Path(path).expanduser().read_bytes()
        except OSError as exc:
            raise FileStoreError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def write(self, path: str, data: bytes) -> None:
        target = Path(path).expanduser()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(data)
                # mkstemp makes the file private; give it the mode a plain open() would
                mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o666 & ~_umask()
                os.chmod(temporary, mode)
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise FileStoreError(f"cannot write {path}: {exc.strerror or exc}") from exc

    def remove(self, path: str, recursive: bool = False) -> None:
        target = Path(path).expanduser()
        try:
            if target.is_dir() and not target.is_symlink():
                if recursive:
                    shutil.rmtree(target)
                else:
                    target.rmdir()
            else:
                target.unlink()
        except OSError as exc:
            raise FileStoreError(f"cannot remove {path}: {exc.strerror or exc}") from exc


class WebHdfsFileStore:
    """HDFS through a client of the ``hdfs`` library (WebHDFS); its errors become :class:`FileStoreError`."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def _fail(self, what: str, path: str, exc: Exception) -> FileStoreError:
        return FileStoreError(f"cannot {what} {path} in HDFS: {exc}")

    def list(self, path: str) -> list[FileInfo]:
        from hdfs.util import HdfsError

        try:
            status = self.client.status(path)
            if status.get("type") == "FILE":
                entries = [(path.rstrip("/").rsplit("/", 1)[-1], status)]
            else:
                entries = self.client.list(path, status=True)
        except HdfsError as exc:
            raise self._fail("list", path, exc) from exc
        return [
            FileInfo(
                name=name,
                size=int(info.get("length", 0)),
                modified=int(info.get("modificationTime", 0)) / 1000.0,
                permission=("d" if info.get("type") == "DIRECTORY" else "-") + _rwx(str(info.get("permission", ""))),
                owner=str(info.get("owner", "")),
                group=str(info.get("group", "")),
                is_dir=info.get("type") == "DIRECTORY",
            )
            for name, info in entries
        ]

    def read(self, path: str) -> bytes:
        from hdfs.util import HdfsError

        try:
            with self.client.read(path) as reader:
                return bytes(reader.read())
        except HdfsError as exc:
            raise self._fail("read", path, exc) from exc

    def write(self, path: str, data: bytes) -> None:
        from hdfs.util import HdfsError

        try:
            self.client.write(path, data=data, overwrite=True)
        except HdfsError as exc:
            raise self._fail("write", path, exc) from exc

    def remove(self, path: str, recursive: bool = False) -> None:
        from hdfs.util import HdfsError

        try:
            removed = self.client.delete(path, recursive=recursive)
        except HdfsError as exc:
            raise self._fail("remove", path, exc) from exc
        if not removed:
            raise FileStoreError(f"cannot remove {path} in HDFS: no such file or directory")


def _umask() -> int:
    try:
        return int(Path("/proc/self/status").read_text().split("Umask:")[1].split()[0], 8)
    except (OSError, IndexError, ValueError):
        return 0o022


def _rwx(octal: str) -> str:
    try:
        mode = int(octal, 8)
    except ValueError:
        return octal
    return stat.filemode(mode)[1:]
