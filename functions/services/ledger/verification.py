"""Verifying chains against their head documents and the last signed checkpoint, and the whole
ledger: every chain, every checkpoint signature, and every checkpoint root against the log."""

from __future__ import annotations

from typing import Any

from functions.adapters import ledger_store
from functions.core.ledger import merkle, signing
from functions.core.ledger.verify import BAD_SIGNATURE, INSERTED_ENTRY, TRUNCATED_TAIL, ChainVerdict, verify_chain
from functions.services.ledger import log as ledger_log


def verify_chain_id(chain_id: str, checkpoint: dict[str, Any] | None = None) -> ChainVerdict:
    checkpoint = checkpoint if checkpoint is not None else ledger_log.latest_checkpoint()
    docs = ledger_store.entries(chain_id)
    signed = (checkpoint or {}).get("chainHeads", {}).get(chain_id)
    verdict = verify_chain(chain_id, docs, tuple(signed) if signed else None)
    if not verdict.ok:
        return verdict
    head = ledger_store.read_head(None, chain_id)
    if head.exists and len(docs) < head.next_seq:
        return ChainVerdict(False, chain_id, len(docs), len(docs), TRUNCATED_TAIL,
                            f"head says {head.next_seq} entries, store has {len(docs)}")
    if head.exists and len(docs) > head.next_seq:
        return ChainVerdict(False, chain_id, len(docs), head.next_seq, INSERTED_ENTRY,
                            "entries beyond the chain head")
    if head.exists and docs and docs[-1]["hash"] != head.prev_hash:
        return ChainVerdict(False, chain_id, len(docs), len(docs) - 1, "MODIFIED_ENTRY",
                            "last entry differs from the chain head")
    return verdict


def verify_experiment(experiment_id: str) -> dict[str, Any]:
    checkpoint = ledger_log.latest_checkpoint()
    verdict = verify_chain_id(ledger_store.experiment_chain(experiment_id), checkpoint)
    return {**verdict.to_dict(), "checkpoint": _cp_summary(checkpoint)}


def _cp_summary(checkpoint: dict[str, Any] | None) -> dict[str, Any] | None:
    if not checkpoint:
        return None
    return {k: checkpoint.get(k) for k in ("treeSize", "rootHash", "at", "keyId")}


def verify_checkpoints() -> list[dict[str, Any]]:
    """Each checkpoint: signature valid, root equals the root of that prefix of the log (which
    makes every checkpoint a consistent extension of the one before)."""
    problems = []
    leaves = ledger_log.all_leaf_hashes()
    public = signing.public_pem(ledger_log.signing_key())
    previous = 0
    for cp in ledger_log.checkpoints():
        size = int(cp["treeSize"])
        if not signing.verify(cp, cp.get("signature", ""), public):
            problems.append({"treeSize": size, "damage": BAD_SIGNATURE})
        elif size > len(leaves) or merkle.root_from_hashes(leaves[:size]).hex() != cp["rootHash"]:
            problems.append({"treeSize": size, "damage": "ROOT_MISMATCH"})
        elif int(cp.get("previousSize", 0)) != previous:
            problems.append({"treeSize": size, "damage": "CHECKPOINT_GAP"})
        previous = size
    return problems


def verify_all() -> dict[str, Any]:
    checkpoint = ledger_log.latest_checkpoint()
    # Chains the checkpoint signed count even if their head document is gone from the store.
    names = sorted(set(ledger_log.chain_ids()) | set((checkpoint or {}).get("chainHeads", {})))
    chains = [verify_chain_id(c, checkpoint) for c in names]
    bad = [c.to_dict() for c in chains if not c.ok]
    checkpoint_problems = verify_checkpoints()
    return {"ok": not bad and not checkpoint_problems, "chains": len(chains), "entries": sum(c.length for c in chains),
            "damaged": bad, "checkpointProblems": checkpoint_problems, "checkpoint": _cp_summary(checkpoint)}
