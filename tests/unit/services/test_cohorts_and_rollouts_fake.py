"""Holdout cohorts and rollout actions through the real services on the in-memory unit of work:
each change lands with its ledger entry on the right chain; refusals change nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from functions.adapters.metric_store.duckdb_store import DuckDBStore
from functions.core.errors import AppError
from functions.models.experiments import CreateExperiment
from functions.models.holdouts import CohortCreate, CohortUpdate, FreezeRequest, SpilloverLinkIn
from functions.models.rollouts import PlanRequest
from functions.services.experiments import approvals, definitions, metrics, start
from functions.services.holdouts import cohorts, counters, membership, spillover
from functions.services.holdouts import links as holdout_links
from functions.services.rollouts import actions, plans
from tests.support.factories import APPROVER, OPERATOR, PM, definition
from tests.support.fake_storage import FakeStore


def _entries(store: FakeStore, chain: str) -> list[dict[str, Any]]:
    found = store.collection("experimentLedger", chain, "entries")
    return [found[k] for k in sorted(found)]


def test_a_cohort_is_created_updated_and_frozen_once_with_its_ledger(store: FakeStore) -> None:
    made = cohorts.create(CohortCreate(name="h", percentage=10.0), PM.to_dict())
    updated = cohorts.update(made.id, CohortUpdate(percentage=12.5, expectedVersion=1), PM.to_dict())
    assert (updated.percentage, updated.version) == (12.5, 2)
    frozen = cohorts.freeze(made.id, FreezeRequest(reason="go"), PM.to_dict())
    again = cohorts.freeze(made.id, FreezeRequest(reason="again"), PM.to_dict())
    assert frozen.frozen and again.version == frozen.version == 3
    assert [e["action"] for e in _entries(store, f"cohort-{made.id}")] == [
        "COHORT_CREATED", "COHORT_UPDATED", "COHORT_FROZEN"]  # freezing twice wrote no second entry
    assert [c.id for c in cohorts.list_cohorts(frozen=True)] == [made.id]
    assert cohorts.list_cohorts(frozen=False) == []


def test_a_frozen_cohort_refuses_assignment_changes_and_a_stale_version(store: FakeStore) -> None:
    made = cohorts.create(CohortCreate(name="h", percentage=10.0), PM.to_dict())
    cohorts.freeze(made.id, FreezeRequest(), PM.to_dict())
    before = dict(store.docs)
    for body, code in ((CohortUpdate(percentage=50.0), "FROZEN_COHORT"),
                       (CohortUpdate(name="x", expectedVersion=1), "VERSION_MISMATCH")):
        with pytest.raises(AppError) as refused:
            cohorts.update(made.id, body, PM.to_dict())
        assert (refused.value.status, refused.value.code) == (409, code)
    assert store.docs == before
    with pytest.raises(AppError) as missing:
        cohorts.get("hc-none")
    assert missing.value.code == "COHORT_NOT_FOUND"


@pytest.fixture
def running(store: FakeStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    warehouse = DuckDBStore()
    warehouse.ensure_schema()
    monkeypatch.setattr(metrics, "store", lambda: warehouse)
    store.put(("holdoutCohorts", "hc-1"), {"frozen": True})
    eid = definitions.create(CreateExperiment.model_validate(definition("hc-1")), PM.to_dict())["id"]
    plans.put_plan(eid, PlanRequest(stages=[0.05, 0.5]), PM.to_dict())
    approvals.submit(eid, PM.to_dict())
    approvals.approve(eid, APPROVER)
    start.start(eid, PM.to_dict())
    yield eid
    warehouse.close()


def test_pause_and_resume_move_the_plan_the_mirror_and_the_chain_together(store: FakeStore, running: str) -> None:
    paused = actions.pause(running, OPERATOR.to_dict(), "look at refunds")
    assert paused["kind"] == "PAUSE" and paused["status"] == "PAUSED"
    experiment = store.get(("offerExperiments", running))
    plan = store.get(("rolloutPlans", running))
    assert experiment is not None and plan is not None
    assert experiment["rollout"]["status"] == plan["status"] == "PAUSED"
    assert experiment["version"] == paused["experimentVersion"]
    assert store.get(("rolloutEvents", paused["eventId"]))["reason"] == "look at refunds"  # type: ignore[index]
    with pytest.raises(AppError):
        actions.pause(running, OPERATOR.to_dict(), "twice")  # already paused
    resumed = actions.resume(running, OPERATOR.to_dict(), "fine")
    assert resumed["status"] == "ACTIVE"
    chain = [e["action"] for e in _entries(store, f"exp-{running}")]
    assert chain[-2:] == ["EXPERIMENT_ROLLOUT_PAUSE", "EXPERIMENT_ROLLOUT_RESUME"]


def test_the_plan_of_a_running_experiment_cannot_be_replaced(store: FakeStore, running: str) -> None:
    before = dict(store.docs)
    with pytest.raises(AppError) as refused:
        plans.put_plan(running, PlanRequest(stages=[0.5]), PM.to_dict())
    assert refused.value.code == "ROLLOUT_PLAN_LOCKED"
    assert store.docs == before


def test_a_crossing_referral_contaminates_the_holdout_member_once(store: FakeStore) -> None:
    made = cohorts.create(CohortCreate(name="h", percentage=50.0, spilloverPolicies={"REFERRAL": "EXCLUDE"}),
                          PM.to_dict())
    cohorts.freeze(made.id, FreezeRequest(), PM.to_dict())
    doc = store.get(("holdoutCohorts", made.id))
    assert doc is not None
    sides = {u: membership.in_holdout(doc, u, None) for u in (f"u{i}" for i in range(40))}
    held, treated = next(u for u, s in sides.items() if s), next(u for u, s in sides.items() if not s)
    link = SpilloverLinkIn(eventId="ref-1", linkType="REFERRAL", sourceUnitId=treated, targetUnitId=held)

    result = spillover.ingest(link, PM.to_dict())
    [verdict] = result.verdicts
    assert (verdict.action, verdict.crossing, verdict.contaminatedUnits) == ("CONTAMINATED", True, [held])
    after = dict(store.docs)
    again = spillover.ingest(link, PM.to_dict())  # a redelivery
    assert again.duplicate and again.verdicts == result.verdicts
    assert store.docs == after

    assert holdout_links.contaminated_units(made.id) == {held}
    assert holdout_links.links(made.id) == [(treated, held)]
    shards = store.collection("holdoutCohorts", made.id, "counters")
    assert sum(s.get(counters.CONTAMINATED, 0) for s in shards.values()) == 1
    assert sum(s.get(counters.CROSSINGS, 0) for s in shards.values()) == 1
    chain = [e["action"] for e in _entries(store, f"cohort-{made.id}")]
    assert chain[-1] == "SPILLOVER_CONTAMINATED" and chain.count("SPILLOVER_CONTAMINATED") == 1
