"""The scheduled sweep: per RUNNING experiment one snapshot per window, committed in one
transaction with the guardrail action it triggers (a second, concurrent sweep finds the snapshot
and does nothing; a crash midway leaves no half-done window), guardrails with always-valid
bounds; then rollout
auto-progression, ledger checkpoints and the outbox safety net. Reads aggregates only, so its
cost grows with variants x metrics x shards, never with units."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
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
from functions.services.experiments.transitions import apply_transition, record_event

log = logging.getLogger(__name__)


def window_start(now: datetime) -> datetime:
    seconds = settings().sweep_window_seconds
    return datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, UTC)


def snapshot_id(experiment_id: str, window: datetime, run_key: str | None = None) -> str:
    base = f"{experiment_id}__{window.strftime('%Y%m%dT%H%M%SZ')}"
    return f"{base}__{run_key}" if run_key else base


def sweep_experiment(doc: dict[str, Any], now: datetime, run_key: str | None = None) -> dict[str, Any]:
    """One snapshot per window, committed together with the action it triggers: a crash before
    the commit leaves nothing (the rerun redoes both), after it leaves both (the rerun skips).
    `run_key` names an on-demand run (an operator's "sweep now"), which gets its own snapshot
    instead of finding the scheduled one of the window and doing nothing."""
    eid = doc["id"]
    window = window_start(now)
    stats = aggregates.read(eid)
    verdicts = guardrails.evaluate(doc, stats)
    sid = snapshot_id(eid, window, run_key)
    snapshot_ref = db().collection(EXPERIMENT_SNAPSHOTS).document(sid)
    breach = guardrails.worst_breach(verdicts)
    experiment_ref = repository.ref(eid)

    @transactional
    def run(txn) -> tuple[bool, str | None]:
        if snapshot_ref.get(transaction=txn).exists:
            return True, None
        current = repository.load(txn, eid)
        acted = None
        if breach and current.get("state") == "RUNNING":
            head = ledger_store.read_head(txn, ledger_store.experiment_chain(eid))
            details = {**breach, "snapshotId": sid}
            reason = f"guardrail {breach['guardrail']} breached on {breach['arm']}: {breach['detail']}"
            if breach["action"] in ("KILL", "PAUSE"):
                apply_transition(txn, experiment_ref, current, breach["action"], SYSTEM.to_dict(), reason, details,
                                 head)
            else:
                record_event(txn, experiment_ref, current, "GUARDRAIL_ALERT", SYSTEM.to_dict(), "guardrail alert",
                             details, head)
            acted = breach["action"]
        txn.create(snapshot_ref, {
            "experimentId": eid, "windowStart": window, "takenAt": now, "state": current.get("state"),
            "rollout": current.get("rollout"), "units": aggregates.units_per_variant(stats),
            "stats": {v: {m: s.to_dict() for m, s in metrics.items()} for v, metrics in stats.items()},
            "guardrails": verdicts, "acted": acted,
        })
        return False, acted

    try:
        skipped, acted = run(db().transaction())
    except gexc.AlreadyExists:  # a concurrent sweep created this window's snapshot first
        skipped, acted = True, None
    if acted in ("KILL", "PAUSE"):
        repository.invalidate()
    if skipped:
        return {"experimentId": eid, "snapshot": sid, "skipped": True}
    return {"experimentId": eid, "snapshot": sid, "skipped": False, "acted": acted,
            "breached": sum(v["status"] == "BREACHED" for v in verdicts)}


def _hook(module: str, name: str, *args: Any) -> Any:
    """Optional steps owned by other modules (rollouts, ledger checkpoints)."""
    try:
        mod = __import__(module, fromlist=[name])
    except ImportError:
        return None
    return getattr(mod, name)(*args)


def run_sweep(now: datetime | None = None, run_key: str | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    running = [snap.to_dict() or {} for snap in
               db().collection(OFFER_EXPERIMENTS).where(filter=FieldFilter("state", "==", "RUNNING")).stream()]

    def one(doc: dict[str, Any]) -> tuple[dict[str, Any], Any]:
        try:
            result = sweep_experiment(doc, now, run_key)
        except AppError as err:
            result = {"experimentId": doc.get("id"), "error": err.code}
        return result, _hook("functions.services.rollouts.progression", "progress_experiment", doc["id"], now)

    # Experiments are independent and the work is round trips, so they are swept side by side;
    # one experiment's transient error no longer stops the others (it is raised afterwards, so
    # the tick is redelivered and the experiments already done skip).
    with ThreadPoolExecutor(max_workers=max(1, settings().sweep_workers)) as pool:
        futures = [pool.submit(one, doc) for doc in running]
    outcomes, failures = [], []
    for future in futures:
        try:
            outcomes.append(future.result())
        except Exception as exc:  # collected; the first is re-raised below
            failures.append(exc)
    if failures:
        raise failures[0]
    results = [result for result, _ in outcomes]
    rollouts = [progressed for _, progressed in outcomes if progressed]
    checkpoint = _hook("functions.services.ledger.checkpoints", "checkpoint_if_due", now)
    published = outbox.flush_all()
    return {"at": now.isoformat(), "experiments": results, "rollouts": rollouts,
            "checkpoint": checkpoint, "outboxPublished": published}
