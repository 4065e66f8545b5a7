"""holdoutAssignments: the exposure log, one document per (experiment, unit), id
`{experimentId}__{sha256(unit)[:32]}`; the holdouts module writes it, others count it here."""

from __future__ import annotations

from functions.adapters.firestore import HOLDOUT_ASSIGNMENTS
from functions.adapters.repositories.session import Query, Session


class AssignmentRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def count(self, experiment_id: str, variant: str) -> int:
        """First exposures of one arm, counted by the server (no unit rows read)."""
        return self._session.count(Query(HOLDOUT_ASSIGNMENTS, [("experimentId", "==", experiment_id),
                                                               ("variant", "==", variant)]))
