"""Health rules of a cohort: sample-ratio test and status thresholds (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from functions.core.stats import quality

SRM_ALPHA = 0.001
CONTAMINATION_GOAL = 0.01
CONTAMINATION_CRITICAL = 0.05


@dataclass(frozen=True)
class Srm:
    chi_square: float | None
    p_value: float | None


def sample_ratio(observed: int, holdout: int, share: float) -> Srm:
    """Pearson chi-square of (holdout, rest) against (share, 1 - share); None when undefined."""
    if observed <= 0 or not 0.0 < share < 1.0:
        return Srm(None, None)
    expected = [observed * share, observed * (1.0 - share)]
    chi2, p = quality.chi_square(np.array([holdout, observed - holdout], dtype=float), np.array(expected), 1)
    return Srm(float(chi2), float(p))


def classify(srm: Srm, contamination_rate: float, spanning: int, frozen: bool) -> tuple[str, list[str]]:
    critical: list[str] = []
    warning: list[str] = []
    if srm.p_value is not None and srm.p_value < SRM_ALPHA:
        critical.append(f"sample ratio mismatch: p = {srm.p_value:.3g} < {SRM_ALPHA}")
    if contamination_rate >= CONTAMINATION_CRITICAL:
        critical.append(f"contamination {contamination_rate:.2%} >= {CONTAMINATION_CRITICAL:.0%}")
    elif contamination_rate >= CONTAMINATION_GOAL:
        warning.append(f"contamination {contamination_rate:.2%} above the {CONTAMINATION_GOAL:.0%} goal")
    if spanning > 0:
        warning.append(f"{spanning} linked component(s) span holdout and treatment")
    if not frozen:
        warning.append("cohort is not frozen: experiments cannot use it yet")
    if critical:
        return "CRITICAL", critical + warning
    return ("WARNING", warning) if warning else ("HEALTHY", [])

