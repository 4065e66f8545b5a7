"""Building blocks for integration tests: frozen cohorts, definitions, running experiments,
exposures and KPI events, all through the real services."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.adapters.auth import Principal
from functions.models.experiments import CreateExperiment
from functions.models.holdouts import CohortCreate, FreezeRequest
from functions.services.experiments import approvals, definitions, start
from functions.services.holdouts import cohorts
from functions.services.holdouts.exposures import record_exposures

PM = Principal("pm-alice", frozenset({"pm"}))
APPROVER = Principal("approver-bob", frozenset({"approver"}))
OPERATOR = Principal("operator-carol", frozenset({"operator"}))


def frozen_cohort(percentage: float = 10.0, **kw: Any) -> str:
    cohort = cohorts.create(CohortCreate(name=f"holdout-{uuid.uuid4().hex[:6]}", percentage=percentage, **kw),
                            PM.to_dict())
    cohorts.freeze(cohort.id, FreezeRequest(reason="test"), PM.to_dict())
    return cohort.id


def definition(holdout_id: str | None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Annual plan price test",
        "hypothesis": {"statement": "A 10% higher annual price keeps conversion and lifts revenue"},
        "offerType": "PRICE_CHANGE",
        "offerConfig": {"oldPrice": 49.99, "newPrice": 54.99, "currency": "EUR"},
        "variants": [{"key": "control", "weight": 50}, {"key": "treatment", "weight": 50}],
        "holdoutCohortId": holdout_id,
        "kpis": [{"metric": "revenue", "role": "PRIMARY", "type": "MEAN", "direction": "INCREASE"},
                 {"metric": "conversion", "role": "SECONDARY", "type": "PROPORTION"}],
        "guardrails": [{"metric": "refund", "harmfulDirection": "INCREASE", "absoluteMax": 0.08, "action": "KILL",
                        "minUnitsPerArm": 30}],
        "requiredApprovers": [APPROVER.uid],
    }
    body.update(overrides)
    return body


def running_experiment(holdout_id: str | None = None, **overrides: Any) -> str:
    holdout_id = holdout_id or frozen_cohort()
    doc = definitions.create(CreateExperiment.model_validate(definition(holdout_id, **overrides)), PM.to_dict())
    approvals.submit(doc["id"], PM.to_dict())
    approvals.approve(doc["id"], APPROVER)
    start.start(doc["id"], PM.to_dict())
    return doc["id"]


def expose(experiment_id: str, variants: dict[str, str], at: datetime | None = None) -> int:
    rows = [{"unitId": unit, "experimentId": experiment_id, "variant": variant, "inHoldout": False,
             "status": "ASSIGNED"} for unit, variant in variants.items()]
    return record_exposures(rows, at or datetime.now(UTC) - timedelta(minutes=5))


def kpi(unit: str, metric: str, value: float, **kw: Any) -> dict[str, Any]:
    return {"eventId": kw.pop("eventId", f"evt-{uuid.uuid4().hex}"), "unitId": unit, "metric": metric,
            "value": value, "timestamp": kw.pop("timestamp", datetime.now(UTC).isoformat()), **kw}


def deep(levels: int, leaf: Any = 1) -> Any:
    """`levels` nested maps around `leaf` (depth as Firestore counts it): the input-limit tests'
    and the fuzzing's one way to build a deep value."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value
