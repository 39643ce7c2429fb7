"""Data access functions: ENRICHMENT_*, OBJECT_GET, REST_*, LOCAL_*, HDFS_*, SYSTEM_*.

They reach the outside world only through services of the evaluation context
(:class:`~stellar_like.Context`), so the language imports nothing of the systems around it:

- ``enrichment_store`` — an :class:`~stellar_like.enrichment_store.EnrichmentStore`
  (ENRICHMENT_GET, ENRICHMENT_EXISTS);
- ``hdfs`` — a :class:`~stellar_like.stores.FileStore` (HDFS_*, and OBJECT_GET /
  ENRICHMENT_OBJECT_GET, which read the local file system when there is none);
- ``http_client`` — an ``httpx.Client`` for REST_* (otherwise one shared, pooled client);
- ``global_config`` — Metron's global configuration map: REST settings under
  ``stellar.rest.settings``, ``stellar.rest.get.settings`` and ``stellar.rest.post.settings``;
  object cache settings ``object.cache.size``, ``object.cache.expiration.minutes`` and
  ``object.cache.max.file.size`` (ENRICHMENT_OBJECT_GET's own under
  ``enrichment.object.get.settings``);
- ``system_properties`` — extra values for SYSTEM_PROPERTY_GET.
"""

from __future__ import annotations

import base64
import getpass
import logging
import os
import platform
import tempfile
import threading
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cachetools
import orjson

from stellar_like.context import Context
from stellar_like.enrichment_store import EnrichmentStore, EnrichmentStoreError
from stellar_like.errors import StellarEvaluationError, argument_error
from stellar_like.functions import args as A
from stellar_like.functions.registry import stellar_function
from stellar_like.semantics import java_str
from stellar_like.serialization import SketchError, deserialize
from stellar_like.stores import FileStore, FileStoreError, LocalFileStore
from stellar_like.tables import render_table

if TYPE_CHECKING:  # httpx is imported on first use: most expressions never call REST_*
    import httpx

log = logging.getLogger(__name__)

_LOCAL = LocalFileStore()


def _ctx(context: Context | None) -> Context:
    return context if context is not None else Context()


def _global_config(context: Context | None) -> Mapping[str, Any]:
    config = _ctx(context).service("global_config")
    return config if isinstance(config, Mapping) else {}


# ---- enrichment store ---------------------------------------------------------------------------------


def _enrichment_store(context: Context | None) -> EnrichmentStore:
    store = _ctx(context).service("enrichment_store")
    if store is None:
        raise StellarEvaluationError(
            "no enrichment store is configured: evaluate with a Context(enrichment_store=...) "
            "such as stellar_like.enrichment_store.SqliteEnrichmentStore"
        )
    return store


_ENRICHMENT_PARAMS = [
    "enrichment_type - The enrichment type",
    "indicator - The indicator to look up",
    "nosql_table - The table of the enrichment store",
    "column_family - The column family within the table",
]


def _enrichment_key(kind: Any, indicator: Any, table: Any, family: Any) -> tuple[str, str, str, str] | None:
    """(type, indicator, table, column family), or None when the type or indicator is null."""
    if kind is None or indicator is None:
        return None
    text = indicator if isinstance(indicator, str) else java_str(indicator)
    return A.string(1, kind), text, A.string(3, table), A.string(4, family)


@stellar_function(
    "ENRICHMENT_EXISTS",
    description="Whether the enrichment store holds an indicator of the given enrichment type.",
    params=_ENRICHMENT_PARAMS,
    returns="True if the indicator is in the store, false otherwise (and for a null type or indicator)",
    context=True,
    pure=False,
)
def enrichment_exists(context: Context, kind: Any, indicator: Any, table: Any, family: Any) -> bool:
    key = _enrichment_key(kind, indicator, table, family)
    if key is None:
        return False
    try:
        return _enrichment_store(context).get(key[2], key[3], key[0], key[1]) is not None
    except EnrichmentStoreError as exc:
        raise StellarEvaluationError(str(exc)) from None


@stellar_function(
    "ENRICHMENT_GET",
    description="Retrieves the values the enrichment store associates with an indicator of an enrichment type.",
    params=_ENRICHMENT_PARAMS,
    returns="The map of values; an empty map if the indicator is not in the store (or the type or indicator is null)",
    context=True,
    pure=False,
)
def enrichment_get(context: Context, kind: Any, indicator: Any, table: Any, family: Any) -> dict[str, Any]:
    key = _enrichment_key(kind, indicator, table, family)
    if key is None:
        return {}
    try:
        value = _enrichment_store(context).get(key[2], key[3], key[0], key[1])
    except EnrichmentStoreError as exc:
        raise StellarEvaluationError(str(exc)) from None
    return {} if value is None else dict(value)


