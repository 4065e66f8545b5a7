"""The full bias-corrected analysis: exclusions -> currency -> winsorize -> CUPED + Welch (or the
z-test for conversions, the delta method for ratios) -> data quality -> power -> trust. Works on
unit-level arrays (analyse_units) or, when only aggregates exist, on sufficient statistics
(analyse_stats). The result embeds the sufficient statistics it used and a fingerprint of its
inputs, so a stored verdict can be recomputed offline from the stored document alone
(replay_stats)."""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from functions.core.stats import corrections, multiple, power, quality
from functions.core.stats.corrections import ExclusionConfig, UnitData
from functions.core.stats.inference import (
    CAPPED_MEAN,
    CUPED_CAPPED_MEAN,
    CUPED_MEAN,
    MEAN_ESTIMAND,
    OK,
    SKEWED_INSUFFICIENT_DATA,
    Estimate,
    cuped,
    delta_ratio,
    finite,
    ratio_mean_and_var,
    skew_gate,
    two_proportion_z,
    welch,
)
from functions.core.stats.sufficient import MomentStats, RatioStats
from functions.core.stats.trust import recommend

ENGINE_VERSION = "offers-stats/2.2.0"  # 2.1: third moments and the skewness gate; 2.2: its shape from history
MEAN, PROPORTION, RATIO = "MEAN", "PROPORTION", "RATIO"
Stats = MomentStats | RatioStats


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
    metric_type: str = MEAN  # MEAN | PROPORTION (0/1 per unit) | RATIO (numerator / denominator per unit)
    # A mean's unit skewness read from its history (Kpi.historicalSkewness): the skewness gate then
    # reads the shape from it, not from the samples (docs/statistics.md, "Skewness gate").
    historical_skewness: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"control": self.control, "direction": self.direction,
                "expectedSplit": dict(self.expected_split or {}), "alpha": self.alpha,
                "plannedMdeRelative": self.planned_mde_relative, "minUnitsPerArm": self.min_units_per_arm,
                "dailyUnitsPerArm": self.daily_units_per_arm, "metricType": self.metric_type,
                "useCuped": self.use_cuped, "historicalSkewness": self.historical_skewness,
                "winsorPercentile": self.exclusions.winsor_percentile, "winsorCap": self.exclusions.winsor_cap,
                "winsorRule": "percentile of the pooled non-zero (positive) values"}


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _compare(control: Stats, treatment: Stats, cfg: AnalysisConfig, capped: bool = False) -> dict[str, Estimate | None]:
    """Every estimate for one arm and which one is primary: CUPED when the pre-period covariate
    carries information, else the z-test for conversions or Welch for means; ratios by delta method.
    `capped`: the stats are of winsorized values, so the estimands are capped means."""
    if isinstance(control, RatioStats) and isinstance(treatment, RatioStats):
        return {"primary": delta_ratio(control, treatment, cfg.alpha), "welch": None, "cuped": None, "zTest": None}
    assert isinstance(control, MomentStats) and isinstance(treatment, MomentStats)
    # Both t-tests of a mean publish an interval only while the difference is near normal. The
    # history's skewness is of the raw values: capped values are bounded, their samples read their shape.
    known = 0.0 if capped else float(cfg.historical_skewness or 0.0)
    plain = skew_gate(welch(control, treatment, cfg.alpha, CAPPED_MEAN if capped else MEAN_ESTIMAND),
                      control, treatment, known)
    adjusted = (skew_gate(cuped(control, treatment, cfg.alpha, CUPED_CAPPED_MEAN if capped else CUPED_MEAN),
                          control, treatment, known) if cfg.use_cuped else None)
    z = (skew_gate(two_proportion_z(control.total_x, control.n, treatment.total_x, treatment.n, cfg.alpha),
                   control, treatment) if cfg.metric_type == PROPORTION else None)
    if adjusted is not None and adjusted.status in (OK, SKEWED_INSUFFICIENT_DATA) and "fallback" not in adjusted.extra:
        primary = adjusted
    else:
        primary = z if z is not None else plain
    return {"primary": primary, "welch": plain, "cuped": adjusted, "zTest": z}


