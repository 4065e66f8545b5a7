"""`GET /ledger/health`: is the ledger being anchored? The newest checkpoint and its problems,
its age, and checkpoints refused since (each also went out on the `ledger-alerts` topic)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from functions.adapters import merkle_log as ledger_log
from functions.config import settings
from functions.models.common import iso_text
from functions.services.ledger.verification import anchor_state


def health(now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    latest, problems = anchor_state(ledger_log.keyring())
    try:
        signed_at = datetime.fromisoformat(str(latest["at"]).replace("Z", "+00:00")) if latest else None
    except ValueError:
        signed_at = None
    age = (now - signed_at).total_seconds() if signed_at else None
    refused = [a for a in ledger_log.alerts()
               if isinstance(a.get("lastSeenAt"), datetime) and (signed_at is None or a["lastSeenAt"] >= signed_at)]
    if problems:
        status = "DAMAGED"
    elif refused:
        status = "REFUSING"
    elif age is not None and age > 3 * settings().sweep_window_seconds:
        status = "STALE"
    else:
        status = "OK"
    return {"status": status, "checkpoint": {k: (latest or {}).get(k) for k in ("number", "treeSize", "rootHash",
                                                                               "at", "keyId")} if latest else None,
            "checkpointAgeSeconds": age, "anchorProblems": problems,
            "refusals": [{"problems": a.get("problems"), "firstSeenAt": iso_text(a.get("firstSeenAt")),
                          "lastSeenAt": iso_text(a.get("lastSeenAt")), "count": a.get("count")} for a in refused]}