# ---- serialised objects ------------------------------------------------------------------------------------


class ObjectCache:
    """Deserialised objects by path, bounded in number and age (``cachetools``)."""

    def __init__(self, size: int, minutes: float, max_file_size: int) -> None:
        self.max_file_size = max_file_size
        self._cache: cachetools.TTLCache[str, Any] = cachetools.TTLCache(maxsize=max(1, size), ttl=minutes * 60.0)
        self._lock = threading.Lock()

    def get(self, store: FileStore, path: str) -> Any:
        with self._lock:
            if path in self._cache:
                return self._cache[path]
        data = store.read(path)
        if len(data) > self.max_file_size:
            raise StellarEvaluationError(
                f"the object at {path} has {len(data)} bytes, more than the configured maximum {self.max_file_size} "
                "(object.cache.max.file.size)"
            )
        try:
            value = deserialize(data)
        except SketchError as exc:
            raise StellarEvaluationError(f"the object at {path} cannot be read: {exc}") from None
        with self._lock:
            self._cache[path] = value
        return value


_caches: dict[tuple[str, int, float, int], ObjectCache] = {}
_caches_lock = threading.Lock()


def _object_cache(settings: Mapping[str, Any], name: str) -> ObjectCache:
    size = int(settings.get("object.cache.size", 1000))
    minutes = float(settings.get("object.cache.expiration.minutes", settings.get("object.cache.expiration", 1440)))
    unit = str(settings.get("object.cache.time.unit", "MINUTES")).upper()
    if "object.cache.expiration.minutes" not in settings:
        minutes *= {"SECONDS": 1 / 60, "MINUTES": 1, "HOURS": 60, "DAYS": 1440}.get(unit, 1)
    max_size = int(settings.get("object.cache.max.file.size", 1048576))
    key = (name, size, minutes, max_size)
    with _caches_lock:
        cache = _caches.get(key)
        if cache is None:
            cache = _caches[key] = ObjectCache(size, minutes, max_size)
    return cache


def clear_object_caches() -> None:
    """Forget every cached object (after files were replaced)."""
    with _caches_lock:
        _caches.clear()


def _object_store(context: Context | None) -> FileStore:
    store = _ctx(context).service("hdfs")
    return store if store is not None else _LOCAL


def _read_object(context: Context | None, path: str, settings: Mapping[str, Any], name: str) -> Any:
    try:
        return _object_cache(settings, name).get(_object_store(context), path)
    except FileStoreError as exc:
        raise StellarEvaluationError(str(exc)) from None


@stellar_function(
    "OBJECT_GET",
    description="Reads and deserialises an object (JSON, or a sketch serialised by stellar_like.serialization) "
    "from HDFS (the context's hdfs store; the local file system without one), caching it.",
    params=["path - The path of the serialised object"],
    returns="The deserialised object, or null for a null path",
    context=True,
    pure=False,
)
def object_get(context: Context, path: Any) -> Any:
    if path is None:
        return None
    return _read_object(context, A.string(1, path), _global_config(context), "object")


@stellar_function(
    "ENRICHMENT_OBJECT_GET",
    description="Reads and deserialises a map stored as JSON (or a serialised map) in HDFS, caching it, and "
    "returns the value associated with an indicator.",
    params=["path - The path of the serialised map", "indicator - The indicator to look up"],
    returns="The value associated with the indicator, or null",
    context=True,
    pure=False,
)
def enrichment_object_get(context: Context, path: Any, indicator: Any) -> Any:
    if path is None or indicator is None:
        return None
    config = _global_config(context)
    settings = config.get("enrichment.object.get.settings", config)
    value = _read_object(
        context, A.string(1, path), settings if isinstance(settings, Mapping) else config, "enrichment"
    )
    if not isinstance(value, Mapping):
        raise argument_error(1, path, "does not hold a map serialised as JSON")
    return value.get(indicator)


# ---- REST ---------------------------------------------------------------------------------------------

REST_DEFAULTS: dict[str, Any] = {
    "timeout": 1000,
    "response.codes.allowed": [200],
    "verify.content.length": False,
    "enforce.json": True,
    "empty.content.override": None,
    "error.value.override": None,
}

_clients: dict[tuple[str | None, int | None, int | None], Any] = {}
_clients_lock = threading.Lock()


