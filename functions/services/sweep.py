"""The scheduled sweep: per RUNNING experiment one snapshot per window (create() makes a second,
concurrent sweep a no-op), guardrails with always-valid bounds and their actions; then rollout
auto-progression, ledger checkpoints and the outbox safety net. Reads aggregates only, so its
cost grows with variants x metrics x shards, never with units."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from google.api_core import exceptions as gexc
from google.cloud.firestore_v1.base_query import FieldFilter

from functions.adapters import ledger_store, outbox
from functions.adapters.auth import SYSTEM
from functions.adapters.firestore import EXPERIMENT_SNAPSHOTS, OFFER_EXPERIMENTS, db, transactional
from functions.config import settings
from functions.core.errors import AppError
from functions.services.experiments import aggregates, guardrails, repository
from functions.services.experiments.transitions import record_event, transition

log = logging.getLogger(__name__)


def window_start(now: datetime) -> datetime:
    seconds = settings().sweep_window_seconds
    return datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, UTC)


def snapshot_id(experiment_id: str, window: datetime) -> str:
    return f"{experiment_id}__{window.strftime('%Y%m%dT%H%M%SZ')}"


def _alert(experiment_id: str, breach: dict[str, Any]) -> None:
    experiment_ref = repository.ref(experiment_id)

    @transactional
    def run(txn) -> None:
        current = repository.load(txn, experiment_id)
        head = ledger_store.read_head(txn, ledger_store.experiment_chain(experiment_id))
        record_event(txn, experiment_ref, current, "GUARDRAIL_ALERT", SYSTEM.to_dict(), "guardrail alert", breach,
                     head)

    run(db().transaction())


def sweep_experiment(doc: dict[str, Any], now: datetime) -> dict[str, Any]:
    eid = doc["id"]
    window = window_start(now)
    stats = aggregates.read(eid)
    verdicts = guardrails.evaluate(doc, stats)
    sid = snapshot_id(eid, window)
    snapshot = {
        "experimentId": eid, "windowStart": window, "takenAt": now, "state": doc.get("state"),
        "rollout": doc.get("rollout"), "units": aggregates.units_per_variant(stats),
        "stats": {v: {m: s.to_dict() for m, s in metrics.items()} for v, metrics in stats.items()},
        "guardrails": verdicts,
    }
    try:
        db().collection(EXPERIMENT_SNAPSHOTS).document(sid).create(snapshot)
    except gexc.AlreadyExists:
        return {"experimentId": eid, "snapshot": sid, "skipped": True}
    breach = guardrails.worst_breach(verdicts)
    acted = None
    if breach:
        details = {**breach, "snapshotId": sid}
        reason = f"guardrail {breach['guardrail']} breached on {breach['arm']}: {breach['detail']}"
        try:
            if breach["action"] in ("KILL", "PAUSE"):
                transition(eid, breach["action"], SYSTEM.to_dict(), reason, details)
            else:
                _alert(eid, details)
            acted = breach["action"]
        except AppError as err:  # e.g. already killed by a concurrent sweep or an operator
            log.info("guardrail action skipped", extra={"json_fields": {"experimentId": eid, "reason": err.code}})
    return {"experimentId": eid, "snapshot": sid, "skipped": False, "acted": acted,
            "breached": sum(v["status"] == "BREACHED" for v in verdicts)}


def _hook(module: str, name: str, *args: Any) -> Any:
    """Optional steps owned by other modules (rollouts, ledger checkpoints)."""
    try:
        mod = __import__(module, fromlist=[name])
    except ImportError:
        return None
    return getattr(mod, name)(*args)


def run_sweep(now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    running = db().collection(OFFER_EXPERIMENTS).where(filter=FieldFilter("state", "==", "RUNNING")).stream()
    results, rollouts = [], []
    for snap in running:
        doc = snap.to_dict() or {}
        try:
            results.append(sweep_experiment(doc, now))
        except AppError as err:
            results.append({"experimentId": doc.get("id"), "error": err.code})
        progressed = _hook("functions.services.rollouts.progression", "progress_experiment", doc["id"], now)
        if progressed:
            rollouts.append(progressed)
    checkpoint = _hook("functions.services.ledger.checkpoints", "checkpoint_if_due", now)
    published = outbox.flush_all()
    return {"at": now.isoformat(), "experiments": results, "rollouts": rollouts,
            "checkpoint": checkpoint, "outboxPublished": published}
