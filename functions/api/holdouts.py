"""HTTP function `holdouts`: cohorts, freezing, spillover links, health."""

from __future__ import annotations

from functions.api.router import ANY_STAFF, RequestContext, Router
from functions.models.holdouts import (
    Cohort,
    CohortCreate,
    CohortList,
    CohortUpdate,
    ComponentList,
    ComponentQuery,
    FreezeRequest,
    HealthReport,
    ListQuery,
    SpilloverLinkIn,
    SpilloverResult,
)
from functions.services.holdouts import cohorts, health, spillover

router = Router("holdouts", "Holdout cohorts", "Frozen holdouts, deterministic assignment, spillover isolation.")

PM = frozenset({"pm"})
LINK_WRITERS = frozenset({"service", "operator"})


@router.post("/cohorts", roles=PM, body=CohortCreate, response=Cohort, status=201)
def create_cohort(ctx: RequestContext, body: CohortCreate) -> Cohort:
    """Create an (unfrozen) holdout cohort."""
    return cohorts.create(body, ctx.actor)


@router.get("/cohorts", roles=ANY_STAFF, query=ListQuery, response=CohortList)
def list_cohorts(ctx: RequestContext, query: ListQuery) -> CohortList:
    """List cohorts (optionally only frozen or unfrozen ones)."""
    return CohortList(cohorts=cohorts.list_cohorts(query.frozen, query.limit))


@router.get("/cohorts/{cohort_id}", roles=ANY_STAFF, response=Cohort)
def get_cohort(ctx: RequestContext, cohort_id: str) -> Cohort:
    """One cohort."""
    return cohorts.get(cohort_id)


@router.patch("/cohorts/{cohort_id}", roles=PM, body=CohortUpdate, response=Cohort)
def update_cohort(ctx: RequestContext, cohort_id: str, body: CohortUpdate) -> Cohort:
    """Change a cohort; assignment fields of a frozen cohort are refused with 409 FROZEN_COHORT."""
    return cohorts.update(cohort_id, body, ctx.actor)


@router.post("/cohorts/{cohort_id}/freeze", roles=PM, body=FreezeRequest, response=Cohort)
def freeze_cohort(ctx: RequestContext, cohort_id: str, body: FreezeRequest) -> Cohort:
    """Freeze a cohort for good (idempotent)."""
    return cohorts.freeze(cohort_id, body, ctx.actor)


@router.get("/cohorts/{cohort_id}/health", roles=ANY_STAFF, response=HealthReport)
def cohort_health(ctx: RequestContext, cohort_id: str) -> HealthReport:
    """Size vs expected (chi-square), contamination, spanning components, status with reasons."""
    return health.report(cohort_id)


@router.get("/cohorts/{cohort_id}/components", roles=ANY_STAFF, query=ComponentQuery, response=ComponentList)
def spanning_components(ctx: RequestContext, cohort_id: str, query: ComponentQuery) -> ComponentList:
    """Connected components of linked units that hold units from both sides."""
    return spillover.spanning_components(cohort_id, query.limit)


@router.post("/spillover/links", roles=LINK_WRITERS, body=SpilloverLinkIn, response=SpilloverResult)
def ingest_link(ctx: RequestContext, body: SpilloverLinkIn) -> SpilloverResult:
    """Ingest one link event (idempotent per eventId); 409 SPILLOVER_BLOCKED when policy BLOCK refuses it."""
    result = spillover.ingest(body, ctx.actor)
    spillover.raise_if_blocked(result)
    return result
