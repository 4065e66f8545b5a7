"""The rollout plan's state and the only transitions allowed on it.

Each transition returns a new state plus a `Change` (what moved, from which stage to which), so
the service can write the plan, its rolloutEvents entry, the experiment's `rollout` mirror and
the ledger entry from one value. Illegal moves raise Conflict and change nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, NotRequired, TypedDict

from functions.core.errors import Conflict, ErrorCode
from functions.core.rollout.requirements import StageRequirements


class RolloutMirror(TypedDict):
    """`offerExperiments/{id}.rollout`: the slice of the plan the assignment hot path reads. A
    start without a plan writes it without `planVersion` (stage None, status FULL)."""

    stage: float | None
    maxStageReached: float | None
    status: str
    planVersion: NotRequired[int]


class PlanStateDoc(TypedDict):
    """`PlanState` as stored in its `rolloutPlans` document (`to_doc` / `from_doc`)."""

    stages: list[float]
    requirements: list[dict[str, Any]]  # StageRequirements.to_dict() per stage
    currentIndex: int
    currentStage: float
    status: str
    maxIndexReached: int
    maxStageReached: float
    enteredAt: datetime | None
    baseline: dict[str, int]
    approvedStages: list[int]
    seq: int
    planVersion: int


class RolloutStatus(StrEnum):
    ACTIVE = "ACTIVE"  # the sweep may advance
    PAUSED = "PAUSED"  # exposure frozen at the current stage, no progression
    ABORTED = "ABORTED"  # stage 0: every unit gets control; the experiment is killed


class ChangeKind(StrEnum):
    PLAN_CREATED = "PLAN_CREATED"
    PLAN_REPLACED = "PLAN_REPLACED"
    ADVANCE = "ADVANCE"
    OVERRIDE_ADVANCE = "OVERRIDE_ADVANCE"
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    ROLLBACK = "ROLLBACK"
    ABORT = "ABORT"
    APPROVE_STAGE = "APPROVE_STAGE"


@dataclass(frozen=True)
class PlanState:
    stages: tuple[float, ...]
    requirements: tuple[StageRequirements, ...]
    index: int = 0
    status: RolloutStatus = RolloutStatus.ACTIVE
    max_index: int = 0
    entered_at: datetime | None = None  # None until the experiment starts (then its startedAt counts)
    baseline: Mapping[str, int] = field(default_factory=dict)  # exposures per arm when this stage began
    approvals: frozenset[int] = frozenset()  # stage indices approved to be left
    seq: int = 0  # changes so far; part of every deterministic event id
    plan_version: int = 1

    @property
    def stage(self) -> float:
        return 0.0 if self.status == RolloutStatus.ABORTED else self.stages[self.index]

    @property
    def max_stage_reached(self) -> float:
        return self.stages[self.max_index]

    @property
    def is_final(self) -> bool:
        return self.index == len(self.stages) - 1

    def mirror(self) -> RolloutMirror:
        """The slice the assignment hot path reads from `offerExperiments/{id}.rollout`."""
        return {"stage": self.stage, "maxStageReached": self.max_stage_reached, "status": self.status.value,
                "planVersion": self.plan_version}

    def to_doc(self) -> PlanStateDoc:
        return {
            "stages": list(self.stages), "requirements": [r.to_dict() for r in self.requirements],
            "currentIndex": self.index, "currentStage": self.stage, "status": self.status.value,
            "maxIndexReached": self.max_index, "maxStageReached": self.max_stage_reached,
            "enteredAt": self.entered_at, "baseline": dict(self.baseline),
            "approvedStages": sorted(self.approvals), "seq": self.seq, "planVersion": self.plan_version,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any]) -> PlanState:
        return cls(
            stages=tuple(float(s) for s in doc["stages"]),
            requirements=tuple(StageRequirements.from_dict(r) for r in doc["requirements"]),
            index=int(doc.get("currentIndex", 0)), status=RolloutStatus(doc.get("status", "ACTIVE")),
            max_index=int(doc.get("maxIndexReached", 0)), entered_at=doc.get("enteredAt"),
            baseline={k: int(v) for k, v in (doc.get("baseline") or {}).items()},
            approvals=frozenset(int(i) for i in doc.get("approvedStages") or ()),
            seq=int(doc.get("seq", 0)), plan_version=int(doc.get("planVersion", 1)),
        )


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    from_stage: float
    to_stage: float
    seq: int

    def event_id(self, experiment_id: str) -> str:
        """Deterministic: two sweeps computing the same move collide on create() instead of both landing."""
        return f"{experiment_id}__{self.seq:05d}__{self.kind.value}__{self.from_stage:g}-{self.to_stage:g}"


def new_plan(stages: tuple[float, ...], requirements: tuple[StageRequirements, ...],
             previous: PlanState | None) -> tuple[PlanState, Change]:
    version = previous.plan_version + 1 if previous else 1
    seq = previous.seq + 1 if previous else 1
    state = PlanState(stages=stages, requirements=requirements, seq=seq, plan_version=version)
    kind = ChangeKind.PLAN_REPLACED if previous else ChangeKind.PLAN_CREATED
    return state, Change(kind, previous.stage if previous else 0.0, state.stage, seq)


def _moved(state: PlanState, kind: ChangeKind, **changes: Any) -> tuple[PlanState, Change]:
    after = replace(state, seq=state.seq + 1, **changes)
    return after, Change(kind, state.stage, after.stage, after.seq)


def _not_aborted(state: PlanState) -> None:
    if state.status == RolloutStatus.ABORTED:
        raise Conflict("the rollout was aborted", code=ErrorCode.ROLLOUT_ABORTED)


def ensure_can_advance(state: PlanState) -> None:
    """Why no advance is possible at all, whatever the requirements say."""
    _not_aborted(state)
    if state.status != RolloutStatus.ACTIVE:
        raise Conflict("the rollout is paused; resume it first", code=ErrorCode.ROLLOUT_PAUSED)
    if state.is_final:
        raise Conflict("the rollout is already at its final stage", code=ErrorCode.ROLLOUT_FINAL_STAGE,
                       details={"stage": state.stage})


def advance(state: PlanState, now: datetime, baseline: Mapping[str, int], override: bool = False
            ) -> tuple[PlanState, Change]:
    """One stage up, never more."""
    ensure_can_advance(state)
    index = state.index + 1
    return _moved(state, ChangeKind.OVERRIDE_ADVANCE if override else ChangeKind.ADVANCE, index=index,
                  max_index=max(state.max_index, index), entered_at=now, baseline=dict(baseline))


def rollback(state: PlanState, now: datetime, baseline: Mapping[str, int]) -> tuple[PlanState, Change]:
    """Back one stage, and paused: whatever made us roll back deserves a look before progressing."""
    _not_aborted(state)
    if state.index == 0:
        raise Conflict("already at the first stage; abort to stop exposure entirely",
                       code=ErrorCode.ROLLOUT_FIRST_STAGE)
    return _moved(state, ChangeKind.ROLLBACK, index=state.index - 1, status=RolloutStatus.PAUSED, entered_at=now,
                  baseline=dict(baseline), approvals=frozenset(i for i in state.approvals if i < state.index - 1))


def pause(state: PlanState) -> tuple[PlanState, Change]:
    _not_aborted(state)
    if state.status == RolloutStatus.PAUSED:
        raise Conflict("the rollout is already paused", code=ErrorCode.ROLLOUT_ALREADY_PAUSED)
    return _moved(state, ChangeKind.PAUSE, status=RolloutStatus.PAUSED)


def resume(state: PlanState) -> tuple[PlanState, Change]:
    _not_aborted(state)
    if state.status != RolloutStatus.PAUSED:
        raise Conflict("the rollout is not paused", code=ErrorCode.ROLLOUT_NOT_PAUSED)
    return _moved(state, ChangeKind.RESUME, status=RolloutStatus.ACTIVE)


def abort(state: PlanState) -> tuple[PlanState, Change]:
    _not_aborted(state)
    return _moved(state, ChangeKind.ABORT, status=RolloutStatus.ABORTED)


def approve_stage(state: PlanState) -> tuple[PlanState, Change]:
    _not_aborted(state)
    if not state.requirements[state.index].manual_approval:
        raise Conflict("this stage does not need a manual approval", code=ErrorCode.APPROVAL_NOT_REQUIRED)
    if state.index in state.approvals:
        raise Conflict("this stage is already approved", code=ErrorCode.ALREADY_APPROVED)
    return _moved(state, ChangeKind.APPROVE_STAGE, approvals=state.approvals | {state.index})