def _baseline(control: Stats, treatment: Stats) -> tuple[float, float]:
    """Baseline level and per-unit standard deviation the power calculation works with."""
    if not (control.is_finite and treatment.is_finite):
        return 0.0, 0.0
    if isinstance(control, RatioStats):
        if control.n < 2 or control.total_den == 0:
            return 0.0, 0.0
        ratio, var = ratio_mean_and_var(control)
        return ratio, math.sqrt(var * control.n)
    assert isinstance(treatment, MomentStats)
    return control.mean, float(np.sqrt(max(control.var, treatment.var)))


def _arms(stats: Mapping[str, Stats], cfg: AnalysisConfig, checks: list[quality.CheckResult],
          excluded_share: float, capped: Mapping[str, Stats] | None = None) -> dict[str, Any]:
    """Per treatment arm: every estimate, power and the recommendation, on the uncapped values.
    With `capped` (the same units winsorized) the capped comparison is published beside it.

    The decision uses the uncapped comparison: a capped mean is a different estimand, and a
    treatment that changes the spread but not the mean changes the capped mean (at 98/2, lognormal
    sigma 1.2 vs 0.6 with equal means, a decision on capped means rejected 31% of such data sets,
    the uncapped Welch 5.3%); capping also biases a real lift toward zero (+3.9% for a true +5%)."""
    control = stats.get(cfg.control, RatioStats() if cfg.metric_type == RATIO else MomentStats())
    arms: dict[str, Any] = {}
    for arm, treatment in stats.items():
        if arm == cfg.control:
            continue
        comparison = _compare(control, treatment, cfg)
        primary = comparison["primary"]
        assert primary is not None
        balance = (quality.pre_period_balance(control, treatment)
                   if isinstance(control, MomentStats) and isinstance(treatment, MomentStats) else None)
        baseline, sd = _baseline(control, treatment)
        report = power.power_report(baseline, sd, control.n, treatment.n, cfg.planned_mde_relative,
                                    cfg.daily_units_per_arm, cfg.alpha)
        arm_checks = [*checks, balance] if balance is not None else list(checks)
        rec = recommend(primary, cfg.direction, arm_checks, report, excluded_share, cfg.alpha)
        arms[arm] = {
            **{k: (v.to_dict() if v is not None else None) for k, v in comparison.items()},
            "prePeriodBalance": balance.to_dict() if balance is not None else None,
            "power": report.to_dict(),
            "recommendation": rec.to_dict(),
        }
        if capped is not None:
            low = _compare(capped.get(cfg.control, MomentStats()), capped.get(arm, MomentStats()), cfg, capped=True)
            arms[arm]["capped"] = {k: est.to_dict() for k in ("primary", "welch") if (est := low[k]) is not None}
            arms[arm]["recommendation"]["rule"]["uses"] = (
                "the uncapped comparison (the mean); 'capped' is the same test on winsorized values, a "
                "lower-variance view of a different estimand (capped means), never the decision")
    return arms


def stats_validity(stats: Mapping[str, Stats], name: str = "stats_validity") -> quality.CheckResult | None:
    """INVALID_INPUT (code NON_FINITE_INPUT) when any arm's sums are NaN or infinite."""
    bad = sorted(arm for arm, s in stats.items() if not s.is_finite)
    if not bad:
        return None
    return quality.CheckResult(name, quality.INVALID_INPUT, None, {"code": "NON_FINITE_INPUT", "arms": bad})


def _from_dict(raw: Mapping[str, float], metric_type: str) -> Stats:
    return RatioStats.from_dict(raw) if metric_type == RATIO else MomentStats.from_dict(raw)


