"""The holdouts module's spillover storage as others may read it: holdoutSpilloverEvents (one
document per link event, `cohortIds` the cohorts it touched) and the union-find nodes under
`holdoutCohorts/{id}/units` (contamination marks). The spillover service writes both."""

from __future__ import annotations

from typing import Any

from functions.adapters.firestore import HOLDOUT_COHORTS, HOLDOUT_SPILLOVER_EVENTS, db
from functions.adapters.holdout_keys import COUNTERS, UNITS, spillover_event_key, unit_key
from functions.adapters.repositories.session import DocPath, Query, Session

NODES = UNITS  # union-find nodes under a cohort
LinkDoc = dict[str, Any]


def event_path(event_id: str) -> DocPath:
    return (HOLDOUT_SPILLOVER_EVENTS, spillover_event_key(event_id))


def node_path(cohort_id: str, key: str) -> DocPath:
    return (HOLDOUT_COHORTS, cohort_id, NODES, key)


def randomisation_ids(cohort_id: str, unit_ids: list[str]) -> dict[str, str]:
    """Sticky randomisation ids (CLUSTER / wallet cohorts) of units, for the hot path: one batched
    read of only that field."""
    nodes = db().collection(HOLDOUT_COHORTS).document(cohort_id).collection(NODES)
    by_key = {unit_key(u): u for u in unit_ids}
    out: dict[str, str] = {}
    for snap in db().get_all([nodes.document(k) for k in by_key], field_paths=["randomisationId"]):
        if snap.exists:
            rid = (snap.to_dict() or {}).get("randomisationId")
            if rid:
                out[by_key[snap.id]] = rid
    return out


class LinkRepository:
    def __init__(self, session: Session) -> None:
        self._session = session

    def of_cohort(self, cohort_id: str) -> list[LinkDoc]:
        return self._session.query(HOLDOUT_SPILLOVER_EVENTS, [("cohortIds", "array_contains", cohort_id)])

    def event(self, event_id: str) -> LinkDoc | None:
        return self._session.get(event_path(event_id))

    def record_event(self, event_id: str, doc: LinkDoc) -> None:
        """Created: the event's idempotency key, committed with its effect."""
        self._session.create(event_path(event_id), doc)

    def node(self, cohort_id: str, key: str) -> LinkDoc | None:
        return self._session.get(node_path(cohort_id, key))

    def save_node(self, cohort_id: str, key: str, doc: LinkDoc) -> None:
        self._session.set(node_path(cohort_id, key), doc)

    def spanning(self, cohort_id: str, limit: int) -> list[tuple[str, LinkDoc]]:
        """(root key, root) of components holding units from both sides."""
        return self._session.run(Query(NODES, [("spans", "==", True)], limit=limit,
                                       parent=(HOLDOUT_COHORTS, cohort_id)))

    def increment_counters(self, cohort_id: str, shard: int, deltas: dict[str, int]) -> None:
        self._session.increment((HOLDOUT_COHORTS, cohort_id, COUNTERS, f"s{shard:02d}"), deltas)

    def contaminated_nodes(self, cohort_id: str) -> list[LinkDoc]:
        found = self._session.run(Query(NODES, [("contaminated", "==", True)], parent=(HOLDOUT_COHORTS, cohort_id)))
        return [doc for _, doc in found]
