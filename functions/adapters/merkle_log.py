"""The global append-only log the Merkle checkpoints cover.

`experimentLedger/_log` holds the tree size and the compact-range frontier (both re-checked
against the latest signed checkpoint before use); leaves (entry hashes, in the order the
checkpointer appended them) live at `experimentLedger/_log/leaves/{index:012d}`, signed
checkpoints at `experimentLedger/_log/checkpoints/{treeSize:012d}`, refused checkpoints at
`experimentLedger/_log/alerts/{id}`. The checkpoint service decides; this module stores.
"""

from __future__ import annotations

import logging
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from functions.adapters import ledger_keys, outbox
from functions.adapters.firestore import EXPERIMENT_LEDGER, db
from functions.core.ledger.merkle import leaf_hash

log = logging.getLogger(__name__)

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


def checkpoint(size: int) -> dict[str, Any] | None:
    snap = checkpoint_ref(size).get()
    return (snap.to_dict() or {}) if snap.exists else None


def find_leaf(chain_id: str, seq: int) -> dict[str, Any] | None:
    """The leaf of one chain entry, if the checkpointer has appended it."""
    query = log_ref().collection(LEAVES).where(filter=FieldFilter("chainId", "==", chain_id)) \
        .where(filter=FieldFilter("seq", "==", seq)).limit(1)
    return next((s.to_dict() or {} for s in query.stream()), None)


def repeat_alert(digest: str, now: Any) -> bool:
    """Move `lastSeenAt` of a known alert; False when there is no such alert yet."""
    ref = log_ref().collection(ALERTS).document(digest)
    seen = ref.get()
    if not seen.exists:
        return False
    ref.update({"lastSeenAt": now, "count": int(seen.get("count") or 0) + 1})
    return True


def store_alert(digest: str, alert: dict[str, Any], message: dict[str, Any]) -> None:
    """The alert document and its `ledger-alerts` message in one commit, then published."""
    batch = db().batch()
    batch.create(log_ref().collection(ALERTS).document(digest), alert)
    outbox.enqueue(batch, log_ref(), "ledger_alerts", message, key=f"ledger-alert:{digest}")
    try:
        batch.commit()
        outbox.flush(log_ref())
    except gexc.AlreadyExists:
        pass
    except Exception:  # the sweep's outbox safety net publishes it later
        log.exception("ledger alert not published yet")


BATCH = 400


def store_checkpoint(state: firestore.DocumentSnapshot, leaves: list[dict[str, Any]], new_state: dict[str, Any],
                     stored: dict[str, Any], message: dict[str, Any]) -> bool:
    """Append `leaves` (long runs first, the last run in the checkpoint's commit), then the log
    state, the checkpoint and its `ledger-checkpoints` message in one commit. False when a
    concurrent checkpointer won (the log document's update-time precondition)."""
    writes = [(leaf_ref(int(doc["index"])), doc) for doc in leaves]
    chunks = [writes[i:i + BATCH] for i in range(0, len(writes), BATCH)] or [[]]
    for chunk in chunks[:-1]:
        batch = db().batch()
        for ref, doc in chunk:
            batch.set(ref, doc)
        batch.commit()
    batch = db().batch()
    for ref, doc in chunks[-1]:
        batch.set(ref, doc)
    if state.exists:
        batch.update(log_ref(), new_state, option=db().write_option(last_update_time=state.update_time))
    else:
        batch.create(log_ref(), new_state)
    batch.create(checkpoint_ref(int(stored["treeSize"])), stored)
    outbox.enqueue(batch, log_ref(), "ledger_checkpoints", message, key=f"checkpoint:{stored['treeSize']}")
    try:
        batch.commit()
    except (gexc.FailedPrecondition, gexc.AlreadyExists, gexc.NotFound):
        log.info("concurrent checkpoint won; nothing changed")
        return False
    return True