def analyse_stats(stats: Mapping[str, Stats], cfg: AnalysisConfig, assigned: Mapping[str, float] | None = None,
                  extra_checks: list[quality.CheckResult] | None = None, excluded_share: float = 0.0,
                  extras: Mapping[str, Any] | None = None,
                  spillover: Mapping[str, Stats] | None = None,
                  capped: Mapping[str, Stats] | None = None) -> dict[str, Any]:
    """Tests, quality and trust from per-arm sufficient statistics (after any exclusions).
    `spillover`: the same statistics without the units linked across arms, analysed beside the
    primary result so a reader sees how much of the effect could be leakage between arms.
    `capped`: when a cap is on, the same units' statistics after winsorizing."""
    checks: list[quality.CheckResult] = list(extra_checks or [])
    for group, name in ((stats, "stats_validity"), (capped or {}, "capped_stats_validity")):
        invalid = stats_validity(group, name)
        if invalid is not None:
            checks.append(invalid)
    counts = dict(assigned) if assigned is not None else {arm: s.n for arm, s in stats.items()}
    if cfg.expected_split:
        checks.append(quality.srm(counts, cfg.expected_split))
    checks.append(quality.minimum_sample({arm: s.n for arm, s in stats.items()}, cfg.min_units_per_arm))
    arms = _arms(stats, cfg, checks, excluded_share, capped)
    inputs: dict[str, Any] = {
        "stats": {arm: s.to_dict() for arm, s in sorted(stats.items())}, "assigned": counts,
        "config": cfg.to_dict(), "extraChecks": [c.to_dict() for c in extra_checks or []],
        "excludedShare": excluded_share}
    if capped is not None:
        inputs["cappedStats"] = {arm: s.to_dict() for arm, s in sorted(capped.items())}
    out: dict[str, Any] = {}
    if spillover is not None:
        inputs["spilloverStats"] = {arm: s.to_dict() for arm, s in sorted(spillover.items())}
        removed = {arm: stats[arm].n - spillover[arm].n for arm in stats if arm in spillover}
        out["spilloverExcluded"] = {
            "removed": removed,
            "arms": {arm: data["primary"]
                     for arm, data in _arms(spillover, cfg, [], excluded_share).items()},
        }
    fallback = "two_proportion_z" if cfg.metric_type == PROPORTION else "welch"
    primary = "delta_ratio" if cfg.metric_type == RATIO else f"cuped, else {fallback}" if cfg.use_cuped else fallback
    return finite({
        "engineVersion": ENGINE_VERSION,
        "methods": {"primary": primary, "srm": "chi-square", "lift": "Fieller interval for the ratio of means",
                    "cuped": "pooled slope (Deng et al. 2013), per-arm adjusted variances, Welch-Satterthwaite t",
                    "moments": "shifted sums, pairwise (Chan et al.; Pébay for the third) merge",
                    "skewGate": "no t interval while |skew(mean diff)| > 1/sqrt(355) (Kohavi et al. 2020); shape from "
                                + ("the KPI's historical skewness, smaller arm"
                                   if cfg.historical_skewness and cfg.metric_type == MEAN else "the samples"),
                    "cap": "percentile of the pooled non-zero values; capped effects beside, decision uncapped"},
        "inputs": inputs,
        "fingerprint": fingerprint(inputs),
        "checks": [c.to_dict() for c in checks],
        "arms": arms,
        **out,
        **dict(extras or {}),
    })


