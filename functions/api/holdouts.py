"""HTTP function `holdouts`: cohorts, freezing, spillover links, health."""

from functions.api.router import Router

router = Router("holdouts", "Holdout cohorts", "Frozen holdouts, deterministic assignment, spillover isolation.")
