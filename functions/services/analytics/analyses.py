"""Running, storing and replaying bias-corrected analyses.

Each run is a new `experimentAnalyses` document (never overwritten) holding the result, the
sufficient statistics it used, the fingerprint of its inputs and the engine version, written in
one commit with its ledger entry, so anyone can recompute a published verdict offline.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from functions.adapters import ledger_store
from functions.adapters.firestore import EXPERIMENT_ANALYSES, db, transactional
from functions.config import settings
from functions.core.assignment.decision import expected_split
from functions.core.errors import NotFound
from functions.core.stats.corrections import ExclusionConfig, UnitData
from functions.core.stats.pipeline import MEAN, RATIO, AnalysisConfig, adjust_secondary, analyse_units, replay_stats
from functions.models.analytics import AnalysisRequest
from functions.models.common import iso_text
from functions.services.analytics import fraud, inputs
from functions.services.experiments import repository
from functions.services.experiments.kpi import HOLDOUT_ARM

MIN_EVENTS_TIMESTAMP_RULE = 10


def _arm_data(units: list[dict[str, Any]], arm: str, kpi: dict[str, Any], flagged: set[str],
              crossing: set[str] | None) -> UnitData:
    """One arm's unit arrays for one KPI. Units without KPI data count as zero (no purchase is a
    value); bot signals come from the KPI unit documents (events, active days, identical timestamps)."""
    rows = [u for u in units if u["variant"] == arm]

    def metric(u: dict[str, Any], name: str) -> float:
        return float((u.get("metrics") or {}).get(name, 0.0))

    ratio = kpi.get("type") == RATIO
    num = kpi["numerator"] if ratio else kpi["metric"]
    events = np.array([float(u.get("events", 0)) for u in rows])
    spans = [(t1 - t0).total_seconds() / 86400 if isinstance(t0, datetime) and isinstance(t1, datetime) else 0.0
             for u in rows for t0, t1 in [(u.get("firstSeen"), u.get("lastSeen"))]]
    same = np.array([float(u.get("sameTimestampEvents", 0)) for u in rows])
    return UnitData(
        value=np.array([metric(u, num) for u in rows]),
        denominator=np.array([metric(u, kpi["denominator"]) for u in rows]) if ratio else None,
        pre=None if ratio else np.array([float((u.get("pre") or {}).get(num, 0.0)) for u in rows]),
        fraud=np.array([u["unitId"] in flagged for u in rows], dtype=bool),
        consent=np.array([bool(u.get("consent", True)) for u in rows], dtype=bool),
        region=np.array([str(u.get("region") or "unknown") for u in rows], dtype=object),
        events=events,
        active_days=np.maximum(np.ceil(np.array(spans)), 1.0),
        # apps send several metrics at one moment: only units with many events can show the pattern
        identical_timestamp_share=np.where(events >= MIN_EVENTS_TIMESTAMP_RULE, same / np.maximum(events - 1, 1), 0.0),
        crosses_arms=np.array([u["unitId"] in crossing for u in rows], dtype=bool) if crossing is not None else None,
    )


def _holdout_comparison(pop: inputs.Population, kpi: dict[str, Any], variants: list[str], flagged: set[str],
                        cfg: AnalysisConfig) -> dict[str, Any] | None:
    """Every arm against the holdout, without the holdout members reached by treatment
    (contaminated): the long-run cost or benefit of the programme, kept honest."""
    clean = [u for u in pop.holdout if u["unitId"] not in pop.contaminated]
    if not pop.holdout or kpi.get("type") == RATIO:
        return None
    arms = {HOLDOUT_ARM: _arm_data(clean, HOLDOUT_ARM, kpi, flagged, None)}
    arms.update({key: _arm_data(pop.units, key, kpi, flagged, None) for key in variants})
    result = analyse_units(arms, replace(cfg, control=HOLDOUT_ARM, expected_split=None))
    return {"contaminatedExcluded": len(pop.holdout) - len(clean), "holdoutUnits": len(clean),
            "arms": {arm: data["primary"] for arm, data in result["arms"].items()}, "result": result}


def run(experiment_id: str, request: AnalysisRequest, actor: dict[str, str]) -> dict[str, Any]:
    doc = repository.load(None, experiment_id)
    variants = [(v["key"], float(v["weight"])) for v in doc["variants"]]
    now = datetime.now(UTC)
    pop = inputs.population(experiment_id)
    units = pop.units
    cohort_id = doc.get("holdoutCohortId")
    arm_of = {u["unitId"]: u["variant"] for u in [*pop.units, *pop.holdout]}
    crossing = inputs.crossing_units(cohort_id, arm_of) if cohort_id else None
    pop.contaminated = inputs.contaminated_units(cohort_id, [u["unitId"] for u in pop.holdout])
    flagged = fraud.flagged([u["unitId"] for u in [*pop.units, *pop.holdout]])
    exclusions = ExclusionConfig(restricted_regions=tuple(doc.get("restrictedRegions") or ()),
                                 winsor_percentile=request.winsorPercentile, winsor_cap=request.winsorCap,
                                 max_events_per_day=request.maxEventsPerDay, max_value=request.maxPlausibleValue,
                                 mad_threshold=request.madThreshold,
                                 max_identical_timestamp_share=request.maxIdenticalTimestampShare,
                                 base_currency=settings().base_currency, currency_rates=settings().currency_rates)
    split = expected_split(variants, (doc.get("rollout") or {}).get("stage"))
    daily = request.dailyUnitsPerArm or inputs.daily_units_per_arm(pop, len(variants), now)
    checks = inputs.quality_checks(pop, now)
    results: dict[str, Any] = {}
    for kpi in doc.get("kpis") or []:
        cfg = AnalysisConfig(control=variants[0][0], direction=kpi.get("direction", "INCREASE"),
                             expected_split=split, planned_mde_relative=float(doc.get("minimumDetectableEffect", 0.05)),
                             daily_units_per_arm=daily, exclusions=exclusions,
                             metric_type=str(kpi.get("type") or MEAN))
        arms = {key: _arm_data(units, key, kpi, flagged, crossing) for key, _ in variants}
        results[kpi["metric"]] = {"role": kpi["role"], "type": cfg.metric_type,
                                  **analyse_units(arms, cfg, checks)}
        holdout = _holdout_comparison(pop, kpi, [k for k, _ in variants], flagged, cfg)
        if holdout is not None:
            results[kpi["metric"]]["holdout"] = holdout
    secondary = {m: r["arms"].get(variants[1][0], {}).get("primary", {}).get("pValue")
                 for m, r in results.items() if r["role"] == "SECONDARY"}
    adjusted = adjust_secondary(secondary, request.multipleComparisons)
    primary_metric = next(k["metric"] for k in doc["kpis"] if k["role"] == "PRIMARY")
    primary = results.get(primary_metric, {})
    recommendation = {arm: data["recommendation"] for arm, data in primary.get("arms", {}).items()}
    analysis_id = f"{experiment_id}__{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}__{uuid.uuid4().hex[:6]}"
    stored = {
        "id": analysis_id, "experimentId": experiment_id, "createdAt": datetime.now(UTC), "createdBy": actor,
        "engineVersion": primary.get("engineVersion"), "fingerprint": primary.get("fingerprint"),
        "primaryMetric": primary_metric, "recommendation": recommendation, "unitsAnalysed": len(units),
        "holdoutUnits": len(pop.holdout), "contaminatedHoldoutUnits": len(pop.contaminated),
        "crossingUnits": len(crossing or ()),
        "fraudFlagged": len(flagged), "secondaryAdjusted": {"method": request.multipleComparisons, "pValues": adjusted},
        "resultJson": json.dumps(results, allow_nan=False),
    }

    @transactional
    def publish(txn: firestore.Transaction) -> None:
        head = ledger_store.read_head(txn, ledger_store.experiment_chain(experiment_id))
        txn.create(db().collection(EXPERIMENT_ANALYSES).document(analysis_id), stored)
        ledger_store.append(txn, head, actor=actor, action="ANALYSIS_PUBLISHED",
                            subject={"experimentId": experiment_id, "analysisId": analysis_id},
                            payload={"fingerprint": stored["fingerprint"], "recommendation": recommendation,
                                     "engineVersion": stored["engineVersion"]})

    publish(db().transaction())
    return to_view(stored)


def to_view(stored: dict[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in stored.items() if k != "resultJson"}
    view["createdAt"] = iso_text(stored.get("createdAt"))
    view["results"] = json.loads(stored["resultJson"])
    return view


def get(analysis_id: str) -> dict[str, Any]:
    snap = db().collection(EXPERIMENT_ANALYSES).document(analysis_id).get()
    if not snap.exists or analysis_id.startswith("_"):
        raise NotFound(f"analysis {analysis_id} not found", code="ANALYSIS_NOT_FOUND")
    return snap.to_dict() or {}


def list_for(experiment_id: str) -> list[dict[str, Any]]:
    query = db().collection(EXPERIMENT_ANALYSES).where(filter=FieldFilter("experimentId", "==", experiment_id))
    docs = sorted((s.to_dict() or {} for s in query.stream()), key=lambda d: iso_text(d.get("createdAt")) or "")
    return [{k: (iso_text(v) if k == "createdAt" else v) for k, v in d.items() if k != "resultJson"} for d in docs]


def replay(analysis_id: str) -> dict[str, Any]:
    """Recompute every KPI's verdict from the statistics the stored document embeds."""
    stored = get(analysis_id)
    results = json.loads(stored["resultJson"])
    checks = {}
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
