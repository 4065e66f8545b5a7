"""The one place that writes rollout state. Every change is one commit of: the plan, its
`rolloutEvents` entry (deterministic id, created), the experiment's `rollout` mirror with a
version bump and experimentEvents entry, and the ledger entry (via the experiments module's
record_event / apply_transition, so the experiment's history and chain stay one sequence)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from functions.adapters.repositories.experiments import ExperimentChanges, ExperimentDoc
from functions.adapters.repositories.ledger import Head
from functions.adapters.repositories.rollouts import (
    HistoryEntry,
    PlanDoc,
    RolloutEventDoc,
    RolloutEventExtra,
    RolloutEventRecord,
)
from functions.adapters.unit_of_work import UnitOfWork, reading
from functions.core.errors import ErrorCode, NotFound
from functions.core.rollout.plan import Change, ChangeKind, PlanState
from functions.core.rollout.requirements import RequirementResult
from functions.services.experiments.transitions import apply_transition, record_event

HISTORY_LIMIT = 200


class RolloutEventView(RolloutEventRecord):
    """What a rollout action answers (`RolloutEventOut`): the event, and the experiment after it."""

    at: str
    experimentVersion: int
    experimentState: str


def list_events(experiment_id: str) -> list[RolloutEventDoc]:
    return reading().rollouts.events(experiment_id)


def find_plan(experiment_id: str) -> PlanDoc | None:
    return reading().rollouts.plan(experiment_id)


def require_plan(experiment_id: str) -> PlanDoc:
    doc = find_plan(experiment_id)
    if doc is None:
        raise NotFound(f"experiment {experiment_id} has no rollout plan", code=ErrorCode.ROLLOUT_PLAN_NOT_FOUND)
    return doc


@dataclass(frozen=True)
class Read:
    """The read phase of a rollout transaction (Firestore reads every document before writing)."""

    experiment: ExperimentDoc
    plan: PlanDoc | None
    head: Head

    @property
    def state(self) -> PlanState:
        if self.plan is None:
            raise NotFound(f"experiment {self.experiment.get('id')} has no rollout plan",
                           code=ErrorCode.ROLLOUT_PLAN_NOT_FOUND)
        return PlanState.from_doc(self.plan)


def read(uow: UnitOfWork, experiment_id: str) -> Read:
    experiment = uow.experiments.get(experiment_id)
    plan = uow.rollouts.plan(experiment_id)
    head = uow.ledger.experiment_head(experiment_id)
    return Read(experiment, plan, head)


def commit(
    uow: UnitOfWork,
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
    extra: RolloutEventExtra | None = None,
) -> RolloutEventView:
    """Write one rollout change; with `kill`, the experiment is killed in the same commit."""
    eid = str(current.experiment["id"])
    event_id = change.event_id(eid)
    requirements = [r.to_dict() for r in results]
    record: RolloutEventRecord = {
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
    history: list[HistoryEntry] = list(current.plan.get("history") or []) if current.plan else []
    history.append({"seq": change.seq, "kind": change.kind.value, "fromStage": change.from_stage,
                    "toStage": change.to_stage, "at": now, "actor": actor, "reason": reason, "eventId": event_id})
    created_at = (current.plan.get("createdAt") if current.plan else None) or now
    uow.rollouts.save_plan(eid, {**state.to_doc(), "experimentId": eid, "createdAt": created_at, "updatedAt": now,
                                 "history": history[-HISTORY_LIMIT:]})
    uow.rollouts.add_event(event_id, {**record, "at": now})
    ledger_payload = {k: v for k, v in record.items() if k != "actor"}
    action = f"ROLLOUT_{change.kind.value}"
    updates: ExperimentChanges = {"rollout": state.mirror()}
    if kill is not None:
        details = {**kill, "rolloutEventId": event_id, "rollout": state.mirror()}
        after = apply_transition(uow, current.experiment, "KILL", actor, reason, details,
                                 current.head, updates=updates)
        uow.ledger.append(current.head, actor=actor, action=f"EXPERIMENT_{action}",
                          subject={"experimentId": eid},
                          payload={**ledger_payload, "experimentVersion": after["version"]})
    else:
        after = record_event(uow, current.experiment, action, actor, reason,
                             {"rolloutEventId": event_id, "fromStage": change.from_stage,
                              "toStage": change.to_stage}, current.head, updates=updates,
                             ledger_payload=ledger_payload)
    return {**record, "at": now.isoformat(), "experimentVersion": after["version"],
            "experimentState": after.get("state")}


