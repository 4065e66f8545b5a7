"""Four eyes: submit, approve (never the author; every required approver), reject with a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from functions.adapters import ledger_store
from functions.adapters.auth import Principal
from functions.adapters.firestore import db, transactional
from functions.core.errors import Conflict, Forbidden
from functions.core.lifecycle import Action, State
from functions.services.experiments import repository
from functions.services.experiments.transitions import apply_transition, record_event

APPROVER_ROLES = frozenset({"approver", "admin"})


def submit(experiment_id: str, actor: dict[str, str], expected_version: int | None = None) -> dict[str, Any]:
    experiment_ref = repository.ref(experiment_id)

    @transactional
    def run(txn: firestore.Transaction) -> dict[str, Any]:
        current = repository.load(txn, experiment_id)
        repository.check_version(current, expected_version)
        head = ledger_store.read_head(txn, ledger_store.experiment_chain(experiment_id))
        return apply_transition(txn, experiment_ref, current, Action.SUBMIT.value, actor, "submitted for approval",
                                {"requiredApprovers": current.get("requiredApprovers", [])}, head,
                                updates={"approvals": {}, "submittedAt": datetime.now(UTC)})

    return run(db().transaction())


def _all_approved(doc: dict[str, Any], approvals: dict[str, Any]) -> bool:
    required = doc.get("requiredApprovers") or []
    return all(uid in approvals for uid in required) if required else len(approvals) >= 1


def approve(experiment_id: str, principal: Principal, comment: str = "") -> dict[str, Any]:
    if not principal.has_any(APPROVER_ROLES):
        raise Forbidden("only approvers approve experiments", code="NOT_AN_APPROVER")
    experiment_ref = repository.ref(experiment_id)
    actor = principal.to_dict()

    @transactional
    def run(txn: firestore.Transaction) -> dict[str, Any]:
        current = repository.load(txn, experiment_id)
        if current["state"] != State.PENDING_APPROVAL.value:
            raise Conflict(f"cannot approve an experiment in {current['state']}", code="ILLEGAL_TRANSITION",
                           details={"state": current["state"]})
        if current.get("author") == principal.uid:
            raise Forbidden("four eyes: the author cannot approve their own experiment", code="FOUR_EYES")
        required = current.get("requiredApprovers") or []
        if required and principal.uid not in required:
            raise Forbidden("you are not a required approver of this experiment", code="NOT_A_REQUIRED_APPROVER",
                            details={"requiredApprovers": required})
        approvals = dict(current.get("approvals") or {})
        approvals[principal.uid] = {"at": datetime.now(UTC), "comment": comment}
        head = ledger_store.read_head(txn, ledger_store.experiment_chain(experiment_id))
        details = {"approver": principal.uid, "comment": comment, "approvals": sorted(approvals)}
        if _all_approved(current, approvals):
            return apply_transition(txn, experiment_ref, current, Action.APPROVE.value, actor, "all approvals in",
                                    details, head, updates={"approvals": approvals})
        pending = sorted(set(required) - set(approvals))
        return record_event(txn, experiment_ref, current, "APPROVAL_RECORDED", actor, "approval recorded",
                            {**details, "pending": pending}, head, updates={"approvals": approvals})

    return run(db().transaction())


def reject(experiment_id: str, principal: Principal, reason: str) -> dict[str, Any]:
    if not principal.has_any(APPROVER_ROLES):
        raise Forbidden("only approvers reject experiments", code="NOT_AN_APPROVER")
    experiment_ref = repository.ref(experiment_id)

    @transactional
    def run(txn: firestore.Transaction) -> dict[str, Any]:
        current = repository.load(txn, experiment_id)
        if current.get("author") == principal.uid:
            raise Forbidden("four eyes: the author cannot review their own experiment", code="FOUR_EYES")
        head = ledger_store.read_head(txn, ledger_store.experiment_chain(experiment_id))
        return apply_transition(txn, experiment_ref, current, Action.REJECT.value, principal.to_dict(), reason,
                                {"rejectedBy": principal.uid}, head,
                                updates={"approvals": {}, "rejection": {"by": principal.uid, "reason": reason}})

    return run(db().transaction())
