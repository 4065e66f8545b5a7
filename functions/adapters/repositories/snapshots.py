"""experimentSnapshots: one document per experiment and sweep window (`{id}__{window}`), with the
sufficient statistics, guardrail verdicts and the action the window triggered; and
`experimentSnapshots/_sweep`, each step's outcome in the latest sweep."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NotRequired, TypedDict, cast

from functions.adapters.firestore import EXPERIMENT_SNAPSHOTS
from functions.adapters.repositories.session import Query, Session
from functions.core.rollout.plan import RolloutMirror

SWEEP_STATUS_ID = "_sweep"


class SnapshotDoc(TypedDict):
    """One experiment's sweep window. A projected read (`fields`) holds only those keys."""

    experimentId: str
    windowStart: datetime
    takenAt: datetime
    state: str  # the experiment's state as read, before any action this window triggered
    rollout: RolloutMirror | None
    units: dict[str, float]  # exposed units per arm
    unitsWithKpis: dict[str, float]  # units with any KPI data per arm
    stats: dict[str, dict[str, dict[str, Any]]]  # arm -> metric -> sufficient statistics (to_dict)
    guardrails: list[dict[str, Any]]  # the verdicts of `guardrails.evaluate`
    acted: str | None  # KILL / PAUSE / ALERT when a breach acted in this window


class SweepFailure(TypedDict):
    """A sweep step that failed (`models.experiments.SweepFailure`)."""

    step: str
    code: str
    message: str
    experimentId: NotRequired[str]
    retry: NotRequired[bool]  # False: a redelivered tick cannot mend it


class SweepStatusDoc(TypedDict):
    """`experimentSnapshots/_sweep`: each step's outcome in the latest sweep."""

    at: datetime
    ok: bool
    steps: dict[str, str]  # step -> OK | FAILED
    failures: list[SweepFailure]


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
        found = self._session.run(Query(EXPERIMENT_SNAPSHOTS, [("experimentId", "==", experiment_id)],
                                        order_by="takenAt", descending=True, limit=limit, select=fields))
        return [(sid, cast(SnapshotDoc, doc)) for sid, doc in found]

    def taken_since(self, since: datetime, fields: Sequence[str] | None = None) -> list[SnapshotDoc]:
        found = self._session.run(Query(EXPERIMENT_SNAPSHOTS, [("takenAt", ">=", since)], select=fields))
        return [cast(SnapshotDoc, doc) for _, doc in found]

    def sweep_status(self) -> SweepStatusDoc | None:
        return cast(SweepStatusDoc | None, self._session.get((EXPERIMENT_SNAPSHOTS, SWEEP_STATUS_ID)))

    def save_sweep_status(self, doc: SweepStatusDoc) -> None:
        self._session.set((EXPERIMENT_SNAPSHOTS, SWEEP_STATUS_ID), doc)
