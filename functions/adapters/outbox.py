"""Transactional outbox: a message is stored in the same commit as the state change it
announces, then published after the commit.

Without it a crash between "commit" and "publish" would lose a kill-switch message, or a
failed commit would announce a change that never happened. Messages carry a stable
`messageKey` attribute so subscribers can drop the rare duplicate (publish succeeded, marking
it sent did not).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from functions.adapters import pubsub
from functions.adapters.firestore import OUTBOX, db
from functions.core.clock import utc_now
from functions.core.ids import short_digest

log = logging.getLogger(__name__)


def message_id(key: str) -> str:
    return short_digest(key, 40)


def message(topic_key: str, payload: dict[str, Any], key: str) -> tuple[str, dict[str, Any]]:
    """(message id, outbox document) of one message; `key` makes it unique per change."""
    mid = message_id(key)
    return mid, {
        "topic": topic_key,
        "payload": json.dumps(payload, sort_keys=True, allow_nan=False),
        "messageKey": mid,
        "createdAt": utc_now(),
        "sent": False,
    }


def enqueue(
    txn: firestore.Transaction | firestore.WriteBatch,
    parent: firestore.DocumentReference,
    topic_key: str,
    payload: dict[str, Any],
    key: str,
) -> str:
    """Stage a message in the caller's transaction/batch; `key` makes it unique per change."""
    mid, doc = message(topic_key, payload, key)
    txn.set(parent.collection(OUTBOX).document(mid), doc)
    return mid


def _publish_one(snapshot: firestore.DocumentSnapshot) -> bool:
    doc = snapshot.to_dict() or {}
    if doc.get("sent"):
        return False
    pubsub.publish(doc["topic"], json.loads(doc["payload"]), messageKey=doc["messageKey"])
    snapshot.reference.update({"sent": True, "sentAt": utc_now()})
    return True


def flush(parent: firestore.DocumentReference) -> int:
    """Publish the unsent messages of one parent document, oldest first."""
    pending = parent.collection(OUTBOX).where(filter=FieldFilter("sent", "==", False)).stream()
    return sum(_publish_one(s) for s in sorted(pending, key=lambda s: s.get("createdAt")))


def flush_all(limit: int = 500) -> int:
    """Publish every unsent message anywhere (the sweep's safety net after crashes)."""
    query = db().collection_group(OUTBOX).where(filter=FieldFilter("sent", "==", False)).limit(limit)
    sent = 0
    for snapshot in query.stream():
        try:
            sent += _publish_one(snapshot)
        except Exception:  # keep flushing the others; the next sweep retries this one
            log.exception("outbox publish failed", extra={"json_fields": {"outbox": snapshot.id}})
    return sent
