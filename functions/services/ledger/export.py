"""Streamed CSV and JSON Lines exports.

JSON Lines starts with a header carrying the verification status and what an offline verifier
needs: the scope (a whole chain, or a time range that may start mid-chain), the latest signed
checkpoint with its chain heads, and the keyring. The offline CLI checks the checkpoint against a
keyring it pins itself when given one (`--keyring`); the copy in the header lets old checkpoints
verify after a rotation. CSV starts with its column header (spreadsheets and csv readers expect
that) and the route sends the verification status as the X-Ledger-Verification HTTP header."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from functions.adapters import ledger_store
from functions.adapters import merkle_log as ledger_log
from functions.core.ledger import signing
from functions.services.ledger.verification import anchor_state, verify_chain_id

EXPORT_FORMAT = "offers-ledger-export/2"
ENTRY_FIELDS = ("chainId", "seq", "prevHash", "hash", "canonical", "signature", "keyId")

COLUMNS = ["chainId", "seq", "timestamp", "action", "actorUid", "actorRole", "reason", "payload", "prevHash", "hash"]


def _chains(experiment_id: str | None) -> list[str]:
    return [ledger_store.experiment_chain(experiment_id)] if experiment_id else ledger_log.chain_ids()


def _entries(chains: list[str], since: str | None, until: str | None
             ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(stored entry, its canonical body): shown values come from the hashed body, never from
    the stored index fields, which verification does not cover."""
    for chain in chains:
        for entry in ledger_store.entries(chain):
            try:
                body = json.loads(entry.get("canonical", ""))
            except ValueError:
                body = {}
            ts = str(body.get("timestamp", ""))
            if (since and ts < since) or (until and ts > until):
                continue
            yield entry, body


def header(chains: list[str], scope: dict[str, Any] | None = None) -> dict[str, Any]:
    keyring = ledger_log.keyring()
    latest, problems = anchor_state(keyring)
    verdicts = [verify_chain_id(c, (latest, problems), keyring) for c in chains]
    checkpoint = None
    if latest:
        heads = latest.get("chainHeads") or {}
        # The heads are signed as a whole (headsRoot): all of them travel, so the digest checks.
        checkpoint = {**{k: latest.get(k) for k in signing.SIGNED_FIELDS}, "signature": latest.get("signature"),
                      "chainHeads": heads}
    return {"format": EXPORT_FORMAT, "scope": scope or {},
            "verification": {"ok": all(v.ok for v in verdicts) and not problems, "chains": len(verdicts),
                             "damaged": [v.to_dict() for v in verdicts if not v.ok],
                             "checkpointProblems": problems},
            "checkpoint": checkpoint,
            "keyring": signing.keyring_document(keyring, signing.key_id(ledger_log.signing_key()))}


def jsonl(experiment_id: str | None, since: str | None, until: str | None) -> Iterator[str]:
    chains = _chains(experiment_id)
    scope = {"experimentId": experiment_id, "chains": chains, "since": since, "until": until}
    yield json.dumps(header(chains, scope)) + "\n"
    for entry, _ in _entries(chains, since, until):
        yield json.dumps({k: entry.get(k) for k in ENTRY_FIELDS}) + "\n"


def verification_header(experiment_id: str | None) -> str:
    return json.dumps(header(_chains(experiment_id))["verification"], separators=(",", ":"))


def csv_lines(experiment_id: str | None, since: str | None, until: str | None) -> Iterator[str]:
    chains = _chains(experiment_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for entry, body in _entries(chains, since, until):
        actor = body.get("actor") or {}
        payload = body.get("payload") or {}
        reason = payload.get("reason", "") if isinstance(payload, dict) else ""
        writer.writerow([body.get("chainId"), body.get("seq"), body.get("timestamp"), body.get("action"),
                         actor.get("uid"), actor.get("role"), reason,
                         json.dumps(payload, sort_keys=True, separators=(",", ":")), body.get("prevHash"),
                         entry.get("hash")])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
