"""Creating or replacing a rollout plan: only before the experiment starts, so the stages the
approvers saw are the stages that run (a RUNNING rollout changes only through actions). The plan
is part of the approved content: changing it after submission voids the approvals."""

from __future__ import annotations

from typing import TypedDict

from functions.adapters.repositories.rollouts import PlanDoc
from functions.adapters.unit_of_work import UnitOfWork, atomically
from functions.core import four_eyes
from functions.core.clock import utc_now
from functions.core.errors import Conflict, ErrorCode, Unprocessable
from functions.core.lifecycle import Action
from functions.core.rollout.plan import PlanState, PlanStateDoc, new_plan
from functions.core.rollout.requirements import StageRequirements
from functions.core.rollout.stages import DEFAULT_STAGES, control_share, validate_stages
from functions.models.rollouts import PlanRequest, RequirementsIn
from functions.services.experiments import repository as experiments
from functions.services.experiments.definitions import edited_by
from functions.services.experiments.transitions import apply_transition
from functions.services.rollouts import store
from functions.services.rollouts.inputs import weights

EDITABLE_STATES = frozenset({"DRAFT", "PENDING_APPROVAL", "APPROVED"})


class PlanView(PlanStateDoc):
    experimentId: str


class PlanChangeView(TypedDict):
    """What a plan change answers (`PlanChange`): the new plan and its rollout event."""

    plan: PlanView
    event: store.RolloutEventView


def _requirements(body: PlanRequest, stages: tuple[float, ...]) -> tuple[StageRequirements, ...]:
    if body.perStage is not None and len(body.perStage) != len(stages):
        raise Unprocessable(f"perStage has {len(body.perStage)} entries for {len(stages)} stages",
                            code=ErrorCode.INVALID_REQUIREMENTS,
                            details={"reason": "perStage length must match stages"})
    unknown = [s for s in body.manualApprovalStages if not any(abs(s - t) < 1e-12 for t in stages)]
    if unknown:
        raise Unprocessable(f"manualApprovalStages {unknown} are not stages of the plan",
                            code=ErrorCode.INVALID_REQUIREMENTS, details={"reason": "unknown approval stage",
                                                                  "stages": list(stages), "unknown": unknown})
    out = []
    for i, stage in enumerate(stages):
        raw: RequirementsIn = body.perStage[i] if body.perStage is not None else body.requirements
        manual = any(abs(stage - s) < 1e-12 for s in body.manualApprovalStages)
        out.append(StageRequirements(raw.minTimeAtStageSeconds, raw.minUnitsPerArm, raw.noGuardrailViolation,
                                     raw.srmPass, raw.dataQuality, manual))
    return tuple(out)


def _content_changed(uow: UnitOfWork, current: store.Read, state: PlanState,
                     actor: dict[str, str]) -> store.Read:
    """A plan is part of what approvers approve: its author joins the editors (barred from approving
    it) and, once submitted, every approval is void and the experiment is PENDING_APPROVAL again."""
    experiment = current.experiment
    editors = edited_by(experiment, actor)
    if experiment.get("state") == "DRAFT":
        uow.experiments.update(experiment["id"], editors)
        return current
    four_eyes.check_approvable({**experiment, **editors})
    content_hash = four_eyes.content_hash(experiment["id"], experiments.definition_of(experiment), state.to_doc())
    after = apply_transition(uow, experiment, Action.EDIT.value, actor,
                             "rollout plan changed", {"changed": ["rolloutPlan"], "contentHash": content_hash,
                                                      "approvalsVoided": sorted(experiment.get("approvals") or {}),
                                                      "editor": actor["uid"]},
                             current.head, updates={"approvals": {}, "contentHash": content_hash, **editors})
    return store.Read(after, current.plan, current.head)


def put_plan(experiment_id: str, body: PlanRequest, actor: dict[str, str]) -> PlanChangeView:
    """Validate (422 with the reason) and store the plan, mirrored into the experiment."""
    if body.stages is not None:
        validate_stages(body.stages, 0.0)  # shape errors answer before any read; the capacity check needs the doc

    def work(uow: UnitOfWork) -> PlanChangeView:
        current = store.read(uow, experiment_id)
        state_name = current.experiment.get("state")
        if state_name not in EDITABLE_STATES:
            raise Conflict(f"the rollout plan of a {state_name} experiment cannot be replaced; use the "
                           "rollout actions", code=ErrorCode.ROLLOUT_PLAN_LOCKED, details={"state": state_name})
        stages = validate_stages(body.stages if body.stages is not None else DEFAULT_STAGES,
                                 control_share(weights(current.experiment)))
        previous = PlanState.from_doc(current.plan) if current.plan else None
        state, change = new_plan(stages, _requirements(body, stages), previous)
        now = utc_now()
        current = _content_changed(uow, current, state, actor)
        event = store.commit(uow, current, state, change, actor=actor, reason=body.reason or change.kind.value,
                             now=now, extra={"stages": list(stages),
                                             "requirementsByStage": [r.to_dict() for r in state.requirements]})
        return {"plan": {**state.to_doc(), "experimentId": experiment_id}, "event": event}

    result = atomically(work)
    return result


def get_plan(experiment_id: str) -> PlanDoc:
    experiments.load(experiment_id)
    return store.require_plan(experiment_id)
