"""Running, storing and replaying bias-corrected analyses.

Each run is a new `experimentAnalyses` document (never overwritten) holding the result, the
sufficient statistics it used, the fingerprint of its inputs and the engine version, written in
one commit with its ledger entry, so anyone can recompute a published verdict offline.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any, TypedDict, cast

from functions.adapters.repositories.analyses import AnalysisDoc, AnalysisFields
from functions.adapters.unit_of_work import UnitOfWork, atomically, reading
from functions.config import settings
from functions.core.assignment.decision import expected_split
from functions.core.clock import iso_text, utc_now
from functions.core.errors import ErrorCode, NotFound
from functions.core.ids import random_hex
from functions.core.stats.corrections import ExclusionConfig
from functions.core.stats.pipeline import (
    MEAN,
    RATIO,
    AnalysisConfig,
    adjust_secondary,
    analyse_aggregated,
    replay_stats,
)
from functions.models.analytics import AnalysisRequest
from functions.services.analytics import inputs, metric_profile
from functions.services.experiments import metrics, repository
from functions.services.metrics import analysis_inputs
from functions.services.metrics.analysis_inputs import HOLDOUT_ARM


class AnalysisSummaryView(AnalysisFields):
    """A published analysis without its results (`models.analytics.AnalysisSummary`)."""

    createdAt: str | None


class AnalysisResultView(AnalysisSummaryView):
    """A published analysis with its results per KPI (`models.analytics.AnalysisView`)."""

    results: dict[str, dict[str, Any]]


def _shape_history(doc: Mapping[str, Any], kpi: Mapping[str, Any]) -> dict[str, Any] | None:
    """Where a MEAN KPI's skewness gate reads its shape: the KPI's configured historical skewness,
    else the metric's profile over the days before the experiment started, read and shaped as the
    analysis reads the KPI (its definition, cap), when that history is thick enough
    (`ANALYSIS_HISTORY_DAYS`), else nothing (its own samples)."""
    if kpi.get("historicalSkewness") is not None:
        return {"source": "configured", "skewness": float(kpi["historicalSkewness"])}
    started = doc.get("startedAt")
    if not isinstance(started, datetime):
        return None
    definition = metrics.kpi_facts(kpi)["value"] if kpi.get("definition") is not None else None
    part = analysis_inputs.part(doc, kpi["metric"], "metric", definition)
    read = metric_profile.history_before(kpi["metric"], started, settings().analysis_history_days, part)
    if read is None:
        return None
    return {"source": "profile", **{k: read[k] for k in ("skewness", "units", "nonZeroUnits", "since", "until")}}


def run(experiment_id: str, request: AnalysisRequest, actor: dict[str, str]) -> AnalysisResultView:
    doc = repository.load(experiment_id)
    variants = [(v["key"], float(v["weight"])) for v in doc["variants"]]
    keys = [k for k, _ in variants]
    now = utc_now()
    cohort_id = doc.get("holdoutCohortId")
    metrics = tuple(analysis_inputs.tracked_metrics(doc))
    everyone = analysis_inputs.Scope(experiment_id, (*keys, HOLDOUT_ARM), metrics)
    crossing = analysis_inputs.crossing_units(experiment_id, cohort_id, everyone.arms) if cohort_id else None
    contaminated = inputs.contaminated_units(cohort_id) if cohort_id else set()
    variants_scope = analysis_inputs.Scope(experiment_id, tuple(keys), metrics,
                                           crossing=tuple(sorted(crossing)) if crossing is not None else None)
    holdout_scope = analysis_inputs.Scope(experiment_id, (HOLDOUT_ARM, *keys), metrics,
                                          left_out=tuple(sorted(contaminated)))
    exclusions = ExclusionConfig(restricted_regions=tuple(doc.get("restrictedRegions") or ()),
                                 winsor_percentile=request.winsorPercentile, winsor_cap=request.winsorCap,
                                 max_events_per_day=request.maxEventsPerDay, max_value=request.maxPlausibleValue,
                                 mad_threshold=request.madThreshold,
                                 max_identical_timestamp_share=request.maxIdenticalTimestampShare,
                                 base_currency=settings().base_currency, currency_rates=settings().currency_rates)
    kpis = list(doc.get("kpis") or [])
    if kpis:  # the first KPI's query also gives the population facts: one scan of the raw rows for both
        first, facts = analysis_inputs.aggregated_with_population(doc, kpis[0], variants_scope, exclusions, everyone)
        per_kpi = [first, *(analysis_inputs.aggregated(doc, k, variants_scope, exclusions) for k in kpis[1:])]
    else:
        per_kpi, facts = [], analysis_inputs.population(everyone)
    rollout = doc.get("rollout")
    split = expected_split(variants, rollout.get("stage") if rollout else None)
    daily = request.dailyUnitsPerArm or inputs.daily_units_per_arm(facts, keys, now)
    checks = inputs.quality_checks(experiment_id, facts, keys, now)
    held = facts.get(HOLDOUT_ARM)
    results: dict[str, Any] = {}
    for kpi, agg in zip(kpis, per_kpi, strict=True):
        cfg = AnalysisConfig(control=keys[0], direction=kpi.get("direction", "INCREASE"),
                             expected_split=split, planned_mde_relative=float(doc.get("minimumDetectableEffect", 0.05)),
                             daily_units_per_arm=daily, exclusions=exclusions,
                             metric_type=str(kpi.get("type") or MEAN))
        shape = _shape_history(doc, kpi) if cfg.metric_type == MEAN else None
        if shape is not None:
            cfg = replace(cfg, historical_skewness=shape["skewness"])
        results[kpi["metric"]] = {"role": kpi["role"], "type": cfg.metric_type, **analyse_aggregated(agg, cfg, checks),
                                  "shapeHistory": shape}
        if held is not None and held.units and cfg.metric_type != RATIO:
            # every arm against the holdout, without the members reached by treatment (contaminated):
            # the long-run cost or benefit of the programme, kept honest
            against = analysis_inputs.aggregated(doc, kpi, holdout_scope, exclusions)
            result = analyse_aggregated(against, replace(cfg, control=HOLDOUT_ARM, expected_split=None))
            results[kpi["metric"]]["holdout"] = {
                "contaminatedExcluded": held.units - int(against.assigned.get(HOLDOUT_ARM, 0)),
                "holdoutUnits": int(against.assigned.get(HOLDOUT_ARM, 0)),
                "arms": {arm: data["primary"] for arm, data in result["arms"].items()}, "result": result}
    secondary = {m: r["arms"].get(variants[1][0], {}).get("primary", {}).get("pValue")
                 for m, r in results.items() if r["role"] == "SECONDARY"}
    adjusted = adjust_secondary(secondary, request.multipleComparisons)
    primary_metric = next(k["metric"] for k in doc["kpis"] if k["role"] == "PRIMARY")
    primary = results.get(primary_metric, {})
    recommendation = {arm: data["recommendation"] for arm, data in primary.get("arms", {}).items()}
    analysis_id = f"{experiment_id}__{utc_now().strftime('%Y%m%dT%H%M%S')}__{random_hex(6)}"
    stored: AnalysisDoc = {
        "id": analysis_id, "experimentId": experiment_id, "createdAt": utc_now(), "createdBy": actor,
        "engineVersion": primary.get("engineVersion"), "fingerprint": primary.get("fingerprint"),
        "primaryMetric": primary_metric, "recommendation": recommendation,
        "unitsAnalysed": sum(facts[k].units for k in keys if k in facts),
        "holdoutUnits": held.units if held is not None else 0,
        "contaminatedHoldoutUnits": len(contaminated),
        "crossingUnits": len(crossing or ()),
        "fraudFlagged": sum(f.flagged for f in facts.values()),
        "secondaryAdjusted": {"method": request.multipleComparisons, "pValues": adjusted},
        "resultJson": json.dumps(results, allow_nan=False),
    }

    def publish(uow: UnitOfWork) -> None:
        head = uow.ledger.experiment_head(experiment_id)
        uow.analyses.create(analysis_id, stored)
        uow.ledger.append(head, actor=actor, action="ANALYSIS_PUBLISHED",
                          subject={"experimentId": experiment_id, "analysisId": analysis_id},
                          payload={"fingerprint": stored["fingerprint"], "recommendation": recommendation,
                                   "engineVersion": stored["engineVersion"]})

    atomically(publish)
    return to_view(stored)


def to_view(stored: AnalysisDoc) -> AnalysisResultView:
    view: dict[str, Any] = {k: v for k, v in stored.items() if k != "resultJson"}
    view["createdAt"] = iso_text(stored.get("createdAt"))
    view["results"] = json.loads(stored["resultJson"])
    return cast(AnalysisResultView, view)  # the stored fields but resultJson, and results


def get(analysis_id: str) -> AnalysisDoc:
    doc = reading().analyses.get(analysis_id)
    if doc is None:
        raise NotFound(f"analysis {analysis_id} not found", code=ErrorCode.ANALYSIS_NOT_FOUND)
    return doc


def list_for(experiment_id: str) -> list[AnalysisSummaryView]:
    docs = sorted(reading().analyses.of_experiment(experiment_id), key=lambda d: iso_text(d.get("createdAt")) or "")
    return [cast(AnalysisSummaryView, {k: (iso_text(v) if k == "createdAt" else v) for k, v in d.items()
                                   if k != "resultJson"}) for d in docs]


class ReplayCheck(TypedDict):
    fingerprintMatches: bool
    verdictMatches: bool


class ReplayView(TypedDict):
    """What a replay answers (`models.analytics.ReplayResult`)."""

    analysisId: str
    reproduced: bool
    metrics: dict[str, ReplayCheck]


def replay(analysis_id: str) -> ReplayView:
    """Recompute every KPI's verdict from the statistics the stored document embeds."""
    stored = get(analysis_id)
    results = json.loads(stored["resultJson"])
    checks: dict[str, ReplayCheck] = {}
    for metric, result in results.items():
        again = replay_stats(result)
        checks[metric] = {"fingerprintMatches": again["fingerprint"] == result["fingerprint"],
                          "verdictMatches": again["arms"] == result["arms"]
                          and again.get("spilloverExcluded") == result.get("spilloverExcluded")}
        if "holdout" in result:
            held = replay_stats(result["holdout"]["result"])
            checks[metric]["verdictMatches"] &= held["arms"] == result["holdout"]["result"]["arms"]
    return {"analysisId": analysis_id, "reproduced": all(c["fingerprintMatches"] and c["verdictMatches"]
                                                         for c in checks.values()), "metrics": checks}
