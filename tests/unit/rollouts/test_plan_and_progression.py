"""Plan transitions (legal and illegal), the sweep's decision, and the time-to-final projection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.core.errors import Conflict
from functions.core.rollout import plan as p
from functions.core.rollout.progression import Step, decide
from functions.core.rollout.projection import eligible_rate, project_final
from functions.core.rollout.requirements import MIN_TIME, RequirementResult, StageRequirements

T0 = datetime(2025, 3, 1, tzinfo=UTC)
STAGES = (0.01, 0.05, 0.10, 0.25, 0.50)
REQS = tuple(StageRequirements(min_time_seconds=3600, min_units_per_arm=10) for _ in STAGES)


def fresh() -> p.PlanState:
    return p.new_plan(STAGES, REQS, None)[0]


def test_advance_moves_one_stage_and_tracks_the_maximum():
    state = fresh()
    for i in range(1, len(STAGES)):
        state, change = p.advance(state, T0, {"control": i})
        assert (state.index, state.max_index, change.to_stage) == (i, i, STAGES[i])
        assert change.from_stage == STAGES[i - 1] and state.baseline == {"control": i}
    with pytest.raises(Conflict) as info:
        p.advance(state, T0, {})
    assert info.value.code == "ROLLOUT_FINAL_STAGE"


def test_rollback_keeps_the_maximum_pauses_and_drops_later_approvals():
    state = fresh()
    for _ in range(3):
        state, _ = p.advance(state, T0, {})
    state = p.PlanState(**{**state.__dict__, "approvals": frozenset({1, 3})})
    back, change = p.rollback(state, T0, {"treatment": 7})
    assert (back.stage, back.max_stage_reached, back.status) == (0.10, 0.25, p.RolloutStatus.PAUSED)
    assert back.approvals == frozenset({1}) and change.kind == p.ChangeKind.ROLLBACK
    assert back.mirror() == {"stage": 0.10, "maxStageReached": 0.25, "status": "PAUSED", "planVersion": 1}
    with pytest.raises(Conflict):
        p.advance(back, T0, {})  # paused: resume first
    resumed, _ = p.resume(back)
    assert p.advance(resumed, T0, {})[0].stage == 0.25


def test_illegal_moves_are_conflicts():
    state = fresh()
    with pytest.raises(Conflict):
        p.rollback(state, T0, {})
    with pytest.raises(Conflict):
        p.resume(state)
    with pytest.raises(Conflict):
        p.approve_stage(state)  # this stage needs no approval
    aborted, _ = p.abort(state)
    assert aborted.mirror()["stage"] == 0.0 and aborted.max_stage_reached == 0.01
    for move in (p.pause, p.resume, p.abort):
        with pytest.raises(Conflict):
            move(aborted)


def test_event_ids_are_deterministic_and_distinct_per_change():
    state = fresh()
    a1, c1 = p.advance(state, T0, {})
    _, c2 = p.advance(state, T0 + timedelta(hours=1), {"x": 1})
    assert c1.event_id("e") == c2.event_id("e")  # same move from the same state: same id
    back, c3 = p.rollback(a1, T0, {})
    _, c4 = p.advance(p.resume(back)[0], T0, {})
    assert len({c1.event_id("e"), c3.event_id("e"), c4.event_id("e")}) == 3


def test_doc_round_trip():
    state, _ = p.advance(fresh(), T0, {"control": 3})
    assert p.PlanState.from_doc(state.to_doc()) == state


PASS = [RequirementResult(MIN_TIME, True, 1, 1)]
FAIL = [RequirementResult(MIN_TIME, False, 0, 1)]
KILL = [{"guardrail": "refund", "arm": "t", "status": "BREACHED", "action": "KILL"}]


@pytest.mark.parametrize(("status", "exp_state", "results", "verdicts", "step"), [
    ("ACTIVE", "RUNNING", PASS, [], Step.ADVANCE),
    ("ACTIVE", "RUNNING", FAIL, [], Step.HOLD),
    ("PAUSED", "RUNNING", PASS, [], Step.HOLD),
    ("ACTIVE", "PAUSED", PASS, [], Step.HOLD),
    ("ACTIVE", "RUNNING", PASS, KILL, Step.ABORT),
    ("PAUSED", "PAUSED", FAIL, KILL, Step.ABORT),
    ("ACTIVE", "KILLED", PASS, [], Step.SYNC_ABORT),
    ("ABORTED", "KILLED", PASS, KILL, Step.NONE),
])
def test_decide(status, exp_state, results, verdicts, step):
    state = p.PlanState(STAGES, REQS, status=p.RolloutStatus(status))
    assert decide(state, exp_state, results, verdicts).step == step


def test_final_stage_holds():
    state = p.PlanState(STAGES, REQS, index=len(STAGES) - 1, max_index=len(STAGES) - 1)
    assert decide(state, "RUNNING", PASS, []).step == Step.HOLD


def split_at(stage: float) -> dict[str, float]:
    return {"control": 0.5, "treatment": stage}


def test_projection_when_time_binds():
    # 100 eligible units/s: min units (10) are reached in well under the hour, so each of the
    # four remaining transitions takes exactly the hour (the first has 30 minutes left).
    rate = eligible_rate({"control": 50 * 1800, "treatment": 1800}, split_at(0.01), 1800)
    assert rate == pytest.approx(100.0)
    end = project_final(STAGES, REQS, 0, T0 + timedelta(minutes=30), T0, {"control": 90000, "treatment": 1800},
                        split_at, rate)
    assert end == T0 + timedelta(hours=4)


def test_projection_when_traffic_binds_and_without_traffic():
    reqs = tuple(StageRequirements(min_time_seconds=0, min_units_per_arm=1000) for _ in STAGES)
    # 1 eligible unit/s: treatment at 1% gains 0.01 units/s, so 1000 units take 100,000 s; every later
    # stage starts with 1000 treatment units already and no minimum time, so it adds nothing.
    end = project_final(STAGES, reqs, 0, T0, T0, {"control": 1000, "treatment": 0}, split_at, 1.0)
    assert end == T0 + timedelta(seconds=100_000)
    assert project_final(STAGES, reqs, 0, T0, T0, {}, split_at, None) is None
    assert project_final(STAGES, reqs, 4, T0, T0 - timedelta(days=1), {}, split_at, None) == T0 - timedelta(days=1)
