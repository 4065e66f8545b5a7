"""HTTP function `analytics`: bias-corrected analyses, replay, fraud flags, power."""

from __future__ import annotations

import math
from typing import Any

from pydantic import Field

from functions.api.router import ANY_STAFF, RequestContext, Router
from functions.core.stats import power
from functions.models.analytics import (
    AnalysisList,
    AnalysisRequest,
    AnalysisView,
    FraudBatch,
    FraudRecorded,
    MetricProfile,
    MetricProfileQuery,
    PowerRequest,
    PowerResult,
    ReplayResult,
)
from functions.models.common import Id, StrictModel
from functions.services.analytics import analyses, fraud, metric_profile, programme

router = Router("analytics", "Bias-corrected analytics", "Exclusions, corrections, tests, data quality, trust.")

RUNNERS = frozenset({"pm", "operator"})


@router.post("/experiments/{experiment_id}/analyses", roles=RUNNERS, body=AnalysisRequest, response=AnalysisView,
             status=201, summary="Run and publish a new immutable analysis")
def run_analysis(ctx: RequestContext, experiment_id: str, body: AnalysisRequest) -> analyses.AnalysisResultView:
    return analyses.run(experiment_id, body, ctx.actor)


@router.get("/experiments/{experiment_id}/analyses", roles=ANY_STAFF, response=AnalysisList,
            summary="Analyses of an experiment")
def list_analyses(ctx: RequestContext, experiment_id: str) -> dict[str, list[analyses.AnalysisSummaryView]]:
    return {"analyses": analyses.list_for(experiment_id)}


@router.get("/analyses/{analysis_id}", roles=ANY_STAFF, response=AnalysisView, summary="One stored analysis")
def get_analysis(ctx: RequestContext, analysis_id: str) -> analyses.AnalysisResultView:
    return analyses.to_view(analyses.get(analysis_id))


class ProgrammeQuery(StrictModel):
    metric: Id = "revenue"
    cohortId: Id | None = None


class ProgrammeEffect(StrictModel):
    metric: str
    cohortId: str
    cohortName: str
    shippedVariants: list[str] = Field(description="experimentId/variant of every shipped variant")
    holdoutExperiments: list[str] = Field(description="experiments drawing their holdout from the cohort")
    contaminatedExcluded: int = Field(description="units both held out and exposed to a shipped variant")
    estimate: dict[str, Any] = Field(description="Welch estimate: control = holdout, treatment = shipped; "
                                                 "diff, diffCi, lift, liftCi, pValue, estimand")


@router.get("/programme/holdout-effect", roles=ANY_STAFF, query=ProgrammeQuery, response=ProgrammeEffect,
            summary="Long-term effect of every shipped variant against the global holdout")
def programme_effect(ctx: RequestContext, query: ProgrammeQuery) -> ProgrammeEffect:
    return ProgrammeEffect.model_validate(programme.holdout_effect(query.metric, query.cohortId))


@router.get("/metrics/{metric}/profile", roles=ANY_STAFF, query=MetricProfileQuery, response=MetricProfile,
            summary="A metric's per-unit shape over its history (sets a KPI's historicalSkewness)")
def profile_metric(ctx: RequestContext, metric: str, query: MetricProfileQuery) -> dict[str, Any]:
    return metric_profile.profile(metric, query.days, query.experimentId)


@router.post("/analyses/{analysis_id}/replay", roles=ANY_STAFF, response=ReplayResult,
             summary="Recompute a stored verdict offline")
def replay(ctx: RequestContext, analysis_id: str) -> analyses.ReplayView:
    return analyses.replay(analysis_id)


@router.post("/fraud-flags", roles={"service"}, body=FraudBatch, response=FraudRecorded,
             summary="Flag units as fraudulent (batch)")
def flag(ctx: RequestContext, body: FraudBatch) -> FraudRecorded:
    return FraudRecorded(recorded=fraud.record(body.signals))


@router.post("/power", roles=ANY_STAFF, body=PowerRequest, response=PowerResult,
             summary="Sample size for a planned MDE")
def power_calculator(ctx: RequestContext, body: PowerRequest) -> PowerResult:
    if body.baselineRate is not None:
        mean, sd = body.baselineRate, math.sqrt(body.baselineRate * (1 - body.baselineRate))
    else:  # PowerRequest refuses a body without baselineMean and standardDeviation here
        mean, sd = float(body.baselineMean or 0), float(body.standardDeviation or 0)
    n = power.sample_size_per_arm(sd, body.mdeRelative * abs(mean), body.alpha, body.power)
    return PowerResult(samplePerArm=math.ceil(n), baselineMean=mean, standardDeviation=sd,
                       mdeAbsolute=body.mdeRelative * abs(mean), alpha=body.alpha, power=body.power,
                       zAlpha=power.z_two_sided(body.alpha))
