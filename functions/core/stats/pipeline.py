"""The full bias-corrected analysis: exclusions -> currency -> winsorize -> CUPED + Welch ->
data quality -> power -> trust. Works on unit-level arrays (analyse_units) or, when only
aggregates exist, on sufficient statistics (analyse_stats). The result embeds the sufficient
statistics it used and a fingerprint of its inputs, so a stored verdict can be recomputed
offline from the stored document alone (replay_stats)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from functions.core.stats import corrections, multiple, power, quality
from functions.core.stats.corrections import ExclusionConfig, UnitData
from functions.core.stats.inference import Estimate, cuped, finite, welch
from functions.core.stats.sufficient import MomentStats
from functions.core.stats.trust import recommend

ENGINE_VERSION = "offers-stats/1.0.0"


@dataclass(frozen=True)
class AnalysisConfig:
    control: str
    direction: str = "INCREASE"  # of the primary KPI
    expected_split: Mapping[str, float] | None = None  # designed shares per arm (rollout stage aware)
    alpha: float = 0.05
    planned_mde_relative: float = 0.05
    daily_units_per_arm: float | None = None
    min_units_per_arm: int = 100
    exclusions: ExclusionConfig = field(default_factory=ExclusionConfig)
    use_cuped: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {"control": self.control, "direction": self.direction,
                "expectedSplit": dict(self.expected_split or {}), "alpha": self.alpha,
                "plannedMdeRelative": self.planned_mde_relative, "minUnitsPerArm": self.min_units_per_arm,
                "dailyUnitsPerArm": self.daily_units_per_arm,
                "useCuped": self.use_cuped,
                "winsorPercentile": self.exclusions.winsor_percentile, "winsorCap": self.exclusions.winsor_cap}


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _compare(control: MomentStats, treatment: MomentStats, cfg: AnalysisConfig) -> dict[str, Any]:
    plain = welch(control, treatment, cfg.alpha)
    adjusted = cuped(control, treatment, cfg.alpha) if cfg.use_cuped else None
    primary: Estimate = adjusted if adjusted is not None and adjusted.ok else plain
    return {"primary": primary, "welch": plain, "cuped": adjusted}


def analyse_stats(stats: Mapping[str, MomentStats], cfg: AnalysisConfig, assigned: Mapping[str, float] | None = None,
                  extra_checks: list[quality.CheckResult] | None = None, excluded_share: float = 0.0,
                  extras: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Tests, quality and trust from per-arm sufficient statistics (after any exclusions)."""
    control = stats.get(cfg.control, MomentStats())
    checks: list[quality.CheckResult] = list(extra_checks or [])
    counts = dict(assigned) if assigned is not None else {arm: s.n for arm, s in stats.items()}
    if cfg.expected_split:
        checks.append(quality.srm(counts, cfg.expected_split))
    checks.append(quality.minimum_sample({arm: s.n for arm, s in stats.items()}, cfg.min_units_per_arm))
    arms: dict[str, Any] = {}
    for arm, treatment in stats.items():
        if arm == cfg.control:
            continue
        comparison = _compare(control, treatment, cfg)
        balance = quality.pre_period_balance(control, treatment)
        sd = float(np.sqrt(max(control.var, treatment.var)))
        report = power.power_report(control.mean, sd, control.n, treatment.n, cfg.planned_mde_relative,
                                    cfg.daily_units_per_arm, cfg.alpha)
        rec = recommend(comparison["primary"], cfg.direction, [*checks, balance], report, excluded_share, cfg.alpha)
        arms[arm] = {
            "primary": comparison["primary"].to_dict(),
            "welch": comparison["welch"].to_dict(),
            "cuped": comparison["cuped"].to_dict() if comparison["cuped"] else None,
            "prePeriodBalance": balance.to_dict(),
            "power": report.to_dict(),
            "recommendation": rec.to_dict(),
        }
    inputs = {"stats": {arm: s.to_dict() for arm, s in sorted(stats.items())}, "assigned": counts,
              "config": cfg.to_dict(), "extraChecks": [c.to_dict() for c in extra_checks or []],
              "excludedShare": excluded_share}
    return finite({
        "engineVersion": ENGINE_VERSION,
        "methods": {"primary": "cuped" if cfg.use_cuped else "welch", "srm": "chi-square", "lift": "delta method"},
        "inputs": inputs,
        "fingerprint": fingerprint(inputs),
        "checks": [c.to_dict() for c in checks],
        "arms": arms,
        **dict(extras or {}),
    })


