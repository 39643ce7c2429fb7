"""Bearer-token authentication of the model server's routes (docs/security.md).

With a token file configured, every request must carry ``Authorization: Bearer <token>`` with
one of the file's tokens (several lines let a token be rotated without a window where clients
are refused); otherwise it gets 401 with ``WWW-Authenticate: Bearer``. ``/metrics`` and the
health routes stay open unless ``--protect-metrics`` / ``--protect-health`` say otherwise, so
scrapers and probes need no secret. The check runs before any route (hot paths included).
Tokens are compared in constant time.
"""

from __future__ import annotations

import hmac
import json

from model_server.metrics import Receive, Scope, Send
from model_server.settings import Settings

METRICS_PATHS = frozenset({"/metrics"})
HEALTH_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})
_REFUSAL = json.dumps({"error": "missing or invalid bearer token (send 'Authorization: Bearer <token>')"}).encode()


class BearerAuth:
    """Decides whether a request may pass and answers 401 when it may not."""

    def __init__(self, tokens: list[str], open_paths: frozenset[str]) -> None:
        if not tokens:
            raise ValueError("BearerAuth needs at least one token")
        self._expected = [f"Bearer {t}".encode("latin-1") for t in tokens]
        self.open_paths = open_paths

    @classmethod
    def from_settings(cls, settings: Settings) -> "BearerAuth | None":
        tokens = settings.auth_tokens()
        if not tokens:
            return None
        open_paths = frozenset()
        if not settings.protect_metrics:
            open_paths |= METRICS_PATHS
        if not settings.protect_health:
            open_paths |= HEALTH_PATHS
        return cls(tokens, open_paths)

    def allows(self, scope: Scope) -> bool:
        if scope["path"] in self.open_paths:
            return True
        for key, value in scope["headers"]:
            if key.lower() == b"authorization":
                # compare_digest against every accepted token: no early exit on the first match
                return sum(hmac.compare_digest(value, expected) for expected in self._expected) > 0
        return False

    @staticmethod
    async def refuse(receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(_REFUSAL)).encode("ascii")),
            (b"www-authenticate", b'Bearer realm="model_server"'),
        ]})
        await send({"type": "http.response.body", "body": _REFUSAL})
