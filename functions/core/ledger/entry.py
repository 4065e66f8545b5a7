"""Sealing one ledger entry: canonical body, SHA-256 with the RFC 6962 leaf prefix, chained
to the previous entry's hash."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from functions.core.ledger.canonical import canonical_bytes

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
# Fixed genesis: SHA-256 of a domain-separated constant, the prev_hash of every chain's entry 0.
GENESIS_HASH = hashlib.sha256(b"offer-experiments/ledger/genesis/v1").hexdigest()
# The body's top-level link; the verifier's fast path finds it as the last such token.
PREV_TOKEN = '"prevHash":"'


def entry_hash_from_canonical(canonical: bytes) -> str:
    return hashlib.sha256(LEAF_PREFIX + canonical).hexdigest()


@dataclass(frozen=True)
class SealedEntry:
    chain_id: str
    seq: int
    prev_hash: str
    hash: str
    canonical: str
    body: dict[str, Any]

    def to_document(self) -> dict[str, Any]:
        return {
            "chainId": self.chain_id,
            "seq": self.seq,
            "prevHash": self.prev_hash,
            "hash": self.hash,
            "canonical": self.canonical,
            "action": self.body["action"],
            "timestamp": self.body["timestamp"],
            "actor": self.body["actor"],
            "subject": self.body["subject"],
        }


def seal_entry(
    *,
    chain_id: str,
    seq: int,
    prev_hash: str,
    timestamp: str,
    actor: dict[str, Any],
    action: str,
    subject: dict[str, Any],
    payload: dict[str, Any],
) -> SealedEntry:
    body = {
        "chainId": chain_id,
        "seq": seq,
        "prevHash": prev_hash,
        "timestamp": timestamp,
        "actor": actor,
        "action": action,
        "subject": subject,
        "payload": payload,
    }
    if PREV_TOKEN.encode() in canonical_bytes(subject):
        raise ValueError("a ledger subject must not carry a prevHash key (it would shadow the chain link)")
    canonical = canonical_bytes(body)
    return SealedEntry(chain_id, seq, prev_hash, entry_hash_from_canonical(canonical), canonical.decode(), body)
