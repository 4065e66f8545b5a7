"""Data-quality checks: sample ratio mismatch, pre-period balance, exclusion balance, staleness."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from functions.core.stats.inference import finite, welch
from functions.core.stats.sufficient import MomentStats

SRM_ALPHA = 0.001


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # PASS | FAIL | INSUFFICIENT_DATA
    p_value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"

    def to_dict(self) -> dict[str, Any]:
        return finite({"name": self.name, "status": self.status, "pValue": self.p_value, "details": self.details})


def srm(observed: Mapping[str, float], expected_shares: Mapping[str, float], alpha: float = SRM_ALPHA) -> CheckResult:
    """Chi-square of observed arm counts against the designed split (which changes with the
    rollout stage: at 1% treatment vs 50% control the expected ratio is 1:50)."""
    arms = [a for a in expected_shares if expected_shares[a] > 0]
    counts = np.array([float(observed.get(a, 0)) for a in arms])
    total = counts.sum()
    if total < 10 or len(arms) < 2:
        return CheckResult("srm", "INSUFFICIENT_DATA", None, {"observed": dict(observed)})
    shares = np.array([expected_shares[a] for a in arms], dtype=float)
    expected = shares / shares.sum() * total
    chi2, p = stats.chisquare(counts, expected)
    return CheckResult("srm", "FAIL" if p < alpha else "PASS", float(p),
                       {"chi2": float(chi2), "observed": dict(zip(arms, counts.tolist(), strict=True)),
                        "expected": dict(zip(arms, expected.tolist(), strict=True)), "alpha": alpha})


def pre_period_balance(control: MomentStats, treatment: MomentStats, alpha: float = SRM_ALPHA) -> CheckResult:
    """An A/A test on the pre-period covariate: randomisation should leave it balanced."""
    pre_a = MomentStats(control.n, control.sum_pre, control.sum_pre2)
    pre_b = MomentStats(treatment.n, treatment.sum_pre, treatment.sum_pre2)
    result = welch(pre_a, pre_b)
    if not result.ok:
        return CheckResult("pre_period_balance", "INSUFFICIENT_DATA", None, {"status": result.status})
    return CheckResult("pre_period_balance", "FAIL" if result.p_value < alpha else "PASS", result.p_value,
                       {"controlPreMean": result.control_mean, "treatmentPreMean": result.treatment_mean})


def exclusion_balance(removed: Mapping[str, float], totals: Mapping[str, float], name: str,
                      alpha: float = SRM_ALPHA) -> CheckResult:
    """Does a filter remove the same share from every arm? A filter that removes unevenly biases
    the comparison even when each removal is right on its own."""
    arms = [a for a in totals if totals[a] > 0]
    kept = [totals[a] - removed.get(a, 0) for a in arms]
    gone = [removed.get(a, 0) for a in arms]
    if len(arms) < 2 or sum(gone) == 0:
        return CheckResult(f"exclusion_balance:{name}", "PASS" if len(arms) >= 2 else "INSUFFICIENT_DATA", None,
                           {"removed": dict(removed)})
    table = np.array([gone, kept], dtype=float)
    if (table.sum(axis=1) == 0).any():
        return CheckResult(f"exclusion_balance:{name}", "PASS", None, {"removed": dict(removed)})
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    shares = {a: (removed.get(a, 0) / totals[a]) for a in arms}
    return CheckResult(f"exclusion_balance:{name}", "FAIL" if p < alpha else "PASS", float(p),
                       {"removed": dict(removed), "share": shares, "chi2": float(chi2)})


def minimum_sample(counts: Mapping[str, float], minimum: int) -> CheckResult:
    low = {a: n for a, n in counts.items() if n < minimum}
    return CheckResult("minimum_sample", "FAIL" if low else "PASS", None, {"minimum": minimum, "below": low})


def staleness(age_seconds: float | None, limit_seconds: float) -> CheckResult:
    if age_seconds is None:
        return CheckResult("staleness", "INSUFFICIENT_DATA", None, {"limitSeconds": limit_seconds})
    return CheckResult("staleness", "FAIL" if age_seconds > limit_seconds else "PASS", None,
                       {"ageSeconds": age_seconds, "limitSeconds": limit_seconds})
