"""experimentSnapshots: one document per experiment and sweep window (`{id}__{window}`), with the
sufficient statistics, guardrail verdicts and the action the window triggered."""

from __future__ import annotations

from typing import Any

from functions.adapters.firestore import EXPERIMENT_SNAPSHOTS
from functions.adapters.repositories.session import Session

SnapshotDoc = dict[str, Any]


class SnapshotRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def exists(self, snapshot_id: str) -> bool:
        return self._session.get((EXPERIMENT_SNAPSHOTS, snapshot_id)) is not None

    def create(self, snapshot_id: str, doc: SnapshotDoc) -> None:
        """Created: a concurrent sweep of the same window fails instead of writing it twice."""
        self._session.create((EXPERIMENT_SNAPSHOTS, snapshot_id), doc)
