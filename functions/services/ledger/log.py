"""The global append-only log the Merkle checkpoints cover.

`experimentLedger/_log` holds the tree size and the compact-range frontier (both re-checked
against the latest signed checkpoint before use); leaves (entry hashes, in the order the
checkpointer appended them) live at `experimentLedger/_log/leaves/{index:012d}`, signed
checkpoints at `experimentLedger/_log/checkpoints/{treeSize:012d}`, refused checkpoints at
`experimentLedger/_log/alerts/{id}`.
"""

from __future__ import annotations

from typing import Any

from google.cloud import firestore

from functions.adapters import ledger_keys
from functions.adapters.firestore import EXPERIMENT_LEDGER, db
from functions.core.ledger.merkle import leaf_hash

LOG_ID = "_log"
LEAVES = "leaves"
CHECKPOINTS = "checkpoints"
ALERTS = "alerts"


def log_ref() -> firestore.DocumentReference:
    return db().collection(EXPERIMENT_LEDGER).document(LOG_ID)


def leaf_ref(index: int) -> firestore.DocumentReference:
    return log_ref().collection(LEAVES).document(f"{index:012d}")


def checkpoint_ref(size: int) -> firestore.DocumentReference:
    return log_ref().collection(CHECKPOINTS).document(f"{size:012d}")


def leaf_of(entry_hash: str) -> bytes:
    return leaf_hash(bytes.fromhex(entry_hash))


def leaves(limit: int | None = None) -> list[dict[str, Any]]:
    query = log_ref().collection(LEAVES).order_by("__name__")
    if limit is not None:
        query = query.limit(limit)
    return [s.to_dict() or {} for s in query.stream()]


def all_leaf_hashes(limit: int | None = None) -> list[bytes]:
    return [leaf_of(str(leaf.get("hash"))) for leaf in leaves(limit)]


def leaf_exists(index: int) -> bool:
    return leaf_ref(index).get().exists


def chain_ids() -> list[str]:
    return sorted(s.id for s in db().collection(EXPERIMENT_LEDGER).stream() if s.id != LOG_ID)


def signing_key():
    return ledger_keys.signing_key()


def keyring() -> dict[str, Any]:
    return ledger_keys.keyring()


def log_state() -> tuple[firestore.DocumentSnapshot, dict[str, Any]]:
    snap = log_ref().get()
    return snap, (snap.to_dict() or {}) if snap.exists else {}


def recent_checkpoints(n: int = 2) -> list[dict[str, Any]]:
    """The newest `n` stored checkpoints, oldest first, each with its document id as `_docId`.
    Found by listing, not through the log document, so deleting the newest one cannot be hidden
    by rewinding a pointer."""
    query = log_ref().collection(CHECKPOINTS).order_by("treeSize", direction=firestore.Query.DESCENDING).limit(n)
    return [{**(s.to_dict() or {}), "_docId": s.id} for s in query.stream()][::-1]


def latest_checkpoint() -> dict[str, Any] | None:
    recent = recent_checkpoints(1)
    if not recent:
        return None
    return {k: v for k, v in recent[-1].items() if k != "_docId"}


def checkpoints() -> list[dict[str, Any]]:
    return [s.to_dict() or {} for s in log_ref().collection(CHECKPOINTS).order_by("__name__").stream()]


def alerts(limit: int = 20) -> list[dict[str, Any]]:
    query = log_ref().collection(ALERTS).order_by("lastSeenAt", direction=firestore.Query.DESCENDING).limit(limit)
    return [s.to_dict() or {} for s in query.stream()]
