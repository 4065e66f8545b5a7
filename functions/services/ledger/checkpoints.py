"""Signed Merkle checkpoints over every chain's entries, taken by the sweep and on demand.

New entries of all chains are appended to the global log in a deterministic order (timestamp,
chain, seq); the root comes from the stored frontier (O(new + log n)), the checkpoint is signed
with Ed25519, stored, and published to the `ledger-checkpoints` topic through the outbox so a
copy lives outside the database. A concurrent second checkpointer loses on the log document's
update-time precondition and changes nothing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud.firestore_v1.base_query import FieldFilter

from functions.adapters import ledger_store, outbox
from functions.adapters.firestore import db
from functions.core.ledger import merkle, signing
from functions.services.ledger import log as ledger_log

log = logging.getLogger(__name__)
BATCH = 400


def _entries_after(chain_id: str, done: int) -> list[dict[str, Any]]:
    entries = ledger_store.chain_ref(chain_id).collection(ledger_store.ENTRIES)
    query = entries.order_by("__name__")
    if done >= 0:
        query = query.where(filter=FieldFilter("__name__", ">", entries.document(ledger_store.entry_id(done))))
    return [s.to_dict() or {} for s in query.stream()]


def _new_entries(covered: dict[str, int]) -> tuple[list[dict[str, Any]], dict[str, list[Any]]]:
    fresh: list[dict[str, Any]] = []
    heads: dict[str, list[Any]] = {}
    for chain_id in ledger_log.chain_ids():
        head = ledger_store.read_head(None, chain_id)
        if head.next_seq == 0:
            continue
        heads[chain_id] = [head.next_seq - 1, head.prev_hash]
        if head.next_seq - 1 > covered.get(chain_id, -1):
            fresh.extend(_entries_after(chain_id, covered.get(chain_id, -1)))
    fresh.sort(key=lambda e: (e.get("timestamp", ""), e.get("chainId", ""), e.get("seq", 0)))
    return fresh, heads


def create_checkpoint(now: datetime | None = None, actor: dict[str, str] | None = None) -> dict[str, Any] | None:
    """Returns the new checkpoint, or None when nothing new was appended (or another won)."""
    now = now or datetime.now(UTC)
    snap = ledger_log.log_ref().get()
    state = snap.to_dict() if snap.exists else {}
    size = int(state.get("size", 0))
    frontier = [(int(f["size"]), bytes.fromhex(f["hash"])) for f in state.get("frontier", [])]
    covered = dict(state.get("covered", {}))
    fresh, heads = _new_entries(covered)
    if not fresh:
        return None
    leaves = [ledger_log.leaf_of(e["hash"]) for e in fresh]
    frontier = merkle.frontier_append(frontier, leaves)
    new_size = size + len(fresh)
    for start in range(0, len(fresh), BATCH):
        batch = db().batch()
        for offset, entry in enumerate(fresh[start:start + BATCH], start):
            batch.set(ledger_log.leaf_ref(size + offset), {"index": size + offset, "hash": entry["hash"],
                                                           "chainId": entry["chainId"], "seq": entry["seq"]})
        batch.commit()
    key = ledger_log.signing_key()
    checkpoint = {"treeSize": new_size, "rootHash": merkle.frontier_root(frontier).hex(),
                  "at": now.isoformat().replace("+00:00", "Z"), "previousSize": size, "keyId": signing.key_id(key)}
    signature = signing.sign(checkpoint, key)
    for entry in fresh:
        covered[entry["chainId"]] = max(covered.get(entry["chainId"], -1), int(entry["seq"]))
    stored = {**checkpoint, "signature": signature, "chainHeads": heads, "createdBy": actor or {"uid": "system"}}
    batch = db().batch()
    new_state = {"size": new_size, "frontier": [{"size": s, "hash": h.hex()} for s, h in frontier], "covered": covered,
                 "updatedAt": now}
    if snap.exists:
        batch.update(ledger_log.log_ref(), new_state, option=db().write_option(last_update_time=snap.update_time))
    else:
        batch.create(ledger_log.log_ref(), new_state)
    batch.create(ledger_log.checkpoint_ref(new_size), stored)
    outbox.enqueue(batch, ledger_log.log_ref(), "ledger_checkpoints",
                   {**checkpoint, "signature": signature, "publicKey": signing.public_pem(key)},
                   key=f"checkpoint:{new_size}")
    try:
        batch.commit()
    except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.NotFound):
        log.info("concurrent checkpoint won; nothing changed")
        return None
    return stored


def checkpoint_if_due(now: datetime | None = None) -> dict[str, Any] | None:
    """The sweep's step: checkpoint whenever any chain has entries the last checkpoint lacks."""
    made = create_checkpoint(now)
    return {"treeSize": made["treeSize"], "rootHash": made["rootHash"]} if made else None
