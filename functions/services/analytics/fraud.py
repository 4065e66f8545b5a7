"""Fraud flags per unit, applied retroactively: the next analysis excludes the unit, earlier
analyses stay as they were published (they are immutable)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime

from google.cloud import firestore

from functions.adapters.firestore import EXPERIMENT_ANALYSES, db
from functions.models.analytics import FraudSignal

FRAUD_DOC = "_fraud"
UNITS = "units"


def flag_ref(unit_id: str) -> firestore.DocumentReference:
    key = hashlib.sha256(unit_id.encode()).hexdigest()[:32]
    return db().collection(EXPERIMENT_ANALYSES).document(FRAUD_DOC).collection(UNITS).document(key)


def record(signals: Iterable[FraudSignal]) -> int:
    """Upsert flags; a redelivered signal lands on the same document (idempotent by unit and event)."""
    batch = db().batch()
    count = 0
    for signal in signals:
        batch.set(flag_ref(signal.unitId), {
            "unitId": signal.unitId, "reasons": firestore.ArrayUnion([signal.reason]),
            "eventIds": firestore.ArrayUnion([signal.eventId]), "source": signal.source,
            "flaggedAt": signal.flaggedAt or datetime.now(UTC)}, merge=True)
        count += 1
    batch.commit()
    return count


def flagged(unit_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(unit_ids), 300):
        for snap in db().get_all([flag_ref(u) for u in unit_ids[start:start + 300]]):
            if snap.exists:
                found.add(snap.get("unitId"))
    return found
