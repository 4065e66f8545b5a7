"""What one sweep does to one rollout: advance one stage, hold (and say why), or abort."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from functions.core.rollout.plan import PlanState, RolloutStatus
from functions.core.rollout.requirements import RequirementResult, blocking, kill_breach


class Step(StrEnum):
    ADVANCE = "ADVANCE"
    HOLD = "HOLD"
    ABORT = "ABORT"  # a KILL guardrail is breached: kill the experiment and stop exposure
    SYNC_ABORT = "SYNC_ABORT"  # the experiment was killed elsewhere: stop exposure in the mirror too
    NONE = "NONE"  # nothing left to do (aborted)


@dataclass(frozen=True)
class Decision:
    step: Step
    reason: str
    blocking: list[RequirementResult] = field(default_factory=list)
    breach: Mapping[str, Any] | None = None


def decide(state: PlanState, experiment_state: str, results: Sequence[RequirementResult],
           guardrails: Sequence[Mapping[str, Any]] | None) -> Decision:
    if state.status == RolloutStatus.ABORTED:
        return Decision(Step.NONE, "rollout aborted")
    if experiment_state in ("KILLED", "CANCELLED"):
        return Decision(Step.SYNC_ABORT, f"experiment is {experiment_state}")
    breach = kill_breach(guardrails)
    if breach is not None and experiment_state in ("RUNNING", "PAUSED"):
        return Decision(Step.ABORT, f"guardrail {breach.get('guardrail')} breached on {breach.get('arm')} "
                                    "(action KILL)", breach=breach)
    if experiment_state != "RUNNING":
        return Decision(Step.HOLD, f"experiment is {experiment_state}")
    if state.status == RolloutStatus.PAUSED:
        return Decision(Step.HOLD, "rollout paused")
    if state.is_final:
        return Decision(Step.HOLD, "final stage reached")
    blocked = blocking(results)
    if blocked:
        return Decision(Step.HOLD, "blocked by " + ", ".join(r.name for r in blocked), blocked)
    return Decision(Step.ADVANCE, "every requirement of the stage holds")
