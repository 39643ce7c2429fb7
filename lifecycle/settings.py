"""Settings of one ``maas_lifecycle serve`` process: typed, validated when the process starts.

Every setting is a command-line flag of ``maas_lifecycle serve`` and also reads the environment
variable ``MAAS_LIFECYCLE_<FLAG>`` (``--db`` ⇒ ``MAAS_LIFECYCLE_DB``, ``--store-uri`` ⇒
``MAAS_LIFECYCLE_STORE_URI``, ``-zq`` ⇒ ``MAAS_LIFECYCLE_ZK_QUORUM``). The flag wins over the
variable. The table of settings is :data:`FLAGS` (flag, field, help), which the CLI turns into
click options, so the two never disagree; docs/lifecycle.md lists the same table.

Other modules read the settings they need from the :class:`LifecycleSettings` given to
:func:`lifecycle.api.app.create_app` (``request.app.state.settings`` in a route).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from maas.config import DEFAULT_CONFIG_PATH
from lifecycle.errors import InvalidInput

ENV_PREFIX = "MAAS_LIFECYCLE_"
#: The bootstrap administrator token of an empty database (never a flag: flags show in `ps`).
ADMIN_TOKEN_ENV = ENV_PREFIX + "ADMIN_TOKEN"


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/maas/lifecycle`` (``~/.local/share/maas/lifecycle``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "maas" / "lifecycle"


class LifecycleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path = Field(default_factory=default_data_dir,
                           description="Where the default SQLite database and file store live")
    db: str = Field("", description="Database URL: sqlite:///FILE or postgresql://user@host:port/db "
                                    "(default: sqlite:///<data dir>/lifecycle.db)")
    host: str = Field("127.0.0.1", min_length=1, description="Address to listen on")
    port: int = Field(8480, ge=0, le=65535, description="Port to listen on (0: any free port)")
    zk_quorum: str | None = Field(None, description="ZooKeeper quorum of the MaaS cluster (inference deploys)")
    zk_root: str = Field(DEFAULT_CONFIG_PATH, pattern=r"^/", description="MaaS config znode")
    store_uri: str = Field("", description="Model store for datasets and trained payloads, file:// or hdfs:// "
                                           "(default: file://<data dir>/store)")
    workers: int = Field(2, ge=0, le=64, description="Job worker threads in this process (0: run no jobs)")
    four_eyes: bool = Field(False, description="Refuse publishing by the user who prepared the model")
    token_cache_seconds: float = Field(30.0, ge=0, le=3600,
                                       description="How long a verified token is trusted without argon2 again "
                                                   "(a revocation is seen at the latest after this)")
    max_archive_bytes: int = Field(256 << 20, ge=1024, description="Largest model archive accepted by import")
    max_upload_bytes: int = Field(1 << 30, ge=1024, description="Largest dataset file accepted by upload")
    log_level: str = Field("info", pattern=r"^(critical|error|warning|info|debug)$", description="Log level")
    admin_token: SecretStr | None = Field(None, description="Bootstrap administrator token of an empty database "
                                                            f"(only from {ADMIN_TOKEN_ENV})", exclude=True)

    @model_validator(mode="after")
    def _defaults(self) -> "LifecycleSettings":
        if not self.db:
            object.__setattr__(self, "db", f"sqlite:///{self.data_dir / 'lifecycle.db'}")
        elif not (self.db.startswith("sqlite:///") or self.db.startswith("postgresql://")
                  or self.db.startswith("postgresql+psycopg://")):
            raise ValueError(f"--db {self.db!r}: expected sqlite:///FILE or postgresql://…")
        if not self.store_uri:
            object.__setattr__(self, "store_uri", f"file://{(self.data_dir / 'store').resolve()}")
        return self

    @property
    def uses_sqlite(self) -> bool:
        return self.db.startswith("sqlite")

    def ensure_dirs(self) -> None:
        """Create the data directory (and the SQLite file's directory) when they are missing."""
        if self.uses_sqlite:
            path = self.db.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
        if self.store_uri.startswith("file://"):
            Path(self.store_uri.removeprefix("file://")).mkdir(parents=True, exist_ok=True)

    @classmethod
    def build(cls, values: Mapping[str, object], environ: Mapping[str, str] | None = None) -> "LifecycleSettings":
        """Settings from flag values (None: not given) with ``MAAS_LIFECYCLE_*`` filling the rest.

        Raises :class:`InvalidInput` naming the flag of the first bad value.
        """
        env = os.environ if environ is None else environ
        given: dict[str, object] = {}
        for _flags, field, _help in FLAGS:
            value = values.get(field)
            if value is None:
                value = env.get(ENV_PREFIX + field.upper()) or None
            if value is not None:
                given[field] = value
        token = env.get(ADMIN_TOKEN_ENV)
        if token:
            given["admin_token"] = token
        try:
            return cls(**given)  # type: ignore[arg-type]
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else ""
            flag = next((f[0] for f in FLAGS if f[1] == field), field)
            raise InvalidInput(f"{flag}: {err['msg']}", field=field) from exc


#: (click flag declarations, settings field, help) — one row per flag of ``maas_lifecycle serve``.
FLAGS: list[tuple[tuple[str, ...], str, str]] = [
    (("--data-dir",), "data_dir", "Data directory [env MAAS_LIFECYCLE_DATA_DIR; default ~/.local/share/maas/lifecycle]"),
    (("--db",), "db", "Database URL sqlite:///FILE | postgresql://… [env MAAS_LIFECYCLE_DB]"),
    (("--host",), "host", "Listen address [env MAAS_LIFECYCLE_HOST; default 127.0.0.1]"),
    (("--port",), "port", "Listen port [env MAAS_LIFECYCLE_PORT; default 8480]"),
    (("-zq", "--zk-quorum"), "zk_quorum", "MaaS ZooKeeper quorum [env MAAS_LIFECYCLE_ZK_QUORUM]"),
    (("-zr", "--zk-root"), "zk_root", f"MaaS config znode [env MAAS_LIFECYCLE_ZK_ROOT; default {DEFAULT_CONFIG_PATH}]"),
    (("--store-uri",), "store_uri", "Model store URI [env MAAS_LIFECYCLE_STORE_URI; default file://<data dir>/store]"),
    (("--workers",), "workers", "Job worker threads [env MAAS_LIFECYCLE_WORKERS; default 2]"),
    (("--four-eyes",), "four_eyes", "Publisher must differ from preparer (true/false) [env MAAS_LIFECYCLE_FOUR_EYES]"),
    (("--token-cache-seconds",), "token_cache_seconds",
     "Seconds a verified token is cached [env MAAS_LIFECYCLE_TOKEN_CACHE_SECONDS; default 30]"),
    (("--max-archive-bytes",), "max_archive_bytes",
     "Largest importable model archive [env MAAS_LIFECYCLE_MAX_ARCHIVE_BYTES; default 256 MiB]"),
    (("--max-upload-bytes",), "max_upload_bytes",
     "Largest dataset upload [env MAAS_LIFECYCLE_MAX_UPLOAD_BYTES; default 1 GiB]"),
    (("--log-level",), "log_level", "Log level [env MAAS_LIFECYCLE_LOG_LEVEL; default info]"),
]
