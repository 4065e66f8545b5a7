"""The holdouts' document ids and references now live in `functions.adapters.holdout_keys`; these
names stay here only for the spillover and union-find modules until they move to the unit of work."""

from functions.adapters.holdout_keys import UNITS, cohort_ref, node_ref, spillover_event_ref, unit_key

__all__ = ["UNITS", "cohort_ref", "node_ref", "spillover_event_ref", "unit_key"]
