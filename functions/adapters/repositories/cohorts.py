"""holdoutCohorts: one document per holdout cohort (definition, salt, frozen flag, version)."""

from __future__ import annotations

from typing import Any, TypedDict, cast

from functions.adapters.firestore import HOLDOUT_COHORTS
from functions.adapters.repositories.session import DocPath, Query, Session


class CohortChanges(TypedDict, total=False):
    """The fields an update may change (`CohortUpdate`'s, without `expectedVersion`). Times are
    ISO text (`core.clock.now_text`), not Firestore timestamps."""

    name: str
    description: str
    percentage: float
    salt: str
    hashVersion: int
    eligibility: list[dict[str, Any]]  # the normalised rules (`rules.validate`)
    unitType: str
    spilloverPolicies: dict[str, str]  # link type -> policy


class CohortDoc(TypedDict):
    """A `holdoutCohorts` document: every field is written at creation."""

    name: str
    description: str
    percentage: float
    salt: str
    hashVersion: int
    eligibility: list[dict[str, Any]]
    unitType: str
    scope: str
    teamId: str | None
    experimentId: str | None
    spilloverPolicies: dict[str, str]
    frozen: bool
    frozenAt: str | None
    frozenBy: str | None
    version: int
    createdAt: str
    createdBy: str
    updatedAt: str


def path(cohort_id: str) -> DocPath:
    return (HOLDOUT_COHORTS, cohort_id)


class CohortRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    path = staticmethod(path)

    def get(self, cohort_id: str) -> CohortDoc | None:
        return cast(CohortDoc | None, self._session.get(path(cohort_id)))

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
        found = self._session.run(Query(HOLDOUT_COHORTS, where, limit=limit))
        return [(cid, cast(CohortDoc, doc)) for cid, doc in found]
