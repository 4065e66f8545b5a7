"""Eligibility rules are stored in the pure core's format and validated by the core on the way in.

A rule the core cannot compile would otherwise be stored and, once the cohort is frozen, make
every `assign` call fail when the hot path compiles its config: a bad rule is a 422 here.
"""

from __future__ import annotations

from typing import Any

from functions.core.assignment.eligibility import compile_rules


def validate(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Compile (raises 422 INVALID_RULE naming the rule) and store the normalised form."""
    return compile_rules(raw).to_list()
