"""CLI: `python -m functions.core.ledger verify-inclusion|verify-consistency|verify-export ...`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from functions.core.ledger.offline import verify_consistency_proof, verify_export, verify_inclusion_proof


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m functions.core.ledger")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("verify-inclusion", "verify-consistency"):
        p = sub.add_parser(name)
        p.add_argument("--proof", required=True, type=Path)
        p.add_argument("--public-key", required=True, type=Path)
    p = sub.add_parser("verify-export")
    p.add_argument("--export", required=True, type=Path)
    args = parser.parse_args(argv)
    if args.command == "verify-export":
        result = verify_export(args.export.read_text().splitlines())
        print(json.dumps(result, indent=1))
        return 0 if result["ok"] else 1
    proof = json.loads(args.proof.read_text())
    key = args.public_key.read_text()
    check = verify_inclusion_proof if args.command == "verify-inclusion" else verify_consistency_proof
    ok, message = check(proof, key)
    print(("OK: " if ok else "FAILED: ") + message)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
