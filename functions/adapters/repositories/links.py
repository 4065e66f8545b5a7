"""The holdouts module's spillover storage as others may read it: holdoutSpilloverEvents (one
document per link event, `cohortIds` the cohorts it touched) and the union-find nodes under
`holdoutCohorts/{id}/units` (contamination marks). The spillover service writes both."""

from __future__ import annotations

from typing import Any

from functions.adapters.firestore import HOLDOUT_COHORTS, HOLDOUT_SPILLOVER_EVENTS
from functions.adapters.repositories.session import Query, Session

NODES = "units"  # union-find nodes under a cohort (functions.services.holdouts.keys.UNITS)
LinkDoc = dict[str, Any]


class LinkRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def of_cohort(self, cohort_id: str) -> list[LinkDoc]:
        return self._session.query(HOLDOUT_SPILLOVER_EVENTS, [("cohortIds", "array_contains", cohort_id)])

    def contaminated_nodes(self, cohort_id: str) -> list[LinkDoc]:
        found = self._session.run(Query(NODES, [("contaminated", "==", True)], parent=(HOLDOUT_COHORTS, cohort_id)))
        return [doc for _, doc in found]
