"""Deterministic assignment: hashing (hashing.py), targeting rules (eligibility.py) and the
batch decision over holdouts, experiments, layers and rollout stages (decision.py)."""
