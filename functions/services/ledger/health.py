"""`GET /ledger/health`: is the ledger being anchored? The newest checkpoint and its problems,
its age, and checkpoints refused since (each also went out on the `ledger-alerts` topic)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from functions.adapters import merkle_log as ledger_log
from functions.config import settings
from functions.core.clock import iso_text, parse_time, utc_now
from functions.services.ledger.verification import anchor_state


def health(now: datetime | None = None) -> dict[str, Any]:
    now = now or utc_now()
    latest, problems = anchor_state(ledger_log.keyring())
    signed_at = parse_time(latest["at"]) if latest else None
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
