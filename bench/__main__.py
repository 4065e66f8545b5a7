"""`python -m bench NAME [args]` runs bench/NAME.py's main(argv)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path

HERE = Path(__file__).parent


def available() -> list[str]:
    skip = {"report", "peers", "harness", "simulation"}  # helpers, not benchmarks
    return sorted(
        m.name for m in pkgutil.iter_modules([str(HERE)])
        if not m.name.startswith("_") and m.name not in skip and not m.name.startswith("load_")  # load's helpers
    )


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help"}:
        print("usage: python -m bench NAME [args]\nbenchmarks: " + ", ".join(available()))
        return 0 if argv else 2
    name = argv[0]
    if name not in available():
        print(f"unknown benchmark {name!r}; available: {', '.join(available())}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"bench.{name}")
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
