"""Guardrail evaluation over the merged sufficient statistics, with always-valid bounds.

Each check is a one-sided always-valid test (functions/core/stats/sequential.py): it acts only
once the arms carry enough information (units and effective events per arm), and before that
reports INSUFFICIENT_DATA with what is missing, never a breach. The control arm is the reference
of an absolute limit's variance and information floors."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from functions.core.stats.sequential import MIN_EFFECTIVE_EVENTS, absolute_guardrail, relative_guardrail
from functions.core.stats.sufficient import MomentStats, RatioStats

SEVERITY = {"ALERT": 1, "PAUSE": 2, "KILL": 3}


class _Floors(TypedDict):
    min_units: int
    min_events: float


def evaluate(doc: Mapping[str, Any],
             stats: Mapping[str, Mapping[str, MomentStats | RatioStats]]) -> list[dict[str, Any]]:
    control = doc["variants"][0]["key"]
    treatments = [v["key"] for v in doc["variants"][1:]]
    verdicts = []
    for g in doc.get("guardrails") or []:
        metric = g["metric"]
        base = stats.get(control, {}).get(metric, MomentStats())
        for arm in treatments:
            treated = stats.get(arm, {}).get(metric, MomentStats())
            if not isinstance(base, MomentStats) or not isinstance(treated, MomentStats):
                continue
            floors: _Floors = {"min_units": int(g.get("minUnitsPerArm", 100)),
                               "min_events": float(g.get("minEffectiveEvents", MIN_EFFECTIVE_EVENTS))}
            checks = []
            if g.get("maxRelativeDegradation") is not None:
                checks.append(relative_guardrail(base, treated, g.get("harmfulDirection", "INCREASE"),
                                                 float(g["maxRelativeDegradation"]), **floors))
            if g.get("absoluteMax") is not None:
                checks.append(absolute_guardrail(treated, maximum=float(g["absoluteMax"]), reference=base, **floors))
            if g.get("absoluteMin") is not None:
                checks.append(absolute_guardrail(treated, minimum=float(g["absoluteMin"]), reference=base, **floors))
            for verdict in checks:
                verdicts.append({"guardrail": metric, "arm": arm, "action": g.get("action", "PAUSE"),
                                 **verdict.to_dict()})
    return verdicts


def worst_breach(verdicts: list[dict[str, Any]]) -> dict[str, Any] | None:
    breached = [v for v in verdicts if v["status"] == "BREACHED"]
    return max(breached, key=lambda v: SEVERITY.get(v["action"], 0)) if breached else None
