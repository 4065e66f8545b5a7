"""Data-quality checks: sample ratio mismatch, pre-period balance, exclusion balance, staleness."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import special

from functions.core.stats.inference import finite, welch
from functions.core.stats.sufficient import MomentStats

SRM_ALPHA = 0.001
INVALID_INPUT = "INVALID_INPUT"


def chi_square(observed: np.ndarray, expected: np.ndarray, dof: int) -> tuple[float, float]:
    """Pearson's statistic and its upper-tail p-value (= scipy chisquare / chi2_contingency
    without correction), without scipy.stats' per-call array-API dispatch, which cost more than
    the test itself in an analysis that runs a dozen of them."""
    chi2 = float((((observed - expected) ** 2) / expected).sum())
    return chi2, float(special.chdtrc(dof, chi2))


def invalid_counts(name: str, counts: Mapping[str, Any]) -> CheckResult | None:
    """A coded INVALID_INPUT result when any count is not a finite non-negative number."""
    bad = {}
    for arm, value in counts.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number) or number < 0:
            bad[str(arm)] = finite(number) if isinstance(value, int | float) else str(value)
    if not bad:
        return None
    return CheckResult(name, INVALID_INPUT, None, {"code": "NON_FINITE_INPUT", "invalid": bad})


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str  # PASS | FAIL | INSUFFICIENT_DATA | INVALID_INPUT
    p_value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """FAIL, or inputs the check cannot judge (NaN, infinite or negative counts): never a pass."""
        return self.status in ("FAIL", INVALID_INPUT)

    def to_dict(self) -> dict[str, Any]:
        return finite({"name": self.name, "status": self.status, "pValue": self.p_value, "details": self.details})


def srm(observed: Mapping[str, float], expected_shares: Mapping[str, float], alpha: float = SRM_ALPHA) -> CheckResult:
    """Chi-square of observed arm counts against the designed split (which changes with the
    rollout stage: at 1% treatment vs 50% control the expected ratio is 1:50)."""
    invalid = invalid_counts("srm", {**dict(observed), **{f"share:{a}": v for a, v in expected_shares.items()}})
    if invalid is not None:
        return invalid
    arms = [a for a in expected_shares if expected_shares[a] > 0]
    counts = np.array([float(observed.get(a, 0)) for a in arms])
    total = counts.sum()
    if total < 10 or len(arms) < 2:
        return CheckResult("srm", "INSUFFICIENT_DATA", None, {"observed": dict(observed)})
    shares = np.array([expected_shares[a] for a in arms], dtype=float)
    expected = shares / shares.sum() * total
    chi2, p = chi_square(counts, expected, len(arms) - 1)
    return CheckResult("srm", "FAIL" if p < alpha else "PASS", float(p),
                       {"chi2": float(chi2), "observed": dict(zip(arms, counts.tolist(), strict=True)),
                        "expected": dict(zip(arms, expected.tolist(), strict=True)), "alpha": alpha})


def pre_period_balance(control: MomentStats, treatment: MomentStats, alpha: float = SRM_ALPHA) -> CheckResult:
    """An A/A test on the pre-period covariate: randomisation should leave it balanced."""
    result = welch(control.pre_only(), treatment.pre_only())
    if result.status == "NON_FINITE_INPUT":
        return CheckResult("pre_period_balance", INVALID_INPUT, None, {"code": "NON_FINITE_INPUT"})
    if not result.ok or result.p_value is None:  # an OK Welch result always has a p-value
        return CheckResult("pre_period_balance", "INSUFFICIENT_DATA", None, {"status": result.status})
    return CheckResult("pre_period_balance", "FAIL" if result.p_value < alpha else "PASS", result.p_value,
                       {"controlPreMean": result.control_mean, "treatmentPreMean": result.treatment_mean})


def exclusion_balance(removed: Mapping[str, float], totals: Mapping[str, float], name: str,
                      alpha: float = SRM_ALPHA) -> CheckResult:
    """Does a filter remove the same share from every arm? A filter that removes unevenly biases
    the comparison even when each removal is right on its own."""
    invalid = invalid_counts(f"exclusion_balance:{name}", {**{f"removed:{a}": v for a, v in removed.items()},
                                                            **{f"total:{a}": v for a, v in totals.items()}})
    if invalid is not None:
        return invalid
    arms = [a for a in totals if totals[a] > 0]
    kept = [totals[a] - removed.get(a, 0) for a in arms]
    gone = [removed.get(a, 0) for a in arms]
    if len(arms) < 2 or sum(gone) == 0:
        return CheckResult(f"exclusion_balance:{name}", "PASS" if len(arms) >= 2 else "INSUFFICIENT_DATA", None,
                           {"removed": dict(removed)})
    table = np.array([gone, kept], dtype=float)
    if (table.sum(axis=1) == 0).any():
        return CheckResult(f"exclusion_balance:{name}", "PASS", None, {"removed": dict(removed)})
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    chi2, p = chi_square(table, expected, table.shape[1] - 1)  # = chi2_contingency(correction=False)
    shares = {a: (removed.get(a, 0) / totals[a]) for a in arms}
    return CheckResult(f"exclusion_balance:{name}", "FAIL" if p < alpha else "PASS", float(p),
                       {"removed": dict(removed), "share": shares, "chi2": float(chi2)})


def exclusion_balance_by_region(removed: Mapping[str, Mapping[str, float]], totals: Mapping[str, Mapping[str, float]],
                                name: str, alpha: float = SRM_ALPHA) -> CheckResult:
    """The same arm-balance test inside each region (region -> arm -> count). A filter can be even
    overall and still remove one arm's units in one market (a fraud rule keyed on a local payment
    method, a consent banner shown to one arm); the check's p-value is the smallest per-region
    p-value, Bonferroni-adjusted over the regions tested."""
    per_region: dict[str, Any] = {}
    p_values = []
    for region in sorted(totals):
        result = exclusion_balance(removed.get(region, {}), totals[region], name, alpha)
        per_region[region] = {"removed": dict(removed.get(region, {})), "total": dict(totals[region]),
                              "pValue": result.p_value}
        if result.p_value is not None:
            p_values.append(result.p_value)
    check = f"region_exclusion_balance:{name}"
    if not p_values:
        return CheckResult(check, "PASS" if per_region else "INSUFFICIENT_DATA", None, {"regions": per_region})
    adjusted = min(1.0, min(p_values) * len(p_values))
    return CheckResult(check, "FAIL" if adjusted < alpha else "PASS", adjusted,
                       {"regions": per_region, "regionsTested": len(p_values), "adjustment": "bonferroni"})


def missing_data(missing: Mapping[str, float], totals: Mapping[str, float], alpha: float = SRM_ALPHA) -> CheckResult:
    """Exposed units with no KPI data at all, per arm. Some units are simply inactive; a share that
    differs between arms points at logging lost on one side, which biases every per-unit mean."""
    base = exclusion_balance(missing, totals, "missing", alpha)
    total = sum(totals.values())
    share = {a: (missing.get(a, 0) / totals[a] if totals[a] else 0.0) for a in totals}
    return CheckResult("missing_data", base.status if total else "INSUFFICIENT_DATA", base.p_value,
                       {"missing": dict(missing), "share": share,
                        "overallShare": sum(missing.values()) / total if total else 0.0})


def late_data(late_events: float, total_events: float, max_share: float = 0.05) -> CheckResult:
    """Events that reached us long after they happened: a high share means the numbers will still
    move after this analysis (delayed purchases, refunds), so the verdict is provisional."""
    if total_events <= 0:
        return CheckResult("late_data", "INSUFFICIENT_DATA", None, {"lateEvents": late_events, "events": 0})
    share = late_events / total_events
    return CheckResult("late_data", "FAIL" if share > max_share else "PASS", None,
                       {"lateEvents": late_events, "events": total_events, "share": share, "maxShare": max_share})


def minimum_sample(counts: Mapping[str, float], minimum: int) -> CheckResult:
    low = {a: n for a, n in counts.items() if n < minimum}
    return CheckResult("minimum_sample", "FAIL" if low else "PASS", None, {"minimum": minimum, "below": low})


def staleness(age_seconds: float | None, limit_seconds: float, name: str = "staleness") -> CheckResult:
    """How old the newest data (or the newest sweep snapshot) is: a result on stale data looks
    current but describes the past, e.g. when ingestion or the scheduled sweep stopped."""
    if age_seconds is None:
        return CheckResult(name, "INSUFFICIENT_DATA", None, {"limitSeconds": limit_seconds})
    return CheckResult(name, "FAIL" if age_seconds > limit_seconds else "PASS", None,
                       {"ageSeconds": age_seconds, "limitSeconds": limit_seconds})
