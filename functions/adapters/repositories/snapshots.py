"""experimentSnapshots: one document per experiment and sweep window (`{id}__{window}`), with the
sufficient statistics, guardrail verdicts and the action the window triggered; and
`experimentSnapshots/_sweep`, each step's outcome in the latest sweep."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from functions.adapters.firestore import EXPERIMENT_SNAPSHOTS
from functions.adapters.repositories.session import Query, Session

SnapshotDoc = dict[str, Any]
SWEEP_STATUS_ID = "_sweep"


class SnapshotRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def exists(self, snapshot_id: str) -> bool:
        return self._session.get((EXPERIMENT_SNAPSHOTS, snapshot_id)) is not None

    def create(self, snapshot_id: str, doc: SnapshotDoc) -> None:
        """Created: a concurrent sweep of the same window fails instead of writing it twice."""
        self._session.create((EXPERIMENT_SNAPSHOTS, snapshot_id), doc)

    def newest(self, experiment_id: str, limit: int = 1,
               fields: Sequence[str] | None = None) -> list[tuple[str, SnapshotDoc]]:
        """(snapshot id, snapshot) newest first by the time taken."""
        return self._session.run(Query(EXPERIMENT_SNAPSHOTS, [("experimentId", "==", experiment_id)],
                                       order_by="takenAt", descending=True, limit=limit, select=fields))

    def taken_since(self, since: datetime, fields: Sequence[str] | None = None) -> list[SnapshotDoc]:
        found = self._session.run(Query(EXPERIMENT_SNAPSHOTS, [("takenAt", ">=", since)], select=fields))
        return [doc for _, doc in found]

    def sweep_status(self) -> SnapshotDoc | None:
        return self._session.get((EXPERIMENT_SNAPSHOTS, SWEEP_STATUS_ID))

    def save_sweep_status(self, doc: SnapshotDoc) -> None:
        self._session.set((EXPERIMENT_SNAPSHOTS, SWEEP_STATUS_ID), doc)
