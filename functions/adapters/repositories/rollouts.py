"""rolloutPlans and rolloutEvents: one plan document per experiment (stages, requirements, state,
a bounded history) and one event per rollout change, under a deterministic id."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict, cast

from functions.adapters.firestore import ROLLOUT_EVENTS, ROLLOUT_PLANS
from functions.adapters.repositories.session import Session
from functions.core.rollout.plan import PlanStateDoc


class HistoryEntry(TypedDict):
    """One change in a plan's bounded `history`."""

    seq: int
    kind: str
    fromStage: float
    toStage: float
    at: datetime
    actor: dict[str, str]
    reason: str
    eventId: str


class PlanDoc(PlanStateDoc):
    """A `rolloutPlans` document (id: the experiment's id)."""

    experimentId: str
    createdAt: datetime
    updatedAt: datetime
    history: list[HistoryEntry]


class ReturnedToControl(TypedDict):
    """The bucket band whose units saw treatment and now get control (a rollback or abort)."""

    bucketFrom: float
    bucketTo: float


class RolloutEventExtra(TypedDict, total=False):
    """What some kinds of change add to their event."""

    stages: list[float]  # a plan created or replaced
    requirementsByStage: list[dict[str, Any]]
    override: bool  # an advance
    overriddenRequirements: list[str]
    returnedToControl: ReturnedToControl  # a rollback or abort


class RolloutEventRecord(RolloutEventExtra):
    """A rollout change as the ledger and the API see it (the stored event adds `at`)."""

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
    actor: dict[str, str]
    reason: str
    requirements: list[dict[str, Any]]  # RequirementResult.to_dict() of the stage left
    exposures: dict[str, int]


class RolloutEventDoc(RolloutEventRecord):
    """A `rolloutEvents` document (deterministic id: `Change.event_id`)."""

    at: datetime


class RolloutRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def plan(self, experiment_id: str) -> PlanDoc | None:
        return cast(PlanDoc | None, self._session.get((ROLLOUT_PLANS, experiment_id)))

    def events(self, experiment_id: str) -> list[RolloutEventDoc]:
        found = self._session.query(ROLLOUT_EVENTS, [("experimentId", "==", experiment_id)])
        return sorted(cast(list[RolloutEventDoc], found), key=lambda d: d["seq"])

    def save_plan(self, experiment_id: str, doc: PlanDoc) -> None:
        self._session.set((ROLLOUT_PLANS, experiment_id), doc)

    def add_event(self, event_id: str, record: RolloutEventDoc) -> None:
        """Created: the deterministic id makes a concurrent identical move fail instead of landing twice."""
        self._session.create((ROLLOUT_EVENTS, event_id), record)
