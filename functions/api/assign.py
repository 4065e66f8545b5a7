"""HTTP function `assign`: the hot path apps call for holdout membership and variants."""

from functions.api.router import Router

router = Router("assign", "Assignment", "Holdout membership, experiment variants and rollout exposure per unit.")
