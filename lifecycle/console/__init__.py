"""The web console of ``maas_lifecycle serve``: pages at ``/`` over the service's own REST API.

:func:`install` adds to an app what the console needs: the session cookie middleware
(:mod:`lifecycle.console.session`), its API routes (:mod:`lifecycle.console.routes`: sign-in,
MaaS overview, downsampled series), the static files under ``/console/`` (HTML, JS modules, CSS,
the vendored uPlot chart library — its licence in ``static/vendor/uplot/LICENSE``) and the page
at ``/``. Every script, style and font is served from here: the console works with no internet.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
#: Headers of every console page: no framing, no foreign scripts, styles, fonts or connections.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


def install(app: FastAPI) -> None:
    """Mount the console on ``app`` (called once by :func:`lifecycle.api.app.create_app`)."""
    from lifecycle.api.app import SHUTDOWN_HOOKS
    from lifecycle.console.routes import close_deploy_client, router
    from lifecycle.console.session import SessionKeeper, SessionMiddleware, load_secret

    state = app.state.lifecycle
    state.extras["console_sessions"] = SessionKeeper(load_secret(state.settings.data_dir))
    if close_deploy_client not in SHUTDOWN_HOOKS:
        SHUTDOWN_HOOKS.append(close_deploy_client)
    app.include_router(router)
    app.add_middleware(SessionMiddleware, keeper=lambda: state.extras.get("console_sessions"),
                       sessions=lambda: state.sessions)
    app.mount("/console", StaticFiles(directory=STATIC, check_dir=True), name="console")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=SECURITY_HEADERS)
