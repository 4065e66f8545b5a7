"""Read models for people rather than programs: one summary line per experiment (owner, start,
days running, stage, primary verdict, guardrail status, who still has to approve) and the
snapshot series behind the health and guardrail charts.

Summaries read the experiment documents once and then, side by side, each experiment's latest
snapshot and analyses (projected: never the 40 KB result blob), so a list of 50 costs one query
plus two small ones per experiment in parallel rather than in sequence.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from functions.adapters.firestore import EXPERIMENT_ANALYSES, EXPERIMENT_SNAPSHOTS, OFFER_EXPERIMENTS, db
from functions.models.common import iso_text
from functions.services.experiments.health import latest_snapshot

SERIES_LIMIT = 500
_WORKERS = 16


def primary_metric(doc: dict[str, Any]) -> str | None:
    return next((k["metric"] for k in doc.get("kpis") or [] if k.get("role") == "PRIMARY"), None)


def guardrail_status(verdicts: list[dict[str, Any]] | None) -> str:
    """BREACHED if any guardrail is breached now (or the experiment was killed by one), HELD when
    every guardrail was evaluated and none breached, NO_DATA before the first snapshot."""
    if verdicts is None:
        return "NO_DATA"
    if any(v.get("status") == "BREACHED" for v in verdicts):
        return "BREACHED"
    if not verdicts:
        return "NONE_DEFINED"
    if all(v.get("status") in ("INSUFFICIENT_DATA", "NOT_ENOUGH_DATA") for v in verdicts):
        return "WAITING_FOR_DATA"
    return "HELD"


def latest_analysis(experiment_id: str) -> dict[str, Any] | None:
    query = (db().collection(EXPERIMENT_ANALYSES).where(filter=FieldFilter("experimentId", "==", experiment_id))
             .select(["id", "createdAt", "recommendation", "primaryMetric"]))
    docs = [s.to_dict() or {} for s in query.stream()]
    return max(docs, key=lambda d: iso_text(d.get("createdAt")) or "", default=None)


def pending_approvers(doc: dict[str, Any]) -> list[str]:
    if doc.get("state") != "PENDING_APPROVAL":
        return []
    approvals = doc.get("approvals") or {}
    return [uid for uid in doc.get("requiredApprovers") or [] if uid not in approvals]


def _days(start: Any, end: Any, now: datetime) -> float | None:
    if not isinstance(start, datetime):
        return None
    stop = end if isinstance(end, datetime) else now
    return round(max((stop - start).total_seconds(), 0.0) / 86400, 1)


def summary(doc: dict[str, Any], snapshot: dict[str, Any] | None, analysis: dict[str, Any] | None,
            now: datetime) -> dict[str, Any]:
    rec = (analysis or {}).get("recommendation") or {}
    verdicts = {arm: {"decision": r.get("decision"), "trust": r.get("trust")} for arm, r in sorted(rec.items())}
    stage = (doc.get("rollout") or {}).get("stage")
    return {
        "id": doc["id"], "name": doc.get("name", doc["id"]), "state": doc.get("state"), "owner": doc.get("author"),
        "offerType": doc.get("offerType"), "createdAt": iso_text(doc.get("createdAt")),
        "startedAt": iso_text(doc.get("startedAt")), "endedAt": iso_text(doc.get("endedAt")),
        "daysRunning": _days(doc.get("startedAt"), doc.get("endedAt"), now),
        "rolloutStage": stage, "primaryMetric": primary_metric(doc),
        "verdicts": verdicts, "analysisId": (analysis or {}).get("id"),
        "guardrailStatus": guardrail_status(snapshot.get("guardrails") if snapshot else None),
        "requiredApprovers": list(doc.get("requiredApprovers") or []),
        "approvedBy": sorted(doc.get("approvals") or {}),
        "pendingApprovers": pending_approvers(doc),
        "version": int(doc.get("version", 0)),
    }


def summaries(state: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    query = db().collection(OFFER_EXPERIMENTS)
    if state:
        query = query.where(filter=FieldFilter("state", "==", state))
    docs = [s.to_dict() or {} for s in query.limit(limit).stream()]
    now = datetime.now(UTC)

    def one(doc: dict[str, Any]) -> dict[str, Any]:
        started = doc.get("startedAt") is not None
        snapshot = latest_snapshot(doc["id"]) if started else None
        analysis = latest_analysis(doc["id"]) if started else None
        return summary(doc, snapshot, analysis, now)

    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        rows = list(pool.map(one, docs))
    return sorted(rows, key=lambda r: (r["createdAt"] or ""), reverse=True)


def snapshot_series(experiment_id: str, limit: int = SERIES_LIMIT) -> list[dict[str, Any]]:
    """Snapshots oldest first: time, state, stage, units per arm and guardrail verdicts (the
    statistics the sweep stored are left out; charts need the verdicts, not the moments)."""
    query = (db().collection(EXPERIMENT_SNAPSHOTS)
             .where(filter=FieldFilter("experimentId", "==", experiment_id))
             .order_by("takenAt", direction=firestore.Query.DESCENDING).limit(limit)
             .select(["takenAt", "state", "rollout", "units", "guardrails", "acted"]))
    rows = []
    for snap in query.stream():
        d = snap.to_dict() or {}
        rows.append({"snapshotId": snap.id, "takenAt": iso_text(d.get("takenAt")), "state": d.get("state"),
                     "stage": (d.get("rollout") or {}).get("stage"), "units": d.get("units") or {},
                     "guardrails": d.get("guardrails") or [], "acted": d.get("acted")})
    return rows[::-1]
