"""Four eyes: submit, approve (never the author or an editor; every required approver; always the
content hash that will run), reject with a reason. The `stage_*` functions only write, so the
lifecycle call can compose them into one transaction after reading everything it needs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from functions.adapters import ledger_store
from functions.adapters.auth import Principal
from functions.adapters.firestore import db, transactional
from functions.core import four_eyes
from functions.core.errors import Conflict, ErrorCode, Forbidden
from functions.core.lifecycle import Action, State
from functions.services.experiments import repository
from functions.services.experiments.transitions import apply_transition, record_event
from functions.services.rollouts.store import read_plan

APPROVER_ROLES = frozenset({"approver", "admin"})


def current_hash(txn: firestore.Transaction | None, doc: dict[str, Any]) -> str:
    """The content hash of the experiment as it would run now (reads its rollout plan)."""
    return four_eyes.content_hash(doc["id"], repository.definition_of(doc), read_plan(txn, doc["id"]))


def stage_submit(txn: firestore.Transaction, current: dict[str, Any], actor: dict[str, str],
                 head: ledger_store.Head, content_hash: str) -> dict[str, Any]:
    four_eyes.check_approvable(current)
    return apply_transition(txn, repository.ref(current["id"]), current, Action.SUBMIT.value, actor,
                            "submitted for approval",
                            {"requiredApprovers": current.get("requiredApprovers", []), "contentHash": content_hash},
                            head, updates={"approvals": {}, "submittedAt": datetime.now(UTC),
                                           "contentHash": content_hash})


def submit(experiment_id: str, actor: dict[str, str], expected_version: int | None = None) -> dict[str, Any]:
    @transactional
    def run(txn: firestore.Transaction) -> dict[str, Any]:
        current = repository.load(txn, experiment_id)
        repository.check_version(current, expected_version)
        content_hash = current_hash(txn, current)
        head = ledger_store.read_head(txn, ledger_store.experiment_chain(experiment_id))
        return stage_submit(txn, current, actor, head, content_hash)

    return run(db().transaction())


def check_approve(current: dict[str, Any], principal: Principal, content_hash: str,
                  expected_hash: str | None = None) -> None:
    """Every refusal of an approval, before anything is written."""
    if not principal.has_any(APPROVER_ROLES):
        raise Forbidden("only approvers approve experiments", code=ErrorCode.NOT_AN_APPROVER)
    if current["state"] != State.PENDING_APPROVAL.value:
        raise Conflict(f"cannot approve an experiment in {current['state']}", code=ErrorCode.ILLEGAL_TRANSITION,
                       details={"state": current["state"]})
    four_eyes.check_approver(current, principal.uid)
    four_eyes.check_content(current, content_hash)
    if expected_hash is not None and expected_hash != content_hash:
        raise Conflict("the experiment changed since you reviewed it", code=ErrorCode.CONTENT_HASH_MISMATCH,
                       details={"reviewed": expected_hash, "current": content_hash})


def stage_approve(txn: firestore.Transaction, current: dict[str, Any], principal: Principal, comment: str,
                  head: ledger_store.Head, content_hash: str) -> dict[str, Any]:
    approvals = dict(current.get("approvals") or {})
    approvals[principal.uid] = {"at": datetime.now(UTC), "comment": comment, "contentHash": content_hash}
    valid = four_eyes.valid_approvers({**current, "approvals": approvals}, content_hash)
    details = {"approver": principal.uid, "comment": comment, "approvals": valid, "contentHash": content_hash}
    experiment_ref, actor = repository.ref(current["id"]), principal.to_dict()
    if four_eyes.complete(current, valid):
        return apply_transition(txn, experiment_ref, current, Action.APPROVE.value, actor, "all approvals in",
                                details, head, updates={"approvals": approvals})
    pending = sorted(set(current.get("requiredApprovers") or []) - set(valid))
    return record_event(txn, experiment_ref, current, "APPROVAL_RECORDED", actor, "approval recorded",
                        {**details, "pending": pending}, head, updates={"approvals": approvals})


def approve(experiment_id: str, principal: Principal, comment: str = "",
            expected_hash: str | None = None) -> dict[str, Any]:
    """Record one approval of the current content; the last one required moves it to APPROVED."""
    if not principal.has_any(APPROVER_ROLES):
        raise Forbidden("only approvers approve experiments", code=ErrorCode.NOT_AN_APPROVER)

    @transactional
    def run(txn: firestore.Transaction) -> dict[str, Any]:
        current = repository.load(txn, experiment_id)
        content_hash = current_hash(txn, current)
        check_approve(current, principal, content_hash, expected_hash)
        head = ledger_store.read_head(txn, ledger_store.experiment_chain(experiment_id))
        return stage_approve(txn, current, principal, comment, head, content_hash)

    return run(db().transaction())


def reject(experiment_id: str, principal: Principal, reason: str) -> dict[str, Any]:
    if not principal.has_any(APPROVER_ROLES):
        raise Forbidden("only approvers reject experiments", code=ErrorCode.NOT_AN_APPROVER)
    experiment_ref = repository.ref(experiment_id)

    @transactional
    def run(txn: firestore.Transaction) -> dict[str, Any]:
        current = repository.load(txn, experiment_id)
        if current.get("author") == principal.uid:
            raise Forbidden("four eyes: the author cannot review their own experiment", code=ErrorCode.FOUR_EYES)
        head = ledger_store.read_head(txn, ledger_store.experiment_chain(experiment_id))
        return apply_transition(txn, experiment_ref, current, Action.REJECT.value, principal.to_dict(), reason,
                                {"rejectedBy": principal.uid}, head,
                                updates={"approvals": {}, "rejection": {"by": principal.uid, "reason": reason}})

    return run(db().transaction())
