"""HTTP function `experiments`: definition, approvals, lifecycle, KPI batches, health."""

from functions.api.router import Router

router = Router("experiments", "Offer experiments", "Lifecycle, approvals, KPI ingestion, guardrails.")
