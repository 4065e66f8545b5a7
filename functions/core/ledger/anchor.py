"""What makes a checkpoint trustworthy, checked the same way by the checkpointer, the server-side
verifiers and the offline CLI: its signature (by a key of the verifier's keyring), the digest of
the chain heads stored beside it, and its link to the checkpoint before it (contiguous number,
previous size and root). Also the rule for extending a chain: new entries must continue the
signed head and carry the ledger key's signature."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from functions.core.ledger import signing
from functions.core.ledger.signing import Keyring
from functions.core.ledger.verify import TRUNCATED_TAIL, ChainVerdict, verify_segment

BAD_SIGNATURE = "BAD_SIGNATURE"
HEADS_TAMPERED = "HEADS_TAMPERED"
CHECKPOINT_GAP = "CHECKPOINT_GAP"
CHECKPOINT_MISSING = "CHECKPOINT_MISSING"
ROOT_MISMATCH = "ROOT_MISMATCH"
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def problem(kind: str, detail: str, cp: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"damage": kind, "treeSize": (cp or {}).get("treeSize"), "number": (cp or {}).get("number"),
            "detail": detail}


def checkpoint_problems(cp: Mapping[str, Any], keyring: Keyring) -> list[dict[str, Any]]:
    """Signature and heads digest of one stored or published checkpoint."""
    if not signing.verify(cp, cp.get("signature", ""), keyring):
        known = str(cp.get("keyId")) in keyring
        return [problem(BAD_SIGNATURE, "signature does not verify" if known else
                        f"signed by key {cp.get('keyId')!r}, which is not in the keyring", cp)]
    heads = cp.get("chainHeads")
    if heads is not None:
        try:
            digest = signing.heads_root(heads)
        except (TypeError, ValueError, IndexError, KeyError, AttributeError):
            digest = None
        if digest != cp.get("headsRoot"):
            return [problem(HEADS_TAMPERED, "chainHeads differ from the signed headsRoot", cp)]
    return []


def link_problems(previous: Mapping[str, Any] | None, cp: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`cp` must follow `previous` (None: `cp` must be the first checkpoint)."""
    want = (1, 0, EMPTY_ROOT) if previous is None else (
        int(previous.get("number", 0)) + 1, previous.get("treeSize"), previous.get("rootHash"))
    got = (cp.get("number"), cp.get("previousSize"), cp.get("previousRoot"))
    if got == want and int(cp.get("treeSize", 0)) > int(want[1] or 0):
        return []
    if previous is None or int(cp.get("number", 0)) > want[0]:
        return [problem(CHECKPOINT_MISSING, f"checkpoint {cp.get('number')} follows a checkpoint that is missing "
                        f"(expected number {want[0]}, previous size {want[1]})", cp)]
    return [problem(CHECKPOINT_GAP, f"checkpoint {cp.get('number')} does not extend checkpoint "
                    f"{previous.get('number')} (previous size/root {got[1:]} != {want[1:]})", cp)]


def extension(chain_id: str, signed_head: Sequence[Any] | None, docs: Sequence[Mapping[str, Any]],
              keyring: Keyring) -> tuple[ChainVerdict, list[Mapping[str, Any]]]:
    """`docs`: the chain's stored entries from the signed head on (from seq 0 when none). Returns
    the verdict and the entries appended since, which may be signed into the next checkpoint."""
    if signed_head is None:
        if docs and docs[0].get("seq") != 0:
            return ChainVerdict(False, chain_id, len(docs), 0, "MISSING_GENESIS", "chain does not start at 0"), []
        verdict = verify_segment(chain_id, docs, None, keyring)
        return verdict, list(docs) if verdict.ok else []
    seq, head_hash = int(signed_head[0]), str(signed_head[1])
    if not docs or docs[0].get("seq") != seq or docs[0].get("hash") != head_hash:
        kind = TRUNCATED_TAIL if not docs or docs[0].get("seq") != seq else "REWRITTEN_CHAIN"
        return ChainVerdict(False, chain_id, len(docs), seq, kind,
                            f"the stored chain no longer holds the signed head at {seq}"), []
    verdict = verify_segment(chain_id, docs, (seq, head_hash), keyring)
    return verdict, list(docs[1:]) if verdict.ok else []
