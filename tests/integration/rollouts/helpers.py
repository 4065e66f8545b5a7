"""Rollout test helpers: an experiment planned before its start (through the real services) and
simulated traffic decided by the real assignment core at the experiment's current stage."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from functions.core.assignment.decision import STATUS_ORDER, AssignmentConfig, Status, decide_columns
from functions.models.experiments import CreateExperiment
from functions.models.rollouts import PlanRequest
from functions.services.experiments import approvals, definitions, repository, start
from functions.services.holdouts import corebridge
from functions.services.holdouts.exposures import record_exposures
from functions.services.rollouts import plans
from tests.support.factories import APPROVER, PM, definition, frozen_cohort

_counter = itertools.count()


def planned_experiment(plan: dict[str, Any] | None = None, **overrides: Any) -> str:
    """DRAFT -> plan -> submit -> approve -> RUNNING."""
    doc = definitions.create(CreateExperiment.model_validate(definition(frozen_cohort(), **overrides)), PM.to_dict())
    plans.put_plan(doc["id"], PlanRequest.model_validate(plan or {}), PM.to_dict())
    approvals.submit(doc["id"], PM.to_dict())
    approvals.approve(doc["id"], APPROVER)
    start.start(doc["id"], PM.to_dict())
    return doc["id"]


def traffic(experiment_id: str, n: int) -> dict[str, Any]:
    """n new units see the experiment now; the exposed ones land in the exposure log."""
    doc = repository.load(experiment_id)
    cfg = corebridge.experiment_config(experiment_id, doc)
    units = [f"u{next(_counter)}-{uuid.uuid4().hex[:6]}" for _ in range(n)]
    cols = decide_columns(AssignmentConfig(experiments=(cfg,)), units)
    keys = cols.variant_keys[0]
    rows, statuses = [], {}
    for unit, code, v in zip(units, cols.status[0].tolist(), cols.variant[0].tolist(), strict=True):
        status = STATUS_ORDER[code]
        statuses[status.value] = statuses.get(status.value, 0) + 1
        if status == Status.ASSIGNED:
            rows.append({"unitId": unit, "experimentId": experiment_id, "variant": keys[v], "inHoldout": False,
                         "status": "ASSIGNED"})
    record_exposures(rows, datetime.now(UTC) - timedelta(minutes=5))
    by_variant: dict[str, list[str]] = {}
    for row in rows:
        by_variant.setdefault(row["variant"], []).append(row["unitId"])
    return {"units": by_variant, "statuses": statuses}
