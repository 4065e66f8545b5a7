"""runFullExperimentLifecycle: create, submit, approve with the approvers' own tokens, start.

All or nothing: every token, role, four-eyes rule and token binding is checked before anything
is written, and the four steps then commit as one transaction (the same `stage_*` writes as the
individual routes), so a refusal leaves no experiment, no approval and no ledger entry behind.

An approver token is bound to what it approves: it carries the claim `approvesContentHash`, the
content hash of this experiment (id, definition, no rollout plan yet; `/lifecycle/content-hash`
computes it). A token minted for another experiment or another content is refused (403)."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from functions.adapters.auth import Principal, authenticate
from functions.adapters.repositories.experiments import ExperimentDoc
from functions.adapters.unit_of_work import UnitOfWork, atomically
from functions.core import four_eyes
from functions.core.errors import AppError, Conflict, ErrorCode, Forbidden, Unprocessable
from functions.models.experiments import CreateExperiment, LifecycleRequest
from functions.services.experiments import approvals, definitions, start

BINDING_CLAIM = "approvesContentHash"
COMMENT = "approved via lifecycle helper"


def intended_hash(body: CreateExperiment) -> str:
    """The content hash a lifecycle call for `body` will run (a new experiment has no rollout plan)."""
    if not body.id:
        raise Unprocessable("the lifecycle call needs definition.id: approver tokens are bound to it",
                            code=ErrorCode.EXPERIMENT_ID_REQUIRED, details={"field": "definition.id"})
    return four_eyes.content_hash(body.id, body.model_dump(mode="json", exclude={"id"}), None)


def _at(index: int, err: AppError) -> AppError:
    """The error, naming the approver token it is about."""
    err.details = {**(err.details if isinstance(err.details, dict) else {}), "approverToken": index}
    return err


def _authenticated(tokens: list[str]) -> list[Principal]:
    """Every token is verified first: one bad token is a 401 whatever the others hold."""
    out = []
    for index, token in enumerate(tokens):
        try:
            out.append(authenticate(f"Bearer {token}"))
        except AppError as err:
            raise _at(index, err) from None
    return out


def _roles_and_four_eyes(draft: dict[str, Any], approver: Principal, seen: set[str]) -> None:
    if not approver.has_any(approvals.APPROVER_ROLES):
        raise Forbidden("only approvers approve experiments", code=ErrorCode.NOT_AN_APPROVER)
    four_eyes.check_approver(draft, approver.uid)
    if approver.uid in seen:
        raise Conflict(f"{approver.uid} approves twice; four eyes need distinct approvers",
                       code=ErrorCode.DUPLICATE_APPROVER)
    seen.add(approver.uid)


def _binding(approver: Principal, content_hash: str) -> None:
    if approver.claims.get(BINDING_CLAIM) != content_hash:
        raise Forbidden("the approver token is not bound to this experiment's content",
                        code=ErrorCode.APPROVAL_NOT_BOUND,
                        details={"claim": BINDING_CLAIM, "contentHash": content_hash})


def _approvers(request: LifecycleRequest, author: Principal, content_hash: str) -> list[Principal]:
    """Every check before any write, one kind at a time so the answer does not depend on token
    order: approvable at all (409), then 401 (any token), then roles and four eyes (403, 409
    duplicate), then binding (403), then completeness (409)."""
    draft = {"author": author.uid, "editors": [], "requiredApprovers": request.definition.requiredApprovers}
    four_eyes.check_approvable(draft)
    approvers = _authenticated(request.approverTokens)
    seen: set[str] = set()
    for check in (lambda a: _roles_and_four_eyes(draft, a, seen), lambda a: _binding(a, content_hash)):
        for index, approver in enumerate(approvers):
            try:
                check(approver)
            except AppError as err:
                raise _at(index, err) from None
    if not four_eyes.complete(draft, seen):
        raise Conflict("the approver tokens do not complete the approvals, so the experiment could not start",
                       code=ErrorCode.APPROVALS_INCOMPLETE,
                       details={"requiredApprovers": request.definition.requiredApprovers, "approvers": sorted(seen)})
    return approvers


class LifecycleStepView(TypedDict):
    step: str  # CREATED, SUBMITTED, APPROVED_BY or STARTED
    state: str
    uid: NotRequired[str]  # the approver (APPROVED_BY)


class LifecycleView(TypedDict):
    """What the one-call lifecycle answers (`models.experiments.LifecycleResult`)."""

    experimentId: str
    state: str
    contentHash: str
    steps: list[LifecycleStepView]


def run_full_lifecycle(request: LifecycleRequest, author: Principal) -> LifecycleView:
    definitions.validate_definition(request.definition)
    content_hash = intended_hash(request.definition)
    approvers = _approvers(request, author, content_hash)
    actor = author.to_dict()
    doc = definitions.new_document(request.definition, actor)

    def work(uow: UnitOfWork) -> tuple[ExperimentDoc, list[LifecycleStepView]]:
        head = definitions.read_create(uow, doc)
        if uow.rollouts.plan(doc["id"]) is not None:  # a leftover plan would change what runs
            raise Conflict(f"a rollout plan already exists for {doc['id']}", code=ErrorCode.ALREADY_EXISTS)
        occupied = start.read_layer(uow, doc)
        current = definitions.stage_create(uow, doc.copy(), actor, head)
        steps: list[LifecycleStepView] = [{"step": "CREATED", "state": current["state"]}]
        current = approvals.stage_submit(uow, current, actor, head, content_hash)
        steps.append({"step": "SUBMITTED", "state": current["state"]})
        for approver in approvers:
            approvals.check_approve(current, approver, content_hash)
            current = approvals.stage_approve(uow, current, approver, COMMENT, head, content_hash)
            steps.append({"step": "APPROVED_BY", "uid": approver.uid, "state": current["state"]})
        current = start.stage_start(uow, current, actor, head, occupied, content_hash)
        steps.append({"step": "STARTED", "state": current["state"]})
        return current, steps

    after, steps = atomically(work)
    return {"experimentId": after["id"], "state": after["state"], "contentHash": content_hash, "steps": steps}
