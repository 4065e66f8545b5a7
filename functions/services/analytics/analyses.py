"""Running, storing and replaying bias-corrected analyses.

Each run is a new `experimentAnalyses` document (never overwritten) holding the result, the
sufficient statistics it used, the fingerprint of its inputs and the engine version, written in
one commit with its ledger entry, so anyone can recompute a published verdict offline.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import numpy as np
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from functions.adapters import ledger_store
from functions.adapters.firestore import EXPERIMENT_ANALYSES, HOLDOUT_ASSIGNMENTS, db, transactional
from functions.config import settings
from functions.core.assignment.decision import expected_split
from functions.core.errors import NotFound
from functions.core.stats.corrections import ExclusionConfig, UnitData
from functions.core.stats.pipeline import AnalysisConfig, adjust_secondary, analyse_units, replay_stats
from functions.models.analytics import AnalysisRequest
from functions.services.analytics import fraud
from functions.services.experiments import repository
from functions.services.experiments.kpi import unit_key


def _units(experiment_id: str) -> list[dict[str, Any]]:
    """The exposed units (the analysis population) joined with their KPI totals."""
    exposures = db().collection(HOLDOUT_ASSIGNMENTS).where(filter=FieldFilter("experimentId", "==", experiment_id))
    units = {}
    for snap in exposures.stream():
        doc = snap.to_dict() or {}
        if doc.get("status") == "ASSIGNED" and doc.get("variant"):
            units[doc["unitId"]] = {"unitId": doc["unitId"], "variant": doc["variant"]}
    refs = [repository.ref(experiment_id).collection(repository.UNITS).document(unit_key(u)) for u in units]
    for start in range(0, len(refs), 300):
        for snap in db().get_all(refs[start:start + 300]):
            if snap.exists:
                doc = snap.to_dict() or {}
                if doc.get("unitId") in units:
                    units[doc["unitId"]].update(doc)
    return list(units.values())


def _arm_data(units: list[dict[str, Any]], arm: str, metric: str, flagged: set[str]) -> UnitData:
    rows = [u for u in units if u["variant"] == arm]
    return UnitData(
        value=np.array([float((u.get("metrics") or {}).get(metric, 0.0)) for u in rows]),
        pre=np.array([float((u.get("pre") or {}).get(metric, 0.0)) for u in rows]),
        fraud=np.array([u["unitId"] in flagged for u in rows], dtype=bool),
        consent=np.ones(len(rows), dtype=bool),
        region=np.array([str(u.get("region") or "") for u in rows], dtype=object),
        events=np.array([float(u.get("events", 0)) for u in rows]),
    )


def run(experiment_id: str, request: AnalysisRequest, actor: dict[str, str]) -> dict[str, Any]:
    doc = repository.load(None, experiment_id)
    variants = [(v["key"], float(v["weight"])) for v in doc["variants"]]
    units = _units(experiment_id)
    flagged = fraud.flagged([u["unitId"] for u in units])
    exclusions = ExclusionConfig(restricted_regions=tuple(doc.get("restrictedRegions") or ()),
                                 winsor_percentile=request.winsorPercentile, winsor_cap=request.winsorCap,
                                 base_currency=settings().base_currency, currency_rates=settings().currency_rates)
    split = expected_split(variants, (doc.get("rollout") or {}).get("stage"))
    results: dict[str, Any] = {}
    for kpi in doc.get("kpis") or []:
        if kpi.get("type") == "RATIO":
            continue  # ratio KPIs are reported from their sufficient statistics (delta method) in the sweep
        cfg = AnalysisConfig(control=variants[0][0], direction=kpi.get("direction", "INCREASE"),
                             expected_split=split, planned_mde_relative=float(doc.get("minimumDetectableEffect", 0.05)),
                             daily_units_per_arm=request.dailyUnitsPerArm, exclusions=exclusions)
        arms = {key: _arm_data(units, key, kpi["metric"], flagged) for key, _ in variants}
        results[kpi["metric"]] = {"role": kpi["role"], **analyse_units(arms, cfg)}
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
    view["createdAt"] = str(stored.get("createdAt"))
    view["results"] = json.loads(stored["resultJson"])
    return view


def get(analysis_id: str) -> dict[str, Any]:
    snap = db().collection(EXPERIMENT_ANALYSES).document(analysis_id).get()
    if not snap.exists or analysis_id.startswith("_"):
        raise NotFound(f"analysis {analysis_id} not found", code="ANALYSIS_NOT_FOUND")
    return snap.to_dict() or {}


def list_for(experiment_id: str) -> list[dict[str, Any]]:
    query = db().collection(EXPERIMENT_ANALYSES).where(filter=FieldFilter("experimentId", "==", experiment_id))
    docs = sorted((s.to_dict() or {} for s in query.stream()), key=lambda d: str(d.get("createdAt")))
    return [{k: (str(v) if k == "createdAt" else v) for k, v in d.items() if k != "resultJson"} for d in docs]


def replay(analysis_id: str) -> dict[str, Any]:
    """Recompute every KPI's verdict from the statistics the stored document embeds."""
    stored = get(analysis_id)
    results = json.loads(stored["resultJson"])
    checks = {}
    for metric, result in results.items():
        again = replay_stats(result)
        checks[metric] = {"fingerprintMatches": again["fingerprint"] == result["fingerprint"],
                          "verdictMatches": again["arms"] == result["arms"]}
    return {"analysisId": analysis_id, "reproduced": all(c["fingerprintMatches"] and c["verdictMatches"]
                                                         for c in checks.values()), "metrics": checks}
