"""The node's payload cache: verified payloads kept by content (their manifest digest), so a
second instance of the same payload on the same node copies locally instead of downloading.

Entries are filled in a temporary directory and published with one rename, so concurrent
runners never see half an entry; when two fill the same entry, the first rename wins.

The cache is bounded by total size: after each use, least recently used entries (by their
directory's modification time, touched on every use) are evicted until the rest fits
``max_bytes``; the entry just used is never evicted. An eviction renames the entry away before
deleting it, and a runner whose copy is cut by one falls back to downloading from the store.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from maas.store import ModelStore

log = logging.getLogger(__name__)

#: Default bound on the cache's total size.
DEFAULT_MAX_BYTES = 10 << 30


def _size(entry: Path) -> int:
    return sum(p.stat().st_size for p in entry.rglob("*") if p.is_file())


class PayloadCache:
    def __init__(self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes

    def localize(self, store: ModelStore, path: str, dest: Path) -> None:
        """Put the payload at ``path`` into the existing directory ``dest``."""
        manifest = store.manifest(path)
        if manifest is None:  # unverifiable content has no stable name: no caching
            store.download(path, dest)
            return
        if manifest.total_size > self.max_bytes:  # would evict everything and still not fit
            store.download(path, dest)
            return
        entry = self.root / manifest.digest
        if not entry.is_dir():
            self.root.mkdir(parents=True, exist_ok=True)
            tmp = self.root / f".fill-{uuid.uuid4().hex}"
            tmp.mkdir()
            try:
                store.download(path, tmp)
                try:
                    os.rename(tmp, entry)
                    log.info("cached %s%s as %s", store.uri, path, manifest.digest[:12])
                except OSError:
                    if not entry.is_dir():
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        else:
            log.info("payload %s%s found in the node cache", store.uri, path)
        try:
            os.utime(entry)  # most recently used
            shutil.copytree(entry, dest, dirs_exist_ok=True)
        except OSError as exc:  # evicted under us by another runner
            log.warning("cache entry %s went away while copying (%s); downloading instead", entry.name, exc)
            store.download(path, dest)
        self.evict(keep=entry.name)

    def evict(self, *, keep: str | None = None) -> list[str]:
        """Evict least recently used entries until the cache fits; the names evicted."""
        try:
            entries = [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        except FileNotFoundError:
            return []
        sized = []
        for entry in entries:
            try:
                sized.append((entry.stat().st_mtime, entry, _size(entry)))
            except FileNotFoundError:
                continue  # evicted by someone else meanwhile
        total = sum(size for _, _, size in sized)
        evicted = []
        for _, entry, size in sorted(sized, key=lambda t: (t[0], t[1].name)):
            if total <= self.max_bytes:
                break
            if entry.name == keep:
                continue
            doomed = self.root / f".evict-{uuid.uuid4().hex}"
            try:
                os.rename(entry, doomed)
            except OSError:
                continue  # gone already
            shutil.rmtree(doomed, ignore_errors=True)
            total -= size
            evicted.append(entry.name)
            log.info("evicted %s from the node cache (%d bytes)", entry.name[:12], size)
        return evicted
