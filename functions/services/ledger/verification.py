"""Verifying chains against the last signed checkpoint, and the whole ledger: every chain, every
checkpoint (signature, heads digest, link to its predecessor, root against the leaf log) and every
leaf against the entry it stands for.

Every verifier starts from `anchor_state`: the newest stored checkpoint, found by listing (a
deleted newest checkpoint leaves the log state or the leaf log past it), with its signature
checked against the configured keyring. When the anchor itself is damaged its chain heads are not
used: each entry must then prove itself with the ledger key's signature, so a re-chain hidden by
editing or deleting the checkpoint is still reported at its first rewritten entry.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from functions.adapters import ledger_store
from functions.adapters import merkle_log as ledger_log
from functions.core.ledger import anchor, merkle
from functions.core.ledger.verify import INSERTED_ENTRY, TRUNCATED_TAIL, ChainVerdict, verify_chain

RACY = frozenset({anchor.CHECKPOINT_MISSING, "LOG_STATE_TAMPERED"})


def anchor_state(keyring: Mapping[str, Any], state: Mapping[str, Any] | None = None, check_leaves: bool = True
                 ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(latest checkpoint, problems with it or with the log state that must extend it). The
    checkpoint and the log state are two reads: a checkpoint committed between them looks like a
    mismatch, so a mismatch is read again once before it is reported."""
    if state is not None:
        return _anchor_state(keyring, state, check_leaves)
    latest, problems = _anchor_state(keyring, ledger_log.log_state()[1], check_leaves)
    if any(p["damage"] in RACY for p in problems):
        latest, problems = _anchor_state(keyring, ledger_log.log_state()[1], check_leaves)
    return latest, problems


