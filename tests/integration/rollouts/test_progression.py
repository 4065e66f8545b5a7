"""Auto-progression through real sweeps on the emulators: the walk 1% -> 50%, guardrails that
block and kill, rollback, concurrent sweeps, and SRM against the stage's split."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from functions.adapters import ledger_store
from functions.adapters.firestore import db
from functions.adapters.repositories.experiments import document as experiment_document
from functions.core.stats.quality import srm
from functions.models.experiments import KpiEvent
from functions.services import sweep
from functions.services.experiments import repository
from functions.services.experiments.kpi import ingest
from functions.services.rollouts import actions, health, inputs, store
from functions.services.rollouts.progression import progress_experiment
from tests.integration.rollouts.helpers import planned_experiment, traffic
from tests.support.factories import OPERATOR, kpi

FAST = {"requirements": {"minTimeAtStageSeconds": 3600, "minUnitsPerArm": 5}}


def sweep_once(eid: str, now: datetime) -> dict:
    """What run_sweep does per RUNNING experiment (snapshot + guardrails, then the rollout step),
    without the ledger checkpoint and outbox flush that belong to other modules."""
    doc = repository.load(eid)
    if doc["state"] == "RUNNING":
        sweep.sweep_experiment(doc, now)
    return progress_experiment(eid, now)


def ticks(start: datetime):
    t = start
    while True:
        t += timedelta(hours=2)
        yield t


def walk_to(eid: str, stage: float, clock, units: int = 600) -> None:
    for _ in range(12):
        if repository.load(eid)["rollout"]["stage"] >= stage:
            return
        traffic(eid, units)
        sweep_once(eid, next(clock))
    raise AssertionError(f"never reached {stage}: {health.health(eid)}")


def ledger_actions(eid: str) -> list[str]:
    return [e["action"] for e in ledger_store.entries(ledger_store.experiment_chain(eid))]


def test_simulated_traffic_walks_one_to_fifty_percent_one_stage_at_a_time():
    eid = planned_experiment(FAST)
    assert repository.load(eid)["rollout"] == {"stage": 0.01, "maxStageReached": 0.01, "status": "ACTIVE",
                                                     "planVersion": 1}
    clock = ticks(datetime.now(UTC))
    seen = [0.01]
    for _ in range(12):
        traffic(eid, 600)
        result = sweep_once(eid, next(clock))
        stage = repository.load(eid)["rollout"]["stage"]
        if stage != seen[-1]:
            seen.append(stage)
        assert result["experimentId"] == eid
        if stage == 0.5:
            break
    assert seen == [0.01, 0.05, 0.10, 0.25, 0.50]  # every stage, none skipped
    events = [e for e in store.list_events(eid) if e["kind"] == "ADVANCE"]
    assert [(e["fromStage"], e["toStage"]) for e in events] == list(pairwise(seen))
    for e in events:  # the values that justified the move are recorded
        assert {r["name"] for r in e["requirements"]} >= {"MIN_TIME_AT_STAGE", "MIN_UNITS_PER_ARM", "SRM"}
        assert all(r["passed"] for r in e["requirements"])
    assert ledger_actions(eid).count("EXPERIMENT_ROLLOUT_ADVANCE") == 4
    doc = repository.load(eid)
    assert doc["rollout"]["maxStageReached"] == 0.5 and doc["state"] == "RUNNING"
    final = sweep_once(eid, next(clock))
    assert final["step"] == "HOLD" and final["reason"] == "final stage reached"


def _refunds(units: list[str]) -> None:
    ingest([KpiEvent.model_validate(kpi(u, "refund", 0.0 if i % 10 == 0 else 1.0)) for i, u in enumerate(units)])


def test_guardrail_breach_at_ten_percent_blocks_and_a_kill_guardrail_aborts():
    guard = [{"metric": "refund", "harmfulDirection": "INCREASE", "absoluteMax": 0.08, "action": "ALERT",
              "minUnitsPerArm": 30}]
    eid = planned_experiment(FAST, guardrails=guard)
    clock = ticks(datetime.now(UTC))
    walk_to(eid, 0.10, clock)
    seen = traffic(eid, 1500)
    _refunds(seen["units"]["treatment"])
    for _ in range(2):
        result = sweep_once(eid, next(clock))
        assert result["step"] == "HOLD" and "NO_GUARDRAIL_VIOLATION" in result["blocking"]
    assert repository.load(eid)["rollout"]["stage"] == 0.10

    killer = planned_experiment(FAST, guardrails=[{**guard[0], "action": "KILL"}])
    walk_to(killer, 0.10, clock)
    seen = traffic(killer, 1500)
    _refunds(seen["units"]["treatment"])
    sweep_once(killer, next(clock))
    doc = repository.load(killer)
    assert doc["state"] == "KILLED"
    assert doc["rollout"] == {"stage": 0.0, "maxStageReached": 0.10, "status": "ABORTED", "planVersion": 1}
    assert store.list_events(killer)[-1]["kind"] == "ABORT"
    assert "EXPERIMENT_ROLLOUT_ABORT" in ledger_actions(killer)


def test_rollout_aborts_the_experiment_itself_on_a_kill_breach_in_the_snapshot():
    eid = planned_experiment(FAST)
    now = datetime.now(UTC) + timedelta(hours=1)
    snapshot = {"experimentId": eid, "windowStart": now, "takenAt": now, "guardrails": [
        {"guardrail": "refund", "arm": "treatment", "action": "KILL", "status": "BREACHED", "observed": 0.5,
         "bound": 0.3}]}
    db().collection("experimentSnapshots").document(f"{eid}__manual").set(snapshot)
    result = progress_experiment(eid, now)
    assert result["step"] == "ABORT"
    doc = repository.load(eid)
    assert doc["state"] == "KILLED" and doc["rollout"]["status"] == "ABORTED"
    chain = ledger_actions(eid)
    assert "EXPERIMENT_KILL" in chain and "EXPERIMENT_ROLLOUT_ABORT" in chain
    outbox = [s.to_dict() for s in experiment_document(eid).collection("outbox").stream()]
    assert any(m["topic"] == "kill_switch" for m in outbox)


def test_rollback_from_25_returns_to_10_with_consistent_exposure_counts():
    eid = planned_experiment(FAST)
    clock = ticks(datetime.now(UTC))
    walk_to(eid, 0.25, clock)
    before = inputs.exposure_counts(eid, ["control", "treatment"])
    event = actions.rollback(eid, OPERATOR.to_dict(), "refund tickets spiking")
    assert (event["fromStage"], event["toStage"]) == (0.25, 0.10)
    assert event["returnedToControl"] == {"bucketFrom": 0.10, "bucketTo": 0.25}  # marked for analysis
    assert json.loads(ledger_store.entries(ledger_store.experiment_chain(eid))[-1]["canonical"])["payload"][
        "returnedToControl"] == {"bucketFrom": 0.10, "bucketTo": 0.25}
    doc = repository.load(eid)
    assert doc["rollout"] == {"stage": 0.10, "maxStageReached": 0.25, "status": "PAUSED", "planVersion": 1}
    after = traffic(eid, 2000)
    # units between 10% and 25% now get control's experience, marked ROLLED_BACK, never logged as exposed
    assert after["statuses"].get("ROLLED_BACK", 0) > 0
    counts = inputs.exposure_counts(eid, ["control", "treatment"])
    new = {k: len(v) for k, v in after["units"].items()}
    assert counts == {k: before[k] + new.get(k, 0) for k in before}
    report = health.health(eid, datetime.now(UTC) + timedelta(hours=1))
    assert report["exposuresSinceStageStart"] == {k: new.get(k, 0) for k in before}
    assert report["expectedSplit"]["treatment"] == 0.10
    srm_result = next(r for r in report["requirements"] if r["name"] == "SRM")
    assert srm_result["passed"]
    paused = sweep_once(eid, next(clock))
    assert paused["step"] == "HOLD" and paused["reason"] == "rollout paused"


def test_two_concurrent_sweeps_advance_once():
    eid = planned_experiment(FAST)
    traffic(eid, 1500)
    now = datetime.now(UTC) + timedelta(hours=2)
    sweep.sweep_experiment(repository.load(eid), now)  # the guardrail snapshot for this stage
    results: list = []

    def progress() -> None:
        try:
            results.append(progress_experiment(eid, now)["step"])
        except Exception as exc:
            # the loser holds, or, when the emulator is slow enough that its transaction retries run
            # out first, gives up with Aborted (the sweep records the step as failed and retries)
            aborted = any(type(e).__name__ == "Aborted" for e in (exc, exc.__cause__))
            results.append("HOLD" if aborted else repr(exc))

    threads = [threading.Thread(target=progress) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ADVANCE", "HOLD"]
    assert repository.load(eid)["rollout"]["stage"] == 0.05
    assert [e["kind"] for e in store.list_events(eid)].count("ADVANCE") == 1
    assert ledger_actions(eid).count("EXPERIMENT_ROLLOUT_ADVANCE") == 1


def test_srm_at_one_percent_uses_the_stage_split():
    eid = planned_experiment(FAST)
    seen = traffic(eid, 4000)
    counts = {k: len(v) for k, v in seen["units"].items()}
    report = health.health(eid, datetime.now(UTC) + timedelta(hours=2))
    srm_result = next(r for r in report["requirements"] if r["name"] == "SRM")
    assert report["expectedSplit"] == {"control": 0.5, "treatment": 0.01}
    assert srm_result["passed"] and srm_result["extra"]["status"] == "PASS"
    assert srm(counts, {"control": 0.5, "treatment": 0.5}).failed  # a naive 50:50 check would cry wolf
    assert report["projectedFinalStageAt"] is not None and report["currentStage"] == 0.01


def test_a_named_stage_waits_for_its_manual_approval():
    from functions.services.rollouts import actions as rollout_actions

    eid = planned_experiment({**FAST, "manualApprovalStages": [0.01]})
    clock = ticks(datetime.now(UTC))
    traffic(eid, 1500)
    held = sweep_once(eid, next(clock))
    assert held["step"] == "HOLD" and held["blocking"] == ["MANUAL_APPROVAL"]
    approval = rollout_actions.approve_stage(eid, OPERATOR.to_dict(), "risk review done")
    assert approval["kind"] == "APPROVE_STAGE"
    assert "EXPERIMENT_ROLLOUT_APPROVE_STAGE" in ledger_actions(eid)
    moved = sweep_once(eid, next(clock))
    assert moved["step"] == "ADVANCE" and repository.load(eid)["rollout"]["stage"] == 0.05
    traffic(eid, 1500)
    assert sweep_once(eid, next(clock))["step"] == "ADVANCE"  # 5% is not a named stage
