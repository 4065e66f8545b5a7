"""Holdout cohorts: create, read, update (unfrozen only), freeze.

Every change commits together with its ledger entry on the cohort's chain, so the audit trail
can never disagree with the cohort. Freezing is one-way: afterwards the fields that decide
who is held out (FROZEN_FIELDS) are refused with 409 FROZEN_COHORT, which is what makes
"a unit's assignment never changes" true.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any, cast

from functions.adapters.repositories.cohorts import CohortChanges, CohortDoc
from functions.adapters.unit_of_work import UnitOfWork, atomically, reading
from functions.core.clock import now_text
from functions.core.errors import Conflict, ErrorCode, NotFound
from functions.core.ids import new_id
from functions.models.holdouts import (
    DEFAULT_POLICIES,
    FROZEN_FIELDS,
    Cohort,
    CohortCreate,
    CohortUpdate,
    FreezeRequest,
)
from functions.services.holdouts import rules


def to_model(cohort_id: str, doc: CohortDoc) -> Cohort:
    return Cohort.model_validate({**doc, "id": cohort_id})


def _ledger_view(doc: CohortDoc) -> dict[str, Any]:
    stored: Mapping[str, Any] = doc  # read by name from a list of field names
    fields = (*FROZEN_FIELDS, "name", "scope", "frozen", "version", "spilloverPolicies")
    return {k: stored[k] for k in fields if k in stored}


def create(body: CohortCreate, actor: dict[str, str]) -> Cohort:
    cohort_id = new_id("hc", 16)
    now = now_text()
    policies = {**{str(k): str(v) for k, v in DEFAULT_POLICIES.items()},
                **{str(k): str(v) for k, v in body.spilloverPolicies.items()}}
    doc: CohortDoc = {
        "name": body.name,
        "description": body.description,
        "percentage": float(body.percentage),
        "salt": body.salt or secrets.token_hex(16),
        "hashVersion": body.hashVersion,
        "eligibility": rules.validate(body.eligibility),
        "unitType": str(body.unitType),
        "scope": str(body.scope),
        "teamId": body.teamId,
        "experimentId": body.experimentId,
        "spilloverPolicies": policies,
        "frozen": False,
        "frozenAt": None,
        "frozenBy": None,
        "version": 1,
        "createdAt": now,
        "createdBy": actor.get("uid", ""),
        "updatedAt": now,
    }
    def work(uow: UnitOfWork) -> None:
        head = uow.ledger.cohort_head(cohort_id)
        uow.cohorts.create(cohort_id, doc)
        uow.ledger.append(head, actor=actor, action="COHORT_CREATED",
                          subject={"type": "holdoutCohort", "id": cohort_id}, payload=_ledger_view(doc))

    atomically(work)
    return to_model(cohort_id, doc)


def get(cohort_id: str) -> Cohort:
    return to_model(cohort_id, _load(reading(), cohort_id))


def list_cohorts(frozen: bool | None = None, limit: int = 100) -> list[Cohort]:
    return [to_model(cid, doc) for cid, doc in sorted(reading().cohorts.all(frozen, limit), key=lambda c: c[0])]


def _load(uow: UnitOfWork, cohort_id: str) -> CohortDoc:
    doc = uow.cohorts.get(cohort_id)
    if doc is None:
        raise NotFound(f"cohort {cohort_id} not found", code=ErrorCode.COHORT_NOT_FOUND)
    return doc


def _check_version(doc: CohortDoc, expected: int | None) -> None:
    if expected is not None and int(doc["version"]) != expected:
        raise Conflict("cohort changed since you read it", code=ErrorCode.VERSION_MISMATCH,
                       details={"expectedVersion": expected, "version": doc["version"]})


def update(cohort_id: str, body: CohortUpdate, actor: dict[str, str]) -> Cohort:
    # CohortUpdate's fields are CohortChanges' keys (tests/unit/platform/test_typed_documents.py)
    changes = cast(CohortChanges, {k: v for k, v in body.model_dump(exclude_unset=True, exclude={"expectedVersion"},
                                                                    mode="json").items() if v is not None})

    def work(uow: UnitOfWork) -> CohortDoc:
        doc = _load(uow, cohort_id)
        head = uow.ledger.cohort_head(cohort_id)
        _check_version(doc, body.expectedVersion)
        if doc.get("frozen"):
            touched = sorted(k for k in changes if k in FROZEN_FIELDS)
            if touched:
                raise Conflict(f"cohort {cohort_id} is frozen; {', '.join(touched)} can never change",
                               code=ErrorCode.FROZEN_COHORT,
                               details={"fields": touched, "frozenAt": doc.get("frozenAt")})
        if "eligibility" in changes:  # after the frozen check: a frozen cohort's answer is 409 whatever the rule
            changes["eligibility"] = rules.validate(changes["eligibility"])
        effective = cast(CohortChanges, {k: v for k, v in changes.items() if doc.get(k) != v})
        if "spilloverPolicies" in effective:
            effective["spilloverPolicies"] = {**doc.get("spilloverPolicies", {}), **effective["spilloverPolicies"]}
        if not effective:
            return doc
        new: CohortDoc = {**doc, **effective, "version": int(doc["version"]) + 1, "updatedAt": now_text()}
        uow.cohorts.save(cohort_id, new)
        uow.ledger.append(head, actor=actor, action="COHORT_UPDATED",
                          subject={"type": "holdoutCohort", "id": cohort_id},
                          payload={"changes": effective, "version": new["version"]})
        return new

    return to_model(cohort_id, atomically(work))


def freeze(cohort_id: str, body: FreezeRequest, actor: dict[str, str]) -> Cohort:
    def work(uow: UnitOfWork) -> CohortDoc:
        doc = _load(uow, cohort_id)
        head = uow.ledger.cohort_head(cohort_id)
        _check_version(doc, body.expectedVersion)
        if doc.get("frozen"):
            return doc  # idempotent: freezing twice changes nothing and writes no second entry
        now = now_text()
        new: CohortDoc = {**doc, "frozen": True, "frozenAt": now, "frozenBy": actor.get("uid", ""),
               "version": int(doc["version"]) + 1, "updatedAt": now}
        uow.cohorts.save(cohort_id, new)
        uow.ledger.append(head, actor=actor, action="COHORT_FROZEN",
                          subject={"type": "holdoutCohort", "id": cohort_id},
                          payload={**_ledger_view(new), "reason": body.reason})
        return new

    return to_model(cohort_id, atomically(work))