def _anchor_state(keyring: Mapping[str, Any], state: Mapping[str, Any], check_leaves: bool
                  ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    recent = ledger_log.recent_checkpoints(2)
    latest = recent[-1] if recent else None
    problems: list[dict[str, Any]] = []
    if latest is None:
        if state or (check_leaves and ledger_log.leaf_exists(0)):
            problems.append(anchor.problem(anchor.CHECKPOINT_MISSING, "the leaf log exists but no checkpoint does"))
        return None, problems
    doc_id = latest.pop("_docId")
    problems += anchor.checkpoint_problems(latest, keyring)
    if problems:  # nothing else it says can be trusted
        return latest, problems
    if doc_id != f"{int(latest.get('treeSize', -1)):012d}":
        problems.append(anchor.problem(anchor.BAD_SIGNATURE, f"stored as {doc_id}, not under its tree size", latest))
    problems += anchor.link_problems(recent[0] if len(recent) == 2 else None, latest)
    size = int(latest.get("treeSize", 0))
    frontier = [(int(f["size"]), bytes.fromhex(f["hash"])) for f in state.get("frontier", [])
                if isinstance(f, Mapping)] if state else []
    if int(state.get("size", -1)) > size or (check_leaves and ledger_log.leaf_exists(size)):
        problems.append(anchor.problem(anchor.CHECKPOINT_MISSING, "the leaf log goes past the newest checkpoint: "
                                       "a signed checkpoint was deleted (or one crashed mid-write)", latest))
    elif int(state.get("size", -1)) != size or not merkle.is_frontier_of(frontier, size) or \
            merkle.frontier_root(frontier).hex() != latest.get("rootHash"):
        problems.append(anchor.problem("LOG_STATE_TAMPERED", "the log state does not match the newest checkpoint",
                                       latest))
    return latest, problems


def verify_chain_id(chain_id: str, anchored: tuple[dict[str, Any] | None, list[dict[str, Any]]] | None = None,
                    keyring: Mapping[str, Any] | None = None,
                    docs: list[dict[str, Any]] | None = None) -> ChainVerdict:
    keyring = keyring if keyring is not None else ledger_log.keyring()
    anchored = anchored if anchored is not None else anchor_state(keyring)
    verdict = _verify_chain_id(chain_id, anchored, keyring, docs)
    if docs is None and verdict.damage in HEAD_RACY:  # an append between reading entries and the head
        verdict = _verify_chain_id(chain_id, anchored, keyring, None)
    return verdict


HEAD_RACY = frozenset({TRUNCATED_TAIL, INSERTED_ENTRY, "MODIFIED_ENTRY"})


def _verify_chain_id(chain_id: str, anchored: tuple[dict[str, Any] | None, list[dict[str, Any]]],
                     keyring: Mapping[str, Any], docs: list[dict[str, Any]] | None) -> ChainVerdict:
    latest, problems = anchored
    docs = docs if docs is not None else ledger_store.entries(chain_id)
    signed = None if problems else (latest or {}).get("chainHeads", {}).get(chain_id)
    verdict = verify_chain(chain_id, docs, (int(signed[0]), str(signed[1])) if signed else None, keyring)
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


def _combined(verdict: ChainVerdict, latest: dict[str, Any] | None, problems: list[dict[str, Any]]
              ) -> dict[str, Any]:
    out = {**verdict.to_dict(), "checkpoint": _cp_summary(latest), "checkpointProblems": problems}
    if verdict.ok and problems:
        out.update(ok=False, damage=problems[0]["damage"], detail=problems[0]["detail"])
    return out


def verify_experiment(experiment_id: str) -> dict[str, Any]:
    keyring = ledger_log.keyring()
    latest, problems = anchor_state(keyring)
    verdict = verify_chain_id(ledger_store.experiment_chain(experiment_id), (latest, problems), keyring)
    return _combined(verdict, latest, problems)


def _cp_summary(checkpoint: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not checkpoint:
        return None
    return {k: checkpoint.get(k) for k in ("number", "treeSize", "rootHash", "at", "keyId")}


def verify_checkpoints(keyring: Mapping[str, Any], leaves: list[bytes]) -> list[dict[str, Any]]:
    """Each checkpoint: signature and heads digest, the link to the one before, and its root
    equal to the root of that prefix of the leaf log."""
    problems: list[dict[str, Any]] = []
    previous = None
    for cp in ledger_log.checkpoints():
        found = anchor.checkpoint_problems(cp, keyring) or anchor.link_problems(previous, cp)
        size = int(cp.get("treeSize", 0))
        if not found and (size > len(leaves) or merkle.root_from_hashes(leaves[:size]).hex() != cp.get("rootHash")):
            found = [anchor.problem(anchor.ROOT_MISMATCH, "the leaf log no longer has this root", cp)]
        problems += found
        previous = cp
    return problems


def _leaf_problems(leaves: list[dict[str, Any]], latest: Mapping[str, Any] | None,
                   entries: Mapping[str, list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The leaf log against the signed heads (log-level problems) and against each entry (chain damage)."""
    signed_size = int((latest or {}).get("treeSize", 0))
    by_chain: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for leaf in leaves[:signed_size]:
        by_chain[str(leaf.get("chainId"))].append(leaf)
    log_problems, damaged = [], []
    derived = {}
    for chain_id, items in by_chain.items():
        seqs = sorted(int(x.get("seq", -1)) for x in items)
        if seqs != list(range(len(seqs))):
            log_problems.append(anchor.problem("LEAF_LOG_DAMAGED", f"{chain_id}: leaves are not seq 0..n", latest))
        last = max(items, key=lambda x: int(x.get("seq", -1)))
        derived[chain_id] = [int(last.get("seq", -1)), str(last.get("hash"))]
        stored = entries.get(chain_id, [])
        for leaf in sorted(items, key=lambda x: int(x.get("seq", -1))):
            seq = int(leaf.get("seq", -1))
            if not 0 <= seq < len(stored) or stored[seq].get("hash") != leaf.get("hash"):
                damaged.append({"ok": False, "chainId": chain_id, "length": len(stored), "firstBadIndex": seq,
                                "damage": "LEAF_MISMATCH", "detail": f"entry {seq} is not the entry the signed "
                                "leaf log holds", "headHash": None})
                break
    if latest is not None and derived != {c: list(h) for c, h in (latest.get("chainHeads") or {}).items()}:
        log_problems.append(anchor.problem("HEADS_MISMATCH", "the signed chain heads differ from the leaf log",
                                           latest))
    return log_problems, damaged


def verify_all() -> dict[str, Any]:
    keyring = ledger_log.keyring()
    latest, problems = anchor_state(keyring)
    leaves = ledger_log.leaves()
    # Chains the checkpoint signed count even if their head document is gone from the store.
    names = sorted(set(ledger_log.chain_ids()) | set((latest or {}).get("chainHeads", {})))
    entries = {c: ledger_store.entries(c) for c in names}
    chains = [verify_chain_id(c, (latest, problems), keyring, entries[c]) for c in names]
    bad = [c.to_dict() for c in chains if not c.ok]
    log_problems, leaf_damage = _leaf_problems(leaves, latest, entries)
    bad += [d for d in leaf_damage if d["chainId"] not in {b["chainId"] for b in bad}]
    checkpoint_problems = problems + [p for p in verify_checkpoints(
        keyring, [ledger_log.leaf_of(str(x.get("hash"))) for x in leaves]) if p not in problems] + log_problems
    return {"ok": not bad and not checkpoint_problems, "chains": len(chains), "entries": sum(c.length for c in chains),
            "damaged": bad, "checkpointProblems": checkpoint_problems, "checkpoint": _cp_summary(latest)}