def _rest_config(context: Context | None, method_key: str, overrides: Any, index: int) -> dict[str, Any]:
    config = dict(REST_DEFAULTS)
    global_config = _global_config(context)
    for key in ("stellar.rest.settings", method_key):
        section = global_config.get(key)
        if isinstance(section, Mapping):
            config.update(section)
    if overrides is not None:
        config.update(A.mapping(index, overrides))
    return config


def _client(context: Context | None, config: Mapping[str, Any]) -> httpx.Client:
    import httpx

    given = _ctx(context).service("http_client")
    proxy = None
    if config.get("proxy.host") and config.get("proxy.port"):
        proxy = f"http://{config['proxy.host']}:{int(config['proxy.port'])}"
    if given is not None and proxy is None:
        return given
    total = config.get("pooling.max.total")
    per_route = config.get("pooling.default.max.per.route")
    key = (proxy, None if total is None else int(total), None if per_route is None else int(per_route))
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            limits = httpx.Limits(
                max_connections=key[1] if key[1] is not None else 100,
                max_keepalive_connections=key[2] if key[2] is not None else 20,
            )
            client = _clients[key] = httpx.Client(limits=limits, proxy=proxy)
    return client


def _timeout(config: Mapping[str, Any]) -> httpx.Timeout:
    """Metron's ``timeout`` bounds the whole request; the phase timeouts may only shorten it."""
    import httpx

    total = float(config.get("timeout", 1000)) / 1000.0

    def phase(key: str) -> float:
        value = config.get(key)
        return total if value is None else min(total, float(value) / 1000.0)

    return httpx.Timeout(
        total, connect=phase("connect.timeout"), read=phase("socket.timeout"), pool=phase("connection.request.timeout")
    )


def _secret(context: Context | None, path: Any) -> str:
    store = _object_store(context)
    return store.read(str(path)).decode("utf-8").strip()


def _auth_headers(context: Context | None, config: Mapping[str, Any]) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    pairs = (
        ("basic.auth.user", "basic.auth.password.path", "Authorization"),
        ("proxy.basic.auth.user", "proxy.basic.auth.password.path", "Proxy-Authorization"),
    )
    for user_key, password_key, header in pairs:
        user, password_path = config.get(user_key), config.get(password_key)
        if user and password_path:
            token = base64.b64encode(f"{user}:{_secret(context, password_path)}".encode()).decode("ascii")
            headers[header] = f"Basic {token}"
    return headers


def _query(index: int, value: Any) -> dict[str, str]:
    if value is None:
        return {}
    return {str(k): A.string(index, v) if isinstance(v, str) else str(v) for k, v in A.mapping(index, value).items()}


def _request(
    context: Context | None, method: str, url: str, config: Mapping[str, Any], params: dict[str, str], body: str | None
) -> Any:
    import httpx

    allowed = {int(code) for code in config.get("response.codes.allowed", [200])}
    started = time.monotonic()
    try:
        headers = _auth_headers(context, config)
        if body is not None:
            headers["Content-Type"] = "application/json"
        response = _client(context, config).request(
            method, url, params=params or None, content=body, headers=headers, timeout=_timeout(config)
        )
        elapsed = time.monotonic() - started
        if elapsed * 1000 > float(config.get("timeout", 1000)):
            raise httpx.TimeoutException(f"the request took {elapsed * 1000:.0f} ms")
        if response.status_code not in allowed:
            raise httpx.HTTPStatusError(
                f"status {response.status_code}, expected one of {sorted(allowed)}",
                request=response.request,
                response=response,
            )
        text = response.text
        if config.get("verify.content.length") and int(response.headers.get("content-length", -1)) != len(
            response.content
        ):
            raise httpx.DecodingError("the response's content length does not match its body")
        if not text:
            return config.get("empty.content.override")
        return orjson.loads(text)
    except (httpx.HTTPError, orjson.JSONDecodeError, FileStoreError, OSError, ValueError) as exc:
        log.warning("Stellar REST %s %s failed: %s", method, _safe_url(url), exc)
        return config.get("error.value.override")


def _safe_url(url: str) -> str:
    """The URL for logs: no credentials, no query string."""
    import httpx

    parts = httpx.URL(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.host}{port}{parts.path}"


