"""``python -m model_server --payload DIR [--host H] [--port N] [--endpoint-file PATH] [--signature FILE]``

Validates the settings, loads the model and its signature and runs a warm-up inference — exiting
non-zero with a message naming the problem if any of that fails, before listening — then serves
until SIGTERM. Flags and their environment variables: :mod:`model_server.settings`.
"""

from __future__ import annotations

import logging
import sys
from typing import Sequence

from model_server.app import create_app
from model_server.errors import ModelServerError
from model_server.runtime import ModelRuntime
from model_server.server import serve
from model_server.settings import Settings


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = Settings.from_args(argv)
        logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        runtime = ModelRuntime.load(settings.model_path, settings.signature_path, threads=settings.threads,
                                    name=settings.model_name, version=settings.model_version,
                                    max_batch_size=settings.max_batch_size)
        runtime.warm_up()
    except ModelServerError as exc:
        print(f"model_server: error: {exc.message}", file=sys.stderr)
        return exc.exit_code
    code = serve(create_app(settings, runtime), settings, {runtime.function: runtime.function})
    if code != 0:
        print(f"model_server: error: could not serve on {settings.host}:{settings.port} (exit code {code})",
              file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
