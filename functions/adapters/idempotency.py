"""Exactly-once effects under at-least-once delivery.

The key document is created in the same transaction as the effect, so a redelivered event
either finds the key (and does nothing) or the earlier attempt never committed at all.
"""

from __future__ import annotations

from typing import Any

from google.cloud import firestore

from functions.adapters.firestore import PROCESSED_EVENTS
from functions.core.clock import utc_now
from functions.core.ids import short_digest


def key_id(event_id: str) -> str:
    # Event ids come from outside: hash them so '/' or odd unicode cannot escape the path.
    return short_digest(event_id, 40)


def key_document(event_id: str) -> dict[str, Any]:
    return {"eventId": event_id, "at": utc_now()}


def key_ref(parent: firestore.DocumentReference, event_id: str) -> firestore.DocumentReference:
    return parent.collection(PROCESSED_EVENTS).document(key_id(event_id))


def already_processed(txn: firestore.Transaction, parent: firestore.DocumentReference, event_id: str) -> bool:
    """Read phase: must run before the transaction writes anything."""
    return key_ref(parent, event_id).get(transaction=txn).exists


def mark_processed(
    txn: firestore.Transaction | firestore.WriteBatch, parent: firestore.DocumentReference, event_id: str
) -> None:
    txn.create(key_ref(parent, event_id), key_document(event_id))
