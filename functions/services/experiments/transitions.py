"""Every change to an experiment is one commit of: the experiment document (version + 1), an
`experimentEvents` entry, its ledger entry and the outbox messages that announce it. Callers in
other modules (rollout abort, guardrail kills) run these inside their own transaction."""

from __future__ import annotations

from typing import Any

from functions.adapters.repositories.experiments import ExperimentChanges, ExperimentDoc
from functions.adapters.repositories.ledger import Head
from functions.adapters.unit_of_work import UnitOfWork, atomically
from functions.core.clock import utc_now
from functions.core.lifecycle import TERMINAL, Action, State, next_state

KILL_SWITCH_ACTIONS = {Action.PAUSE, Action.KILL}


def record_event(
    uow: UnitOfWork,
    current: ExperimentDoc,
    action: str,
    actor: dict[str, str],
    reason: str,
    details: dict[str, Any],
    ledger_head: Head,
    updates: ExperimentChanges | None = None,
    ledger_payload: dict[str, Any] | None = None,
) -> ExperimentDoc:
    """Version bump + event + ledger entry, with or without a state change."""
    experiment_id = current["id"]
    version = int(current.get("version", 0)) + 1
    now = utc_now()
    changes: ExperimentChanges = {"version": version, "updatedAt": now, **(updates or {})}
    uow.experiments.update(experiment_id, changes)
    after: ExperimentDoc = {**current, **changes}
    uow.experiments.add_event(experiment_id, version, {
        "experimentId": experiment_id, "version": version, "action": action, "from": current.get("state"),
        "to": after.get("state"), "actor": actor, "reason": reason, "details": details, "at": now,
    })
    uow.ledger.append(
        ledger_head, actor=actor, action=f"EXPERIMENT_{action}", subject={"experimentId": experiment_id},
        payload=ledger_payload or {"from": current.get("state"), "to": after.get("state"), "reason": reason,
                                   "details": details, "version": version},
    )
    return after


def apply_transition(
    uow: UnitOfWork,
    current: ExperimentDoc,
    action: str,
    actor: dict[str, str],
    reason: str,
    details: dict[str, Any],
    ledger_head: Head,
    updates: ExperimentChanges | None = None,
) -> ExperimentDoc:
    """A state transition (409 if illegal); also announces it: experiment_state always,
    kill_switch for PAUSE and KILL."""
    target = next_state(current.get("state", ""), action)
    now = utc_now()
    changes: ExperimentChanges = {"state": target.value, **(updates or {})}
    if target in TERMINAL:
        changes["endedAt"] = now
    after = record_event(uow, current, action, actor, reason, details, ledger_head, changes)
    eid, version = current["id"], after["version"]
    parent = uow.experiments.path(eid)
    uow.outbox.add(parent, "experiment_state", {
        "experimentId": eid, "from": current.get("state"), "to": target.value, "action": action, "actor": actor,
        "reason": reason, "version": version, "at": now.isoformat(),
    }, key=f"{eid}:{version}:state")
    if Action(action) in KILL_SWITCH_ACTIONS:
        uow.outbox.add(parent, "kill_switch", {
            "experimentId": eid, "action": action, "reason": reason, "guardrail": details.get("guardrail"),
            "observed": details.get("observed"), "bound": details.get("bound"), "at": now.isoformat(),
            "version": version,
        }, key=f"{eid}:{version}:kill")
    return after


def transition(experiment_id: str, action: str, actor: dict[str, str], reason: str = "",
               details: dict[str, Any] | None = None, expected_version: int | None = None) -> ExperimentDoc:
    """Run one transition in its own transaction; concurrent callers: exactly one wins."""

    def work(uow: UnitOfWork) -> ExperimentDoc:
        current = uow.experiments.get(experiment_id, expected_version)
        head = uow.ledger.experiment_head(experiment_id)
        return apply_transition(uow, current, action, actor, reason, details or {}, head)

    after = atomically(work)
    return after


__all__ = ["State", "apply_transition", "record_event", "transition"]