def replay_stats(document: Mapping[str, Any]) -> dict[str, Any]:
    """Recompute a stored analysis from the sufficient statistics it embeds."""
    inputs = document["inputs"]
    cfg_raw = inputs["config"]
    metric_type = cfg_raw.get("metricType", MEAN)
    cfg = AnalysisConfig(control=cfg_raw["control"], direction=cfg_raw["direction"],
                         expected_split=cfg_raw.get("expectedSplit") or None, alpha=cfg_raw["alpha"],
                         planned_mde_relative=cfg_raw["plannedMdeRelative"],
                         min_units_per_arm=cfg_raw["minUnitsPerArm"], use_cuped=cfg_raw["useCuped"],
                         daily_units_per_arm=cfg_raw.get("dailyUnitsPerArm"), metric_type=metric_type,
                         historical_skewness=cfg_raw.get("historicalSkewness"),
                         exclusions=ExclusionConfig(winsor_percentile=cfg_raw.get("winsorPercentile"),
                                                    winsor_cap=cfg_raw.get("winsorCap")))
    stats = {arm: _from_dict(raw, metric_type) for arm, raw in inputs["stats"].items()}
    capped_raw = inputs.get("cappedStats")
    spill = inputs.get("spilloverStats")
    checks = [quality.CheckResult(c["name"], c["status"], c.get("pValue"), c.get("details") or {})
              for c in inputs.get("extraChecks", [])]
    return analyse_stats(stats, cfg, inputs.get("assigned"), checks, inputs.get("excludedShare", 0.0),
                         extras={k: document[k] for k in ("exclusions",) if k in document},
                         spillover={arm: _from_dict(raw, metric_type) for arm, raw in spill.items()}
                         if spill is not None else None,
                         capped={arm: _from_dict(raw, metric_type) for arm, raw in capped_raw.items()}
                         if capped_raw is not None else None)


MAX_LABEL_TABLE = 1 << 20  # entries of the table from a label's byte digits to its code


def _fixed_width_codes(values: list[Any], labels: list[str]) -> np.ndarray | None:
    """Codes of labels that are ASCII of one width (ISO region codes), or None for other labels.
    The values are joined into one byte buffer; each byte column that varies among the labels
    becomes a digit, and the digits index one small table: a few vectorised gathers instead of a
    Python call per unit."""
    width = len(labels[0]) if labels else 0
    if not width or any(not label.isascii() or len(label) != width for label in labels):
        return None
    names = np.frombuffer("".join(labels).encode("ascii"), dtype=np.uint8).reshape(-1, width)
    columns = [(j, np.unique(names[:, j])) for j in range(width)]
    columns = [(j, seen) for j, seen in columns if seen.size > 1]
    if math.prod(seen.size for _, seen in columns) > MAX_LABEL_TABLE:
        return None
    data = np.frombuffer("".join(values).encode("ascii"), dtype=np.uint8).reshape(-1, width)
    key, name_key = np.zeros(len(values), dtype=np.intp), np.zeros(len(labels), dtype=np.intp)
    for j, seen in columns:
        digit = np.zeros(256, dtype=np.intp)
        digit[seen] = np.arange(seen.size)
        key = key * seen.size + digit[data[:, j]]
        name_key = name_key * seen.size + digit[names[:, j]]
    table = np.zeros(int(name_key.max()) + 1, dtype=np.intp)
    table[name_key] = np.arange(len(labels))
    return table[key]


@dataclass(frozen=True)
class RegionCodes:
    """Every unit's region as a small integer (one hash pass per arm to find the labels, then one
    byte view when they are short ASCII of one width, else one lookup per unit; no sort of millions
    of objects); counts per region are then one bincount."""

    names: tuple[str, ...]
    codes: Mapping[str, np.ndarray]

    @classmethod
    def of(cls, arms: Mapping[str, UnitData]) -> RegionCodes:
        lists = {arm: d.region.tolist() for arm, d in arms.items() if d.region is not None}
        distinct = set().union(*map(set, lists.values())) if lists else set()
        labels = sorted({str(v) for v in distinct})
        lookup = {v: labels.index(str(v)) for v in distinct}
        plain = all(type(v) is str for v in distinct)  # else str(v) names a value, not its bytes

        def codes(values: list[Any]) -> np.ndarray:
            fast = _fixed_width_codes(values, labels) if plain else None
            return fast if fast is not None else np.fromiter(map(lookup.__getitem__, values), dtype=np.intp,
                                                             count=len(values))

        return cls(tuple(labels), {arm: codes(values) for arm, values in lists.items()})

    def counts(self, arm: str, mask: np.ndarray | None = None) -> Counter[str]:
        codes = self.codes[arm] if mask is None else self.codes[arm][mask]
        bins = np.bincount(codes, minlength=len(self.names))
        return Counter({name: int(c) for name, c in zip(self.names, bins.tolist(), strict=True) if c})

    def mask(self, arm: str, regions: tuple[str, ...]) -> np.ndarray:
        wanted = [i for i, name in enumerate(self.names) if name in regions]
        return np.isin(self.codes[arm], wanted)


