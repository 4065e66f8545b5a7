"""Verify proofs, exports and a witness's checkpoints with nothing but public keys (what an
auditor runs).

    python -m functions.core.ledger verify-inclusion --proof proof.json --keyring keys.json
    python -m functions.core.ledger verify-consistency --proof proof.json --keyring keys.json
    python -m functions.core.ledger verify-export --export ledger.jsonl [--keyring keys.json]
    python -m functions.core.ledger verify-witness --dir checkpoints/ --keyring keys.json

`--keyring` is the document `GET /ledger/keys` returns (or a file of PEM public keys;
`--public-key` is accepted too), fetched once and pinned by the auditor.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from functions.core.ledger import anchor, merkle, signing
from functions.core.ledger.entry import entry_hash_from_canonical
from functions.core.ledger.signing import Keyring
from functions.core.ledger.verify import MISSING_GENESIS, TRUNCATED_TAIL, ChainVerdict, verify_chain, verify_segment


class InputError(ValueError):
    """The input is not what the command verifies (an error response, garbage, a wrong format)."""


def require_object(value: Any, what: str, *keys: str) -> Mapping[str, Any]:
    if isinstance(value, Mapping) and isinstance(value.get("error"), Mapping):
        err = value["error"]
        raise InputError(f"the {what} is a saved API error response ({err.get('code')}: {err.get('message')}), "
                         f"not a {what}")
    if not isinstance(value, Mapping) or any(k not in value for k in keys):
        raise InputError(f"not a {what}: expected a JSON object with {', '.join(keys)}")
    return value


def _hexes(values: Any) -> list[bytes]:
    if not isinstance(values, list):
        raise InputError("a proof path must be a list of hex hashes")
    try:
        return [bytes.fromhex(str(h)) for h in values]
    except ValueError:
        raise InputError("a proof path must be a list of hex hashes") from None


def verify_inclusion_proof(proof: Any, keyring: Keyring) -> tuple[bool, str]:
    proof = require_object(proof, "inclusion proof", "checkpoint", "signature", "entryHash", "index", "path")
    cp = require_object(proof["checkpoint"], "checkpoint", "treeSize", "rootHash")
    if not signing.verify(cp, proof["signature"], keyring):
        return False, "BAD_SIGNATURE: the checkpoint was not signed by a key of the keyring"
    entry = proof.get("entry")
    if not isinstance(entry, Mapping) or not isinstance(entry.get("canonical"), str):
        return False, "NO_ENTRY: the proof does not carry the stored entry, so nothing ties it to the ledger"
    recomputed = entry_hash_from_canonical(entry["canonical"].encode())
    try:
        body = json.loads(entry["canonical"])
    except ValueError:
        body = {}
    if recomputed != proof["entryHash"] or not isinstance(body, dict) or \
            (body.get("chainId"), body.get("seq")) != (entry.get("chainId"), entry.get("seq")):
        return False, ("ENTRY_MISMATCH: the stored entry's recomputed hash is not the leaf the signed log holds "
                       "(the entry was rewritten)")
    try:
        ok = merkle.verify_inclusion(merkle.leaf_hash(bytes.fromhex(str(proof["entryHash"]))), int(proof["index"]),
                                     int(cp["treeSize"]), _hexes(proof["path"]), bytes.fromhex(str(cp["rootHash"])))
    except (TypeError, ValueError):
        raise InputError("index, tree size and hashes must be numbers and hex") from None
    return ok, "entry is included in the signed checkpoint" if ok else "INCLUSION_FAILED"


def verify_consistency_proof(proof: Any, keyring: Keyring) -> tuple[bool, str]:
    proof = require_object(proof, "consistency proof", "first", "second", "firstSignature", "secondSignature", "path")
    first = require_object(proof["first"], "checkpoint", "treeSize", "rootHash")
    second = require_object(proof["second"], "checkpoint", "treeSize", "rootHash")
    if not (signing.verify(first, proof["firstSignature"], keyring)
            and signing.verify(second, proof["secondSignature"], keyring)):
        return False, "BAD_SIGNATURE"
    try:
        ok = merkle.verify_consistency(int(first["treeSize"]), int(second["treeSize"]),
                                       bytes.fromhex(str(first["rootHash"])), bytes.fromhex(str(second["rootHash"])),
                                       _hexes(proof["path"]))
    except (TypeError, ValueError):
        raise InputError("tree sizes and hashes must be numbers and hex") from None
    return ok, "second checkpoint extends the first" if ok else "CONSISTENCY_FAILED"


def _records(lines: Iterable[str]) -> tuple[Mapping[str, Any], dict[str, list[dict[str, Any]]]]:
    header: Mapping[str, Any] | None = None
    chains: dict[str, list[dict[str, Any]]] = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise InputError(f"line {number} is not JSON: not a JSON Lines export") from None
        if header is None:
            header = require_object(record, "export header", "verification")
            continue
        record = require_object(record, "export entry", "chainId", "seq", "hash", "canonical")
        chains.setdefault(str(record["chainId"]), []).append(dict(record))  # file order, never re-sorted
    if header is None:
        raise InputError("the file is empty: not a ledger export")
    return header, chains


def verify_export(lines: Iterable[str], keyring: Keyring | None = None) -> dict[str, Any]:
    """A JSON Lines export: a header line, then the stored entries of each chain in order."""
    header, chains = _records(lines)
    notes = []
    if keyring is None:
        keyring = signing.keyring_from_document(header.get("keyring") or {"keys": []}) if header.get("keyring") else {}
        notes.append("keys taken from the export header; pass --keyring with the published keyring to pin them")
    problems: list[dict[str, Any]] = []
    server = header.get("verification") or {}
    if server.get("ok") is not True:
        problems.append(anchor.problem("SERVER_REPORTED_DAMAGE", "the export's own header says verification "
                                       "failed: " + json.dumps(server.get("damaged") or server)[:400]))
    cp = header.get("checkpoint")
    heads: Mapping[str, Any] = {}
    if isinstance(cp, Mapping):
        found = anchor.checkpoint_problems(cp, keyring)
        problems += found
        heads = {} if found else (cp.get("chainHeads") or {})
    raw_scope = header.get("scope")
    scope: Mapping[str, Any] = raw_scope if isinstance(raw_scope, Mapping) else {}
    ranged = bool(scope.get("since") or scope.get("until"))
    verdicts = []
    for cid, docs in chains.items():
        signed = heads.get(cid)
        expected = (int(signed[0]), str(signed[1])) if signed else None
        if ranged:
            verdict = verify_segment(cid, docs, expected, keyring)
        elif docs[0].get("seq") != 0:
            verdict = ChainVerdict(False, cid, len(docs), 0, MISSING_GENESIS, "the chain's first entries are missing")
        else:
            verdict = verify_chain(cid, docs, expected, keyring)
        verdicts.append({**verdict.to_dict(), "fromSeq": docs[0].get("seq")})
    scoped_chains = scope.get("chains")
    expected_chains = scoped_chains if isinstance(scoped_chains, list) else list(heads)
    if not ranged:
        for cid in expected_chains:
            if cid in heads and cid not in chains:
                verdicts.append({**ChainVerdict(False, cid, 0, 0, TRUNCATED_TAIL, "a signed chain is missing from "
                                                "the export").to_dict(), "fromSeq": None})
    return {"ok": not problems and all(v["ok"] for v in verdicts), "chains": verdicts, "problems": problems,
            "complete": not ranged, "notes": notes}
