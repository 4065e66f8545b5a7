"""Pre-registration: the analysis plan committed to the ledger when an experiment starts, so a
later change of KPIs, margins or methods is visible as a deviation, not a quiet edit."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from functions.core.ledger.canonical import canonical_bytes

PLAN_FIELDS = ("kpis", "guardrails", "minimumDetectableEffect", "plannedDurationDays", "variants", "holdoutCohortId")
METHODS = {"primary": "CUPED (pooled slope, per-arm variances, Welch t)", "fallback": "Welch t-test",
           "proportions": "two-proportion z",
           "ratios": "delta method", "guardrails": "always-valid confidence sequence (one-sided, margin)",
           "multipleComparisons": "holm", "srmAlpha": 0.001, "alpha": 0.05}


def analysis_plan(experiment: Mapping[str, Any]) -> dict[str, Any]:
    return {**{k: experiment.get(k) for k in PLAN_FIELDS}, "methods": METHODS}


def plan_hash(plan: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_bytes(dict(plan))).hexdigest()
