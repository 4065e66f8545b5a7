"""rolloutPlans and rolloutEvents: one plan document per experiment (stages, requirements, state,
a bounded history) and one event per rollout change, under a deterministic id."""

from __future__ import annotations

from typing import Any

from functions.adapters.firestore import ROLLOUT_EVENTS, ROLLOUT_PLANS
from functions.adapters.repositories.session import Session

PlanDoc = dict[str, Any]
RolloutEventDoc = dict[str, Any]


class RolloutRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def plan(self, experiment_id: str) -> PlanDoc | None:
        return self._session.get((ROLLOUT_PLANS, experiment_id))

    def events(self, experiment_id: str) -> list[RolloutEventDoc]:
        found = self._session.query(ROLLOUT_EVENTS, [("experimentId", "==", experiment_id)])
        return sorted(found, key=lambda d: d["seq"])

    def save_plan(self, experiment_id: str, doc: PlanDoc) -> None:
        self._session.set((ROLLOUT_PLANS, experiment_id), doc)

    def add_event(self, event_id: str, record: RolloutEventDoc) -> None:
        """Created: the deterministic id makes a concurrent identical move fail instead of landing twice."""
        self._session.create((ROLLOUT_EVENTS, event_id), record)
