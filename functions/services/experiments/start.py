"""Starting an experiment: holdout still frozen, a free slice of its mutual-exclusion layer,
and the analysis plan pre-registered in the ledger, all in the START commit."""

from __future__ import annotations

from functions.adapters.repositories.experiments import ExperimentChanges, ExperimentDoc
from functions.adapters.repositories.ledger import Head
from functions.adapters.unit_of_work import UnitOfWork, atomically
from functions.core import four_eyes
from functions.core.clock import utc_now
from functions.core.errors import Conflict, ErrorCode
from functions.core.ledger.preregistration import analysis_plan, plan_hash
from functions.core.lifecycle import Action, next_state
from functions.services.experiments.approvals import current_hash
from functions.services.experiments.definitions import require_frozen_holdout
from functions.services.experiments.transitions import apply_transition


def free_range(occupied: list[tuple[float, float]], width: float) -> tuple[float, float] | None:
    """First gap of at least `width` in [0, 1) between occupied ranges."""
    cursor = 0.0
    for lo, hi in sorted(occupied):
        if lo - cursor >= width - 1e-12:
            return cursor, cursor + width
        cursor = max(cursor, hi)
    return (cursor, cursor + width) if 1.0 - cursor >= width - 1e-12 else None


def read_layer(uow: UnitOfWork, current: ExperimentDoc) -> list[tuple[float, float]]:
    """The slices of the experiment's layer that live experiments hold."""
    layer = current.get("layer")
    if not layer:
        return []
    return [(float(d["layerRange"][0]), float(d["layerRange"][1])) for d in uow.experiments.in_layer(layer)
            if d.get("state") in ("RUNNING", "PAUSED") and d.get("layerRange")]


def stage_start(uow: UnitOfWork, current: ExperimentDoc, actor: dict[str, str],
                head: Head, occupied: list[tuple[float, float]], content_hash: str) -> ExperimentDoc:
    """409 unless APPROVED with approvals on `content_hash` (the content as it runs); then start."""
    next_state(current.get("state", ""), Action.START.value)
    approvers = four_eyes.check_covered(current, content_hash)
    updates: ExperimentChanges = {"startedAt": utc_now()}
    if current.get("layer"):
        slot = free_range(occupied, float(current.get("layerShare", 1.0)))
        if slot is None:
            raise Conflict(f"layer {current['layer']} has no free share of {current.get('layerShare')}",
                           code=ErrorCode.LAYER_FULL, details={"occupied": occupied})
        updates["layerRange"] = list(slot)
    else:
        updates["layerRange"] = [0.0, 1.0]
    plan = analysis_plan(current)
    updates["planHash"] = plan_hash(plan)
    updates.setdefault("rollout", current.get("rollout") or {"stage": None, "maxStageReached": None,
                                                              "status": "FULL"})
    experiment_id = current["id"]
    uow.ledger.append(head, actor=actor, action="PLAN_PREREGISTERED", subject={"experimentId": experiment_id},
                      payload={"planHash": updates["planHash"], "plan": plan})
    return apply_transition(uow, current, Action.START.value, actor, "started",
                            {"layerRange": updates["layerRange"], "planHash": updates["planHash"],
                             "contentHash": content_hash, "approvers": approvers}, head, updates=updates)


def start(experiment_id: str, actor: dict[str, str], expected_version: int | None = None) -> ExperimentDoc:
    def work(uow: UnitOfWork) -> ExperimentDoc:
        current = uow.experiments.get(experiment_id, expected_version)
        require_frozen_holdout(uow, current.get("holdoutCohortId"))
        content_hash = current_hash(uow, current)
        occupied = read_layer(uow, current)
        head = uow.ledger.experiment_head(experiment_id)
        return stage_start(uow, current, actor, head, occupied, content_hash)

    after = atomically(work)
    return after
