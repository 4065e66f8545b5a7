"""HTTP function `assign`: the hot path apps call for holdout membership and variants."""

from __future__ import annotations

from functions.api.router import RequestContext, Router
from functions.models.assign import AssignBatchRequest, AssignBatchResponse, AssignRequest, UnitDecisionOut
from functions.services.holdouts import assign

router = Router("assign", "Assignment", "Holdout membership, experiment variants and rollout exposure per unit.")

CALLERS = frozenset({"service", "user"})


@router.post("/", roles=CALLERS, body=AssignRequest, response=UnitDecisionOut)
def assign_one(ctx: RequestContext, body: AssignRequest) -> UnitDecisionOut:
    """Decide one unit (a user may only ask for their own uid)."""
    assign.authorise(ctx.principal.uid, ctx.principal.roles, [body.unitId])
    outcome = assign.decide([body])
    assign.publish_exposures(outcome, ctx.request_id)
    return outcome.response.results[0]


@router.post("/batch", roles=CALLERS, body=AssignBatchRequest, response=AssignBatchResponse)
def assign_batch(ctx: RequestContext, body: AssignBatchRequest) -> AssignBatchResponse:
    """Decide up to 10,000 units in one call (backends)."""
    assign.authorise(ctx.principal.uid, ctx.principal.roles, [u.unitId for u in body.units])
    outcome = assign.decide(body.units)
    assign.publish_exposures(outcome, ctx.request_id)
    return outcome.response
