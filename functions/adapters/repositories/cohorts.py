"""holdoutCohorts: one document per holdout cohort (definition, salt, frozen flag, version)."""

from __future__ import annotations

from typing import Any

from functions.adapters.firestore import HOLDOUT_COHORTS
from functions.adapters.repositories.session import DocPath, Query, Session

CohortDoc = dict[str, Any]


def path(cohort_id: str) -> DocPath:
    return (HOLDOUT_COHORTS, cohort_id)


class CohortRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    path = staticmethod(path)

    def get(self, cohort_id: str) -> CohortDoc | None:
        return self._session.get(path(cohort_id))

    def create(self, cohort_id: str, doc: CohortDoc) -> None:
        self._session.create(path(cohort_id), doc)

    def save(self, cohort_id: str, doc: CohortDoc) -> None:
        self._session.set(path(cohort_id), doc)

    def ids(self, frozen: bool | None = None) -> list[str]:
        """Cohort ids only (a projection: no cohort document is read)."""
        where = [("frozen", "==", frozen)] if frozen is not None else []
        return [cid for cid, _ in self._session.run(Query(HOLDOUT_COHORTS, where, select=[]))]

    def all(self, frozen: bool | None = None, limit: int | None = None) -> list[tuple[str, CohortDoc]]:
        """(cohort id, cohort), optionally only the frozen (or unfrozen) ones."""
        where = [("frozen", "==", frozen)] if frozen is not None else []
        return self._session.run(Query(HOLDOUT_COHORTS, where, limit=limit))
