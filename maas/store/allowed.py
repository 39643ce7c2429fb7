"""Which stores a request may take its payload from: the ``allowedStores`` rule (docs/security.md).

A deployment request names its payload by a path in the configured store or by a full URI
(``-hmp``). Whoever may queue requests must not make the controller download and run code from
anywhere it can reach — a directory of the controller's machine, a WebHDFS server of their own —
so the controller resolves a request's path against the allowed stores **before anything is
read from a store**, and refuses it naming the rule it broke:

- no ``..`` segment, anywhere (a URI's path is otherwise normalised away from its store);
- a plain path is in the configured store, always allowed;
- a ``file://`` URI must name a directory inside an allowed ``file://`` store (symbolic links
  resolved); it is then that store's payload;
- another URI must name an allowed store's scheme, host and port, and a path under the allowed
  store's own path, if it has one (``hdfs://nn:9870/maas`` allows ``/maas/…`` only).

``hdfs://`` and ``webhdfs://`` name the same (WebHDFS) service and match each other;
``swebhdfs://`` only matches itself.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Sequence
from urllib.parse import unquote, urlsplit

from maas.errors import StoreNotAllowed
from maas.store import check_store_uri, normalize_path, uri_scheme

_SAME_SERVICE = {"hdfs": "webhdfs"}


def _refuse(what: str, allowed: Sequence[str]) -> StoreNotAllowed:
    return StoreNotAllowed(f"{what} (rule: allowedStores = {', '.join(allowed)}); nothing was downloaded")


def _family(scheme: str) -> str:
    return _SAME_SERVICE.get(scheme, scheme)


def _local_root(uri: str) -> str:
    return os.path.realpath(unquote(urlsplit(uri).path) or "/")


def resolve_allowed(path_or_uri: str, configured_store: str, allowed_stores: Sequence[str]) -> tuple[str, str]:
    """``(store_uri, store_path)`` of a request's ``path``, or :class:`StoreNotAllowed`.

    ``allowed_stores`` empty means the configured store only; the configured store is always
    allowed.
    """
    allowed = list(dict.fromkeys([configured_store, *allowed_stores]))
    is_uri = "://" in path_or_uri
    raw_path = urlsplit(path_or_uri).path if is_uri else path_or_uri
    if ".." in unquote(raw_path).split("/"):
        raise _refuse(f"payload path {path_or_uri!r} contains '..'", allowed)
    if not is_uri:
        return configured_store, normalize_path(path_or_uri)
    check_store_uri(path_or_uri)
    scheme = uri_scheme(path_or_uri)
    if scheme == "file":
        target = _local_root(path_or_uri)
        for store in allowed:
            if uri_scheme(store) != "file":
                continue
            root = _local_root(store)
            if target != root and target.startswith(root.rstrip("/") + "/"):
                return store, normalize_path(target[len(root.rstrip("/")):])
        raise _refuse(f"payload directory {path_or_uri!r} is not inside an allowed file:// store", allowed)
    parts = urlsplit(path_or_uri)
    path = normalize_path(posixpath.normpath(parts.path or "/"))
    for store in allowed:
        sparts = urlsplit(store)
        if _family(sparts.scheme.lower()) != _family(scheme) or sparts.netloc.lower() != parts.netloc.lower():
            continue
        prefix = normalize_path(sparts.path or "/")
        if prefix == "/" or path == prefix or path.startswith(prefix + "/"):
            return f"{parts.scheme}://{parts.netloc}", path
    raise _refuse(f"store of {path_or_uri!r} is not an allowed store", allowed)