def _url(value: Any) -> str:
    import httpx

    text = A.string(1, value)
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise argument_error(1, value, f"is not a valid URL ({exc})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise argument_error(1, value, "is not an http or https URL")
    return text


@stellar_function(
    "REST_GET",
    description="Performs a REST GET request and parses the JSON result. Settings (timeout in ms, "
    "response.codes.allowed, basic.auth.user and basic.auth.password.path, proxy.host and proxy.port, "
    "empty.content.override, error.value.override...) come from the global config and the rest_config argument.",
    params=[
        "url - The URI of the REST service",
        "rest_config? - A map of settings overriding the global config's",
        "query_parameters? - A map of query parameters to add to the request",
    ],
    returns="The parsed JSON result; error.value.override (default null) if the request fails or times out",
    context=True,
    pure=False,
)
def rest_get(context: Context, url: Any, rest_config: Any = None, query: Any = None) -> Any:
    target = _url(url)
    config = _rest_config(context, "stellar.rest.get.settings", rest_config, 2)
    return _request(context, "GET", target, config, _query(3, query), None)


@stellar_function(
    "REST_POST",
    description="Performs a REST POST request and parses the JSON result; the data must be well-formed JSON "
    "unless enforce.json is false. Settings as for REST_GET.",
    params=[
        "url - The URI of the REST service",
        "post_data - The data to post: a JSON string, or a map or list sent as JSON",
        "rest_config? - A map of settings overriding the global config's",
        "query_parameters? - A map of query parameters to add to the request",
    ],
    returns="The parsed JSON result; error.value.override (default null) if the request fails or times out",
    context=True,
    pure=False,
)
def rest_post(context: Context, url: Any, data: Any, rest_config: Any = None, query: Any = None) -> Any:
    target = _url(url)
    config = _rest_config(context, "stellar.rest.post.settings", rest_config, 3)
    if isinstance(data, str):
        body = data
        if config.get("enforce.json", True):
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError:
                raise argument_error(
                    2, data, "is not well-formed JSON (set enforce.json to false to send it anyway)"
                ) from None
    elif data is None:
        body = ""
    else:
        try:
            body = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode("utf-8")
        except TypeError as exc:
            raise argument_error(2, data, f"cannot be sent as JSON ({exc})") from None
    return _request(context, "POST", target, config, _query(4, query), body)


# ---- files ------------------------------------------------------------------------------------------------


def _hdfs(context: Context | None) -> FileStore:
    store = _ctx(context).service("hdfs")
    if store is None:
        raise StellarEvaluationError(
            "no HDFS store is configured: evaluate with a Context(hdfs=...) "
            "such as stellar_like.stores.WebHdfsFileStore"
        )
    return store


_LS_HEADERS = ["PERMISSION", "OWNER", "GROUP", "SIZE", "LAST MOD TIME", "NAME"]


def _ls(store: FileStore, path: Any, home: str) -> str:
    target = home if path is None else A.string(1, path)
    try:
        entries = store.list(target)
    except FileStoreError as exc:
        log.info("%s", exc)
        entries = []
    entries.sort(key=lambda e: (e.modified, e.name))
    rows = [
        [
            e.permission,
            e.owner,
            e.group,
            str(e.size),
            datetime.fromtimestamp(e.modified).strftime("%Y-%m-%d %H:%M:%S"),
            e.name,
        ]
        for e in entries
    ]
    return render_table(_LS_HEADERS, rows)


def _read(store: FileStore, path: Any) -> str | None:
    if path is None:
        return None
    try:
        return store.read(A.string(1, path)).decode("utf-8", errors="replace")
    except FileStoreError as exc:
        log.info("%s", exc)
        return None


def _read_lines(store: FileStore, path: Any) -> list[str] | None:
    text = _read(store, path)
    return None if text is None else text.splitlines()


def _write(store: FileStore, content: Any, path: Any) -> bool:
    if content is None or path is None:
        return False
    try:
        store.write(A.string(2, path), A.string(1, content).encode("utf-8"))
    except FileStoreError as exc:
        log.info("%s", exc)
        return False
    return True


def _rm(store: FileStore, path: Any, recursive: Any) -> bool:
    if path is None:
        return False
    try:
        store.remove(A.string(1, path), bool(recursive))
    except FileStoreError as exc:
        log.info("%s", exc)
        return False
    return True


_LS_RETURNS = "The directory's entries as a text table (permission, owner, group, size, time, name), oldest first"


@stellar_function(
    "LOCAL_LS",
    description="Lists the contents of a local directory.",
    params=["path? - The path of the directory; default the home directory"],
    returns=_LS_RETURNS,
    pure=False,
)
def local_ls(path: Any = None) -> str:
    return _ls(_LOCAL, path, str(Path.home()))


@stellar_function(
    "LOCAL_READ",
    description="Reads a local file as a (UTF-8) string.",
    params=["path - The path of the file"],
    returns="The contents of the file, or null if it cannot be read",
    pure=False,
)
def local_read(path: Any) -> str | None:
    return _read(_LOCAL, path)


@stellar_function(
    "LOCAL_READ_LINES",
    description="Reads a local file as a list of lines.",
    params=["path - The path of the file"],
    returns="The lines of the file, or null if it cannot be read",
    pure=False,
)
def local_read_lines(path: Any) -> list[str] | None:
    return _read_lines(_LOCAL, path)


@stellar_function(
    "LOCAL_WRITE",
    description="Writes a string to a local file (replacing it whole).",
    params=["content - The content to write", "path - The path of the file"],
    returns="True if the file was written, false otherwise",
    pure=False,
)
def local_write(content: Any, path: Any) -> bool:
    return _write(_LOCAL, content, path)


@stellar_function(
    "LOCAL_RM",
    description="Removes a local file or directory.",
    params=[
        "path - The path of the file or directory",
        "recursive? - Remove a directory with its contents; default false",
    ],
    returns="True if it was removed, false otherwise",
    pure=False,
)
def local_rm(path: Any, recursive: Any = None) -> bool:
    return _rm(_LOCAL, path, recursive)


@stellar_function(
    "HDFS_LS",
    description="Lists the contents of a directory in HDFS.",
    params=["path? - The path of the directory; default /"],
    returns=_LS_RETURNS,
    context=True,
    pure=False,
)
def hdfs_ls(context: Context, path: Any = None) -> str:
    return _ls(_hdfs(context), path, "/")


@stellar_function(
    "HDFS_READ",
    description="Reads a file in HDFS as a (UTF-8) string.",
    params=["path - The path of the file in HDFS"],
    returns="The contents of the file, or null if it cannot be read",
    context=True,
    pure=False,
)
def hdfs_read(context: Context, path: Any) -> str | None:
    return _read(_hdfs(context), path)


@stellar_function(
    "HDFS_READ_LINES",
    description="Reads a file in HDFS as a list of lines.",
    params=["path - The path of the file in HDFS"],
    returns="The lines of the file, or null if it cannot be read",
    context=True,
    pure=False,
)
def hdfs_read_lines(context: Context, path: Any) -> list[str] | None:
    return _read_lines(_hdfs(context), path)


@stellar_function(
    "HDFS_WRITE",
    description="Writes a string to a file in HDFS (replacing it).",
    params=["content - The content to write", "path - The path of the file in HDFS"],
    returns="True if the file was written, false otherwise",
    context=True,
    pure=False,
)
def hdfs_write(context: Context, content: Any, path: Any) -> bool:
    return _write(_hdfs(context), content, path)


@stellar_function(
    "HDFS_RM",
    description="Removes a file or directory in HDFS.",
    params=["path - The path in HDFS", "recursive? - Remove a directory with its contents; default false"],
    returns="True if it was removed, false otherwise",
    context=True,
    pure=False,
)
def hdfs_rm(context: Context, path: Any, recursive: Any = None) -> bool:
    return _rm(_hdfs(context), path, recursive)


# ---- system ---------------------------------------------------------------------------------------------------


@stellar_function(
    "SYSTEM_ENV_GET",
    description="Returns the value of an environment variable.",
    params=["env_var - The name of the environment variable"],
    returns="The value, or null if the variable is not set or the name is not a string",
    pure=False,
)
def system_env_get(name: Any) -> str | None:
    if not isinstance(name, str):
        return None
    return os.environ.get(name)


def _system_properties() -> dict[str, str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = ""
    return {
        "os.name": platform.system(),
        "os.arch": platform.machine(),
        "os.version": platform.release(),
        "user.name": user,
        "user.home": str(Path.home()),
        "user.dir": os.getcwd(),
        "java.io.tmpdir": tempfile.gettempdir(),
        "file.separator": os.sep,
        "path.separator": os.pathsep,
        "line.separator": os.linesep,
        "python.version": platform.python_version(),
    }


@stellar_function(
    "SYSTEM_PROPERTY_GET",
    description="Returns a system property: the context's system_properties first, then the process's own "
    "(os.name, os.arch, os.version, user.name, user.home, user.dir, java.io.tmpdir, file.separator, "
    "path.separator, line.separator, python.version).",
    params=["key - The name of the property"],
    returns="The value, or null if there is no such property or the key is not a string",
    context=True,
    pure=False,
)
def system_property_get(context: Context, key: Any) -> str | None:
    if not isinstance(key, str):
        return None
    extra = _ctx(context).service("system_properties")
    if isinstance(extra, Mapping) and key in extra:
        value = extra[key]
        return None if value is None else str(value)
    return _system_properties().get(key)
