"""experimentAnalyses: one document per analysis run (never overwritten), holding the result as
JSON (`resultJson`), the statistics and fingerprint it used, and its recommendation. Ids starting
with `_` are not analyses (fraud flags live under `_fraud`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict, cast

from functions.adapters.firestore import EXPERIMENT_ANALYSES
from functions.adapters.repositories.session import Query, Session


class SecondaryAdjusted(TypedDict):
    method: str  # the multiple-comparisons correction
    pValues: dict[str, float | None]  # secondary KPI -> adjusted p-value


class AnalysisFields(TypedDict):
    """What an analysis document and its public summary share."""

    id: str
    experimentId: str
    createdBy: dict[str, str]  # the actor
    engineVersion: str | None
    fingerprint: str | None
    primaryMetric: str
    recommendation: dict[str, dict[str, Any]]  # arm -> decision, trust and their reasons
    unitsAnalysed: int
    holdoutUnits: int
    contaminatedHoldoutUnits: int
    crossingUnits: int
    fraudFlagged: int
    secondaryAdjusted: SecondaryAdjusted


class AnalysisDoc(AnalysisFields):
    """An `experimentAnalyses` document (id `{experimentId}__{time}__{random}`). A projected read
    (`fields`) holds only those keys."""

    createdAt: datetime
    resultJson: str  # the full result per KPI, as JSON (open shape; replayed by `replay`)


class AnalysisRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, analysis_id: str) -> AnalysisDoc | None:
        if analysis_id.startswith("_"):
            return None
        return cast(AnalysisDoc | None, self._session.get((EXPERIMENT_ANALYSES, analysis_id)))

    def create(self, analysis_id: str, doc: AnalysisDoc) -> None:
        self._session.create((EXPERIMENT_ANALYSES, analysis_id), doc)

    def of_experiment(self, experiment_id: str, limit: int | None = None) -> list[AnalysisDoc]:
        found = self._session.query(EXPERIMENT_ANALYSES, [("experimentId", "==", experiment_id)], limit=limit)
        return cast(list[AnalysisDoc], found)

    def of_experiments(self, experiment_ids: list[str], fields: Sequence[str] | None = None) -> list[AnalysisDoc]:
        """One IN-query: at most 30 ids (Firestore's limit); callers chunk."""
        found = self._session.run(Query(EXPERIMENT_ANALYSES, [("experimentId", "in", experiment_ids)],
                                        select=fields))
        return [cast(AnalysisDoc, doc) for _, doc in found]
