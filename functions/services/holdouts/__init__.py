"""HoldoutCohortManager: frozen cohorts, the assign hot path, spillover isolation, cohort health.

Composed from the pure core (functions.core.assignment) and the Firestore/Pub/Sub adapters.
"""
