"""Click parameter types and help texts shared by the project's commands (``maas_service``,
``maas_deploy``, ``maas_enrich``, ``maas_zookeeper``): a ZooKeeper quorum checked at parse time
(a typo is a usage error, exit 2), choices shown as users type them, options that show their
environment variable in ``--help``, and the exit-code table every command documents."""

from __future__ import annotations

from typing import Any, Sequence

import click

from maas.errors import (
    AccessDenied,
    ClusterNotConfigured,
    ConfigError,
    CoordinationError,
    LauncherError,
    PayloadError,
    RequestFailed,
    StoreError,
    WaitTimeout,
)
from maas.quorum import parse_quorum


class QuorumType(click.ParamType):
    """``host:port[,host:port…][/chroot]``, parsed as kazoo parses it."""

    name = "HOST:PORT[,…][/CHROOT]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            parse_quorum(str(value))
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


QUORUM = QuorumType()


class Choices(click.Choice):
    """Case-insensitive choices, listed in ``--help`` and in errors as written (``ADD``, not ``add``)."""

    def __init__(self, choices: Sequence[str]) -> None:
        super().__init__(choices, case_sensitive=False)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "[" + "|".join(str(c) for c in self.choices) + "]"

    def get_invalid_choice_message(self, value: Any, ctx: click.Context | None) -> str:
        return f"{value!r} is not one of {', '.join(str(c) for c in self.choices)}."

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        result = super().convert(value, param, ctx)
        for choice in self.choices:  # the spelling of the choice, whatever the user typed
            if str(choice).casefold() == str(result).casefold():
                return choice
        return result


def show_envvars(command: click.Command) -> click.Command:
    """Make ``--help`` show each option's environment variable (explicit, or from the command's
    ``auto_envvar_prefix``)."""
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            param.show_envvar = True
    return command


#: (exit code, meaning) of every command of the control plane, in one place.
EXIT_CODES: tuple[tuple[int, str], ...] = (
    (0, "success"),
    (1, "an unexpected error (a bug: please report it with the message)"),
    (ConfigError.exit_code, "usage error, bad option value or malformed request"),
    (PayloadError.exit_code, "the payload breaks the payload contract (no *.sh, two of them, …)"),
    (StoreError.exit_code, "the model store refused or failed: e.g. a different payload is already at "
                           "-hmp (pass --force to replace it)"),
    (LauncherError.exit_code, "the launcher could not start or stop instances"),
    (CoordinationError.exit_code, "ZooKeeper is unreachable (or answered with an error)"),
    (RequestFailed.exit_code, "a waited-for request failed (the reason is printed)"),
    (WaitTimeout.exit_code, "--wait timed out (the request goes on)"),
    (AccessDenied.exit_code, "ZooKeeper refused this process's credentials, or an ACL denies it the operation "
                             "(docs/security.md)"),
    (ClusterNotConfigured.exit_code, "no controller has configured this cluster (start maas_service first)"),
)


def exit_codes_help(codes: Sequence[int] | None = None) -> str:
    """The exit-code table as a ``--help`` epilog (``\\b`` keeps click from rewrapping it)."""
    rows = [(c, m) for c, m in EXIT_CODES if codes is None or c in codes]
    return "\b\nExit codes:\n" + "\n".join(f"  {code}  {meaning}" for code, meaning in rows)
