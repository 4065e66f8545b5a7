"""Analysis results in words for people who do not read JSON: the verdict sentence per arm, the
reasons a trust level gives, percentages and p-values, one wording everywhere (the console's
pages and the ledger's audit report read the same text)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DECISIONS = {"SHIP": "ship", "DONT_SHIP": "do not ship", "KEEP_RUNNING": "keep running",
             "INVESTIGATE": "investigate before deciding"}
REASONS = {
    "SRM_FAILED": "the arms did not receive the planned split of users (sample ratio mismatch)",
    "UNDERPOWERED": "too few users yet to detect the planned effect",
    "HIGH_EXCLUSION_SHARE": "more than 10% of users were excluded (fraud, bots, consent, regions)",
    "MINIMUM_SAMPLE_FAILED": "an arm has fewer users than the minimum",
    "PRE_PERIOD_BALANCE_FAILED": "the arms already differed before the test (pre-period imbalance)",
    "SKEWED_INSUFFICIENT_DATA": "the metric is too skewed for a reliable interval at this size (a few large "
                                "values dominate); keep running until each arm has the users it needs",
}
METHODS = {"cuped": "CUPED (variance-reduced)", "welch": "raw (Welch)", "two_proportion_z": "raw (z-test)",
           "zTest": "raw (z-test)", "delta_ratio": "ratio (delta method)"}


def pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:+.{digits}%}"


def p_text(p: float | None) -> str:
    if p is None:
        return "p n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def reason_text(reason: Mapping[str, Any]) -> str:
    code = str(reason.get("code", ""))
    text = REASONS.get(code) or reason.get("message") or code.replace("_", " ").lower()
    return f"{text} ({str(reason.get('severity', '')).lower()})" if reason.get("severity") else text


def metric_label(metric: str, kpi_type: str | None) -> str:
    if kpi_type == "PROPORTION":
        return f"{metric} rate"
    if kpi_type == "RATIO":
        return f"{metric} (ratio)"
    return f"{metric} per user"


def verdict_sentence(arm: str, metric: str, kpi_type: str | None, estimate: dict[str, Any] | None,
                     recommendation: dict[str, Any] | None, guardrails_held: bool | None, alpha: float = 0.05) -> str:
    """e.g. "plus10: revenue per user +6.7% (95% CI +4.5% to +8.8%), p < 0.001; guardrails held; ship"."""
    parts = [f"{arm}: {metric_label(metric, kpi_type)}"]
    if estimate and estimate.get("lift") is not None:
        ci = estimate.get("liftCi") or [None, None]
        parts[0] += (f" {pct(estimate['lift'])} ({1 - alpha:.0%} CI {pct(ci[0])} to {pct(ci[1])}), "
                     f"{p_text(estimate.get('pValue'))}")
    else:
        parts[0] += " no estimate yet"
    if guardrails_held is not None:
        parts.append("guardrails held" if guardrails_held else "a guardrail was breached")
    rec = recommendation or {}
    decision = DECISIONS.get(str(rec.get("decision")), "no decision yet")
    if guardrails_held is False and rec.get("decision") == "SHIP":
        decision = "do not ship (guardrail breached)"
    parts.append(decision)
    return "; ".join(parts)
