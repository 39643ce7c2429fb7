"""Heavy libraries behind a few functions are imported when those functions first run, not when the
language is imported (datasketch alone pulls in scipy)."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import stellar_like
stellar_like.evaluate("TO_UPPER('x')")
print(",".join(sorted(m for m in ("datasketch", "scipy", "httpx", "maxminddb", "dnstwist") if m in sys.modules)))
stellar_like.evaluate("HLLP_CARDINALITY(HLLP_ADD(HLLP_INIT(), 'a'))")
print("datasketch" in sys.modules)
"""


def test_heavy_libraries_load_on_first_use() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    before, after = out.stdout.splitlines()
    assert before == ""
    assert after == "True"
