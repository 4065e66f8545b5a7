"""`GET /rollouts/{id}/health`: where the rollout stands, what blocks it, and when it should end."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from functions.core.clock import utc_now
from functions.core.rollout.plan import PlanState
from functions.core.rollout.projection import eligible_rate, project_final
from functions.services.experiments import repository as experiments
from functions.services.rollouts import inputs, store
from functions.services.rollouts.progression import assess


class NextSweep(TypedDict):
    step: str
    reason: str


class RolloutHealthView(TypedDict):
    """What rollout health answers (`models.rollouts.RolloutHealth`)."""

    experimentId: str
    experimentState: str | None
    status: str
    stages: list[float]
    currentIndex: int
    currentStage: float
    maxStageReached: float
    finalStage: float
    enteredAt: str | None
    timeAtStageSeconds: float
    requirements: list[dict[str, Any]]  # RequirementResult.to_dict()
    blocking: list[str]
    nextSweep: NextSweep
    exposures: dict[str, int]
    exposuresSinceStageStart: dict[str, int]
    expectedSplit: dict[str, float]
    eligibleUnitsPerSecond: float | None
    projectedFinalStageAt: str | None
    projectionAssumes: str


def health(experiment_id: str, now: datetime | None = None) -> RolloutHealthView:
    now = now or utc_now()
    experiment = experiments.load(experiment_id)
    state = PlanState.from_doc(store.require_plan(experiment_id))
    observed, results, decision = assess(experiment, state, now)
    started = experiment.get("startedAt") is not None
    elapsed = (now - observed.inputs.entered_at).total_seconds() if started else 0.0
    split = observed.inputs.expected_split
    rate = eligible_rate(observed.inputs.exposures_since_entry, split, elapsed) if started else None
    projected = None
    if started and state.status.value != "ABORTED":
        projected = project_final(state.stages, state.requirements, state.index, now, observed.inputs.entered_at,
                                  observed.exposures, lambda s: inputs.split_at(experiment, s), rate)
    return {
        "experimentId": experiment_id, "experimentState": experiment.get("state"),
        "status": state.status.value, "stages": list(state.stages), "currentIndex": state.index,
        "currentStage": state.stage, "maxStageReached": state.max_stage_reached, "finalStage": state.stages[-1],
        "enteredAt": observed.inputs.entered_at.isoformat() if started else None,
        "timeAtStageSeconds": elapsed,
        "requirements": [r.to_dict() for r in results],
        "blocking": [r.name for r in results if not r.passed],
        "nextSweep": {"step": decision.step.value, "reason": decision.reason},
        "exposures": observed.exposures, "exposuresSinceStageStart": dict(observed.inputs.exposures_since_entry),
        "expectedSplit": dict(split), "eligibleUnitsPerSecond": rate,
        "projectedFinalStageAt": projected.isoformat() if projected else None,
        "projectionAssumes": "current traffic continues; approvals, guardrails and SRM pass at every stage",
    }
