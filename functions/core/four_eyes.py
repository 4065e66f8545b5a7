"""Four eyes on what actually runs.

An approval is bound to the content hash of everything that will run: the experiment id, its
whole definition (offer, variants and weights, targeting, guardrails, KPIs, required approvers
...) and its rollout plan (stages and per-stage requirements). The hash is SHA-256 over the
RFC 8785 canonical JSON, so it is the same whichever process or storage round trip computes it.

Who may approve: an approver who is neither the author nor anyone who edited the definition or
the plan (editors). What counts at start: every recorded approval names the current hash, and
together they satisfy the required approvers (or at least one approval when none are named).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from functions.core.errors import Conflict, ErrorCode, Forbidden
from functions.core.ledger.canonical import canonical_bytes

CONTENT_VERSION = 1
PLAN_FIELDS = ("stages", "requirements")


def plan_content(plan: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The part of a rollout plan that decides exposure (progress counters are not content)."""
    if plan is None:
        return None
    return {k: plan.get(k) for k in PLAN_FIELDS}


def content(experiment_id: str, definition: Mapping[str, Any], plan: Mapping[str, Any] | None) -> dict[str, Any]:
    return {"contentVersion": CONTENT_VERSION, "experimentId": experiment_id, "definition": dict(definition),
            "rolloutPlan": plan_content(plan)}


def content_hash(experiment_id: str, definition: Mapping[str, Any], plan: Mapping[str, Any] | None) -> str:
    return hashlib.sha256(canonical_bytes(content(experiment_id, definition, plan))).hexdigest()


def barred(experiment: Mapping[str, Any]) -> set[str]:
    """Who contributed to the content and therefore cannot approve it."""
    return {str(experiment.get("author") or ""), *(experiment.get("editors") or [])} - {""}


def check_approver(experiment: Mapping[str, Any], uid: str) -> None:
    """403 unless `uid` may approve this experiment's content."""
    if uid == experiment.get("author"):
        raise Forbidden("four eyes: the author cannot approve their own experiment", code=ErrorCode.FOUR_EYES)
    if uid in (experiment.get("editors") or []):
        raise Forbidden("four eyes: you changed this experiment's content, so someone else must approve it",
                        code=ErrorCode.FOUR_EYES_EDITOR)
    required = list(experiment.get("requiredApprovers") or [])
    if required and uid not in required:
        raise Forbidden("you are not a required approver of this experiment", code=ErrorCode.NOT_A_REQUIRED_APPROVER,
                        details={"requiredApprovers": required})


def check_approvable(experiment: Mapping[str, Any]) -> None:
    """409 when a required approver is barred: that content could never be approved."""
    blocked = sorted(set(experiment.get("requiredApprovers") or []) & barred(experiment))
    if blocked:
        raise Conflict("a required approver is the author or an editor of this experiment and cannot approve it",
                       code=ErrorCode.REQUIRED_APPROVER_BARRED, details={"barred": blocked})


def check_content(experiment: Mapping[str, Any], current_hash: str) -> None:
    """409 when the stored content hash no longer matches the content (changed outside the API)."""
    recorded = experiment.get("contentHash")
    if recorded != current_hash:
        raise Conflict("the experiment's content differs from the content submitted for approval; resubmit it",
                       code=ErrorCode.CONTENT_CHANGED, details={"submitted": recorded, "current": current_hash})


def complete(experiment: Mapping[str, Any], approvers: Iterable[str]) -> bool:
    got = set(approvers)
    required = list(experiment.get("requiredApprovers") or [])
    return all(uid in got for uid in required) if required else len(got) >= 1


def valid_approvers(experiment: Mapping[str, Any], current_hash: str) -> list[str]:
    """Approvals that still count: on the current hash, by someone not barred."""
    excluded = barred(experiment)
    return sorted(uid for uid, a in (experiment.get("approvals") or {}).items()
                  if isinstance(a, Mapping) and a.get("contentHash") == current_hash and uid not in excluded)


def check_covered(experiment: Mapping[str, Any], current_hash: str) -> list[str]:
    """409 unless the approvals cover exactly the content that is about to run; the approvers."""
    check_content(experiment, current_hash)
    valid = valid_approvers(experiment, current_hash)
    if not complete(experiment, valid):
        stale = sorted(set(experiment.get("approvals") or {}) - set(valid))
        raise Conflict("the approvals do not cover the content that would run; it needs approving again",
                       code=ErrorCode.APPROVAL_NOT_COVERING,
                       details={"contentHash": current_hash, "validApprovers": valid, "notCounted": stale,
                                "requiredApprovers": list(experiment.get("requiredApprovers") or [])})
    return valid
