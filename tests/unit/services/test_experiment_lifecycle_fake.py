"""The experiment lifecycle (create, submit, approve, start, transitions) through the real
services and repositories on the in-memory unit of work: the state change, its event, its ledger
entry and its outbox messages land together, and every refusal leaves the store unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from functions.adapters.auth import Principal
from functions.adapters.repositories.session import ReadAfterWrite
from functions.adapters.unit_of_work import atomically
from functions.core.errors import AppError
from functions.core.ledger.entry import GENESIS_HASH
from functions.core.stats.sufficient import MomentStats
from functions.models.experiments import CreateExperiment
from functions.services import sweep
from functions.services.experiments import approvals, definitions, start, transitions
from functions.services.metrics.snapshot_stats import ExperimentStats
from tests.support.factories import APPROVER, PM, definition
from tests.support.fake_storage import FakeStore

COHORT = "hc-frozen"
SECOND = Principal("approver-dan", frozenset({"approver"}))


pytestmark = pytest.mark.usefixtures("warehouse")  # definitions are dry-run against real tables


@pytest.fixture
def cohort(store: FakeStore) -> str:
    store.put(("holdoutCohorts", COHORT), {"name": "h", "percentage": 10.0, "frozen": True, "version": 2})
    return COHORT


def _create(cohort: str, **overrides: Any) -> str:
    body = CreateExperiment.model_validate(definition(cohort, **overrides))
    return str(definitions.create(body, PM.to_dict())["id"])


def _chain(store: FakeStore, eid: str) -> list[dict[str, Any]]:
    entries = store.collection("experimentLedger", f"exp-{eid}", "entries")
    return [entries[k] for k in sorted(entries)]


def _outbox(store: FakeStore, eid: str) -> list[dict[str, Any]]:
    return list(store.collection("offerExperiments", eid, "outbox").values())


def test_create_submit_approve_start_commits_state_event_ledger_and_outbox(store: FakeStore, cohort: str) -> None:
    eid = _create(cohort)
    approvals.submit(eid, PM.to_dict())
    approved = approvals.approve(eid, APPROVER, "ok")
    assert approved["state"] == "APPROVED"
    after = start.start(eid, PM.to_dict(), expected_version=approved["version"])

    doc = store.get(("offerExperiments", eid))
    assert doc is not None and doc["state"] == after["state"] == "RUNNING"
    assert doc["version"] == 4 and doc["layerRange"] == [0.0, 1.0] and doc["planHash"]
    events = store.collection("experimentEvents")
    assert [events[f"{eid}__{v:06d}"]["action"] for v in range(1, 5)] == ["CREATE", "SUBMIT", "APPROVE", "START"]
    chain = _chain(store, eid)
    assert [e["action"] for e in chain] == ["EXPERIMENT_CREATED", "EXPERIMENT_SUBMIT", "EXPERIMENT_APPROVE",
                                            "PLAN_PREREGISTERED", "EXPERIMENT_START"]
    assert [e["seq"] for e in chain] == list(range(5))
    assert chain[0]["prevHash"] == GENESIS_HASH
    assert all(chain[i]["prevHash"] == chain[i - 1]["hash"] for i in range(1, len(chain)))
    head = store.get(("experimentLedger", f"exp-{eid}"))
    assert head is not None and (head["headSeq"], head["headHash"]) == (4, chain[-1]["hash"])
    announced = sorted(m["topic"] for m in _outbox(store, eid))
    assert announced == ["experiment_state"] * 3  # submit, approve, start; nothing is sent yet
    assert not any(m["sent"] for m in _outbox(store, eid))


def test_the_author_cannot_approve_and_nothing_changes(store: FakeStore, cohort: str) -> None:
    eid = _create(cohort, requiredApprovers=[])
    approvals.submit(eid, PM.to_dict())
    before = dict(store.docs)
    author_as_approver = Principal(PM.uid, frozenset({"approver"}))
    with pytest.raises(AppError) as refused:
        approvals.approve(eid, author_as_approver)
    assert (refused.value.status, refused.value.code) == (403, "FOUR_EYES")
    assert store.docs == before


def test_a_stale_version_is_refused_and_nothing_changes(store: FakeStore, cohort: str) -> None:
    eid = _create(cohort)
    before = dict(store.docs)
    with pytest.raises(AppError) as refused:
        approvals.submit(eid, PM.to_dict(), expected_version=7)
    assert refused.value.code == "VERSION_MISMATCH" and refused.value.details == {"expected": 7, "actual": 1}
    assert store.docs == before


def test_start_without_the_approvals_on_the_current_content_is_refused(store: FakeStore, cohort: str) -> None:
    eid = _create(cohort, requiredApprovers=[APPROVER.uid, SECOND.uid])
    approvals.submit(eid, PM.to_dict())
    partial = approvals.approve(eid, APPROVER)
    assert partial["state"] == "PENDING_APPROVAL"
    assert store.get(("experimentEvents", f"{eid}__000003"))["action"] == "APPROVAL_RECORDED"  # type: ignore[index]
    before = dict(store.docs)
    with pytest.raises(AppError) as refused:
        start.start(eid, PM.to_dict())
    assert refused.value.status == 409
    assert store.docs == before


def test_a_kill_announces_the_kill_switch_in_the_same_commit(store: FakeStore, cohort: str) -> None:
    eid = _create(cohort)
    approvals.submit(eid, PM.to_dict())
    approvals.approve(eid, APPROVER)
    start.start(eid, PM.to_dict())
    killed = transitions.transition(eid, "KILL", PM.to_dict(), "refunds spiked", {"guardrail": "refund"})
    assert killed["state"] == "KILLED" and killed["endedAt"] is not None
    kill = [m for m in _outbox(store, eid) if m["topic"] == "kill_switch"]
    assert len(kill) == 1 and '"guardrail": "refund"' in kill[0]["payload"]
    with pytest.raises(AppError) as again:  # terminal: a second kill is an illegal transition
        transitions.transition(eid, "KILL", PM.to_dict())
    assert again.value.code == "ILLEGAL_TRANSITION"


def test_a_lost_race_reruns_the_transaction_and_commits_once(store: FakeStore, cohort: str) -> None:
    eid = _create(cohort)
    attempts = store.attempts
    store.contend(2)
    approvals.submit(eid, PM.to_dict())
    assert store.attempts - attempts == 3
    assert store.get(("offerExperiments", eid))["version"] == 2  # type: ignore[index]
    assert [e["action"] for e in _chain(store, eid)] == ["EXPERIMENT_CREATED", "EXPERIMENT_SUBMIT"]


def test_a_layer_slice_is_taken_from_the_free_share(store: FakeStore, cohort: str) -> None:
    first, second, third = (_create(cohort, layer="paywall", layerShare=0.4) for _ in range(3))
    for eid in (first, second, third):
        approvals.submit(eid, PM.to_dict())
        approvals.approve(eid, APPROVER)
    assert start.start(first, PM.to_dict())["layerRange"] == [0.0, 0.4]
    assert start.start(second, PM.to_dict())["layerRange"] == [0.4, 0.8]
    with pytest.raises(AppError) as full:
        start.start(third, PM.to_dict())
    assert full.value.code == "LAYER_FULL"
    assert store.get(("offerExperiments", third))["state"] == "APPROVED"  # type: ignore[index]


def test_an_unfrozen_or_missing_holdout_is_refused(store: FakeStore) -> None:
    store.put(("holdoutCohorts", "hc-open"), {"frozen": False})
    for cohort_id, code in (("hc-open", "HOLDOUT_NOT_FROZEN"), ("hc-none", "HOLDOUT_NOT_FOUND")):
        with pytest.raises(AppError) as refused:
            _create(cohort_id)
        assert refused.value.code == code
    assert store.collection("offerExperiments") == {}


def test_a_read_after_a_write_is_refused_and_nothing_commits(store: FakeStore, cohort: str) -> None:
    eid = _create(cohort)
    before = dict(store.docs)

    def work(uow: Any) -> None:
        uow.experiments.update(eid, {"name": "renamed"})
        uow.experiments.get(eid)

    with pytest.raises(ReadAfterWrite):
        atomically(work)
    assert store.docs == before


def test_a_sweep_kills_on_a_breach_once_per_window(store: FakeStore, cohort: str) -> None:
    eid = _create(cohort)
    approvals.submit(eid, PM.to_dict())
    approvals.approve(eid, APPROVER)
    doc = start.start(eid, PM.to_dict())
    refunds = {"control": {"refund": MomentStats.from_arrays([1.0] * 40 + [0.0] * 1960)},
               "treatment": {"refund": MomentStats.from_arrays([1.0] * 600 + [0.0] * 1400)}}
    now = datetime.now(UTC)
    first = sweep.sweep_experiment(doc, now, stats=ExperimentStats(stats=refunds))
    again = sweep.sweep_experiment(doc, now, stats=ExperimentStats(stats=refunds))  # a redelivered tick
    assert first["acted"] == "KILL" and first["skipped"] is False
    assert again["skipped"] is True
    killed = store.get(("offerExperiments", eid))
    assert killed is not None and killed["state"] == "KILLED"
    snapshot = store.get(("experimentSnapshots", first["snapshot"]))
    assert snapshot is not None and snapshot["acted"] == "KILL"
    assert [m["topic"] for m in _outbox(store, eid)].count("kill_switch") == 1
    assert [e["action"] for e in _chain(store, eid)].count("EXPERIMENT_KILL") == 1
