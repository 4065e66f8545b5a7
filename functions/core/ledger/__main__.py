"""CLI: `python -m functions.core.ledger verify-inclusion|verify-consistency|verify-export|verify-witness`.

Exit 0: verified; 1: verification failed; 2: the input could not be verified at all (an error
response, garbage, a missing file), always with a message and never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Literal, overload

from functions.core.ledger import signing
from functions.core.ledger.offline import InputError, verify_consistency_proof, verify_export, verify_inclusion_proof
from functions.core.ledger.witness import verify_witness


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"{path} is not JSON: not a {what}") from None


@overload
def _keyring(args: argparse.Namespace, required: Literal[True]) -> signing.Keyring: ...
@overload
def _keyring(args: argparse.Namespace, required: bool) -> signing.Keyring | None: ...


def _keyring(args: argparse.Namespace, required: bool) -> signing.Keyring | None:
    """The keyring from --keyring or --public-key; None only when not `required` (else InputError)."""
    try:
        if args.keyring:
            text = args.keyring.read_text()
            try:
                document = json.loads(text)
            except ValueError:  # not JSON: PEM public keys
                return signing.keyring_of(signing.split_pems(text))
            return signing.keyring_from_document(document)
        if args.public_key:
            return signing.keyring_of(signing.split_pems(args.public_key.read_text()))
    except OSError as exc:
        raise InputError(f"cannot read the keyring: {exc.strerror}") from None
    except ValueError as exc:
        raise InputError(f"not a keyring: {exc}") from None
    if required:
        raise InputError("pass --keyring (GET /ledger/keys) or --public-key")
    return None


def _witness_items(directory: Path) -> list[tuple[str, Any]]:
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory of published checkpoints")
    items = []
    for path in sorted(directory.iterdir()):
        if path.suffix == ".json":
            items.append((path.name, _read_json(path, "published checkpoint")))
        elif path.suffix == ".jsonl":
            for n, line in enumerate(path.read_text().splitlines(), 1):
                if line.strip():
                    try:
                        items.append((f"{path.name}:{n}", json.loads(line)))
                    except ValueError:
                        raise InputError(f"{path.name}:{n} is not JSON") from None
    if not items:
        raise InputError(f"no published checkpoints (*.json, *.jsonl) in {directory}")
    bad = [name for name, item in items if not isinstance(item, dict) or "treeSize" not in item]
    if bad:
        raise InputError(f"not published checkpoints: {', '.join(bad[:5])}")
    return items


def _run(args: argparse.Namespace) -> int:
    if args.command == "verify-export":
        try:
            lines = args.export.read_text().splitlines()
        except OSError as exc:
            raise InputError(f"cannot read {args.export}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise InputError(f"{args.export} is not text: not a ledger export") from None
        result = verify_export(lines, _keyring(args, required=False))
        print(json.dumps(result, indent=1))
        return 0 if result["ok"] else 1
    if args.command == "verify-witness":
        result = verify_witness(_witness_items(args.dir), _keyring(args, required=True))
        print(json.dumps(result, indent=1))
        return 0 if result["ok"] else 1
    proof = _read_json(args.proof, "proof")
    keyring = _keyring(args, required=True)
    check = verify_inclusion_proof if args.command == "verify-inclusion" else verify_consistency_proof
    ok, message = check(proof, keyring)
    print(("OK: " if ok else "FAILED: ") + message)
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m functions.core.ledger")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("verify-inclusion", "verify-consistency", "verify-export", "verify-witness"):
        p = sub.add_parser(name)
        if name == "verify-export":
            p.add_argument("--export", required=True, type=Path)
        elif name == "verify-witness":
            p.add_argument("--dir", required=True, type=Path, help="directory of published checkpoints")
        else:
            p.add_argument("--proof", required=True, type=Path)
        p.add_argument("--keyring", type=Path, help="GET /ledger/keys saved as JSON, or PEM public keys")
        p.add_argument("--public-key", type=Path, help="one PEM public key")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except InputError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"ERROR: cannot verify this input ({type(exc).__name__}: {exc})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
