"""Every change to an experiment is one commit of: the experiment document (version + 1), an
`experimentEvents` entry, its ledger entry and the outbox messages that announce it. Callers in
other modules (rollout abort, guardrail kills) run these inside their own transaction."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from functions.adapters import ledger_store, outbox
from functions.adapters.firestore import db, transactional
from functions.core.lifecycle import TERMINAL, Action, State, next_state
from functions.services.experiments import repository

KILL_SWITCH_ACTIONS = {Action.PAUSE, Action.KILL}


def record_event(
    txn: firestore.Transaction,
    experiment_ref: firestore.DocumentReference,
    current: dict[str, Any],
    action: str,
    actor: dict[str, str],
    reason: str,
    details: dict[str, Any],
    ledger_head: ledger_store.Head,
    updates: dict[str, Any] | None = None,
    ledger_payload: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Version bump + event + ledger entry, with or without a state change."""
    version = int(current.get("version", 0)) + 1
    now = datetime.now(UTC)
    changes = {"version": version, "updatedAt": now, **(updates or {})}
    txn.update(experiment_ref, changes)
    after = {**current, **changes}
    txn.create(repository.event_ref(experiment_ref.id, version), {
        "experimentId": experiment_ref.id, "version": version, "action": action, "from": current.get("state"),
        "to": after.get("state"), "actor": actor, "reason": reason, "details": details, "at": now,
    })
    ledger_store.append(
        txn, ledger_head, actor=actor, action=f"EXPERIMENT_{action}", subject={"experimentId": experiment_ref.id},
        payload=ledger_payload or {"from": current.get("state"), "to": after.get("state"), "reason": reason,
                                   "details": details, "version": version},
    )
    return after


def apply_transition(
    txn: firestore.Transaction,
    experiment_ref: firestore.DocumentReference,
    current: dict[str, Any],
    action: str,
    actor: dict[str, str],
    reason: str,
    details: dict[str, Any],
    ledger_head: ledger_store.Head,
    updates: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A state transition (409 if illegal); also announces it: experiment_state always,
    kill_switch for PAUSE and KILL."""
    target = next_state(current.get("state", ""), action)
    now = datetime.now(UTC)
    changes: dict[str, Any] = {"state": target.value, **(updates or {})}
    if target in TERMINAL:
        changes["endedAt"] = now
    after = record_event(txn, experiment_ref, current, action, actor, reason, details, ledger_head, changes)
    eid, version = experiment_ref.id, after["version"]
    outbox.enqueue(txn, experiment_ref, "experiment_state", {
        "experimentId": eid, "from": current.get("state"), "to": target.value, "action": action, "actor": actor,
        "reason": reason, "version": version, "at": now.isoformat(),
    }, key=f"{eid}:{version}:state")
    if Action(action) in KILL_SWITCH_ACTIONS:
        outbox.enqueue(txn, experiment_ref, "kill_switch", {
            "experimentId": eid, "action": action, "reason": reason, "guardrail": details.get("guardrail"),
            "observed": details.get("observed"), "bound": details.get("bound"), "at": now.isoformat(),
            "version": version,
        }, key=f"{eid}:{version}:kill")
    return after


def transition(experiment_id: str, action: str, actor: dict[str, str], reason: str = "",
               details: dict[str, Any] | None = None, expected_version: int | None = None) -> dict[str, Any]:
    """Run one transition in its own transaction; concurrent callers: exactly one wins."""
    experiment_ref = repository.ref(experiment_id)

    @transactional
    def run(txn: firestore.Transaction) -> dict[str, Any]:
        current = repository.load(txn, experiment_id)
        repository.check_version(current, expected_version)
        head = ledger_store.read_head(txn, ledger_store.experiment_chain(experiment_id))
        return apply_transition(txn, experiment_ref, current, action, actor, reason, details or {}, head)

    after = run(db().transaction())
    repository.invalidate()
    return after


__all__ = ["State", "apply_transition", "record_event", "transition"]
