"""The node's payload cache: verified payloads kept by content (their manifest digest), so a
second instance of the same payload on the same node copies locally instead of downloading.

Entries are filled in a temporary directory and published with one rename, so concurrent
runners never see half an entry; when two fill the same entry, the first rename wins.
"""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from pathlib import Path

from maas.store import ModelStore

log = logging.getLogger(__name__)


class PayloadCache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def localize(self, store: ModelStore, path: str, dest: Path) -> None:
        """Put the payload at ``path`` into the existing directory ``dest``."""
        manifest = store.manifest(path)
        if manifest is None:  # unverifiable content has no stable name: no caching
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
        shutil.copytree(entry, dest, dirs_exist_ok=True)
