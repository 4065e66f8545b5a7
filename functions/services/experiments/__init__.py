"""OfferExperimentOrchestrator: definitions, approvals, lifecycle, KPI ingestion, health."""