@dataclass(frozen=True)
class Removal:
    """One filter's effect per arm: units removed out of the units in scope, overall and, when
    regions are known, per region. This and `Aggregated` are all the pipeline needs after the
    unit level, so a warehouse can compute them in SQL and send only counts and sums."""

    removed: Mapping[str, int]
    in_scope: Mapping[str, float]
    removed_by_region: Mapping[str, Mapping[str, int]] | None = None
    in_scope_by_region: Mapping[str, Mapping[str, int]] | None = None

    def checks(self, name: str) -> list[quality.CheckResult]:
        """Removed vs kept across arms, and the same inside every region."""
        out = [quality.exclusion_balance(dict(self.removed), dict(self.in_scope), name)]
        if self.removed_by_region is not None and self.in_scope_by_region is not None:
            by_total: dict[str, dict[str, float]] = {}
            by_removed: dict[str, dict[str, float]] = {}
            for arm in self.removed:
                gone = self.removed_by_region.get(arm, {})
                for region, count in sorted(self.in_scope_by_region.get(arm, {}).items()):
                    if count > 0:
                        by_total.setdefault(region, {})[arm] = float(count)
                        by_removed.setdefault(region, {})[arm] = float(gone.get(region, 0))
            out.append(quality.exclusion_balance_by_region(by_removed, by_total, name))
        return out


@dataclass(frozen=True)
class Aggregated:
    """A KPI's analysis inputs after exclusions and capping, per arm: counts and sufficient
    statistics only. `filters` are in the order they are applied (a unit counts under the first
    that removes it); `stats` are uncapped, `capped` the same units winsorized at `cap`, `clean`
    the same without units linked across arms (None when links are not tracked)."""

    assigned: Mapping[str, float]
    filters: Mapping[str, Removal]
    stats: Mapping[str, Stats]
    cap: float | None = None
    cap_removal: Removal | None = None
    capped: Mapping[str, Stats] | None = None
    clean: Mapping[str, Stats] | None = None
    restricted_regions: tuple[str, ...] = ()


def analyse_aggregated(agg: Aggregated, cfg: AnalysisConfig,
                       extra_checks: list[quality.CheckResult] | None = None) -> dict[str, Any]:
    """Balance checks, the exclusions summary, then `analyse_stats`: the one path every source of
    unit data (arrays in memory, SQL in a warehouse) ends in."""
    arms = list(agg.assigned)
    checks = [c for name, removal in agg.filters.items() for c in removal.checks(name)]
    if agg.cap_removal is not None:
        checks += agg.cap_removal.checks("outlier_cap")
    removed = {name: {arm: int(r.removed.get(arm, 0)) for arm in arms} for name, r in agg.filters.items()}
    total_removed = sum(sum(v.values()) for v in removed.values())
    excluded_share = total_removed / max(sum(agg.assigned.values()), 1)
    exclusions = {
        "removed": removed,
        "share": {f: {arm: removed[f][arm] / agg.assigned[arm] if agg.assigned[arm] else 0.0 for arm in arms}
                  for f in removed},
        "restrictedRegions": sorted(agg.restricted_regions),
        "winsorCap": agg.cap,
        "capped": {arm: int(agg.cap_removal.removed.get(arm, 0)) if agg.cap_removal is not None else 0
                   for arm in arms},
        "excludedShare": excluded_share,
    }
    return analyse_stats(agg.stats, cfg, agg.assigned, [*(extra_checks or []), *checks], excluded_share,
                         {"exclusions": exclusions}, agg.clean, agg.capped)


