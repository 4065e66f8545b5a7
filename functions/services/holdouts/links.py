"""The holdouts module's interface for what spillover did to a cohort: the links that happened
(refused ones never did) and the members they contaminated. Analytics reads these here instead
of reading the holdouts' documents itself."""

from __future__ import annotations

from functions.adapters.unit_of_work import reading


def links(cohort_id: str) -> list[tuple[str, str]]:
    """(source unit, target unit) of every link recorded for the cohort, except those a BLOCK
    policy refused."""
    return [(str(doc.get("sourceUnitId")), str(doc.get("targetUnitId")))
            for doc in reading().links.of_cohort(cohort_id) if not (doc.get("result") or {}).get("blocked")]


def contaminated_units(cohort_id: str) -> set[str]:
    """Holdout members marked contaminated by a spillover policy (EXCLUDE, or moved by CLUSTER)."""
    return {str(d["unitId"]) for d in reading().links.contaminated_nodes(cohort_id) if d.get("unitId")}
