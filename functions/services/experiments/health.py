"""`GET /experiments/{id}/health`: one look at whether an experiment can be trusted right now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.aggregation import AggregationQuery, AggregationResult
from google.cloud.firestore_v1.base_query import FieldFilter

from functions.adapters.firestore import EXPERIMENT_SNAPSHOTS, HOLDOUT_ASSIGNMENTS, db
from functions.config import settings
from functions.core.assignment.decision import expected_split
from functions.core.stats.quality import srm
from functions.services.experiments import repository


def exposure_counts(experiment_id: str, variants: list[str]) -> dict[str, int]:
    """First exposures per variant, counted by the server (count aggregation, no unit rows read)."""
    base = db().collection(HOLDOUT_ASSIGNMENTS).where(filter=FieldFilter("experimentId", "==", experiment_id))
    counts = {}
    for variant in variants:
        # the library annotates count() as returning the class and get() as a flat list; neither is so
        query: AggregationQuery = base.where(filter=FieldFilter("variant", "==", variant)).count()  # type: ignore[assignment]
        result: list[list[AggregationResult]] = query.get()  # type: ignore[assignment]
        counts[variant] = int(result[0][0].value)
    return counts


SWEEP_STATUS_ID = "_sweep"  # experimentSnapshots/_sweep: each step's outcome in the latest sweep


def sweep_status_ref() -> firestore.DocumentReference:
    return db().collection(EXPERIMENT_SNAPSHOTS).document(SWEEP_STATUS_ID)


def sweep_status() -> dict[str, Any] | None:
    """The latest sweep's step outcomes; a failed step (rollouts, checkpoint, ...) shows here."""
    snap = sweep_status_ref().get()
    if not snap.exists:
        return None
    doc = snap.to_dict() or {}
    at = doc.get("at")
    return {**doc, "at": at.isoformat() if isinstance(at, datetime) else at}


def latest_snapshot(experiment_id: str) -> dict[str, Any] | None:
    """The newest snapshot by time taken (an operator's sweep-now shares its window with the
    scheduled one), with its document id as `snapshotId`."""
    query = (db().collection(EXPERIMENT_SNAPSHOTS)
             .where(filter=FieldFilter("experimentId", "==", experiment_id))
             .order_by("takenAt", direction=firestore.Query.DESCENDING).limit(1))
    for snap in query.stream():
        return {**(snap.to_dict() or {}), "snapshotId": snap.id}
    return None


def health(experiment_id: str) -> dict[str, Any]:
    doc = repository.load(None, experiment_id)
    exposures = exposure_counts(experiment_id, [v["key"] for v in doc["variants"]])
    return assess(experiment_id, doc, exposures, latest_snapshot(experiment_id), sweep_status())


def assess(experiment_id: str, doc: dict[str, Any], exposures: dict[str, int], snapshot: dict[str, Any] | None,
           sweep: dict[str, Any] | None) -> dict[str, Any]:
    """Health from what was read: exposures per arm, the newest snapshot (with `snapshotId`) and
    the latest sweep's step outcomes."""
    rollout = doc.get("rollout") or {}
    split = expected_split([(v["key"], float(v["weight"])) for v in doc["variants"]], rollout.get("stage"))
    srm_check = srm(exposures, split)
    now = datetime.now(UTC)
    age = (now - snapshot["takenAt"]).total_seconds() if snapshot else None
    verdicts = snapshot.get("guardrails", []) if snapshot else []
    reasons = []
    if doc["state"] == "KILLED" or any(v.get("status") == "BREACHED" for v in verdicts):
        overall = "VIOLATED"
        reasons += [f"guardrail {v['guardrail']} breached on {v['arm']}" for v in verdicts
                    if v.get("status") == "BREACHED"] or ["experiment was killed"]
    else:
        overall = "HEALTHY"
        if srm_check.failed:
            overall, reasons = "AT_RISK", [*reasons, "sample ratio mismatch"]
        if doc["state"] == "RUNNING" and (age is None or age > 3 * settings().sweep_window_seconds):
            overall, reasons = "AT_RISK", [*reasons, "no recent snapshot"]
        if doc["state"] == "PAUSED":
            overall, reasons = "AT_RISK", [*reasons, "paused"]
    failed_steps = sorted(step for step, outcome in ((sweep or {}).get("steps") or {}).items() if outcome != "OK")
    if failed_steps:
        reasons = [*reasons, *(f"sweep step {step} failed" for step in failed_steps)]
        overall = "AT_RISK" if overall == "HEALTHY" else overall
    return {
        "experimentId": experiment_id, "state": doc["state"], "overall": overall, "reasons": reasons,
        "exposures": exposures, "unitsWithKpis": (snapshot or {}).get("unitsWithKpis") or {},
        "srm": srm_check.to_dict(), "expectedSplit": split, "rollout": rollout,
        "guardrails": verdicts, "latestSnapshotAgeSeconds": age,
        "latestSnapshotId": snapshot["snapshotId"] if snapshot else None,
        "sweep": sweep,
    }
