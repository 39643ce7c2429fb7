"""Model stores: where payload directories live, addressed by URI.

A store maps *store paths* (absolute, ``/models/dga/1.0``) to payload directories. The
controller checks payloads there, the runner localizes them from there, and ``maas_deploy -lmp``
uploads them there. ``file://`` is the embedded default; other schemes plug in through
:data:`_SCHEMES`.
"""

from __future__ import annotations

import posixpath
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from maas.errors import StoreError


class ModelStore(ABC):
    """What the control plane needs from a model store."""

    uri: str

    @abstractmethod
    def upload(self, local_dir: Path, path: str, *, force: bool = False) -> None:
        """Copy the directory ``local_dir`` to ``path``, replacing it atomically."""

    @abstractmethod
    def download(self, path: str, dest: Path) -> None:
        """Copy the payload at ``path`` into the (existing, empty) directory ``dest``."""

    @abstractmethod
    def list(self, path: str) -> list[str]:
        """Relative paths of the files under ``path`` (recursively), sorted."""

    @abstractmethod
    def exists(self, path: str) -> bool:
        """Whether a payload exists at ``path``."""


def normalize_path(path: str) -> str:
    """A store path in canonical form; refuses paths that climb out of the store."""
    if not path or not path.startswith("/"):
        raise StoreError(f"store path {path!r} must be absolute (start with '/')")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise StoreError(f"store path {path!r} must not contain '..'")
    return "/" + "/".join(parts) if parts else "/"


def uri_scheme(uri: str) -> str:
    return urlsplit(uri).scheme.lower()


def supported_schemes() -> list[str]:
    return sorted(_SCHEMES)


def open_store(uri: str) -> ModelStore:
    """The store for ``uri``."""
    factory = _SCHEMES.get(uri_scheme(uri))
    if factory is None:
        raise StoreError(f"unsupported store URI {uri!r}; supported schemes: {', '.join(supported_schemes())}")
    return factory(uri)


def split_uri(path_or_uri: str, default_store: str) -> tuple[str, str]:
    """``(store_uri, store_path)`` for ``-hmp``: a path in the default store or a full URI."""
    if "://" not in path_or_uri:
        return default_store, normalize_path(path_or_uri)
    from maas.store.file import FileStore

    if uri_scheme(path_or_uri) == "file":
        # A full file URI names a payload directory; its parent directory serves as the store.
        full = Path(urlsplit(path_or_uri).path)
        return FileStore.uri_for(full.parent), normalize_path("/" + full.name)
    parts = urlsplit(path_or_uri)
    return f"{parts.scheme}://{parts.netloc}", normalize_path(posixpath.normpath(parts.path or "/"))


def _file_store(uri: str) -> ModelStore:
    from maas.store.file import FileStore

    return FileStore.from_uri(uri)


_SCHEMES: dict[str, Callable[[str], ModelStore]] = {"file": _file_store}