def _removal(arms: Mapping[str, UnitData], masks: Mapping[str, np.ndarray],
             region_totals: Mapping[str, Counter[str]] | None, codes: RegionCodes | None,
             within: Mapping[str, np.ndarray] | None = None) -> Removal:
    scope = within or {arm: np.ones(len(d), dtype=bool) for arm, d in arms.items()}
    removed = {arm: int((masks[arm] & scope[arm]).sum()) for arm in arms}
    totals = {arm: float(scope[arm].sum()) for arm in arms}
    if region_totals is None or codes is None:
        return Removal(removed, totals)
    return Removal(removed, totals, {arm: codes.counts(arm, masks[arm] & scope[arm]) for arm in arms},
                   {arm: region_totals[arm] for arm in arms})


UNIT_ARRAYS = ("pre", "fraud", "consent", "region", "events", "active_days", "identical_timestamp_share", "currency",
               "crosses_arms", "denominator")


def validate_units(arms: Mapping[str, UnitData],
                   ex: ExclusionConfig) -> tuple[dict[str, UnitData], quality.CheckResult | None]:
    """Values in the base currency, and the units an analysis can use: a side array whose length
    differs from the values is dropped (a covariate of the wrong length means no CUPED), and a unit
    whose value, covariate or denominator is NaN or infinite is left out. Either makes the
    `input_validity` check INVALID_INPUT (code NON_FINITE_INPUT or INVALID_INPUT), which blocks
    any decision; the numbers published beside it stay finite."""
    clean: dict[str, UnitData] = {}
    problems: dict[str, Any] = {}
    non_finite = False
    for arm, data in arms.items():
        value = np.asarray(data.value, dtype=float).ravel()
        n = value.size
        fields_ = {name: getattr(data, name) for name in UNIT_ARRAYS}
        wrong = sorted(name for name, arr in fields_.items() if arr is not None and np.shape(arr) != (n,))
        for name in wrong:
            fields_[name] = None
        value = corrections.normalise_currency(value, fields_["currency"], ex.currency_rates)
        bad = ~np.isfinite(value)
        for name in ("pre", "denominator"):
            if fields_[name] is not None:
                fields_[name] = np.asarray(fields_[name], dtype=float)
                bad |= ~np.isfinite(fields_[name])
        dropped = int(bad.sum())
        if dropped:
            keep = ~bad
            value = value[keep]
            fields_ = {k: (np.asarray(v)[keep] if v is not None else None) for k, v in fields_.items()}
            non_finite = True
        if wrong or dropped:
            problems[arm] = {"lengthMismatch": wrong, "nonFiniteUnitsLeftOut": dropped}
        clean[arm] = UnitData(value=value, **fields_)
    if not problems:
        return clean, None
    code = "NON_FINITE_INPUT" if non_finite else "INVALID_INPUT"
    return clean, quality.CheckResult("input_validity", quality.INVALID_INPUT, None, {"code": code, "arms": problems})


