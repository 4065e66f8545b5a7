"""HTTP function `experiments`: definition, approvals, lifecycle, KPI batches, health, sweep."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from functions.adapters.repositories.experiments import ExperimentDoc
from functions.api.router import ANY_STAFF, RequestContext, Router
from functions.models.common import StrictModel
from functions.models.experiments import (
    ApproveRequest,
    ContentHashOut,
    CreateExperiment,
    ExperimentEventList,
    ExperimentHealth,
    ExperimentList,
    ExperimentOut,
    ExperimentOverview,
    KpiBatch,
    KpiIngestResult,
    LifecycleRequest,
    LifecycleResult,
    OptionalReason,
    Reason,
    SnapshotSeries,
    SummaryList,
    SweepResult,
    UpdateExperiment,
)
from functions.services import sweep
from functions.services.experiments import (
    approvals,
    definitions,
    health,
    kpi,
    overview,
    repository,
    start,
    transitions,
    views,
)
from functions.services.experiments.lifecycle_helper import LifecycleView, intended_hash, run_full_lifecycle

router = Router("experiments", "Offer experiments", "Lifecycle, approvals, KPI ingestion, guardrails.")
PM = frozenset({"pm"})
OPERATOR = frozenset({"operator", "pm"})


class ListQuery(StrictModel):
    state: str | None = Field(default=None, pattern=r"^[A-Z_]{1,30}$")
    limit: int = Field(default=100, ge=1, le=500)


class SeriesQuery(StrictModel):
    limit: int = Field(default=views.SERIES_LIMIT, ge=1, le=views.SERIES_LIMIT)


def _out(doc: ExperimentDoc) -> ExperimentOut:
    return repository.to_out(doc)


@router.post("/kpi-events", roles={"service"}, body=KpiBatch, response=KpiIngestResult,
             summary="Ingest a batch of KPI observations")
def ingest_kpis(ctx: RequestContext, body: KpiBatch) -> dict[str, Any]:
    return kpi.ingest(body.events).to_dict()


@router.post("/lifecycle", roles=PM, body=LifecycleRequest, response=LifecycleResult, status=201,
             summary="runFullExperimentLifecycle: create, submit, approve (bound approver tokens), start; "
                     "all or nothing")
def lifecycle(ctx: RequestContext, body: LifecycleRequest) -> LifecycleView:
    return run_full_lifecycle(body, ctx.principal)


@router.post("/lifecycle/content-hash", roles=ANY_STAFF, body=CreateExperiment, response=ContentHashOut,
             summary="The content hash a lifecycle call for this definition binds its approver tokens to")
def lifecycle_content_hash(ctx: RequestContext, body: CreateExperiment) -> ContentHashOut:
    definitions.validate_definition(body)
    return ContentHashOut(experimentId=body.id or "", contentHash=intended_hash(body))


@router.post("/sweep", roles={"operator"}, response=SweepResult,
              summary="Run the sweep now (normally Cloud Scheduler does)")
def run_sweep_now(ctx: RequestContext) -> sweep.SweepResultView:
    # Its own snapshot, keyed on the request id: a retried request does not sweep twice.
    return sweep.run_sweep(run_key=f"manual-{ctx.request_id}")


@router.post("/", roles=PM, body=CreateExperiment, response=ExperimentOut, status=201,
             summary="Create an experiment (needs a frozen holdout)")
def create(ctx: RequestContext, body: CreateExperiment) -> ExperimentOut:
    return _out(definitions.create(body, ctx.actor))


@router.get("/", roles=ANY_STAFF, query=ListQuery, response=ExperimentList, summary="List experiments")
def list_all(ctx: RequestContext, query: ListQuery) -> ExperimentList:
    return ExperimentList(experiments=[_out(d) for d in repository.list_experiments(query.state, query.limit)])


@router.get("/summaries", roles=ANY_STAFF, query=ListQuery, response=SummaryList,
            summary="One line per experiment: owner, start, days running, stage, verdict, guardrails, approvals")
def list_summaries(ctx: RequestContext, query: ListQuery) -> SummaryList:
    return SummaryList.model_validate({"experiments": views.summaries(query.state, query.limit)})


@router.get("/{experiment_id}", roles=ANY_STAFF, response=ExperimentOut, summary="Get one experiment")
def get(ctx: RequestContext, experiment_id: str) -> ExperimentOut:
    return _out(repository.load(experiment_id))


@router.put("/{experiment_id}", roles=PM, body=UpdateExperiment, response=ExperimentOut,
            summary="Replace the definition (before start; voids approvals)")
def update(ctx: RequestContext, experiment_id: str, body: UpdateExperiment) -> ExperimentOut:
    return _out(definitions.update(experiment_id, body.definition, ctx.actor, body.expectedVersion))


@router.post("/{experiment_id}/submit", roles=PM, body=OptionalReason, response=ExperimentOut)
def submit(ctx: RequestContext, experiment_id: str, body: OptionalReason) -> ExperimentOut:
    """Submit for approval."""
    return _out(approvals.submit(experiment_id, ctx.actor, body.expectedVersion))


@router.post("/{experiment_id}/approve", roles={"approver"}, body=ApproveRequest, response=ExperimentOut)
def approve(ctx: RequestContext, experiment_id: str, body: ApproveRequest) -> ExperimentOut:
    """Approve the current content (four eyes: never the author or an editor; see docs/approvals.md)."""
    return _out(approvals.approve(experiment_id, ctx.principal, body.comment, body.contentHash))


@router.post("/{experiment_id}/reject", roles={"approver"}, body=Reason, response=ExperimentOut)
def reject(ctx: RequestContext, experiment_id: str, body: Reason) -> ExperimentOut:
    """Reject with a reason (back to DRAFT)."""
    return _out(approvals.reject(experiment_id, ctx.principal, body.reason))


@router.post("/{experiment_id}/start", roles=OPERATOR, body=OptionalReason, response=ExperimentOut)
def start_experiment(ctx: RequestContext, experiment_id: str, body: OptionalReason) -> ExperimentOut:
    """Start an APPROVED experiment (allocates its layer slice, pre-registers the plan)."""
    return _out(start.start(experiment_id, ctx.actor, body.expectedVersion))


def _transition_route(action: str, needs_reason: bool) -> None:
    model = Reason if needs_reason else OptionalReason

    def handler(ctx: RequestContext, experiment_id: str, body: Reason | OptionalReason) -> ExperimentOut:
        return _out(transitions.transition(experiment_id, action, ctx.actor, body.reason, {},
                                           body.expectedVersion))

    handler.__name__ = f"{action.lower()}_experiment"
    router.post(f"/{{experiment_id}}/{action.lower()}", roles=OPERATOR, body=model, response=ExperimentOut,
                summary=f"{action.title()} the experiment")(handler)


for _action, _needs_reason in (("PAUSE", True), ("RESUME", False), ("KILL", True), ("COMPLETE", False),
                               ("CANCEL", False)):
    _transition_route(_action, _needs_reason)


@router.get("/{experiment_id}/health", roles=ANY_STAFF, response=ExperimentHealth,
             summary="Exposure, SRM, guardrails, snapshot age")
def get_health(ctx: RequestContext, experiment_id: str) -> health.ExperimentHealthView:
    return health.health(experiment_id)


@router.get("/{experiment_id}/snapshots", roles=ANY_STAFF, query=SeriesQuery, response=SnapshotSeries,
            summary="Snapshot series oldest first: units per arm and guardrail verdicts over time")
def snapshots(ctx: RequestContext, experiment_id: str, query: SeriesQuery) -> SnapshotSeries:
    repository.load(experiment_id)
    return SnapshotSeries.model_validate({"experimentId": experiment_id,
                                          "snapshots": views.snapshot_series(experiment_id, query.limit)})


@router.get("/{experiment_id}/overview", roles=ANY_STAFF, query=SeriesQuery, response=ExperimentOverview,
            summary="The experiment, its health and its snapshot series in one read (one document read, "
                    "one snapshot query)")
def get_overview(ctx: RequestContext, experiment_id: str, query: SeriesQuery) -> ExperimentOverview:
    return ExperimentOverview.model_validate(overview.overview(experiment_id, query.limit))


@router.get("/{experiment_id}/events", roles=ANY_STAFF, response=ExperimentEventList,
             summary="The experiment's event history")
def events(ctx: RequestContext, experiment_id: str) -> dict[str, Any]:
    repository.load(experiment_id)
    return {"events": repository.events(experiment_id)}
