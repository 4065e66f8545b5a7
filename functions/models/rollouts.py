"""Request shapes of the rollouts API (responses are plain documents, described in the README, section Rollouts)."""

from __future__ import annotations

from pydantic import Field

from functions.models.common import StrictModel, Text

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