def analyse_units(arms: Mapping[str, UnitData], cfg: AnalysisConfig,
                  extra_checks: list[quality.CheckResult] | None = None) -> dict[str, Any]:
    """The bias-corrected pipeline on unit-level arrays."""
    ex = cfg.exclusions
    assigned = {arm: float(len(data)) for arm, data in arms.items()}
    arms, validity = validate_units(arms, ex)
    if validity is not None:
        extra_checks = [*(extra_checks or []), validity]
    values = {arm: d.value for arm, d in arms.items()}
    # units without analytics consent are not processed at all, not even for the activity baseline
    consenting = {arm: d.consent.astype(bool) if d.consent is not None else np.ones(len(d), dtype=bool)
                  for arm, d in arms.items()}
    activity = np.concatenate([d.events[consenting[arm]] for arm, d in arms.items() if d.events is not None]
                              or [np.zeros(0)])
    # both arrays are this function's own temporaries, so the medians may reorder them in place
    median = float(np.median(activity, overwrite_input=True)) if activity.size else None
    mad = float(np.median(np.abs(activity - median), overwrite_input=True)) if activity.size else None
    with_regions = bool(arms) and all(d.region is not None for d in arms.values())
    codes = RegionCodes.of(arms) if with_regions else None
    masks = {arm: corrections.exclusion_masks(d, ex, median, mad,
                                              codes.mask(arm, ex.restricted_regions) if codes is not None else None)
             for arm, d in arms.items()}
    filters = list(next(iter(masks.values())).keys()) if masks else []
    regions = {arm: codes.counts(arm) for arm in arms} if codes is not None else None
    removals = {f: _removal(arms, {arm: masks[arm][f] for arm in arms}, regions, codes) for f in filters}
    keep = {arm: ~np.logical_or.reduce(list(masks[arm].values())) if masks[arm] else np.ones(len(arms[arm]), bool)
            for arm in arms}
    kept_values = {arm: values[arm][keep[arm]] for arm in arms}
    names = list(kept_values)
    if cfg.metric_type in (PROPORTION, RATIO):
        # a percentile cap on 0/1 data would zero every conversion below a 1% rate; ratios are
        # capped through their parts at ingestion (perUnitCap), not here
        capped, cap = list(kept_values.values()), None
    else:
        pooled = np.concatenate(list(kept_values.values())) if kept_values else np.zeros(0)
        capped, cap, _ = corrections.winsorize(pooled, list(kept_values.values()), ex.winsor_percentile,
                                               ex.winsor_cap)
    cap_removal = None
    if cap is not None:
        cap_masks = {arm: np.zeros(len(arms[arm]), dtype=bool) for arm in arms}
        for arm in arms:
            cap_masks[arm][keep[arm]] = kept_values[arm] > cap
        kept_regions = ({arm: regions[arm] - codes.counts(arm, ~keep[arm]) for arm in arms}
                        if regions is not None and codes is not None else None)
        cap_removal = _removal(arms, cap_masks, kept_regions, codes, keep)
    stats: dict[str, Stats] = {}
    clean: dict[str, Stats] = {}
    capped_stats: dict[str, Stats] | None = {} if cap is not None else None
    linked = all(d.crosses_arms is not None for d in arms.values())
    for arm, x in zip(names, capped, strict=True):
        data = arms[arm]
        if cfg.metric_type == RATIO:
            den = (data.denominator if data.denominator is not None else np.ones(len(data)))[keep[arm]]
            stats[arm] = RatioStats.from_arrays(x, den)
            if linked and data.crosses_arms is not None:  # linked: every arm has crosses_arms
                free = ~data.crosses_arms[keep[arm]]
                clean[arm] = RatioStats.from_arrays(x[free], den[free])
        else:
            pre = data.pre[keep[arm]] if data.pre is not None else None
            raw = kept_values[arm]
            stats[arm] = MomentStats.from_arrays(raw, pre)
            if capped_stats is not None:
                capped_stats[arm] = MomentStats.from_arrays(x, pre)
            if linked and data.crosses_arms is not None:  # linked: every arm has crosses_arms
                free = ~data.crosses_arms[keep[arm]]
                clean[arm] = MomentStats.from_arrays(raw[free], pre[free] if pre is not None else None)
    agg = Aggregated(assigned, removals, stats, cap, cap_removal, capped_stats, clean if linked else None,
                     tuple(ex.restricted_regions))
    return analyse_aggregated(agg, cfg, extra_checks)


def adjust_secondary(p_values: Mapping[str, float | None], method: str = "holm") -> dict[str, float | None]:
    names = [k for k, v in p_values.items() if v is not None]
    adjusted = multiple.adjust([p_values[k] for k in names], method)
    return {k: (adjusted[names.index(k)] if k in names else None) for k in p_values}
