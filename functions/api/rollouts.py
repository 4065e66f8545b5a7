"""HTTP function `rollouts`: staged exposure plans and operator actions."""

from __future__ import annotations

from functions.api.router import ANY_STAFF, RequestContext, Router
from functions.models.rollouts import ActionRequest, AdvanceRequest, PlanRequest, ReasonRequired
from functions.services.experiments import repository as experiments
from functions.services.rollouts import actions, health, plans, store

router = Router("rollouts", "Progressive rollouts", "Staged exposure with automatic, safe progression.")
ACT = frozenset({"operator", "pm"})


@router.put("/{experiment_id}/plan", roles=ACT, body=PlanRequest,
            summary="Create or replace the rollout plan (before the experiment starts)")
def put_plan(ctx: RequestContext, experiment_id: str, body: PlanRequest):
    return plans.put_plan(experiment_id, body, ctx.actor)


@router.get("/{experiment_id}/plan", roles=ANY_STAFF, summary="The rollout plan with its stage history")
def get_plan(ctx: RequestContext, experiment_id: str):
    return plans.get_plan(experiment_id)


@router.get("/{experiment_id}/health", roles=ANY_STAFF,
            summary="Current stage, time at stage, requirements and what blocks them, projected end")
def get_health(ctx: RequestContext, experiment_id: str):
    return health.health(experiment_id)


@router.get("/{experiment_id}/events", roles=ANY_STAFF, summary="Every rollout change with its justification")
def events(ctx: RequestContext, experiment_id: str):
    experiments.load(None, experiment_id)
    return {"events": store.list_events(experiment_id)}


@router.post("/{experiment_id}/pause", roles=ACT, body=ActionRequest, summary="Freeze exposure; no progression")
def pause(ctx: RequestContext, experiment_id: str, body: ActionRequest):
    return actions.pause(experiment_id, ctx.actor, body.reason)


@router.post("/{experiment_id}/resume", roles=ACT, body=ActionRequest, summary="Let the sweep progress again")
def resume(ctx: RequestContext, experiment_id: str, body: ActionRequest):
    return actions.resume(experiment_id, ctx.actor, body.reason)


@router.post("/{experiment_id}/rollback", roles=ACT, body=ReasonRequired,
             summary="Back to the previous stage (and paused)")
def rollback(ctx: RequestContext, experiment_id: str, body: ReasonRequired):
    return actions.rollback(experiment_id, ctx.actor, body.reason)


@router.post("/{experiment_id}/abort", roles=ACT, body=ReasonRequired,
             summary="Emergency abort: exposure to 0%, experiment killed, kill switch published")
def abort(ctx: RequestContext, experiment_id: str, body: ReasonRequired):
    return actions.abort(experiment_id, ctx.actor, body.reason)


@router.post("/{experiment_id}/approve", roles=frozenset({"approver", "operator", "pm"}), body=ActionRequest,
             summary="Approve leaving the current stage (stages named in manualApprovalStages)")
def approve(ctx: RequestContext, experiment_id: str, body: ActionRequest):
    return actions.approve_stage(experiment_id, ctx.actor, body.reason)


@router.post("/{experiment_id}/advance", roles=ACT, body=AdvanceRequest,
             summary="Advance one stage now (requirements must hold; admin override needs a reason)")
def advance(ctx: RequestContext, experiment_id: str, body: AdvanceRequest):
    return actions.advance(experiment_id, ctx.principal, body.reason, body.override)
