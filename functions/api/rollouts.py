"""HTTP function `rollouts`: staged exposure plans and operator actions."""

from __future__ import annotations

from typing import Any

from functions.adapters.repositories.rollouts import PlanDoc
from functions.api.router import ANY_STAFF, RequestContext, Router
from functions.models.rollouts import (
    ActionRequest,
    AdvanceRequest,
    PlanChange,
    PlanRequest,
    ReasonRequired,
    RolloutEventList,
    RolloutEventOut,
    RolloutHealth,
    RolloutPlanOut,
)
from functions.services.experiments import repository as experiments
from functions.services.rollouts import actions, health, plans, store
from functions.services.rollouts.store import RolloutEventView

router = Router("rollouts", "Progressive rollouts", "Staged exposure with automatic, safe progression.")

ACT = frozenset({"operator", "pm"})


@router.put("/{experiment_id}/plan", roles=ACT, body=PlanRequest, response=PlanChange,
            summary="Create or replace the rollout plan (before the experiment starts)")
def put_plan(ctx: RequestContext, experiment_id: str, body: PlanRequest) -> plans.PlanChangeView:
    return plans.put_plan(experiment_id, body, ctx.actor)


@router.get("/{experiment_id}/plan", roles=ANY_STAFF, response=RolloutPlanOut,
            summary="The rollout plan with its stage history")
def get_plan(ctx: RequestContext, experiment_id: str) -> PlanDoc:
    return plans.get_plan(experiment_id)


@router.get("/{experiment_id}/health", roles=ANY_STAFF, response=RolloutHealth,
            summary="Current stage, time at stage, requirements and what blocks them, projected end")
def get_health(ctx: RequestContext, experiment_id: str) -> health.RolloutHealthView:
    return health.health(experiment_id)


@router.get("/{experiment_id}/events", roles=ANY_STAFF, response=RolloutEventList,
            summary="Every rollout change with its justification")
def events(ctx: RequestContext, experiment_id: str) -> dict[str, Any]:
    experiments.load(experiment_id)
    return {"events": store.list_events(experiment_id)}


@router.post("/{experiment_id}/pause", roles=ACT, body=ActionRequest, response=RolloutEventOut,
             summary="Freeze exposure; no progression")
def pause(ctx: RequestContext, experiment_id: str, body: ActionRequest) -> RolloutEventView:
    return actions.pause(experiment_id, ctx.actor, body.reason)


@router.post("/{experiment_id}/resume", roles=ACT, body=ActionRequest, response=RolloutEventOut,
             summary="Let the sweep progress again")
def resume(ctx: RequestContext, experiment_id: str, body: ActionRequest) -> RolloutEventView:
    return actions.resume(experiment_id, ctx.actor, body.reason)


@router.post("/{experiment_id}/rollback", roles=ACT, body=ReasonRequired, response=RolloutEventOut,
             summary="Back to the previous stage (and paused)")
def rollback(ctx: RequestContext, experiment_id: str, body: ReasonRequired) -> RolloutEventView:
    return actions.rollback(experiment_id, ctx.actor, body.reason)


@router.post("/{experiment_id}/abort", roles=ACT, body=ReasonRequired, response=RolloutEventOut,
             summary="Emergency abort: exposure to 0%, experiment killed, kill switch published")
def abort(ctx: RequestContext, experiment_id: str, body: ReasonRequired) -> RolloutEventView:
    return actions.abort(experiment_id, ctx.actor, body.reason)


@router.post("/{experiment_id}/approve", roles=frozenset({"approver", "operator", "pm"}), body=ActionRequest,
             response=RolloutEventOut,
             summary="Approve leaving the current stage (stages named in manualApprovalStages)")
def approve(ctx: RequestContext, experiment_id: str, body: ActionRequest) -> RolloutEventView:
    return actions.approve_stage(experiment_id, ctx.actor, body.reason)


@router.post("/{experiment_id}/advance", roles=ACT, body=AdvanceRequest, response=RolloutEventOut,
             summary="Advance one stage now (requirements must hold; admin override needs a reason)")
def advance(ctx: RequestContext, experiment_id: str, body: AdvanceRequest) -> RolloutEventView:
    return actions.advance(experiment_id, ctx.principal, body.reason, body.override)
