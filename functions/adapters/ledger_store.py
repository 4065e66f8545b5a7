"""Appending ledger entries inside the caller's transaction.

Layout: `experimentLedger/{chainId}` holds the chain head (seq, hash); entries live one per
document at `experimentLedger/{chainId}/entries/{seq:012d}`. The head is the only document
every append touches, and only appends to the same chain (one experiment) share it, so
contention stays per experiment. Firestore transactions read before they write: call
`read_head` in the read phase, `append` in the write phase. Each entry document carries the
ledger key's signature over its hash, so an entry written around the service is recognisable
(see `functions.core.ledger.verify`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from functions.adapters import ledger_keys
from functions.adapters.firestore import EXPERIMENT_LEDGER, db
from functions.core.clock import now_text, utc_now
from functions.core.ledger import signing
from functions.core.ledger.entry import GENESIS_HASH, SealedEntry, seal_entry

ENTRIES = "entries"


def experiment_chain(experiment_id: str) -> str:
    return f"exp-{experiment_id}"


def cohort_chain(cohort_id: str) -> str:
    return f"cohort-{cohort_id}"


def chain_ref(chain_id: str) -> firestore.DocumentReference:
    return db().collection(EXPERIMENT_LEDGER).document(chain_id)


def entry_id(seq: int) -> str:
    return f"{seq:012d}"


@dataclass
class Head:
    chain_id: str
    next_seq: int
    prev_hash: str
    exists: bool


def head_of(chain_id: str, doc: dict[str, Any] | None) -> Head:
    """The head of a chain from its head document (None: an empty chain)."""
    if doc is None:
        return Head(chain_id=chain_id, next_seq=0, prev_hash=GENESIS_HASH, exists=False)
    return Head(chain_id=chain_id, next_seq=int(doc["headSeq"]) + 1, prev_hash=str(doc["headHash"]), exists=True)


def read_head(txn: firestore.Transaction | None, chain_id: str) -> Head:
    snap = chain_ref(chain_id).get(transaction=txn)
    return head_of(chain_id, (snap.to_dict() or {}) if snap.exists else None)


def seal(
    head: Head,
    *,
    actor: dict[str, str],
    action: str,
    subject: dict[str, Any],
    payload: dict[str, Any],
    timestamp: str | None = None,
) -> tuple[SealedEntry, dict[str, Any], dict[str, Any]]:
    """The next entry of `head`'s chain: (sealed entry, signed entry document, new head document)."""
    sealed = seal_entry(
        chain_id=head.chain_id,
        seq=head.next_seq,
        prev_hash=head.prev_hash,
        timestamp=timestamp or now_text(),
        actor=actor,
        action=action,
        subject=subject,
        payload=payload,
    )
    entry = {**sealed.to_document(), **signing.sign_entry(sealed.hash, ledger_keys.signing_key())}
    head_doc = {"chainId": head.chain_id, "headSeq": sealed.seq, "headHash": sealed.hash,
                "updatedAt": utc_now()}
    return sealed, entry, head_doc


def advance(head: Head, sealed: SealedEntry) -> None:
    """Move `head` past `sealed`, so several appends can share a commit."""
    head.next_seq, head.prev_hash, head.exists = sealed.seq + 1, sealed.hash, True


def append(
    txn: firestore.Transaction | firestore.WriteBatch,
    head: Head,
    *,
    actor: dict[str, str],
    action: str,
    subject: dict[str, Any],
    payload: dict[str, Any],
    timestamp: str | None = None,
) -> SealedEntry:
    """Stage one entry and the head move; `head` advances so several appends can share a commit."""
    sealed, entry, head_doc = seal(head, actor=actor, action=action, subject=subject, payload=payload,
                                   timestamp=timestamp)
    ref = chain_ref(head.chain_id)
    # create() makes a lost race fail loudly instead of overwriting an entry.
    txn.create(ref.collection(ENTRIES).document(entry_id(sealed.seq)), entry)
    txn.set(ref, head_doc)
    advance(head, sealed)
    return sealed


def entries(chain_id: str, after: int = -1) -> list[dict[str, Any]]:
    """The stored entries of a chain with seq > `after`, in document-id (= seq) order."""
    collection = chain_ref(chain_id).collection(ENTRIES)
    query = collection.order_by("__name__")
    if after >= 0:
        query = query.where(filter=FieldFilter("__name__", ">", collection.document(entry_id(after))))
    return [s.to_dict() or {} for s in query.stream()]
