"""An outside witness's check over the checkpoints it collected from the `ledger-checkpoints`
topic: every signature against a pinned keyring, then any fork (two signed checkpoints with the
same size or number and different trees, or a link to a predecessor the witness holds with
another root), rollback (a later checkpoint with a smaller tree) or consistency proof that does
not prove the new tree extends the previous one. The database cannot rewrite what the witness
holds, so a history rewritten and re-signed in the database still differs from it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import Any

from functions.core.ledger import anchor, merkle
from functions.core.ledger.signing import Keyring

FORK = "FORK"
ROLLBACK = "ROLLBACK"
INCONSISTENT = "INCONSISTENT_PROOF"


def _hex(value: Any) -> bytes:
    return bytes.fromhex(str(value))


def _proof_ok(cp: Mapping[str, Any]) -> bool:
    proof = cp.get("consistency")
    if not isinstance(proof, Mapping):
        return False
    try:
        first, second = int(cp["previousSize"]), int(cp["treeSize"])
        if proof.get("fromSize") != first or proof.get("fromRoot") != cp.get("previousRoot"):
            return False
        path = [_hex(h) for h in proof.get("path", [])]
        if first == 0:
            return not path and cp.get("previousRoot") == anchor.EMPTY_ROOT
        return merkle.verify_consistency(first, second, _hex(cp["previousRoot"]), _hex(cp["rootHash"]), path)
    except (KeyError, TypeError, ValueError):
        return False


def verify_witness(items: Sequence[tuple[str, Mapping[str, Any]]], keyring: Keyring) -> dict[str, Any]:
    """`items`: (name, published checkpoint message) pairs, in any order."""
    problems: list[dict[str, Any]] = []
    valid: list[tuple[str, Mapping[str, Any]]] = []
    for name, cp in items:
        found = anchor.checkpoint_problems(cp, keyring)
        if found:
            problems += [{**p, "file": name} for p in found]
        elif not _proof_ok(cp):
            problems.append({**anchor.problem(INCONSISTENT, "the published consistency proof does not show this tree "
                                              "extends the previous one", cp), "file": name})
        else:
            valid.append((name, cp))
    by_size: dict[int, tuple[str, Mapping[str, Any]]] = {}
    by_number: dict[int, tuple[str, Mapping[str, Any]]] = {}
    for name, cp in valid:
        for index, key in ((by_size, int(cp["treeSize"])), (by_number, int(cp["number"]))):
            seen = index.get(key)
            if seen and (seen[1]["treeSize"], seen[1]["rootHash"]) != (cp["treeSize"], cp["rootHash"]):
                problems.append({**anchor.problem(FORK, f"{seen[0]} and {name} are signed checkpoints of different "
                                                  f"trees with the same {'size' if index is by_size else 'number'}",
                                                  cp), "file": name})
            index.setdefault(key, (name, cp))
    ordered = sorted(valid, key=lambda item: (int(item[1]["number"]), str(item[1]["at"])))
    for (name_a, a), (name_b, b) in pairwise(ordered):
        if int(b["treeSize"]) < int(a["treeSize"]) or (int(b["number"]) > int(a["number"])
                                                       and int(b["treeSize"]) == int(a["treeSize"])):
            problems.append({**anchor.problem(ROLLBACK, f"{name_b} (number {b['number']}) has a smaller tree than "
                                              f"{name_a} (number {a['number']})", b), "file": name_b})
    for name, cp in valid:
        before = by_size.get(int(cp["previousSize"]))
        if before and before[1]["rootHash"] != cp["previousRoot"]:
            problems.append({**anchor.problem(FORK, f"{name} extends a tree of size {cp['previousSize']} whose "
                                              f"root differs from {before[0]}", cp), "file": name})
    numbers = sorted(by_number)
    gaps = [n for n in range(numbers[0], numbers[-1] + 1) if n not in by_number] if numbers else []
    return {"ok": not problems and bool(valid), "checkpoints": len(items), "verified": len(valid),
            "latest": {k: ordered[-1][1].get(k) for k in ("number", "treeSize", "rootHash", "at")} if ordered else None,
            "missingNumbers": gaps, "problems": problems}
