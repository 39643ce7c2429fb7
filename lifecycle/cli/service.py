"""``maas_lifecycle``: run the lifecycle service and administer its database.

* ``maas_lifecycle serve [--db URL] [--host H] [--port P] [-zq Q] [-zr ZNODE] [--store-uri URI]
  [--workers N] …`` — upgrades the schema, bootstraps the administrator on an empty database
  (printing its token once unless ``MAAS_LIFECYCLE_ADMIN_TOKEN`` gave it), then serves the API,
  ``/metrics`` and the job workers. Every flag also from ``MAAS_LIFECYCLE_<FLAG>``.
* ``maas_lifecycle db upgrade [--db URL]`` — bring the database to the newest schema.
* ``maas_lifecycle admin create-token USER [--description D]`` — a new token of a user (the
  administrator's when the API's token is lost), printed once; ``admin revoke-token ID``.

Exit codes (those of :mod:`lifecycle.errors`, like ``maas_deploy``'s): 0 success, 2 usage or bad
input, 3 not authenticated / no right, 4 not found, 5 conflict, 6 unavailable, 1 anything else.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Callable

import click

from lifecycle import audit, auth
from lifecycle.errors import LifecycleError
from lifecycle.settings import ADMIN_TOKEN_ENV, FLAGS, LifecycleSettings

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


def _options(fields: set[str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The settings flags (all, or the named fields) as click options; values default to None so
    that :meth:`LifecycleSettings.build` can tell a given flag from the environment's value."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        for decls, field, help_text in reversed(FLAGS):
            if fields is None or field in fields:
                fn = click.option(*decls, field, default=None, help=help_text)(fn)
        return fn

    return decorate


def _settings(values: dict[str, Any]) -> LifecycleSettings:
    try:
        return LifecycleSettings.build(values)
    except LifecycleError as exc:
        raise click.UsageError(exc.message) from exc


def _fail(exc: LifecycleError) -> None:
    click.echo(f"maas_lifecycle: {exc.message}", err=True)
    sys.exit(exc.exit_code)


@click.group(context_settings=CONTEXT)
def main() -> None:
    """The ML-model lifecycle service of MaaS (docs/lifecycle.md)."""


@main.command(context_settings=CONTEXT)
@_options()
def serve(**values: Any) -> None:
    """Serve the REST API, /metrics and the job workers."""
    settings = _settings(values)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import uvicorn

    from lifecycle.api.app import create_app

    try:
        app = create_app(settings)
    except LifecycleError as exc:
        _fail(exc)
        return
    token = app.state.bootstrap_token
    if token:
        click.echo("The database was empty: created the user 'admin' with the role 'administrator'.\n"
                   f"Its token, shown only now (set {ADMIN_TOKEN_ENV} to choose it instead):\n\n    {token}\n",
                   err=True)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level, access_log=False)


@main.group(context_settings=CONTEXT)
def db() -> None:
    """Database schema."""


@db.command(context_settings=CONTEXT)
@_options({"data_dir", "db", "log_level"})
def upgrade(**values: Any) -> None:
    """Upgrade the database to the newest schema (serve does this at start too)."""
    settings = _settings(values)
    settings.ensure_dirs()
    from lifecycle.db import make_engine
    from lifecycle.migrations import current_revision, upgrade_engine

    engine = make_engine(settings.db)
    try:
        before = upgrade_engine(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    click.echo(f"database at revision {after}" + ("" if before == after else f" (was {before or 'empty'})"))


@main.group(context_settings=CONTEXT)
def admin() -> None:
    """Administration straight on the database (for when no token of the API is at hand)."""


def _with_session(values: dict[str, Any], fn: Callable[[Any, auth.TokenVerifier], None]) -> None:
    settings = _settings(values)
    settings.ensure_dirs()
    from sqlalchemy.orm import sessionmaker

    from lifecycle.db import make_engine
    from lifecycle.migrations import upgrade_engine

    engine = make_engine(settings.db)
    try:
        upgrade_engine(engine)
        verifier = auth.TokenVerifier(0)
        with sessionmaker(engine).begin() as session:
            auth.bootstrap(session, verifier, settings.admin_token.get_secret_value() if settings.admin_token else None)
            fn(session, verifier)
    except LifecycleError as exc:
        _fail(exc)
    finally:
        engine.dispose()


@admin.command("create-token", context_settings=CONTEXT)
@click.argument("user", default=auth.ADMIN_USER)
@click.option("--description", default="created by maas_lifecycle admin", show_default=True, help="What it is for")
@_options({"data_dir", "db"})
def create_token(user: str, description: str, **values: Any) -> None:
    """Print a new token of USER (default: admin), shown only now."""

    def run(session: Any, verifier: auth.TokenVerifier) -> None:
        issued = auth.issue_token(session, verifier, auth.get_user(session, user), description=description)
        audit.record(session, actor="system", action="tokens.create", object_type="user", object_name=user,
                     detail={"token_id": issued.public_id, "via": "maas_lifecycle admin"})
        click.echo(issued.token)

    _with_session(values, run)


@admin.command("revoke-token", context_settings=CONTEXT)
@click.argument("token_id")
@_options({"data_dir", "db"})
def revoke_token(token_id: str, **values: Any) -> None:
    """Revoke the token with the public id TOKEN_ID."""

    def run(session: Any, verifier: auth.TokenVerifier) -> None:
        row = auth.revoke_token(session, verifier, token_id)
        audit.record(session, actor="system", action="tokens.revoke", object_type="token", object_name=token_id,
                     detail={"user": row.user.name, "via": "maas_lifecycle admin"})
        click.echo(f"revoked token {token_id} of {row.user.name}")

    _with_session(values, run)


if __name__ == "__main__":
    main()
