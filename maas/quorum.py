"""A ZooKeeper connection string (``host:port[,host:port…][/chroot]``): parsing it so that a typo
is a usage error naming the bad member, and a quick look at its members before kazoo's
connection loop, so that an answer that will not change (an unknown host, a port nobody listens
on) ends the command at once with the question users need ("is ZooKeeper running at …?")
instead of a time-out.

Parsing is kazoo's own (:func:`kazoo.hosts.collect_hosts`), so what is accepted here is exactly
what kazoo connects to. The look is written here: kazoo retries every failure the same way and
offers no "fail when every member refuses" mode.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from kazoo.hosts import collect_hosts

from maas.errors import ConfigError, CoordinationError

#: Seconds one member gets to accept or refuse a TCP connection during the look.
PROBE_TIMEOUT = 1.0

#: Errors of ``connect()`` that will not change by trying again soon.
_FINAL_ERRNOS = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL}


@dataclass(frozen=True)
class Quorum:
    """A parsed connection string."""

    text: str
    members: tuple[tuple[str, int], ...]
    chroot: str | None

    def member_names(self) -> str:
        return ", ".join(_name(h, p) for h, p in self.members)


def _name(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def parse_quorum(text: str) -> Quorum:
    """Parse ``text``; a :class:`~maas.errors.ConfigError` (exit code 2) names the bad part."""
    if not text or not text.strip():
        raise ConfigError("the ZooKeeper quorum is empty: expected host:port[,host:port…][/chroot]")
    for member in text.partition("/")[0].split(","):
        try:
            collect_hosts(member)
        except ValueError as exc:
            raise ConfigError(
                f"bad ZooKeeper quorum {text!r}: member {member!r}: {exc} (expected host:port[,host:port…][/chroot])"
            ) from exc
    members, chroot = collect_hosts(text)
    return Quorum(text, tuple(members), chroot)


def _refusal(host: str, port: int, timeout: float) -> str | None:
    """Why ``host:port`` certainly has no server, or None when it may have one (it accepted, or
    the answer was a time-out that a slow network could explain)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        if exc.errno in (socket.EAI_AGAIN,):  # temporary DNS failure: let kazoo retry
            return None
        return f"unknown host {host!r}"
    reasons = []
    for family, kind, proto, _canon, address in infos:
        with socket.socket(family, kind, proto) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(address)
                return None
            except OSError as exc:
                if exc.errno not in _FINAL_ERRNOS:
                    return None
                reasons.append(exc.strerror or str(exc))
    return f"{_name(host, port)}: {reasons[0].lower()}" if reasons else None


def check_reachable(quorum: Quorum, *, timeout: float = PROBE_TIMEOUT) -> None:
    """Raise :class:`~maas.errors.CoordinationError` when no member can possibly answer."""
    refusals = [_refusal(host, port, timeout) for host, port in quorum.members]
    if all(r is not None for r in refusals):
        raise CoordinationError(
            f"cannot connect to ZooKeeper ({'; '.join(r for r in refusals if r)}): "
            f"is ZooKeeper running at {quorum.member_names()}?"
        )
