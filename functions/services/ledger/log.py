"""The global append-only log the Merkle checkpoints cover.

`experimentLedger/_log` holds the tree size, the compact-range frontier and each chain's
covered head; leaves (entry hashes, in the order the checkpointer appended them) live at
`experimentLedger/_log/leaves/{index:012d}`, signed checkpoints at
`experimentLedger/_log/checkpoints/{treeSize:012d}`.
"""

from __future__ import annotations

import threading
from typing import Any

from google.cloud import firestore

from functions.adapters.firestore import EXPERIMENT_LEDGER, db
from functions.config import settings
from functions.core.ledger import signing
from functions.core.ledger.merkle import leaf_hash

LOG_ID = "_log"
LEAVES = "leaves"
CHECKPOINTS = "checkpoints"
_key_lock = threading.Lock()
_key: dict[str, Any] = {}


def log_ref() -> firestore.DocumentReference:
    return db().collection(EXPERIMENT_LEDGER).document(LOG_ID)


def leaf_ref(index: int) -> firestore.DocumentReference:
    return log_ref().collection(LEAVES).document(f"{index:012d}")


def checkpoint_ref(size: int) -> firestore.DocumentReference:
    return log_ref().collection(CHECKPOINTS).document(f"{size:012d}")


def leaf_of(entry_hash: str) -> bytes:
    return leaf_hash(bytes.fromhex(entry_hash))


def all_leaf_hashes(limit: int | None = None) -> list[bytes]:
    query = log_ref().collection(LEAVES).order_by("__name__")
    if limit is not None:
        query = query.limit(limit)
    return [leaf_of(s.get("hash")) for s in query.stream()]


def chain_ids() -> list[str]:
    return sorted(s.id for s in db().collection(EXPERIMENT_LEDGER).stream() if s.id != LOG_ID)


def signing_key():
    with _key_lock:
        cache_key = (settings().ledger_signing_key, settings().ledger_key_file)
        if _key.get("for") != cache_key:
            _key["key"] = signing.load_private_key(*cache_key)
            _key["for"] = cache_key
        return _key["key"]


def latest_checkpoint() -> dict[str, Any] | None:
    """The log document names the current size; the checkpoint of that size is the latest."""
    state = log_ref().get()
    if not state.exists or not state.get("size"):
        return None
    snap = checkpoint_ref(int(state.get("size"))).get()
    return snap.to_dict() if snap.exists else None


def checkpoints() -> list[dict[str, Any]]:
    return [s.to_dict() or {} for s in log_ref().collection(CHECKPOINTS).order_by("__name__").stream()]
