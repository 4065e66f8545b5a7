"""Signed Merkle checkpoints built from the append-only leaf log, taken by the sweep and on demand.

Certificate-transparency practice: before a checkpoint is signed, the previous one is verified
(signature by a key of the keyring, heads digest, link to its own predecessor, the stored
frontier against its root), every chain must continue the head the previous checkpoint signed,
every new entry must carry the ledger key's signature, and the new tree is proven consistent with
the old one (RFC 6962 consistency proof from the stored compact range). Any failure refuses the
checkpoint: nothing is signed, an alert goes to the `ledger-alerts` topic through the outbox, and
`GET /ledger/health` says REFUSING until the ledger is repaired. New entries are appended to the
log in a deterministic order (timestamp, chain, seq); the checkpoint signs the tree, its link to
the previous checkpoint and a digest of every chain's head, and is published with its consistency
proof on the `ledger-checkpoints` topic so a witness outside the database keeps a copy. A
concurrent second checkpointer loses on the log document's update-time precondition.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from functions.adapters import ledger_store
from functions.adapters import merkle_log as ledger_log
from functions.core.clock import timestamp_text, utc_now
from functions.core.errors import Conflict, ErrorCode
from functions.core.ids import short_digest
from functions.core.ledger import anchor, merkle, signing
from functions.services.ledger.verification import RACY, anchor_state

log = logging.getLogger(__name__)


class CheckpointRefused(Conflict):
    """The ledger is not a consistent extension of the last signed checkpoint."""


def _raise_alert(problems: list[dict[str, Any]], latest: dict[str, Any] | None, now: datetime) -> None:
    """One alert document and one `ledger-alerts` message per distinct problem set; a repeat
    (every sweep until repaired) only moves `lastSeenAt`."""
    digest = short_digest(json.dumps(problems, sort_keys=True, default=str), 32)
    if ledger_log.repeat_alert(digest, now):
        return
    alert = {"kind": "CHECKPOINT_REFUSED", "problems": problems, "latestSignedSize": (latest or {}).get("treeSize"),
             "firstSeenAt": now, "lastSeenAt": now, "count": 1}
    ledger_log.store_alert(digest, alert,
                           {**alert, "firstSeenAt": timestamp_text(now), "lastSeenAt": timestamp_text(now)})


def _refuse(problems: list[dict[str, Any]], latest: dict[str, Any] | None, now: datetime) -> None:
    log.error("ledger checkpoint refused", extra={"json_fields": {"problems": problems}})
    _raise_alert(problems, latest, now)
    raise CheckpointRefused("the ledger does not extend the last signed checkpoint; nothing was signed",
                            code=ErrorCode.CHECKPOINT_REFUSED, details={"problems": problems})


def _fresh_entries(heads: dict[str, list[Any]], keyring: dict[str, Any]
                   ) -> tuple[list[Mapping[str, Any]], dict[str, list[Any]], list[dict[str, Any]]]:
    """Entries appended since the signed heads, the heads they lead to, and chains that do not
    continue their signed head."""
    fresh: list[Mapping[str, Any]] = []
    new_heads = {c: list(h) for c, h in heads.items()}
    bad: list[dict[str, Any]] = []
    for chain_id in sorted(set(ledger_log.chain_ids()) | set(heads)):
        signed = heads.get(chain_id)
        docs = ledger_store.entries(chain_id, after=int(signed[0]) - 1 if signed else -1)
        verdict, new = anchor.extension(chain_id, signed, docs, keyring)
        if not verdict.ok:
            bad.append({**verdict.to_dict(), "headHash": None})
        elif new:
            new_heads[chain_id] = [int(new[-1]["seq"]), str(new[-1]["hash"])]
            fresh.extend(new)
    fresh.sort(key=lambda e: (e.get("timestamp", ""), e.get("chainId", ""), e.get("seq", 0)))
    return fresh, new_heads, bad


def create_checkpoint(now: datetime | None = None, actor: dict[str, str] | None = None) -> dict[str, Any] | None:
    """The new checkpoint, or None when nothing new was appended (or another checkpointer won).
    Raises CheckpointRefused (after alerting) when the ledger does not extend the signed one."""
    now = now or utc_now()
    keyring, key = ledger_log.keyring(), ledger_log.signing_key()
    for attempt in range(2):  # a checkpoint another sweep commits between our reads is not damage
        snap, state = ledger_log.log_state()
        latest, problems = anchor_state(keyring, state, check_leaves=False)
        if attempt or not any(p["damage"] in RACY for p in problems):
            break
    if problems:
        _refuse(problems, latest, now)
    heads = dict((latest or {}).get("chainHeads") or {})
    fresh, new_heads, bad = _fresh_entries(heads, keyring)
    if bad:
        _refuse(bad, latest, now)
    if not fresh:
        return None
    size = int((latest or {}).get("treeSize", 0))
    old_root = (latest or {}).get("rootHash", anchor.EMPTY_ROOT)
    old_frontier = [(int(f["size"]), bytes.fromhex(f["hash"])) for f in state.get("frontier", [])] if latest else []
    leaves = [ledger_log.leaf_of(e["hash"]) for e in fresh]
    frontier = merkle.frontier_append(old_frontier, leaves)
    new_size, root = size + len(fresh), merkle.frontier_root(frontier)
    proof = merkle.consistency_proof_from_frontier(old_frontier, leaves) if size else []
    if size and not merkle.verify_consistency(size, new_size, bytes.fromhex(old_root), root, proof):
        _refuse([anchor.problem("INCONSISTENT_TREE", "the new tree does not extend the signed one", latest)],
                latest, now)
    checkpoint = {"format": signing.CHECKPOINT_FORMAT, "number": int((latest or {}).get("number", 0)) + 1,
                  "treeSize": new_size, "rootHash": root.hex(), "at": timestamp_text(now), "previousSize": size,
                  "previousRoot": old_root, "headsRoot": signing.heads_root(new_heads), "keyId": signing.key_id(key)}
    signature = signing.sign(checkpoint, key)
    leaf_docs = [{"index": size + i, "hash": e["hash"], "chainId": e["chainId"], "seq": e["seq"]}
                 for i, e in enumerate(fresh)]
    stored = {**checkpoint, "signature": signature, "chainHeads": new_heads, "createdBy": actor or {"uid": "system"}}
    new_state = {"size": new_size, "frontier": [{"size": s, "hash": h.hex()} for s, h in frontier], "updatedAt": now}
    message = {**checkpoint, "signature": signature, "publicKey": signing.public_pem(key),
               "consistency": {"fromSize": size, "fromRoot": old_root, "path": [h.hex() for h in proof]}}
    if not ledger_log.store_checkpoint(snap, leaf_docs, new_state, stored, message):
        return None
    return stored


def checkpoint_if_due(now: datetime | None = None) -> dict[str, Any] | None:
    """The sweep's step: checkpoint whenever any chain has entries the last checkpoint lacks. A
    refusal does not stop the sweep; it is alerted, shown in health and returned."""
    try:
        made = create_checkpoint(now)
    except CheckpointRefused as refused:
        return {"refused": True, "code": refused.code, "problems": refused.details["problems"]}
    return {"treeSize": made["treeSize"], "rootHash": made["rootHash"]} if made else None
