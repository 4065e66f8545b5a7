"""Request and response shapes of the rollouts API."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from functions.models.common import Actor, StrictModel, Text

DAY = 24 * 3600.0


class RequirementsIn(StrictModel):
    """What a stage must show before the sweep moves to the next one."""

    minTimeAtStageSeconds: float = Field(default=DAY, ge=0, le=365 * DAY)
    minUnitsPerArm: int = Field(default=100, ge=0, le=100_000_000)
    noGuardrailViolation: bool = True
    srmPass: bool = True
    dataQuality: bool = True


class PlanRequest(StrictModel):
    stages: list[float] | None = Field(default=None, description="fractions of eligible units exposed to "
                                       "treatment; default [0.01, 0.05, 0.10, 0.25, 0.50]")
    requirements: RequirementsIn = Field(default_factory=RequirementsIn, description="defaults for every stage")
    perStage: list[RequirementsIn] | None = Field(default=None, description="one entry per stage, overrides")
    manualApprovalStages: list[float] = Field(default_factory=list, max_length=20,
                                              description="stages that need a manual approval before leaving")
    reason: Text = ""


class ActionRequest(StrictModel):
    reason: Text = ""


class ReasonRequired(StrictModel):
    reason: Text = Field(min_length=1)


class AdvanceRequest(StrictModel):
    reason: Text = ""
    override: bool = Field(default=False, description="admin only: advance although requirements fail "
                                                      "(needs a written reason, recorded in the ledger)")


# -- answers (built from services/rollouts: store.commit, plans.put_plan, health.health) -----------

class StageRequirementsOut(StrictModel):
    minTimeAtStageSeconds: float
    minUnitsPerArm: int
    noGuardrailViolation: bool
    srmPass: bool
    dataQuality: bool
    manualApproval: bool


class RequirementResultOut(StrictModel):
    """One requirement of the current stage as evaluated now (value and threshold in its own unit)."""

    name: str
    passed: bool
    value: Any
    threshold: Any
    detail: str = ""
    extra: dict[str, Any] | None = None


class RolloutHistoryItem(StrictModel):
    seq: int
    kind: str
    fromStage: float
    toStage: float
    at: str
    actor: Actor
    reason: str
    eventId: str


class RolloutPlanOut(StrictModel):
    experimentId: str
    stages: list[float]
    requirements: list[StageRequirementsOut]
    currentIndex: int
    currentStage: float
    status: str = Field(description="ACTIVE, PAUSED, COMPLETED or ABORTED")
    maxIndexReached: int
    maxStageReached: float
    enteredAt: str | None
    baseline: dict[str, int]
    approvedStages: list[int]
    seq: int
    planVersion: int
    createdAt: str | None = None
    updatedAt: str | None = None
    history: list[RolloutHistoryItem] | None = None


class ReturnedToControl(StrictModel):
    bucketFrom: float
    bucketTo: float


class RolloutEventOut(StrictModel):
    """One rollout change with the values that justified it (also what every action answers)."""

    eventId: str
    experimentId: str
    seq: int
    kind: str
    fromStage: float
    toStage: float
    stageIndex: int
    status: str
    maxStageReached: float
    planVersion: int
    actor: Actor
    reason: str
    requirements: list[RequirementResultOut]
    exposures: dict[str, int]
    at: str
    experimentVersion: int | None = Field(default=None, description="in the action's answer only")
    experimentState: str | None = Field(default=None, description="in the action's answer only")
    returnedToControl: ReturnedToControl | None = None
    stages: list[float] | None = Field(default=None, description="plan changes only")
    requirementsByStage: list[StageRequirementsOut] | None = Field(default=None, description="plan changes only")
    override: bool | None = Field(default=None, description="advances only")
    overriddenRequirements: list[str] | None = Field(default=None, description="advances only")


class RolloutEventList(StrictModel):
    events: list[RolloutEventOut]


class PlanChange(StrictModel):
    plan: RolloutPlanOut
    event: RolloutEventOut


class NextSweep(StrictModel):
    step: str
    reason: str


class RolloutHealth(StrictModel):
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
    requirements: list[RequirementResultOut]
    blocking: list[str]
    nextSweep: NextSweep
    exposures: dict[str, int]
    exposuresSinceStageStart: dict[str, int]
    expectedSplit: dict[str, float]
    eligibleUnitsPerSecond: float | None
    projectedFinalStageAt: str | None
    projectionAssumes: str
