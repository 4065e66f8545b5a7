"""The holdouts module's interface for what spillover did to a cohort: the links that happened
(refused ones never did) and the members they contaminated. Analytics reads these here instead
of reading the holdouts' documents itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from functions.adapters.unit_of_work import reading
from functions.core.clock import parse_time


@dataclass(frozen=True)
class RecordedLink:
    event_id: str
    source_unit_id: str
    target_unit_id: str
    link_type: str
    occurred_at: datetime  # when it happened, else when it was recorded


def recorded_links(cohort_id: str) -> list[RecordedLink]:
    """Every link recorded for the cohort, except those a BLOCK policy refused."""
    out = []
    for doc in reading().links.of_cohort(cohort_id):
        at = parse_time(doc.get("occurredAt")) or parse_time(doc.get("recordedAt"))
        if (doc.get("result") or {}).get("blocked") or at is None:
            continue
        out.append(RecordedLink(str(doc.get("eventId")), str(doc.get("sourceUnitId")), str(doc.get("targetUnitId")),
                                str(doc.get("linkType")), at))
    return out


def links(cohort_id: str) -> list[tuple[str, str]]:
    """(source unit, target unit) of every link recorded for the cohort, except those a BLOCK
    policy refused."""
    return [(link.source_unit_id, link.target_unit_id) for link in recorded_links(cohort_id)]


def linked_cohorts() -> list[str]:
    """The cohorts links can have been recorded for: links apply to frozen cohorts only."""
    return sorted(reading().cohorts.ids(frozen=True))


def contaminated_units(cohort_id: str) -> set[str]:
    """Holdout members marked contaminated by a spillover policy (EXCLUDE, or moved by CLUSTER)."""
    return {str(d["unitId"]) for d in reading().links.contaminated_nodes(cohort_id) if d.get("unitId")}
