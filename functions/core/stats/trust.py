"""Trust recommendation and decision: what a product team may conclude from a result."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from functions.core.stats.inference import SKEWED_INSUFFICIENT_DATA, Estimate, finite
from functions.core.stats.power import PowerReport
from functions.core.stats.quality import INVALID_INPUT, CheckResult

TRUSTWORTHY, CAUTION, UNTRUSTWORTHY = "TRUSTWORTHY", "CAUTION", "UNTRUSTWORTHY"
SHIP, DONT_SHIP, KEEP_RUNNING, INVESTIGATE = "SHIP", "DONT_SHIP", "KEEP_RUNNING", "INVESTIGATE"
MAX_EXCLUDED_SHARE = 0.10
# Capping removes no unit, and a treatment that really creates more big spenders caps more values
# in its arm: with a million units per arm any true lift makes this test fail. It is reported
# (the reader sees where the cap bit) but is no reason to doubt the result.
INFORMATIONAL = frozenset({"exclusion_balance:outlier_cap", "region_exclusion_balance:outlier_cap"})


@dataclass(frozen=True)
class Recommendation:
    trust: str
    decision: str
    reasons: list[dict[str, Any]] = field(default_factory=list)
    rule: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return finite({"trust": self.trust, "decision": self.decision, "reasons": self.reasons, "rule": self.rule})


def _usable(primary: Estimate) -> bool:
    """An OK estimate whose decision inputs are finite numbers (defence in depth: a coded status
    should already have caught anything else)."""
    numbers = (primary.p_value, primary.diff, primary.se)
    return primary.ok and all(isinstance(v, int | float) and math.isfinite(v) for v in numbers)


def recommend(primary: Estimate, direction: str, checks: list[CheckResult], power: PowerReport | None,
              excluded_share: float = 0.0, alpha: float = 0.05) -> Recommendation:
    """direction: "INCREASE" if higher is better for the primary KPI, else "DECREASE".

    No input of any kind gets a decision unless it is finite and valid: a check that could not
    judge its inputs (INVALID_INPUT) or a primary estimate with a coded status makes the result
    UNTRUSTWORTHY with decision INVESTIGATE (no ship/don't-ship) and a coded reason. `rule` says
    which estimate and estimand the decision uses."""
    reasons: list[dict[str, Any]] = []
    blocking = {"srm"} | {c.name for c in checks if c.name.startswith("exclusion_balance")}
    rule = {"estimand": primary.estimand, "method": primary.method, "alpha": alpha,
            "test": "two-sided p < alpha on the primary estimate; sign against the KPI's direction"}
    for check in checks:
        if check.status == INVALID_INPUT:
            reasons.append({"code": str(check.details.get("code") or INVALID_INPUT), "severity": UNTRUSTWORTHY,
                            "check": check.name})
        elif check.failed and check.name not in INFORMATIONAL:
            severity = UNTRUSTWORTHY if check.name in blocking else CAUTION
            reasons.append({"code": check.name.upper().replace(":", "_") + "_FAILED", "severity": severity,
                            "pValue": check.p_value})
    if excluded_share > MAX_EXCLUDED_SHARE:
        reasons.append({"code": "HIGH_EXCLUSION_SHARE", "severity": CAUTION, "share": excluded_share})
    if power is not None and power.underpowered:
        reasons.append({"code": "UNDERPOWERED", "severity": CAUTION, "message": power.message})
    if primary.status == SKEWED_INSUFFICIENT_DATA:
        # not a defect of the data: too few units for a normal-theory interval yet; keep running
        reasons.append({"code": SKEWED_INSUFFICIENT_DATA, "severity": CAUTION,
                        "skewness": primary.extra.get("skewness"), "neededUnits": primary.extra.get("neededUnits")})
    elif not primary.ok:
        reasons.append({"code": f"PRIMARY_{primary.status}", "severity": UNTRUSTWORTHY})
    elif not _usable(primary):
        reasons.append({"code": "PRIMARY_NON_FINITE_RESULT", "severity": UNTRUSTWORTHY})
    severities = {r["severity"] for r in reasons}
    trust = UNTRUSTWORTHY if UNTRUSTWORTHY in severities else CAUTION if CAUTION in severities else TRUSTWORTHY
    if trust == UNTRUSTWORTHY:
        return Recommendation(trust, INVESTIGATE, reasons, rule)
    if primary.status == SKEWED_INSUFFICIENT_DATA:
        return Recommendation(trust, KEEP_RUNNING, reasons, rule)
    significant = primary.p_value is not None and primary.p_value < alpha
    good = primary.diff is not None and ((primary.diff > 0) == (direction == "INCREASE"))
    underpowered = power is not None and power.underpowered
    if significant and good:
        decision = SHIP
    elif significant:
        decision = DONT_SHIP
    else:
        decision = KEEP_RUNNING if underpowered else DONT_SHIP
    return Recommendation(trust, decision, reasons, rule)
