"""Chain verification: every link, every hash, and the kind and first index of any damage.

Entries pinned by a signed checkpoint take the fast path: hash the stored canonical bytes (never
re-serialise) and check the body's top-level `prevHash` field in place. RFC 8785 sorts keys, so the
top-level field follows `payload` and is the last `"prevHash":"` token of the body (`seal_entry`
refuses subjects that could carry one; inside strings quotes are escaped), and it must read exactly
`<prev>","seq":<i>,`. That is sound by induction from the pinned head: its bytes are fixed by the
signature, so the link it carries is the genuine one, and so on down. Entries the checkpoint does
not pin yet (the tail) are parsed and checked field by field, since nothing else vouches for them.
Only when something is wrong does the slow path name the damage. Stored fields other than `hash`,
`prevHash`, `seq`, `signature` and `keyId` are a query index: readers that show entries use the
canonical body.

Given a keyring, every entry past the signed head must carry the service's signature over its
hash (an insider without the key cannot append or rewrite one), and a chain that no longer ends
in the signed head is searched for its first entry without a valid signature: a consistent
re-chain from seq 2 is reported at index 2, not where the hashes finally disagree.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from functions.core.ledger.entry import GENESIS_HASH, LEAF_PREFIX, PREV_TOKEN, entry_hash_from_canonical
from functions.core.ledger.signing import Keyring, verify_entry

MODIFIED_ENTRY = "MODIFIED_ENTRY"
DELETED_ENTRY = "DELETED_ENTRY"
INSERTED_ENTRY = "INSERTED_ENTRY"
REORDERED_ENTRIES = "REORDERED_ENTRIES"
TRUNCATED_TAIL = "TRUNCATED_TAIL"
REPLACED_GENESIS = "REPLACED_GENESIS"
BAD_SIGNATURE = "BAD_SIGNATURE"
FORGED_ENTRY = "FORGED_ENTRY"
REWRITTEN_CHAIN = "REWRITTEN_CHAIN"
MISSING_GENESIS = "MISSING_GENESIS"


@dataclass(frozen=True)
class ChainVerdict:
    ok: bool
    chain_id: str
    length: int
    first_bad_index: int | None = None
    damage: str | None = None
    detail: str = ""
    head_hash: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "chainId": self.chain_id, "length": self.length, "firstBadIndex": self.first_bad_index,
                "damage": self.damage, "detail": self.detail, "headHash": self.head_hash}


def _body(doc: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(doc.get("canonical", ""))
    except ValueError:
        return {}


def _classify(chain_id: str, docs: Sequence[Mapping[str, Any]], i: int) -> tuple[str, int, str]:
    """Name the damage first seen at position i (slow path)."""
    doc = docs[i]
    body = _body(doc)
    actual = entry_hash_from_canonical(str(doc.get("canonical", "")).encode())
    seq = body.get("seq", doc.get("seq"))
    prev = docs[i - 1]["hash"] if i else GENESIS_HASH
    if actual != doc.get("hash") or body.get("seq") != doc.get("seq") or body.get("prevHash") != doc.get(
            "prevHash"):
        return MODIFIED_ENTRY, i, "stored hash or fields do not match the entry's canonical body"
    if i == 0 and body.get("prevHash") != GENESIS_HASH:
        return REPLACED_GENESIS, 0, "the first entry does not start from the fixed genesis hash"
    if isinstance(seq, int) and seq > i:
        later = [d.get("seq") for d in docs[i + 1:]]
        if i in later:
            return REORDERED_ENTRIES, i, f"entry {i} appears later; order is broken"
        return DELETED_ENTRY, i, f"entries {i}..{seq - 1} are missing"
    if isinstance(seq, int) and seq < i:
        twins = [j for j in range(i) if docs[j].get("seq") == seq]
        if twins:
            j = twins[0]
            before = docs[j - 1].get("hash") if j else GENESIS_HASH
            if body.get("prevHash") == before:  # the genuine entry links past docs[j]: j was slipped in
                return INSERTED_ENTRY, j, f"entry at position {j} was inserted (duplicate sequence {seq})"
        return REORDERED_ENTRIES, i, f"sequence number {seq} at position {i}"
    if body.get("prevHash") != prev:
        if i >= 2 and body.get("prevHash") == docs[i - 2].get("hash"):
            return INSERTED_ENTRY, i - 1, f"entry {i - 1} was inserted between {i - 2} and {i}"
        return MODIFIED_ENTRY, i - 1, f"entry {i - 1} no longer has the hash entry {i} committed to"
    if body.get("chainId") != chain_id:
        return INSERTED_ENTRY, i, "entry belongs to another chain"
    return MODIFIED_ENTRY, i, "entry body is inconsistent"


def _exact(chain_id: str, doc: Mapping[str, Any], seq: int, prev: str, digest: str) -> bool:
    """Field-by-field check of an entry nothing signed yet vouches for."""
    body = _body(doc)
    return (digest == doc["hash"] and doc["prevHash"] == prev and doc["seq"] == seq
            and body.get("prevHash") == prev and body.get("seq") == seq and body.get("chainId") == chain_id)


def _first_unsigned(documents: Sequence[Mapping[str, Any]], upto: int, keyring: Keyring | None) -> int | None:
    if keyring is None:
        return None
    return next((i for i in range(min(upto, len(documents))) if not verify_entry(documents[i], keyring)), None)


def verify_chain(chain_id: str, documents: Sequence[Mapping[str, Any]],
                 expected_head: tuple[int, str] | None = None, keyring: Keyring | None = None) -> ChainVerdict:
    """`documents` as stored, in document-id order; `expected_head` (seq, hash) from the last
    signed checkpoint catches truncation and rewrites; `keyring` makes every entry past it prove
    it was appended by the service."""
    leaf = hashlib.sha256(LEAF_PREFIX)  # copied per entry: cheaper than prefixing every body
    token, token_len = PREV_TOKEN, len(PREV_TOKEN)
    pinned = min(expected_head[0] + 1, len(documents)) if expected_head is not None else 0
    prev = GENESIS_HASH
    i = 0
    try:
        # Up to the signed head: hash the stored bytes; the top-level field (see the module
        # docstring) of a genuine body holds exactly the previous 64 hex digits.
        for i in range(pinned):
            doc = documents[i]
            canonical = doc["canonical"]
            h = leaf.copy()
            h.update(canonical.encode())
            digest = h.hexdigest()
            if not (digest == doc["hash"] and doc["prevHash"] == prev and doc["seq"] == i
                    and canonical.startswith(prev, canonical.rfind(token) + token_len)):
                break
            prev = digest
        else:
            i = pinned
            # Past the signed head nothing pins the chain yet: every field is parsed and checked.
            for i in range(pinned, len(documents)):
                doc = documents[i]
                digest = entry_hash_from_canonical(doc["canonical"].encode())
                if not _exact(chain_id, doc, i, prev, digest):
                    break
                if keyring is not None and not verify_entry(doc, keyring):
                    rewritten = _first_unsigned(documents, i, keyring)
                    if rewritten is not None:  # a re-chain that reaches past the signed head
                        return ChainVerdict(False, chain_id, len(documents), rewritten, REWRITTEN_CHAIN,
                                            f"entries from {rewritten} were rewritten and re-chained")
                    return ChainVerdict(False, chain_id, len(documents), i, FORGED_ENTRY,
                                        f"entry {i} has no valid signature of the ledger key: it was not "
                                        "appended by the service (a forged append or a rewrite)")
                prev = digest
            else:
                i = len(documents)
    except (KeyError, AttributeError, TypeError):
        pass
    if i < len(documents):
        kind, at, detail = _classify(chain_id, documents, i)
        return ChainVerdict(False, chain_id, len(documents), at, kind, detail)
    if documents and f'"chainId":"{chain_id}"' not in documents[0].get("canonical", ""):
        return ChainVerdict(False, chain_id, len(documents), 0, REPLACED_GENESIS, "chain starts in another chain")
    length = len(documents)
    if expected_head is not None:
        head_seq, head_hash = expected_head
        if length < head_seq + 1 or documents[head_seq]["hash"] != head_hash:
            rewritten = _first_unsigned(documents, head_seq + 1, keyring)
            if rewritten is not None:
                return ChainVerdict(False, chain_id, length, rewritten, REWRITTEN_CHAIN,
                                    f"entries from {rewritten} were rewritten and re-chained with recomputed "
                                    "hashes; the signed checkpoint pins a different history", prev)
        if length < head_seq + 1:
            return ChainVerdict(False, chain_id, length, length, TRUNCATED_TAIL,
                                f"checkpoint has {head_seq + 1} entries, store has {length}", prev)
        if documents[head_seq]["hash"] != head_hash:
            return ChainVerdict(False, chain_id, length, head_seq, MODIFIED_ENTRY,
                                "entry differs from the one the checkpoint signed", prev)
    return ChainVerdict(True, chain_id, length, None, None, "", prev if documents else None)


def verify_segment(chain_id: str, documents: Sequence[Mapping[str, Any]],
                   expected_head: tuple[int, str] | None = None, keyring: Keyring | None = None) -> ChainVerdict:
    """A contiguous run of one chain (a time-range export) in the order given: every hash and
    link inside it, with the first entry's link taken as stated (the genesis when it is entry 0).
    Indices are seqs. With a keyring, each entry must be anchored: at or before the signed head
    when the run contains that head, or else by its own signature."""
    if not documents:
        return ChainVerdict(True, chain_id, 0)
    first = documents[0].get("seq")
    if not isinstance(first, int) or first < 0:
        return ChainVerdict(False, chain_id, len(documents), None, MODIFIED_ENTRY, "first entry has no sequence")
    prev = GENESIS_HASH if first == 0 else str(documents[0].get("prevHash"))
    for offset, doc in enumerate(documents):
        seq = first + offset
        try:
            digest = entry_hash_from_canonical(doc["canonical"].encode())
            ok = _exact(chain_id, doc, seq, prev, digest)
        except (KeyError, AttributeError, TypeError):
            ok = False
        if not ok:
            kind = REPLACED_GENESIS if seq == 0 and _body(doc).get("prevHash") != GENESIS_HASH else MODIFIED_ENTRY
            if doc.get("seq") != seq:
                kind = DELETED_ENTRY if isinstance(doc.get("seq"), int) and doc["seq"] > seq else REORDERED_ENTRIES
            return ChainVerdict(False, chain_id, len(documents), seq, kind, f"entry {seq} does not link")
        prev = digest
    if keyring is not None:
        head_seq, head_hash = expected_head if expected_head is not None else (-1, "")
        last = first + len(documents) - 1
        pinned_upto = head_seq - first + 1 if first <= head_seq <= last else 0
        if pinned_upto and documents[pinned_upto - 1]["hash"] != head_hash:
            pinned_upto = 0  # the run's copy of the signed head is not the signed one
        for offset, doc in enumerate(documents[pinned_upto:], pinned_upto):
            if not verify_entry(doc, keyring):
                kind = REWRITTEN_CHAIN if first + offset <= head_seq else FORGED_ENTRY
                return ChainVerdict(False, chain_id, len(documents), first + offset, kind,
                                    f"entry {first + offset} is neither pinned by the signed checkpoint nor "
                                    "signed by the ledger key")
    return ChainVerdict(True, chain_id, len(documents), None, None, "", prev)