def replay_stats(document: Mapping[str, Any]) -> dict[str, Any]:
    """Recompute a stored analysis from the sufficient statistics it embeds."""
    inputs = document["inputs"]
    cfg_raw = inputs["config"]
    cfg = AnalysisConfig(control=cfg_raw["control"], direction=cfg_raw["direction"],
                         expected_split=cfg_raw.get("expectedSplit") or None, alpha=cfg_raw["alpha"],
                         planned_mde_relative=cfg_raw["plannedMdeRelative"],
                         min_units_per_arm=cfg_raw["minUnitsPerArm"], use_cuped=cfg_raw["useCuped"],
                         daily_units_per_arm=cfg_raw.get("dailyUnitsPerArm"),
                         exclusions=ExclusionConfig(winsor_percentile=cfg_raw.get("winsorPercentile"),
                                                    winsor_cap=cfg_raw.get("winsorCap")))
    stats = {arm: MomentStats.from_dict(raw) for arm, raw in inputs["stats"].items()}
    checks = [quality.CheckResult(c["name"], c["status"], c.get("pValue"), c.get("details") or {})
              for c in inputs.get("extraChecks", [])]
    return analyse_stats(stats, cfg, inputs.get("assigned"), checks, inputs.get("excludedShare", 0.0),
                         extras={k: document[k] for k in ("exclusions", "spilloverExcluded") if k in document})


def analyse_units(arms: Mapping[str, UnitData], cfg: AnalysisConfig) -> dict[str, Any]:
    """The bias-corrected pipeline on unit-level arrays."""
    ex = cfg.exclusions
    assigned = {arm: float(len(data)) for arm, data in arms.items()}
    values = {arm: corrections.normalise_currency(d.value.astype(float), d.currency, ex.currency_rates)
              for arm, d in arms.items()}
    activity = np.concatenate([d.events for d in arms.values() if d.events is not None] or [np.zeros(0)])
    median = float(np.median(activity)) if activity.size else None
    mad = float(np.median(np.abs(activity - median))) if activity.size else None
    masks = {arm: corrections.exclusion_masks(d, ex, median, mad) for arm, d in arms.items()}
    filters = list(next(iter(masks.values())).keys()) if masks else []
    removed = {f: {arm: int(masks[arm][f].sum()) for arm in arms} for f in filters}
    checks = [quality.exclusion_balance(removed[f], assigned, f) for f in filters]
    keep = {arm: ~np.logical_or.reduce(list(masks[arm].values())) if masks[arm] else np.ones(len(arms[arm]), bool)
            for arm in arms}
    kept_values = {arm: values[arm][keep[arm]] for arm in arms}
    pooled = np.concatenate(list(kept_values.values())) if kept_values else np.zeros(0)
    capped, cap, n_capped = corrections.winsorize(pooled, list(kept_values.values()), ex.winsor_percentile,
                                                  ex.winsor_cap)
    names = list(kept_values)
    stats = {}
    for arm, x in zip(names, capped, strict=True):
        pre = arms[arm].pre[keep[arm]] if arms[arm].pre is not None else None
        stats[arm] = MomentStats.from_arrays(x, pre)
    total_removed = sum(sum(v.values()) for v in removed.values())
    excluded_share = total_removed / max(sum(assigned.values()), 1)
    exclusions = {
        "removed": removed,
        "share": {f: {arm: removed[f][arm] / assigned[arm] if assigned[arm] else 0.0 for arm in arms}
                  for f in filters},
        "winsorCap": cap,
        "capped": dict(zip(names, n_capped, strict=True)),
        "excludedShare": excluded_share,
    }
    extras: dict[str, Any] = {"exclusions": exclusions}
    if all(d.crosses_arms is not None for d in arms.values()):
        clean = {arm: MomentStats.from_arrays(x[~arms[arm].crosses_arms[keep[arm]]])
                 for arm, x in zip(names, capped, strict=True)}
        extras["spilloverExcluded"] = {
            arm: welch(clean[cfg.control], clean[arm], cfg.alpha).to_dict() for arm in clean if arm != cfg.control
        }
    return analyse_stats(stats, cfg, assigned, checks, excluded_share, extras)


def adjust_secondary(p_values: Mapping[str, float | None], method: str = "holm") -> dict[str, float | None]:
    names = [k for k, v in p_values.items() if v is not None]
    adjusted = multiple.adjust([p_values[k] for k in names], method)
    return {k: (adjusted[names.index(k)] if k in names else None) for k in p_values}
