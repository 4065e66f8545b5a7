"""Outbox messages and idempotency keys inside a unit of work (see `functions.adapters.outbox`
and `functions.adapters.idempotency` for why they commit with the change they belong to)."""

from __future__ import annotations

from typing import Any

from functions.adapters import idempotency
from functions.adapters import outbox as outbox_adapter
from functions.adapters.firestore import OUTBOX, PROCESSED_EVENTS
from functions.adapters.repositories.session import DocPath, FirestoreSession, Session


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def add(self, parent: DocPath, topic_key: str, payload: dict[str, Any], key: str) -> str:
        """Stage a message under `parent` (the document whose change it announces)."""
        mid, doc = outbox_adapter.message(topic_key, payload, key)
        self._session.set((*parent, OUTBOX, mid), doc)
        return mid


def flush(parent: DocPath) -> int:
    """Publish the unsent messages under `parent`, after their commit (the write trigger's job)."""
    return outbox_adapter.flush(FirestoreSession.ref(parent))


class IdempotencyKeys:
    def __init__(self, session: Session) -> None:
        self._session = session

    def seen(self, parent: DocPath, event_id: str) -> bool:
        """Read phase: has the effect of `event_id` on `parent` committed already?"""
        return self._session.get((*parent, PROCESSED_EVENTS, idempotency.key_id(event_id))) is not None

    def mark(self, parent: DocPath, event_id: str) -> None:
        key = (*parent, PROCESSED_EVENTS, idempotency.key_id(event_id))
        self._session.create(key, idempotency.key_document(event_id))
