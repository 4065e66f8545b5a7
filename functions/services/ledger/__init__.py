"""ExperimentLedgerService: checkpoints, verification, proofs, audit reports, exports."""
