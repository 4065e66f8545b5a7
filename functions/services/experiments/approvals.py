"""Four eyes: submit, approve (never the author or an editor; every required approver; always the
content hash that will run), reject with a reason. The `stage_*` functions only write, so the
lifecycle call can compose them into one transaction after reading everything it needs."""

from __future__ import annotations

from functions.adapters.auth import Principal
from functions.adapters.repositories.experiments import ExperimentDoc
from functions.adapters.repositories.ledger import Head
from functions.adapters.unit_of_work import UnitOfWork, atomically
from functions.core import four_eyes
from functions.core.clock import utc_now
from functions.core.errors import Conflict, ErrorCode, Forbidden
from functions.core.lifecycle import Action, State
from functions.services.experiments import repository
from functions.services.experiments.transitions import apply_transition, record_event

APPROVER_ROLES = frozenset({"approver", "admin"})


def current_hash(uow: UnitOfWork, doc: ExperimentDoc) -> str:
    """The content hash of the experiment as it would run now (reads its rollout plan)."""
    return four_eyes.content_hash(doc["id"], repository.definition_of(doc), uow.rollouts.plan(doc["id"]))


def stage_submit(uow: UnitOfWork, current: ExperimentDoc, actor: dict[str, str],
                 head: Head, content_hash: str) -> ExperimentDoc:
    four_eyes.check_approvable(current)
    return apply_transition(uow, current, Action.SUBMIT.value, actor,
                            "submitted for approval",
                            {"requiredApprovers": current.get("requiredApprovers", []), "contentHash": content_hash},
                            head, updates={"approvals": {}, "submittedAt": utc_now(),
                                           "contentHash": content_hash})


def submit(experiment_id: str, actor: dict[str, str], expected_version: int | None = None) -> ExperimentDoc:
    def work(uow: UnitOfWork) -> ExperimentDoc:
        current = uow.experiments.get(experiment_id, expected_version)
        content_hash = current_hash(uow, current)
        head = uow.ledger.experiment_head(experiment_id)
        return stage_submit(uow, current, actor, head, content_hash)

    return atomically(work)


def check_approve(current: ExperimentDoc, principal: Principal, content_hash: str,
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


def stage_approve(uow: UnitOfWork, current: ExperimentDoc, principal: Principal, comment: str,
                  head: Head, content_hash: str) -> ExperimentDoc:
    approvals = dict(current.get("approvals") or {})
    approvals[principal.uid] = {"at": utc_now(), "comment": comment, "contentHash": content_hash}
    valid = four_eyes.valid_approvers({**current, "approvals": approvals}, content_hash)
    details = {"approver": principal.uid, "comment": comment, "approvals": valid, "contentHash": content_hash}
    actor = principal.to_dict()
    if four_eyes.complete(current, valid):
        return apply_transition(uow, current, Action.APPROVE.value, actor, "all approvals in",
                                details, head, updates={"approvals": approvals})
    pending = sorted(set(current.get("requiredApprovers") or []) - set(valid))
    return record_event(uow, current, "APPROVAL_RECORDED", actor, "approval recorded",
                        {**details, "pending": pending}, head, updates={"approvals": approvals})


def approve(experiment_id: str, principal: Principal, comment: str = "",
            expected_hash: str | None = None) -> ExperimentDoc:
    """Record one approval of the current content; the last one required moves it to APPROVED."""
    if not principal.has_any(APPROVER_ROLES):
        raise Forbidden("only approvers approve experiments", code=ErrorCode.NOT_AN_APPROVER)

    def work(uow: UnitOfWork) -> ExperimentDoc:
        current = uow.experiments.get(experiment_id)
        content_hash = current_hash(uow, current)
        check_approve(current, principal, content_hash, expected_hash)
        head = uow.ledger.experiment_head(experiment_id)
        return stage_approve(uow, current, principal, comment, head, content_hash)

    return atomically(work)


def reject(experiment_id: str, principal: Principal, reason: str) -> ExperimentDoc:
    if not principal.has_any(APPROVER_ROLES):
        raise Forbidden("only approvers reject experiments", code=ErrorCode.NOT_AN_APPROVER)

    def work(uow: UnitOfWork) -> ExperimentDoc:
        current = uow.experiments.get(experiment_id)
        if current.get("author") == principal.uid:
            raise Forbidden("four eyes: the author cannot review their own experiment", code=ErrorCode.FOUR_EYES)
        head = uow.ledger.experiment_head(experiment_id)
        return apply_transition(uow, current, Action.REJECT.value, principal.to_dict(), reason,
                                {"rejectedBy": principal.uid}, head,
                                updates={"approvals": {}, "rejection": {"by": principal.uid, "reason": reason}})

    return atomically(work)
