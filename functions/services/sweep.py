"""The scheduled sweep: per RUNNING experiment one snapshot per window, committed in one
transaction with the guardrail action it triggers (a second, concurrent sweep finds the snapshot
and does nothing; a crash midway leaves no half-done window), guardrails with always-valid
bounds; then rollout auto-progression, ledger checkpoints and the outbox safety net. Every step
is imported statically and reports its outcome: a step that fails is named in the result and in
the status health reads, never skipped silently. The statistics of all running experiments come
from one metric-store query that returns sums per experiment, arm and metric."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Required, TypedDict

from google.api_core import exceptions as gexc

from functions.adapters import outbox
from functions.adapters.auth import SYSTEM
from functions.adapters.repositories.experiments import ExperimentDoc
from functions.adapters.repositories.snapshots import SweepFailure, SweepStatusDoc
from functions.adapters.unit_of_work import UnitOfWork, atomically, reading
from functions.config import settings
from functions.core.clock import utc_now
from functions.core.errors import AppError
from functions.services.experiments import guardrails
from functions.services.experiments.health import SweepStatusView
from functions.services.experiments.transitions import apply_transition, record_event
from functions.services.ledger import checkpoints
from functions.services.metrics import snapshot_stats
from functions.services.rollouts import progression

log = logging.getLogger(__name__)


def window_start(now: datetime) -> datetime:
    seconds = settings().sweep_window_seconds
    return datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, UTC)


def snapshot_id(experiment_id: str, window: datetime, run_key: str | None = None) -> str:
    base = f"{experiment_id}__{window.strftime('%Y%m%dT%H%M%SZ')}"
    return f"{base}__{run_key}" if run_key else base


class SweptExperiment(TypedDict, total=False):
    """One experiment's outcome in a sweep (`models.experiments.SweptExperiment`)."""

    experimentId: Required[str | None]
    snapshot: str
    skipped: bool
    acted: str | None
    breached: int
    error: str  # the error code when this experiment's snapshot failed


def sweep_experiment(doc: ExperimentDoc, now: datetime, run_key: str | None = None,
                     stats: snapshot_stats.ExperimentStats | None = None) -> SweptExperiment:
    """One snapshot per window, committed together with the action it triggers: a crash before
    the commit leaves nothing (the rerun redoes both), after it leaves both (the rerun skips).
    `run_key` names an on-demand run (an operator's "sweep now"), which gets its own snapshot
    instead of finding the scheduled one of the window and doing nothing."""
    eid = doc["id"]
    window = window_start(now)
    if stats is None:  # one experiment on its own
        stats = snapshot_stats.read([doc])[eid]
    verdicts = guardrails.evaluate(doc, stats.stats)
    sid = snapshot_id(eid, window, run_key)
    breach = guardrails.worst_breach(verdicts)

    def work(uow: UnitOfWork) -> tuple[bool, str | None]:
        if uow.snapshots.exists(sid):
            return True, None
        current = uow.experiments.get(eid)
        acted = None
        if breach and current.get("state") == "RUNNING":
            head = uow.ledger.experiment_head(eid)
            details = {**breach, "snapshotId": sid}
            reason = f"guardrail {breach['guardrail']} breached on {breach['arm']}: {breach['detail']}"
            if breach["action"] in ("KILL", "PAUSE"):
                apply_transition(uow, current, breach["action"], SYSTEM.to_dict(), reason, details, head)
            else:
                record_event(uow, current, "GUARDRAIL_ALERT", SYSTEM.to_dict(), "guardrail alert", details, head)
            acted = breach["action"]
        uow.snapshots.create(sid, {
            "experimentId": eid, "windowStart": window, "takenAt": now, "state": current.get("state"),
            "rollout": current.get("rollout"), "units": stats.units_per_arm(), "unitsWithKpis": stats.with_data,
            "stats": {v: {m: s.to_dict() for m, s in metrics.items()} for v, metrics in stats.stats.items()},
            "guardrails": verdicts, "acted": acted,
        })
        return False, acted

    try:
        skipped, acted = atomically(work)
    except gexc.AlreadyExists:  # a concurrent sweep created this window's snapshot first
        skipped, acted = True, None
    if skipped:
        return {"experimentId": eid, "snapshot": sid, "skipped": True}
    return {"experimentId": eid, "snapshot": sid, "skipped": False, "acted": acted,
            "breached": sum(v["status"] == "BREACHED" for v in verdicts)}


