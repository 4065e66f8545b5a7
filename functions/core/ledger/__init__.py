"""Ledger hashing core (format documented in the README)."""
