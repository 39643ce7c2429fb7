"""Test payload service: answers GET/POST /apply with the arguments it got plus who answered."""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

PORT = int(os.environ["MAAS_PORT"])
WHO = {"instance": os.environ.get("MAAS_INSTANCE_ID", ""), "version": os.environ.get("MAAS_MODEL_VERSION", "")}


class Handler(BaseHTTPRequestHandler):
    def _reply(self, code: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        if parts.path != "/apply":
            self._reply(404, {"error": "not found"})
            return
        self._reply(200, {**dict(parse_qsl(parts.query)), **WHO})

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        rows = body if isinstance(body, list) else [body]
        out = [{**row, **WHO} for row in rows]
        self._reply(200, out if isinstance(body, list) else out[0])

    def log_message(self, *_args: object) -> None:
        pass


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
with open("endpoint.dat.tmp", "w") as fh:
    json.dump({"url": f"http://localhost:{PORT}", "functions": {"apply": "apply"}}, fh)
os.replace("endpoint.dat.tmp", "endpoint.dat")
server.serve_forever()