STEPS = ("snapshots", "rollouts", "checkpoint", "outbox")


class SweepResultView(SweepStatusView):
    """What a sweep answers (`models.experiments.SweepResult`)."""

    experiments: list[SweptExperiment]
    rollouts: list[dict[str, Any]]  # progression summaries of the rollouts that moved
    checkpoint: dict[str, Any] | None
    outboxPublished: int


def _failure(step: str, exc: BaseException, experiment_id: str | None = None) -> SweepFailure:
    code = exc.code if isinstance(exc, AppError) else type(exc).__name__
    failure: SweepFailure = {"step": step, "code": code, "message": str(exc)[:300]}
    if experiment_id:
        failure["experimentId"] = experiment_id
    log.error("sweep step failed", extra={"json_fields": failure})
    return failure


def _step(step: str, failures: list[SweepFailure], fn: Any, *args: Any, experiment_id: str | None = None) -> Any:
    """Run one step; a step that cannot run is recorded as failed, and the others still run."""
    try:
        return fn(*args)
    except Exception as exc:
        failures.append(_failure(step, exc, experiment_id))
        return None


def _record_status(now: datetime, failures: list[SweepFailure]) -> SweepStatusView:
    steps = {step: "FAILED" if any(f["step"] == step for f in failures) else "OK" for step in STEPS}
    status: SweepStatusDoc = {"at": now, "ok": not failures, "steps": steps, "failures": failures[:50]}
    try:
        atomically(lambda uow: uow.snapshots.save_sweep_status(status))
    except Exception as exc:  # the result still says so; the scheduler's retry tries again
        failures.append(_failure("status", exc))
    return {**status, "at": now.isoformat()}


def run_sweep(now: datetime | None = None, run_key: str | None = None) -> SweepResultView:
    """Every step runs even when another failed (a broken rollout step must not switch off
    checkpoints or the outbox); failures are named in the result and in `experimentSnapshots/_sweep`,
    which experiment health reports."""
    now = now or utc_now()
    running = reading().experiments.all("RUNNING", limit=None)
    failures: list[SweepFailure] = []
    # one metric-store query for every running experiment; if it cannot run, no snapshot is
    # written (a snapshot of no data would read as "nothing happened"), and the step says so
    stats = _step("snapshots", failures, snapshot_stats.read, running)

    def one(doc: ExperimentDoc) -> tuple[SweptExperiment, Any]:
        eid = doc.get("id")
        result: SweptExperiment
        try:
            if stats is None:
                result = {"experimentId": eid, "error": "METRIC_STORE_UNAVAILABLE"}
            else:
                result = sweep_experiment(doc, now, run_key, stats.get(str(eid)))
        except AppError as err:
            result = {"experimentId": eid, "error": err.code}
            failures.append(_failure("snapshots", err, eid))
        except Exception as exc:
            result = {"experimentId": eid, "error": type(exc).__name__}
            failures.append(_failure("snapshots", exc, eid))
        return result, _step("rollouts", failures, progression.progress_experiment, eid, now, experiment_id=eid)

    # Experiments are independent and the work is round trips, so they are swept side by side;
    # one experiment's error does not stop the others.
    with ThreadPoolExecutor(max_workers=max(1, settings().sweep_workers)) as pool:
        outcomes = list(pool.map(one, running))
    results = [result for result, _ in outcomes]
    rollouts = [progressed for _, progressed in outcomes if progressed]
    checkpoint = _step("checkpoint", failures, checkpoints.checkpoint_if_due, now)
    if isinstance(checkpoint, dict) and checkpoint.get("refused"):
        # The ledger refused to sign (it alerted on its own topic): a failed step here too, but
        # not one a redelivered tick can mend, so it does not ask for one.
        failures.append({"step": "checkpoint", "code": checkpoint.get("code", "CHECKPOINT_REFUSED"),
                         "message": "; ".join(map(str, checkpoint.get("problems", [])))[:300], "retry": False})
    published = _step("outbox", failures, outbox.flush_all) or 0
    status = _record_status(now, failures)
    return {"at": now.isoformat(), "experiments": results, "rollouts": rollouts,
            "checkpoint": checkpoint, "outboxPublished": published,
            "ok": status["ok"], "steps": status["steps"], "failures": status["failures"]}
