"""The expression language depends on nothing of the control plane: importing every module of
``stellar_like`` loads neither ``maas`` nor the enrichment package."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import importlib, pkgutil, sys
import stellar_like
for info in pkgutil.walk_packages(stellar_like.__path__, "stellar_like."):
    importlib.import_module(info.name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in {"maas", "enrichment", "deploy_client", "lifecycle", "kazoo"})
print(",".join(leaked))
"""


def test_stellar_like_imports_nothing_of_the_control_plane() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"stellar_like loads {out.stdout.strip()}"
