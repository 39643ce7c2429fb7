"""How clients of model endpoints authenticate and verify them: a bearer token and a CA bundle.

One definition for every HTTP client of model services: the model gateway, the runner's
readiness check and the controller's health prober. The token comes from a file (the first
non-empty line of ``MAAS_MODEL_TOKEN_FILE``, the same file the model servers accept tokens
from); the CA bundle that verifies HTTPS endpoints from ``MAAS_MODEL_CA_FILE`` (default: the
system's trust store). The token's value is never logged or put in a repr.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maas.errors import ConfigError

TOKEN_FILE_ENV = "MAAS_MODEL_TOKEN_FILE"
CA_FILE_ENV = "MAAS_MODEL_CA_FILE"


@dataclass(frozen=True)
class EndpointCredentials:
    token_file: Path | None = None
    ca_file: Path | None = None
    _token: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> "EndpointCredentials":
        env = os.environ if environ is None else environ
        token_file, ca_file = env.get(TOKEN_FILE_ENV), env.get(CA_FILE_ENV)
        return cls.create(Path(token_file) if token_file else None, Path(ca_file) if ca_file else None)

    @classmethod
    def create(cls, token_file: Path | None = None, ca_file: Path | None = None) -> "EndpointCredentials":
        """Read and check the files now, so a wrong path fails at start with its name."""
        token = None
        if token_file is not None:
            try:
                lines = [ln.strip() for ln in token_file.read_text(encoding="utf-8").splitlines() if ln.strip()]
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"model token file {token_file}: cannot read it: {exc}") from exc
            if not lines:
                raise ConfigError(f"model token file {token_file} holds no token")
            token = lines[0]
        if ca_file is not None and not ca_file.is_file():
            raise ConfigError(f"model CA file {ca_file} does not exist or is not a file")
        return cls(token_file, ca_file, token)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        """A context trusting the CA bundle; None: the system's trust store."""
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file is not None else None

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """httpx's ``verify``: :attr:`ssl_context`, or True (the system's trust store)."""
        return self.ssl_context or True

    def http_options(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client``."""
        return {"headers": self.headers, "verify": self.verify}
