"""Verify proofs and exports with nothing but the public key (what an auditor runs).

    python -m functions.core.ledger verify-inclusion --proof proof.json --public-key key.pem
    python -m functions.core.ledger verify-consistency --proof proof.json --public-key key.pem
    python -m functions.core.ledger verify-export --export ledger.jsonl
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from functions.core.ledger import merkle, signing
from functions.core.ledger.verify import verify_chain, verify_segment


def verify_inclusion_proof(proof: Mapping[str, Any], public_key_pem: str) -> tuple[bool, str]:
    cp = proof["checkpoint"]
    if not signing.verify(cp, proof["signature"], public_key_pem):
        return False, "BAD_SIGNATURE: the checkpoint was not signed by this key"
    ok = merkle.verify_inclusion(merkle.leaf_hash(bytes.fromhex(proof["entryHash"])), int(proof["index"]),
                                 int(cp["treeSize"]), [bytes.fromhex(h) for h in proof["path"]],
                                 bytes.fromhex(cp["rootHash"]))
    return ok, "entry is included in the signed checkpoint" if ok else "INCLUSION_FAILED"


def verify_consistency_proof(proof: Mapping[str, Any], public_key_pem: str) -> tuple[bool, str]:
    first, second = proof["first"], proof["second"]
    if not (signing.verify(first, proof["firstSignature"], public_key_pem)
            and signing.verify(second, proof["secondSignature"], public_key_pem)):
        return False, "BAD_SIGNATURE"
    ok = merkle.verify_consistency(int(first["treeSize"]), int(second["treeSize"]), bytes.fromhex(first["rootHash"]),
                                   bytes.fromhex(second["rootHash"]), [bytes.fromhex(h) for h in proof["path"]])
    return ok, "second checkpoint extends the first" if ok else "CONSISTENCY_FAILED"


def verify_export(lines: Iterable[str]) -> dict[str, Any]:
    """A JSON Lines export: a header line, then one stored entry per line, grouped by chain."""
    chains: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        record = json.loads(line)
        if "canonical" in record:
            chains.setdefault(record["chainId"], []).append(record)
    verdicts = []
    for cid, docs in chains.items():
        ordered = sorted(docs, key=lambda d: d["seq"])
        # a time-range export starts mid-chain: check every link inside the range
        verdict = verify_chain(cid, ordered) if ordered[0]["seq"] == 0 else verify_segment(cid, ordered)
        verdicts.append({**verdict.to_dict(), "fromSeq": ordered[0]["seq"]})
    return {"ok": all(v["ok"] for v in verdicts), "chains": verdicts}
