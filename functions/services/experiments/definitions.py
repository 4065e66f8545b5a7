"""Creating and editing experiment definitions (never once RUNNING: results stay defensible)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from functions.adapters import ledger_store
from functions.adapters.firestore import HOLDOUT_COHORTS, db, transactional
from functions.core.assignment.eligibility import compile_rules
from functions.core.errors import Conflict, Unprocessable
from functions.core.lifecycle import DEFINITION_LOCKED, Action, State
from functions.models.experiments import CreateExperiment, ExperimentDefinition
from functions.services.experiments import repository
from functions.services.experiments.transitions import apply_transition


def require_frozen_holdout(txn: firestore.Transaction | None, cohort_id: str | None) -> dict[str, Any]:
    if not cohort_id:
        raise Conflict("an experiment needs a frozen holdout cohort (holdoutCohortId)", code="HOLDOUT_REQUIRED")
    snap = db().collection(HOLDOUT_COHORTS).document(cohort_id).get(transaction=txn)
    if not snap.exists:
        raise Conflict(f"holdout cohort {cohort_id} does not exist", code="HOLDOUT_NOT_FOUND")
    cohort = snap.to_dict() or {}
    if not cohort.get("frozen"):
        raise Conflict(f"holdout cohort {cohort_id} is not frozen; freeze it first", code="HOLDOUT_NOT_FROZEN")
    return cohort


def validate_definition(definition: ExperimentDefinition) -> None:
    compile_rules(definition.targeting)  # 422 naming the bad rule
    metrics = {k.metric for k in definition.kpis}
    for kpi in definition.kpis:
        if kpi.type.value == "RATIO" and kpi.numerator == kpi.denominator:
            raise Unprocessable("a ratio needs two different metrics", code="INVALID_KPI",
                                details={"metric": kpi.metric})
    if len(metrics) != len(definition.kpis):
        raise Unprocessable("KPI metrics must be unique", code="INVALID_KPI")


def create(body: CreateExperiment, actor: dict[str, str]) -> dict[str, Any]:
    validate_definition(body)
    experiment_id = body.id or f"exp-{uuid.uuid4().hex[:12]}"
    definition = body.model_dump(mode="json", exclude={"id"})
    now = datetime.now(UTC)
    doc = {
        **definition, "id": experiment_id, "state": State.DRAFT.value, "version": 1, "author": actor["uid"],
        "salt": f"{experiment_id}:{uuid.uuid4().hex[:12]}", "hashVersion": 1, "approvals": {},
        "createdAt": now, "updatedAt": now,
    }
    experiment_ref = repository.ref(experiment_id)

    @transactional
    def run(txn: firestore.Transaction) -> None:
        require_frozen_holdout(txn, body.holdoutCohortId)
        if experiment_ref.get(transaction=txn).exists:
            raise Conflict(f"experiment {experiment_id} already exists", code="ALREADY_EXISTS")
        head = ledger_store.read_head(txn, ledger_store.experiment_chain(experiment_id))
        txn.create(experiment_ref, doc)
        txn.create(repository.event_ref(experiment_id, 1), {
            "experimentId": experiment_id, "version": 1, "action": "CREATE", "from": None, "to": "DRAFT",
            "actor": actor, "reason": "", "details": {}, "at": now})
        ledger_store.append(txn, head, actor=actor, action="EXPERIMENT_CREATED",
                            subject={"experimentId": experiment_id},
                            payload={"definition": definition, "holdoutCohortId": body.holdoutCohortId})

    run(db().transaction())
    return doc


def update(experiment_id: str, definition: ExperimentDefinition, actor: dict[str, str],
           expected_version: int | None) -> dict[str, Any]:
    """Edit before the start; after submission this voids every approval (four eyes again)."""
    validate_definition(definition)
    new = definition.model_dump(mode="json")
    experiment_ref = repository.ref(experiment_id)

    @transactional
    def run(txn: firestore.Transaction) -> dict[str, Any]:
        current = repository.load(txn, experiment_id)
        if current["state"] in DEFINITION_LOCKED:
            raise Conflict(f"the definition of a {current['state']} experiment is immutable",
                           code="DEFINITION_LOCKED", details={"state": current["state"]})
        repository.check_version(current, expected_version)
        require_frozen_holdout(txn, definition.holdoutCohortId)
        head = ledger_store.read_head(txn, ledger_store.experiment_chain(experiment_id))
        before = repository.definition_of(current)
        changed = sorted(k for k in new if before.get(k) != new[k])
        voided = sorted((current.get("approvals") or {}).keys())
        return apply_transition(txn, experiment_ref, current, Action.EDIT.value, actor, "definition edited",
                                {"changed": changed, "approvalsVoided": voided}, head,
                                updates={**new, "approvals": {}})

    after = run(db().transaction())
    repository.invalidate()
    return after
