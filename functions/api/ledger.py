"""HTTP function `ledger`: verification, proofs, checkpoints, audit reports, exports."""

from functions.api.router import Router

router = Router("ledger", "Experiment ledger", "Tamper-evident audit trail with proofs, reports and exports.")
