"""The holdouts module's spillover storage as others may read it: holdoutSpilloverEvents (one
document per link event, `cohortIds` the cohorts it touched) and the union-find nodes under
`holdoutCohorts/{id}/units` (contamination marks). The spillover service writes both."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict, cast

from functions.adapters.firestore import HOLDOUT_COHORTS, HOLDOUT_SPILLOVER_EVENTS, db
from functions.adapters.holdout_keys import COUNTERS, UNITS, spillover_event_key, unit_key
from functions.adapters.repositories.session import DocPath, Query, Session

NODES = UNITS  # union-find nodes under a cohort


class LinkDoc(TypedDict):
    """A `holdoutSpilloverEvents` document: one link event, created with its effect (the event's
    idempotency key). Times written by the service are ISO text; `occurredAt` is the sender's."""

    eventId: str
    linkType: str
    sourceUnitId: str
    targetUnitId: str
    clusterId: str | None
    offer: dict[str, Any] | None  # the OfferRef a gift or referral carried
    crossing: bool
    cohortIds: list[str]
    occurredAt: datetime | None
    recordedAt: str
    actor: dict[str, str]
    result: dict[str, Any]  # the SpilloverResult, as JSON (a redelivery answers with it)


class NodeDoc(TypedDict):
    """A union-find node `holdoutCohorts/{id}/units/{key}` (`unionfind.Node.to_doc`); a root
    holds its component's size and members per side."""

    unitId: str | None
    parent: str | None
    size: int
    holdout: int
    treated: int
    spans: bool
    inHoldout: bool
    randomisationId: str | None
    contaminated: bool
    contaminatedBy: str | None
    contaminatedAt: str | None


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
        found = self._session.query(HOLDOUT_SPILLOVER_EVENTS, [("cohortIds", "array_contains", cohort_id)])
        return cast(list[LinkDoc], found)

    def event(self, event_id: str) -> LinkDoc | None:
        return cast(LinkDoc | None, self._session.get(event_path(event_id)))

    def record_event(self, event_id: str, doc: LinkDoc) -> None:
        """Created: the event's idempotency key, committed with its effect."""
        self._session.create(event_path(event_id), doc)

    def node(self, cohort_id: str, key: str) -> NodeDoc | None:
        return cast(NodeDoc | None, self._session.get(node_path(cohort_id, key)))

    def save_node(self, cohort_id: str, key: str, doc: NodeDoc) -> None:
        self._session.set(node_path(cohort_id, key), doc)

    def spanning(self, cohort_id: str, limit: int) -> list[tuple[str, NodeDoc]]:
        """(root key, root) of components holding units from both sides."""
        found = self._session.run(Query(NODES, [("spans", "==", True)], limit=limit,
                                        parent=(HOLDOUT_COHORTS, cohort_id)))
        return [(key, cast(NodeDoc, doc)) for key, doc in found]

    def increment_counters(self, cohort_id: str, shard: int, deltas: dict[str, int]) -> None:
        self._session.increment((HOLDOUT_COHORTS, cohort_id, COUNTERS, f"s{shard:02d}"), deltas)

    def contaminated_nodes(self, cohort_id: str) -> list[NodeDoc]:
        found = self._session.run(Query(NODES, [("contaminated", "==", True)], parent=(HOLDOUT_COHORTS, cohort_id)))
        return [cast(NodeDoc, doc) for _, doc in found]
