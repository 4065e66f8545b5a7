"""HTTP function `rollouts`: staged exposure plans and operator actions."""

from functions.api.router import Router

router = Router("rollouts", "Progressive rollouts", "Staged exposure with automatic, safe progression.")
