"""The one place that writes rollout state. Every change is one commit of: the plan, its
`rolloutEvents` entry (deterministic id, created), the experiment's `rollout` mirror with a
version bump and experimentEvents entry, and the ledger entry (via the experiments module's
record_event / apply_transition, so the experiment's history and chain stay one sequence)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from functions.adapters import ledger_store
from functions.adapters.firestore import ROLLOUT_EVENTS, ROLLOUT_PLANS, db
from functions.core.errors import ErrorCode, NotFound
from functions.core.rollout.plan import Change, ChangeKind, PlanState
from functions.core.rollout.requirements import RequirementResult
from functions.services.experiments import repository as experiments
from functions.services.experiments.transitions import apply_transition, record_event

HISTORY_LIMIT = 200


def plan_ref(experiment_id: str) -> firestore.DocumentReference:
    return db().collection(ROLLOUT_PLANS).document(experiment_id)


def event_ref(event_id: str) -> firestore.DocumentReference:
    return db().collection(ROLLOUT_EVENTS).document(event_id)


def read_plan(txn: firestore.Transaction | None, experiment_id: str) -> dict[str, Any] | None:
    snap = plan_ref(experiment_id).get(transaction=txn)
    return (snap.to_dict() or {}) if snap.exists else None


def list_events(experiment_id: str) -> list[dict[str, Any]]:
    query = db().collection(ROLLOUT_EVENTS).where(filter=FieldFilter("experimentId", "==", experiment_id))
    return sorted((s.to_dict() or {} for s in query.stream()), key=lambda d: d["seq"])


def require_plan(txn: firestore.Transaction | None, experiment_id: str) -> dict[str, Any]:
    doc = read_plan(txn, experiment_id)
    if doc is None:
        raise NotFound(f"experiment {experiment_id} has no rollout plan", code=ErrorCode.ROLLOUT_PLAN_NOT_FOUND)
    return doc


@dataclass(frozen=True)
class Read:
    """The read phase of a rollout transaction (Firestore reads every document before writing)."""

    experiment: dict[str, Any]
    plan: dict[str, Any] | None
    head: ledger_store.Head

    @property
    def state(self) -> PlanState:
        if self.plan is None:
            raise NotFound(f"experiment {self.experiment.get('id')} has no rollout plan",
                           code=ErrorCode.ROLLOUT_PLAN_NOT_FOUND)
        return PlanState.from_doc(self.plan)


def read(txn: firestore.Transaction, experiment_id: str) -> Read:
    experiment = experiments.load(txn, experiment_id)
    plan = read_plan(txn, experiment_id)
    head = ledger_store.read_head(txn, ledger_store.experiment_chain(experiment_id))
    return Read(experiment, plan, head)


def commit(
    txn: firestore.Transaction,
    current: Read,
    state: PlanState,
    change: Change,
    *,
    actor: dict[str, str],
    reason: str,
    now: datetime,
    results: Sequence[RequirementResult] = (),
    exposures: Mapping[str, int] | None = None,
    kill: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write one rollout change; with `kill`, the experiment is killed in the same commit."""
    eid = str(current.experiment["id"])
    event_id = change.event_id(eid)
    requirements = [r.to_dict() for r in results]
    record = {
        "eventId": event_id, "experimentId": eid, "seq": change.seq, "kind": change.kind.value,
        "fromStage": change.from_stage, "toStage": change.to_stage, "stageIndex": state.index,
        "status": state.status.value, "maxStageReached": state.max_stage_reached,
        "planVersion": state.plan_version, "actor": actor, "reason": reason, "requirements": requirements,
        "exposures": dict(exposures or {}), **(extra or {}),
    }
    if change.kind in (ChangeKind.ROLLBACK, ChangeKind.ABORT):
        # Units whose bucket lies in [to, maxStageReached) saw treatment and now get control; the
        # assignment marks them ROLLED_BACK, and this band lets analysis find them from the ledger.
        record["returnedToControl"] = {"bucketFrom": state.stage, "bucketTo": state.max_stage_reached}
    history = list((current.plan or {}).get("history") or [])
    history.append({"seq": change.seq, "kind": change.kind.value, "fromStage": change.from_stage,
                    "toStage": change.to_stage, "at": now, "actor": actor, "reason": reason, "eventId": event_id})
    created_at = (current.plan or {}).get("createdAt") or now
    txn.set(plan_ref(eid), {**state.to_doc(), "experimentId": eid, "createdAt": created_at, "updatedAt": now,
                            "history": history[-HISTORY_LIMIT:]})
    txn.create(event_ref(event_id), {**record, "at": now})
    ledger_payload = {k: v for k, v in record.items() if k != "actor"}
    action = f"ROLLOUT_{change.kind.value}"
    updates = {"rollout": state.mirror()}
    experiment_ref = experiments.ref(eid)
    if kill is not None:
        details = {**kill, "rolloutEventId": event_id, "rollout": state.mirror()}
        after = apply_transition(txn, experiment_ref, current.experiment, "KILL", actor, reason, details,
                                 current.head, updates=updates)
        ledger_store.append(txn, current.head, actor=actor, action=f"EXPERIMENT_{action}",
                            subject={"experimentId": eid},
                            payload={**ledger_payload, "experimentVersion": after["version"]})
    else:
        after = record_event(txn, experiment_ref, current.experiment, action, actor, reason,
                             {"rolloutEventId": event_id, "fromStage": change.from_stage,
                              "toStage": change.to_stage}, current.head, updates=updates,
                             ledger_payload=ledger_payload)
    return {**record, "at": now.isoformat(), "experimentVersion": after["version"],
            "experimentState": after.get("state")}


def now_utc() -> datetime:
    return datetime.now(UTC)

