"""The only module that speaks the pure core's assignment API (functions.core.assignment).

Documents (Firestore shapes) go in, the core's compiled config dataclasses and batch decision
come out, normalised to plain dicts the service and routes use. If the core's API moves, this
is the one file to change.

Normalised decision per unit:
    {"holdoutCohorts": [cohort ids the unit is held out by],
     "eligibleCohorts": {cohort id: in holdout} for cohorts whose rules the unit meets,
     "experiments": {experiment id: {"status", "variant", "exposed"}}}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from functions.adapters.repositories.cohorts import CohortDoc
from functions.adapters.repositories.experiments import ExperimentDoc
from functions.core.assignment import decision, eligibility, hashing


def _rules(raw: list[dict[str, Any]] | None) -> Any:
    return eligibility.compile_rules(list(raw or []))


def cohort_config(cohort_id: str, doc: CohortDoc) -> Any:
    return decision.HoldoutCohortConfig(
        cohort_id=cohort_id,
        salt=str(doc["salt"]),
        hash_version=int(doc.get("hashVersion", 1)),
        share=float(doc["percentage"]) / 100.0,
        eligibility=_rules(doc.get("eligibility")),
        scope=str(doc.get("scope", "GLOBAL")),
        experiment_id=doc.get("experimentId"),
        team_id=doc.get("teamId"),
    )


def experiment_config(experiment_id: str, doc: ExperimentDoc) -> Any:
    rollout: Mapping[str, Any] = doc.get("rollout") or {}
    targeting: Any = doc.get("targeting")  # a list of rules; a {"rules": [...]} map is read too
    lo, hi = (doc.get("layerRange") or [0.0, 1.0])[:2]
    return decision.ExperimentConfig(
        experiment_id=experiment_id,
        salt=str(doc.get("salt") or experiment_id),
        hash_version=int(doc.get("hashVersion", 1)),
        variants=tuple((str(v["key"]), float(v.get("weight", 1.0))) for v in doc.get("variants") or []),
        eligibility=_rules(targeting.get("rules") if isinstance(targeting, dict) else targeting),
        holdout_cohort_id=doc.get("holdoutCohortId"),
        layer=doc.get("layer"),
        layer_range=(float(lo), float(hi)),
        team_id=doc.get("teamId"),
        restricted_regions=tuple(doc.get("restrictedRegions") or ()),
        rollout_stage=float(rollout["stage"]) if rollout.get("stage") is not None else None,
        rollout_status=str(rollout.get("status") or "ACTIVE"),
        max_stage_reached=float(rollout["maxStageReached"]) if rollout.get("maxStageReached") is not None else None,
        paused=doc.get("state") == "PAUSED",
    )


def compile_config(cohorts: Mapping[str, CohortDoc], experiments: Mapping[str, ExperimentDoc]) -> Any:
    return decision.AssignmentConfig(
        cohorts=tuple(cohort_config(cid, doc) for cid, doc in sorted(cohorts.items())),
        # an experiment whose holdout is missing or unfrozen is never exposed
        experiments=tuple(
            experiment_config(eid, doc)
            for eid, doc in sorted(experiments.items())
            if doc.get("holdoutCohortId") in cohorts
        ),
    )


def decide(
    compiled: Any,
    unit_ids: Sequence[str],
    attributes: Sequence[dict[str, Any]],
    overrides: dict[str, dict[str, str]],
) -> list[dict[str, Any]]:
    """overrides: cohort id -> {unit id: randomisation id} (cluster/wallet ids)."""
    raw = decision.decide_batch(compiled, list(unit_ids), list(attributes), randomisation_overrides=overrides)
    out = []
    for unit in raw:
        out.append({
            "holdoutCohorts": list(unit.holdout_cohorts),
            "eligibleCohorts": dict(unit.eligible_cohorts),
            "experiments": {
                e.experiment_id: {"status": str(e.status), "variant": e.variant, "exposed": bool(e.exposed)}
                for e in unit.experiments
            },
        })
    return out


def cohort_member(cohort: CohortDoc, randomisation_id: str, attributes: dict[str, Any] | None) -> bool:
    if attributes is not None and not _rules(cohort.get("eligibility")).matches(attributes):
        return False
    share = float(cohort["percentage"]) / 100.0
    return hashing.bucket(randomisation_id, str(cohort["salt"]), int(cohort.get("hashVersion", 1))) < share
