"""Settings of one model-server process: typed, validated when the process starts.

They come from command-line flags; each flag also reads an environment variable
(``MODEL_SERVER_<FLAG>``, e.g. ``MODEL_SERVER_THREADS``), and the payload contract's variables
give the defaults of the port (``MAAS_PORT``), the address to listen on (``MAAS_BIND_HOST``), the
address to announce (``MAAS_ADVERTISED_HOST``), the model name (``MAAS_MODEL_NAME``) and version
(``MAAS_MODEL_VERSION``). :meth:`Settings.from_args` raises
:class:`~model_server.errors.SettingsError` with every problem named.

Batching (:mod:`model_server.batcher`): ``--batching/--no-batching`` (on by default),
``--max-batch-size`` (the most rows in one request and in one coalesced onnxruntime call) and
``--max-queue-delay-ms`` (how long a batch formed from requests that queued behind a running
inference may wait for more; 0 by default — a request reaching an idle runner never waits) and
``--max-queue-rows`` (how many rows may wait for the model before requests are refused with 503)
and ``--max-inline-ms`` (a lone one-row request runs on the event loop, sparing the hop to the
runner thread, while the model's one-row calls take at most this long; 0 turns it off).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from pathlib import Path
from typing import Literal, Mapping, Sequence

from pydantic import (BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from model_server.errors import PayloadError, SettingsError

DEFAULT_MODEL_FILE = "model.onnx"
DEFAULT_SIGNATURE_FILE = "signature.json"
ENV_PREFIX = "MODEL_SERVER_"
LOCAL_WILDCARDS = {"0.0.0.0", "::", ""}
# model names and versions appear in Open Inference Protocol paths (/v2/models/{name}/versions/{version})
URL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._\-]{0,127}$")
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}

LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    payload: Path = Field(description="The payload directory (holds the model and its signature)")
    model_file: str = Field(DEFAULT_MODEL_FILE, min_length=1, description="The model, relative to the payload")
    signature_file: str | None = Field(
        None, description=f"The signature, relative to the payload; default: {DEFAULT_SIGNATURE_FILE} when it exists, "
                          f"else one derived from the model")
    host: str = Field("127.0.0.1", description="Address to listen on")
    advertised_host: str | None = Field(
        None, description="Host announced in the endpoint file when listening on a wildcard address")
    port: int = Field(ge=0, le=65535, description="Port to listen on (0: any free port)")
    endpoint_file: Path | None = Field(None, description="Where to write endpoint.dat once listening")
    threads: int = Field(1, ge=1, le=256, description="onnxruntime intra-op threads per inference")
    max_body_bytes: int = Field(1 << 20, ge=1024, le=1 << 30, description="Largest accepted request body")
    max_batch_size: int = Field(1024, ge=1, le=1_000_000,
                                description="Most rows in one request, and in one coalesced onnxruntime call")
    batching: bool = Field(True, description="Coalesce concurrent requests into one onnxruntime call")
    max_queue_delay_ms: float = Field(0.0, ge=0, le=10_000,
                                      description="How long a batch of requests that queued behind a running "
                                                  "inference may wait for more requests (never a lone request)")
    max_queue_rows: int | None = Field(None, ge=1, le=100_000_000,
                                       description="Most rows that may wait for the model; a request that would "
                                                   "exceed it gets 503 with Retry-After (default: 16 × "
                                                   "max_batch_size)")
    max_inline_ms: float = Field(0.25, ge=0, le=100,
                                 description="A lone one-row request runs on the event loop instead of the "
                                             "runner thread while one-row model calls take at most this long "
                                             "(0: never)")
    graceful_timeout: float = Field(30.0, gt=0, le=3600,
                                    description="Seconds to let requests in flight finish after SIGTERM")
    model_name: str = Field("model",
                            description="Reported by GET / and served as /v2/models/{name}")
    model_version: str = Field("",
                               description="Reported by GET / and served as /v2/models/{name}/versions/{version}")
    log_level: LogLevel = "info"
    access_log: bool = False
    auth_token_file: Path | None = Field(
        None, description="File of accepted bearer tokens, one per line; None: no authentication")
    protect_metrics: bool = Field(False, description="/metrics needs the token too")
    protect_health: bool = Field(False, description="/v2/health/live and /v2/health/ready need the token too")
    tls_cert_file: Path | None = Field(None, description="PEM certificate (chain): serve HTTPS")
    tls_key_file: Path | None = Field(None, description="PEM private key of the certificate")

    @field_validator("host", "advertised_host")
    @classmethod
    def _host(cls, host: str | None) -> str | None:
        if host is None:
            return None
        host = host.strip()
        if not host or any(c.isspace() or c in "/?#@" for c in host):
            raise ValueError(f"{host!r} is not a host name or address")
        return host

    @field_validator("model_name", "model_version")
    @classmethod
    def _url_name(cls, value: str, info: ValidationInfo) -> str:
        if info.field_name == "model_version" and value == "":
            return value
        if not URL_NAME.match(value):
            raise ValueError(f"{value!r} must be 1-128 letters, digits, '.', '_' or '-', not starting with '.' or "
                             f"'-' (it is part of /v2/models/… paths)")
        return value

    @property
    def max_queue_delay(self) -> float:
        """``max_queue_delay_ms`` in seconds."""
        return self.max_queue_delay_ms / 1000.0

    @property
    def max_inline(self) -> float:
        """``max_inline_ms`` in seconds."""
        return self.max_inline_ms / 1000.0

    @property
    def queue_rows_limit(self) -> int:
        """``max_queue_rows``, or its default: 16 full batches."""
        return self.max_queue_rows if self.max_queue_rows is not None else 16 * self.max_batch_size

    @model_validator(mode="after")
    def _files(self) -> "Settings":
        # PayloadError is no ValueError: pydantic lets it through unwrapped.
        if not self.payload.is_dir():
            raise PayloadError(f"payload directory {self.payload} does not exist or is not a directory")
        if not self.model_path.is_file():
            raise PayloadError(f"model file {self.model_path} does not exist")
        if self.signature_file is not None and not self.signature_path_given.is_file():
            raise PayloadError(f"signature file {self.signature_path_given} does not exist")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise SettingsError("tls_cert_file and tls_key_file go together: give both or neither")
        for name in ("auth_token_file", "tls_cert_file", "tls_key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise SettingsError(f"{name}: {path} does not exist or is not a file")
        if self.auth_token_file is not None and not self.auth_tokens():
            raise SettingsError(f"auth_token_file: {self.auth_token_file} holds no token")
        return self

    def auth_tokens(self) -> list[str]:
        """The accepted bearer tokens (the token file's non-empty lines); empty without a file."""
        if self.auth_token_file is None:
            return []
        try:
            text = self.auth_token_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SettingsError(f"auth_token_file: cannot read {self.auth_token_file}: {exc}") from exc
        return [line.strip() for line in text.splitlines() if line.strip()]

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    # -- derived ----------------------------------------------------------------------------------
    @property
    def model_path(self) -> Path:
        return self.payload / self.model_file

    @property
    def signature_path_given(self) -> Path:
        return self.payload / (self.signature_file or DEFAULT_SIGNATURE_FILE)

    @property
    def signature_path(self) -> Path | None:
        """The signature file to read, or None to derive the signature from the model."""
        path = self.signature_path_given
        return path if self.signature_file is not None or path.is_file() else None

    def public_url(self, port: int | None = None) -> str:
        """The URL to announce: the listening address; for a wildcard, the advertised host (else
        127.0.0.1)."""
        host = (self.advertised_host or "127.0.0.1") if self.host in LOCAL_WILDCARDS else self.host
        try:
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        except ValueError:
            pass
        return f"{'https' if self.tls else 'http'}://{host}:{self.port if port is None else port}"

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def create(cls, **values: object) -> "Settings":
        """Validate; :class:`SettingsError` naming every invalid value, or :class:`PayloadError`
        when the payload, its model or the named signature file is missing."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"])
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(f"{where}: {msg}" if where else msg)
            raise SettingsError("; ".join(problems)) from exc

    @classmethod
    def from_args(cls, argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if environ is None else environ
        args = build_parser(env).parse_args(argv)
        values = {k: v for k, v in vars(args).items() if v is not None}
        if "port" not in values:
            raise SettingsError("no port: pass --port or set MAAS_PORT")
        return cls.create(**values)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise SettingsError(f"{message} (see --help)")


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line; each flag's default comes from ``MODEL_SERVER_<FLAG>``."""
    parser = _Parser(prog="python -m model_server",
                     description="Serve an ONNX model payload over HTTP: the Metron-style REST API, the Open "
                                 "Inference Protocol (KServe V2) and Prometheus metrics.")

    def env(flag: str, *fallbacks: str) -> str | None:
        for name in (ENV_PREFIX + flag.upper().replace("-", "_"), *fallbacks):
            if env_value := envget(name):
                return env_value
        return None

    def envget(name: str) -> str | None:
        value = environ.get(name)
        return value if value not in (None, "") else None

    parser.add_argument("--payload", default=env("payload"), help="payload directory (default: $MODEL_SERVER_PAYLOAD)")
    parser.add_argument("--model", dest="model_file", default=env("model"), help=f"model file in the payload "
                        f"(default: {DEFAULT_MODEL_FILE})")
    parser.add_argument("--signature", dest="signature_file", default=env("signature"),
                        help=f"signature file in the payload (default: {DEFAULT_SIGNATURE_FILE} if present, "
                             f"else derived from the model)")
    parser.add_argument("--host", default=env("host", "MAAS_BIND_HOST"),
                        help="address to listen on (default: $MAAS_BIND_HOST, else 127.0.0.1)")
    parser.add_argument("--advertised-host", default=env("advertised-host", "MAAS_ADVERTISED_HOST"),
                        help="host announced in the endpoint file when --host is a wildcard "
                             "(default: $MAAS_ADVERTISED_HOST, else 127.0.0.1)")
    parser.add_argument("--port", default=envget("MAAS_PORT") or env("port"),
                        help="port to listen on, 0 for any (default: $MAAS_PORT)")
    parser.add_argument("--endpoint-file", default=env("endpoint-file"),
                        help="write endpoint.dat here once the server listens (atomically)")
    parser.add_argument("--threads", default=env("threads"), help="onnxruntime intra-op threads (default: 1)")
    parser.add_argument("--max-body-bytes", default=env("max-body-bytes"), help="largest request body (default: 1 MiB)")
    parser.add_argument("--max-batch-size", default=env("max-batch-size"),
                        help="most rows per request and per coalesced onnxruntime call (default: 1024)")
    parser.add_argument("--batching", action=argparse.BooleanOptionalAction, default=_flag(env("batching"), "batching"),
                        help="coalesce concurrent requests into one onnxruntime call (default: on)")
    parser.add_argument("--max-queue-delay-ms", default=env("max-queue-delay-ms"),
                        help="how long a batch formed while the runner was busy may wait for more requests "
                             "(default: 0)")
    parser.add_argument("--max-queue-rows", default=env("max-queue-rows"),
                        help="most rows that may wait for the model; more gets 503 with Retry-After "
                             "(default: 16 × --max-batch-size)")
    parser.add_argument("--max-inline-ms", default=env("max-inline-ms"),
                        help="run a lone one-row request on the event loop, not the runner thread, while the "
                             "model's one-row calls take at most this long; 0: never (default: 0.25)")
    parser.add_argument("--graceful-timeout", default=env("graceful-timeout"),
                        help="seconds to let requests in flight finish on SIGTERM (default: 30)")
    parser.add_argument("--model-name", default=envget("MAAS_MODEL_NAME") or env("model-name"),
                        help="model name reported by GET / (default: $MAAS_MODEL_NAME)")
    parser.add_argument("--model-version", default=envget("MAAS_MODEL_VERSION") or env("model-version"),
                        help="model version reported by GET / (default: $MAAS_MODEL_VERSION)")
    parser.add_argument("--auth-token-file", default=env("auth-token-file", "MAAS_MODEL_TOKEN_FILE"),
                        help="require 'Authorization: Bearer <token>' with a token from this file, one per line "
                             "(default: $MAAS_MODEL_TOKEN_FILE; none: no authentication)")
    parser.add_argument("--protect-metrics", action="store_const", const=True,
                        default=_flag(env("protect-metrics"), "protect-metrics"),
                        help="/metrics needs the token too (default: open)")
    parser.add_argument("--protect-health", action="store_const", const=True,
                        default=_flag(env("protect-health"), "protect-health"),
                        help="the health routes need the token too (default: open)")
    parser.add_argument("--tls-cert", dest="tls_cert_file", default=env("tls-cert", "MAAS_TLS_CERT_FILE"),
                        help="serve HTTPS with this PEM certificate (default: $MAAS_TLS_CERT_FILE)")
    parser.add_argument("--tls-key", dest="tls_key_file", default=env("tls-key", "MAAS_TLS_KEY_FILE"),
                        help="the certificate's PEM private key (default: $MAAS_TLS_KEY_FILE)")
    parser.add_argument("--log-level", default=env("log-level"), help="critical|error|warning|info|debug")
    parser.add_argument("--access-log", action="store_const", const=True,
                        default=_flag(env("access-log"), "access-log"), help="log every request")
    return parser


def _flag(value: str | None, flag: str) -> bool | None:
    """A boolean from the environment: 1/true/yes/on or 0/false/no/off; anything else is an error."""
    if value is None:
        return None
    word = value.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise SettingsError(f"{ENV_PREFIX}{flag.upper().replace('-', '_')}={value!r} is not a boolean "
                        f"(use one of {', '.join(sorted(TRUE_WORDS | FALSE_WORDS))})")
