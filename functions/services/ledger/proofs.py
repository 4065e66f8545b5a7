"""Inclusion and consistency proofs in the documented, offline-verifiable JSON format. An
inclusion proof carries the entry as stored, so the verifier recomputes its hash from the
canonical body and compares it with the leaf the proof is about."""

from __future__ import annotations

from typing import Any

from functions.adapters import ledger_store
from functions.adapters import merkle_log as ledger_log
from functions.core.errors import ErrorCode, NotFound, Unprocessable
from functions.core.ledger import merkle, signing


def _checkpoint(size: int | None) -> dict[str, Any]:
    cp = ledger_log.latest_checkpoint() if size is None else ledger_log.checkpoint(size)
    if not cp:
        raise NotFound("no such checkpoint; create one first (POST /ledger/checkpoints)", code=ErrorCode.NO_CHECKPOINT)
    return cp


def _signed(cp: dict[str, Any]) -> dict[str, Any]:
    return {k: cp.get(k) for k in signing.SIGNED_FIELDS}


def inclusion(chain_id: str, seq: int, tree_size: int | None = None) -> dict[str, Any]:
    cp = _checkpoint(tree_size)
    leaf = ledger_log.find_leaf(chain_id, seq)
    if not leaf or leaf["index"] >= cp["treeSize"]:
        raise NotFound("entry is not covered by that checkpoint yet", code=ErrorCode.NOT_CHECKPOINTED)
    leaves = ledger_log.all_leaf_hashes(cp["treeSize"])
    index = leaf["index"]
    stored = ledger_store.entries(chain_id, after=seq - 1)[:1]
    entry = {k: stored[0].get(k) for k in ("chainId", "seq", "hash", "canonical")} if stored else None
    return {"format": "offers-ledger-inclusion/2", "checkpoint": _signed(cp), "signature": cp["signature"],
            "entryHash": leaf["hash"], "index": index, "entry": entry,
            "path": [h.hex() for h in merkle.inclusion_proof(index, leaves)]}


def consistency(first: int, second: int) -> dict[str, Any]:
    if not 0 < first <= second:
        raise Unprocessable("need 0 < first <= second", code=ErrorCode.BAD_RANGE)
    a, b = _checkpoint(first), _checkpoint(second)
    leaves = ledger_log.all_leaf_hashes(second)
    return {"format": "offers-ledger-consistency/1", "first": _signed(a), "firstSignature": a["signature"],
            "second": _signed(b), "secondSignature": b["signature"],
            "path": [h.hex() for h in merkle.consistency_proof(first, leaves)]}
