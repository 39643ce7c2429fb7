"""``python -m bench [scenario …]``: run benchmark scenarios, print a table, save JSON."""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from bench.common import environment

SCENARIOS = ["model_call", "model_server", "enrichment", "control_plane", "scale", "training", "data", "console", "inference"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"any of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "latest.json")
    args = parser.parse_args(argv)
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    args.scenarios = args.scenarios or SCENARIOS
    env = environment()
    print("environment: " + ", ".join(f"{k}={v}" for k, v in env.items()), flush=True)
    results = []
    for name in args.scenarios:
        t0 = time.monotonic()
        print(f"\n== {name}", flush=True)
        module = importlib.import_module(f"bench.{name}")
        for r in module.run():
            results.append(r)
            value = f"{r.value:12.3g}" if r.unit in ("x", "×") else f"{r.value:12.1f}"  # ratios: 3 significant digits
            print(f"  {r.metric:60} {value} {r.unit:6} {r.note}", flush=True)
        print(f"  ({time.monotonic() - t0:.0f}s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": env, "results": [r.as_dict() for r in results]}, indent=2))
    print(f"\nresults written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
