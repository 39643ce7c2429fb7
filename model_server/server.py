"""Running the app under uvicorn, and the payload contract's ``endpoint.dat``.

:class:`ModelServer` is a ``uvicorn.Server`` that writes the endpoint file (atomically) right
after its socket is listening and removes it when it shuts down, so the file exists exactly while
the service answers. SIGTERM and SIGINT stop it gracefully: the server reports not ready
(``/v2/health/ready`` → 503), uvicorn stops accepting connections and lets the requests in flight
finish (for at most ``--graceful-timeout`` seconds), then the app's lifespan drains the batcher's
queue, and :func:`serve` returns 0.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import tempfile
from pathlib import Path
from typing import Any, Callable

import uvicorn
from fastapi import FastAPI

from model_server.app import HotPaths
from model_server.settings import Settings

log = logging.getLogger("model_server.server")


def write_endpoint_file(path: Path, url: str, functions: dict[str, str]) -> None:
    """Write ``{"url": …, "functions": …}`` so a reader sees the whole file or none of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump({"url": url, "functions": functions}, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ModelServer(uvicorn.Server):
    """uvicorn's server, announcing itself in the endpoint file once it listens."""

    def __init__(self, config: uvicorn.Config, settings: Settings, functions: dict[str, str],
                 on_drain: Callable[[], None] | None = None) -> None:
        super().__init__(config)
        self.settings = settings
        self.functions = functions
        self.on_drain = on_drain
        self.url: str | None = None

    @property
    def bound_port(self) -> int:
        """The port actually listened on (differs from the setting when that is 0)."""
        for server in getattr(self, "servers", []):
            for sock in server.sockets or []:
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    return int(sock.getsockname()[1])
        return self.settings.port

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.started:
            return
        self.url = self.settings.public_url(self.bound_port)
        if self.settings.endpoint_file is not None:
            write_endpoint_file(self.settings.endpoint_file, self.url, self.functions)
            log.info("listening at %s; wrote %s", self.url, self.settings.endpoint_file)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.on_drain is not None:
            self.on_drain()
        if self.settings.endpoint_file is not None:
            self.settings.endpoint_file.unlink(missing_ok=True)
        await super().shutdown(sockets=sockets)


def _log_stop_signal(signum: int, _frame: Any) -> None:
    """Installed before uvicorn's own handlers; uvicorn re-raises the signal it caught into this
    one after its graceful shutdown, which thus ends the process normally."""
    log.info("stopped by %s", signal.Signals(signum).name)


def serve(app: FastAPI | HotPaths, settings: Settings, functions: dict[str, str]) -> int:
    """Serve until SIGTERM/SIGINT; 0 after a graceful stop, non-zero if the server could not start."""
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level=settings.log_level,
        access_log=settings.access_log, lifespan="on", timeout_graceful_shutdown=math.ceil(settings.graceful_timeout),
        server_header=False, proxy_headers=False,
        ssl_certfile=str(settings.tls_cert_file) if settings.tls_cert_file else None,
        ssl_keyfile=str(settings.tls_key_file) if settings.tls_key_file else None,
    )
    serving = getattr(app.state, "serving", None)
    server = ModelServer(config, settings, functions, on_drain=serving.drain if serving is not None else None)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _log_stop_signal)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when it cannot bind or the start-up fails
        code = exc.code if isinstance(exc.code, int) else 1
        return code or 1
    return 0 if server.started else 1
