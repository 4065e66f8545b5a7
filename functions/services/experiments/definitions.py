"""Creating and editing experiment definitions (never once RUNNING: results stay defensible)."""

from __future__ import annotations

from typing import cast

from functions.adapters.repositories.cohorts import CohortDoc
from functions.adapters.repositories.experiments import (
    DefinitionDoc,
    ExperimentChanges,
    ExperimentDoc,
    check_version,
)
from functions.adapters.repositories.ledger import Head
from functions.adapters.unit_of_work import UnitOfWork, atomically
from functions.core import four_eyes
from functions.core.assignment.eligibility import compile_rules
from functions.core.clock import utc_now
from functions.core.errors import Conflict, ErrorCode, Unprocessable
from functions.core.ids import new_id, random_hex
from functions.core.lifecycle import DEFINITION_LOCKED, Action, State
from functions.models.experiments import CreateExperiment, ExperimentDefinition
from functions.services.experiments import metrics, repository
from functions.services.experiments.transitions import apply_transition


def require_frozen_holdout(uow: UnitOfWork, cohort_id: str | None) -> CohortDoc:
    if not cohort_id:
        raise Conflict("an experiment needs a frozen holdout cohort (holdoutCohortId)", code=ErrorCode.HOLDOUT_REQUIRED)
    cohort = uow.cohorts.get(cohort_id)
    if cohort is None:
        raise Conflict(f"holdout cohort {cohort_id} does not exist", code=ErrorCode.HOLDOUT_NOT_FOUND)
    if not cohort.get("frozen"):
        raise Conflict(f"holdout cohort {cohort_id} is not frozen; freeze it first", code=ErrorCode.HOLDOUT_NOT_FROZEN)
    return cohort


def validate_definition(definition: ExperimentDefinition) -> None:
    compile_rules(definition.targeting)  # 422 naming the bad rule
    kpi_metrics = {k.metric for k in definition.kpis}
    for kpi in definition.kpis:
        if kpi.type.value == "RATIO" and kpi.numerator == kpi.denominator:
            raise Unprocessable("a ratio needs two different metrics", code=ErrorCode.INVALID_KPI,
                                details={"metric": kpi.metric})
    if len(kpi_metrics) != len(definition.kpis):
        raise Unprocessable("KPI metrics must be unique", code=ErrorCode.INVALID_KPI)
    metrics.check(definition)  # last: the only check that asks the metric store


def new_document(body: CreateExperiment, actor: dict[str, str]) -> ExperimentDoc:
    """The DRAFT document of a new experiment (the id is generated when the body has none)."""
    experiment_id = body.id or new_id("exp", 12)
    now = utc_now()
    # the definition's keys are ExperimentDefinition's fields, which the TypedDict mirrors
    definition = cast(DefinitionDoc, body.model_dump(mode="json", exclude={"id"}))
    return {
        **definition, "id": experiment_id, "state": State.DRAFT.value,
        "version": 1, "author": actor["uid"], "editors": [], "salt": f"{experiment_id}:{random_hex(12)}",
        "hashVersion": 1, "approvals": {}, "createdAt": now, "updatedAt": now,
    }


def read_create(uow: UnitOfWork, doc: ExperimentDoc) -> Head:
    """The reads of a creation: a frozen holdout, a free id, the (empty) chain head."""
    require_frozen_holdout(uow, doc.get("holdoutCohortId"))
    if uow.experiments.exists(doc["id"]):
        raise Conflict(f"experiment {doc['id']} already exists", code=ErrorCode.ALREADY_EXISTS)
    return uow.ledger.experiment_head(doc["id"])


def stage_create(uow: UnitOfWork, doc: ExperimentDoc, actor: dict[str, str], head: Head) -> ExperimentDoc:
    experiment_id, now = doc["id"], doc["createdAt"]
    uow.experiments.create(doc)
    uow.experiments.add_event(experiment_id, 1, {
        "experimentId": experiment_id, "version": 1, "action": "CREATE", "from": None, "to": "DRAFT",
        "actor": actor, "reason": "", "details": {}, "at": now})
    uow.ledger.append(head, actor=actor, action="EXPERIMENT_CREATED", subject={"experimentId": experiment_id},
                      payload={"definition": repository.definition_of(doc),
                               "holdoutCohortId": doc.get("holdoutCohortId")})
    return doc


def create(body: CreateExperiment, actor: dict[str, str]) -> ExperimentDoc:
    validate_definition(body)
    doc = new_document(body, actor)
    return atomically(lambda uow: stage_create(uow, doc, actor, read_create(uow, doc)))


def update(experiment_id: str, definition: ExperimentDefinition, actor: dict[str, str],
           expected_version: int | None) -> ExperimentDoc:
    """Edit before the start. The editor joins `editors` (barred from approving this content);
    after submission every approval is void and the experiment is PENDING_APPROVAL again."""
    validate_definition(definition)
    new = cast(ExperimentChanges, definition.model_dump(mode="json"))

    def work(uow: UnitOfWork) -> ExperimentDoc:
        current = uow.experiments.get(experiment_id)
        if current["state"] in DEFINITION_LOCKED:
            raise Conflict(f"the definition of a {current['state']} experiment is immutable",
                           code=ErrorCode.DEFINITION_LOCKED, details={"state": current["state"]})
        check_version(current, expected_version)
        require_frozen_holdout(uow, definition.holdoutCohortId)
        plan = uow.rollouts.plan(experiment_id)
        head = uow.ledger.experiment_head(experiment_id)
        before = repository.definition_of(current)
        changed = sorted(k for k, v in new.items() if before.get(k) != v)
        voided = sorted((current.get("approvals") or {}).keys())
        content_hash = four_eyes.content_hash(experiment_id, new, plan)
        updates: ExperimentChanges = {**new, "approvals": {}, **edited_by(current, actor)}
        if current["state"] != State.DRAFT.value:
            four_eyes.check_approvable({**current, **updates})
            updates["contentHash"] = content_hash
        return apply_transition(uow, current, Action.EDIT.value, actor, "definition edited",
                                {"changed": changed, "approvalsVoided": voided, "contentHash": content_hash,
                                 "editor": actor["uid"]}, head, updates=updates)

    after = atomically(work)
    return after


def edited_by(current: ExperimentDoc, actor: dict[str, str]) -> ExperimentChanges:
    """The `editors` update for a change of content by `actor` (the author is barred anyway)."""
    editors = list(current.get("editors") or [])
    if actor["uid"] != current.get("author") and actor["uid"] not in editors:
        editors.append(actor["uid"])
    return {"editors": editors}
