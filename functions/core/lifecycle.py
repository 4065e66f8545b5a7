"""The experiment lifecycle as an explicit state machine.

    DRAFT -submit-> PENDING_APPROVAL -approve(all)-> APPROVED -start-> RUNNING <-pause/resume-> PAUSED
    RUNNING|PAUSED -complete-> COMPLETED      RUNNING|PAUSED -kill-> KILLED
    DRAFT|PENDING_APPROVAL|APPROVED -cancel-> CANCELLED
    PENDING_APPROVAL -reject-> DRAFT          PENDING_APPROVAL|APPROVED -edit-> PENDING_APPROVAL (approvals void)
Anything else is illegal (409, nothing changes).
"""

from __future__ import annotations

from enum import StrEnum

from functions.core.errors import Conflict, ErrorCode


class State(StrEnum):
    DRAFT = "DRAFT"
    PENDING_APPROVAL = "PENDING_APPROVAL"
    APPROVED = "APPROVED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    KILLED = "KILLED"
    CANCELLED = "CANCELLED"


class Action(StrEnum):
    SUBMIT = "SUBMIT"
    APPROVE = "APPROVE"
    REJECT = "REJECT"
    EDIT = "EDIT"
    START = "START"
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    KILL = "KILL"
    COMPLETE = "COMPLETE"
    CANCEL = "CANCEL"


TRANSITIONS: dict[tuple[State, Action], State] = {
    (State.DRAFT, Action.SUBMIT): State.PENDING_APPROVAL,
    (State.DRAFT, Action.EDIT): State.DRAFT,
    (State.DRAFT, Action.CANCEL): State.CANCELLED,
    (State.PENDING_APPROVAL, Action.APPROVE): State.APPROVED,
    (State.PENDING_APPROVAL, Action.REJECT): State.DRAFT,
    (State.PENDING_APPROVAL, Action.EDIT): State.PENDING_APPROVAL,
    (State.PENDING_APPROVAL, Action.CANCEL): State.CANCELLED,
    (State.APPROVED, Action.START): State.RUNNING,
    (State.APPROVED, Action.EDIT): State.PENDING_APPROVAL,
    (State.APPROVED, Action.CANCEL): State.CANCELLED,
    (State.RUNNING, Action.PAUSE): State.PAUSED,
    (State.RUNNING, Action.KILL): State.KILLED,
    (State.RUNNING, Action.COMPLETE): State.COMPLETED,
    (State.PAUSED, Action.RESUME): State.RUNNING,
    (State.PAUSED, Action.KILL): State.KILLED,
    (State.PAUSED, Action.COMPLETE): State.COMPLETED,
}
TERMINAL = frozenset({State.COMPLETED, State.KILLED, State.CANCELLED})
LIVE = frozenset({State.RUNNING, State.PAUSED})
DEFINITION_LOCKED = frozenset({State.RUNNING, State.PAUSED, *TERMINAL})


def next_state(current: str, action: str) -> State:
    try:
        state, act = State(current), Action(action)
    except ValueError as exc:
        raise Conflict(f"unknown state or action {current}/{action}", code=ErrorCode.ILLEGAL_TRANSITION) from exc
    target = TRANSITIONS.get((state, act))
    if target is None:
        allowed = sorted(a.value for (s, a) in TRANSITIONS if s == state)
        raise Conflict(f"cannot {act.value} an experiment in {state.value}", code=ErrorCode.ILLEGAL_TRANSITION,
                       details={"state": state.value, "action": act.value, "allowed": allowed})
    return target
