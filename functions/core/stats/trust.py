"""Trust recommendation and decision: what a product team may conclude from a result."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from functions.core.stats.inference import Estimate
from functions.core.stats.power import PowerReport
from functions.core.stats.quality import CheckResult

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

    def to_dict(self) -> dict[str, Any]:
        return {"trust": self.trust, "decision": self.decision, "reasons": self.reasons}


def recommend(primary: Estimate, direction: str, checks: list[CheckResult], power: PowerReport | None,
              excluded_share: float = 0.0, alpha: float = 0.05) -> Recommendation:
    """direction: "INCREASE" if higher is better for the primary KPI, else "DECREASE"."""
    reasons: list[dict[str, Any]] = []
    blocking = {"srm"} | {c.name for c in checks if c.name.startswith("exclusion_balance")}
    for check in checks:
        if check.failed and check.name not in INFORMATIONAL:
            severity = UNTRUSTWORTHY if check.name in blocking else CAUTION
            reasons.append({"code": check.name.upper().replace(":", "_") + "_FAILED", "severity": severity,
                            "pValue": check.p_value})
    if excluded_share > MAX_EXCLUDED_SHARE:
        reasons.append({"code": "HIGH_EXCLUSION_SHARE", "severity": CAUTION, "share": excluded_share})
    if power is not None and power.underpowered:
        reasons.append({"code": "UNDERPOWERED", "severity": CAUTION, "message": power.message})
    if not primary.ok:
        reasons.append({"code": f"PRIMARY_{primary.status}", "severity": UNTRUSTWORTHY})
    severities = {r["severity"] for r in reasons}
    trust = UNTRUSTWORTHY if UNTRUSTWORTHY in severities else CAUTION if CAUTION in severities else TRUSTWORTHY
    if trust == UNTRUSTWORTHY:
        return Recommendation(trust, INVESTIGATE, reasons)
    significant = primary.p_value is not None and primary.p_value < alpha
    good = primary.diff is not None and ((primary.diff > 0) == (direction == "INCREASE"))
    underpowered = power is not None and power.underpowered
    if significant and good:
        decision = SHIP
    elif significant:
        decision = DONT_SHIP
    else:
        decision = KEEP_RUNNING if underpowered else DONT_SHIP
    return Recommendation(trust, decision, reasons)
