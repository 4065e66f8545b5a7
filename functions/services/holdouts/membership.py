"""Which side of a cohort one unit is on, outside the batch hot path (spillover, tools)."""

from __future__ import annotations

from typing import Any

from functions.adapters.repositories.cohorts import CohortDoc
from functions.services.holdouts import config, corebridge


def in_holdout(cohort: CohortDoc, randomisation_id: str, attributes: dict[str, Any] | None) -> bool:
    """Holdout member: eligible (when attributes are known) and bucket below the percentage."""
    return corebridge.cohort_member(cohort, randomisation_id, attributes)


def control_variant(experiment_id: str) -> str | None:
    doc = config.current().experiments.get(experiment_id)
    variants = (doc.get("variants") or []) if doc else []
    return variants[0].get("key") if variants else None
