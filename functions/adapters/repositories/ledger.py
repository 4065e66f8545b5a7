"""The experiment ledger inside a unit of work: read a chain's head, append entries after it.

Layout and signing are `functions.adapters.ledger_store`'s; this repository stages the same
documents through the unit of work's session (read the head in the read phase, append in the
write phase; the head advances, so several appends share one commit)."""

from __future__ import annotations

from typing import Any

from functions.adapters import ledger_store
from functions.adapters.firestore import EXPERIMENT_LEDGER
from functions.adapters.ledger_store import Head, cohort_chain, experiment_chain
from functions.adapters.repositories.session import Session
from functions.core.ledger.entry import SealedEntry

__all__ = ["Head", "LedgerRepository", "cohort_chain", "experiment_chain"]


class LedgerRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def head(self, chain_id: str) -> Head:
        return ledger_store.head_of(chain_id, self._session.get((EXPERIMENT_LEDGER, chain_id)))

    def experiment_head(self, experiment_id: str) -> Head:
        return self.head(experiment_chain(experiment_id))

    def cohort_head(self, cohort_id: str) -> Head:
        return self.head(cohort_chain(cohort_id))

    def append(self, head: Head, *, actor: dict[str, str], action: str, subject: dict[str, Any],
               payload: dict[str, Any], timestamp: str | None = None) -> SealedEntry:
        sealed, entry, head_doc = ledger_store.seal(head, actor=actor, action=action, subject=subject,
                                                    payload=payload, timestamp=timestamp)
        # create(): a lost race fails loudly instead of overwriting an entry.
        chain = (EXPERIMENT_LEDGER, head.chain_id)
        self._session.create((*chain, ledger_store.ENTRIES, ledger_store.entry_id(sealed.seq)), entry)
        self._session.set(chain, head_doc)
        ledger_store.advance(head, sealed)
        return sealed
