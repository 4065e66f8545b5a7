"""The full bias-corrected analysis (consent/region/fraud/bot exclusions with their balance
checks, winsorizing at the 99th percentile of the non-zero values, CUPED (pooled slope, Welch on the adjusted values),
Welch, each on the capped and on the uncapped values, SRM, pre-period balance) on unit-level
arrays, side by side with

- statsmodels_scipy: the same steps written with the standard tools: statsmodels OLS
  y ~ 1 + T + pre for the pooled slope, scipy's Welch test on the adjusted values (what our CUPED
  reports), on capped and uncapped values,
  scipy.stats.mstats.winsorize on the non-zero values, scipy ttest_ind, chisquare,
  chi2_contingency (every filter's arm balance overall and per region, as ours) and
  median_abs_deviation (bot rule). Untimed, the same model with HC2 errors shows how far
  the reported error is from the robust one;
- gbstats (GrowthBook 0.8.0, own venv: bench/peers.py): its regression-adjusted (CUPED) t-test
  from the very sufficient statistics our pipeline produced. gbstats starts from aggregates, so
  its timing is compared with the same step of ours (`inference.cuped` on MomentStats), not
  with the whole pipeline.

"Ours" is `functions.core.stats.pipeline.analyse_units`, used as is: the unit-level entry, which
ends in the `analyse_aggregated` the analytics service runs on the warehouse's aggregates.
Prints the time ratios and the largest differences in estimate and standard error; the last line
is the JSON result.

    python -m bench analysis [--units 1000000] [--repeat 3] [--seed 20261124] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import statsmodels.api as sm
from scipy import stats
from scipy.stats import mstats

from bench import peers
from bench.report import emit
from functions.core.stats.corrections import ExclusionConfig, UnitData
from functions.core.stats.inference import cuped
from functions.core.stats.pipeline import AnalysisConfig, analyse_units
from functions.core.stats.sufficient import MomentStats

REGIONS = np.array(["US", "DE", "GB", "FR", "BR", "JP"], dtype=object)
REGION_SHARES = [0.40, 0.20, 0.15, 0.13, 0.02, 0.10]
RESTRICTED = ("BR",)
TRUE_LIFT = 0.03
WINSOR = 0.99
ALPHA = 0.05
MAX_EVENTS_PER_DAY = 500.0
MAD_THRESHOLD = 6.0


# ---------------------------------------------------------------------------------------------
# data


def generate_arm(rng: np.random.Generator, n: int, lift: float) -> UnitData:
    """Revenue-like skewed KPI: 45% of units spend (lognormal propensity x gamma noise), the
    pre-period spend of the same units is the CUPED covariate; 0.01% legitimate whales (x100,
    for the cap), 0.4% fraud-flagged units with fake purchases, 0.2% bots (thousands of events a
    day), 1% without analytics consent, 2% in a restricted region."""
    propensity = rng.lognormal(2.0, 1.0, n)
    active = rng.random(n) < 0.45
    pre = np.where(active, propensity * rng.gamma(4.0, 0.25, n), 0.0)
    value = np.where(active, propensity * rng.gamma(4.0, 0.25, n) * (1 + lift), 0.0)
    whales = rng.random(n) < 0.0001
    value[whales] *= 100.0
    fraud = rng.random(n) < 0.004
    value[fraud] += rng.gamma(2.0, 200.0, int(fraud.sum()))
    active_days = rng.integers(1, 15, n).astype(float)
    events = rng.poisson(3.0 * active_days).astype(float)
    bots = rng.random(n) < 0.002
    events[bots] = rng.integers(5_000, 50_000, int(bots.sum())) * active_days[bots]
    consent = rng.random(n) >= 0.01
    region = rng.choice(REGIONS, size=n, p=REGION_SHARES)
    return UnitData(value=value, pre=pre, fraud=fraud, consent=consent, region=region, events=events,
                    active_days=active_days)


def generate(n_per_arm: int, seed: int) -> dict[str, UnitData]:
    rng = np.random.default_rng(seed)
    n_treatment = int(rng.binomial(2 * n_per_arm, 0.5))  # a fair coin: the SRM check must pass
    return {"control": generate_arm(rng, 2 * n_per_arm - n_treatment, 0.0),
            "treatment": generate_arm(rng, n_treatment, TRUE_LIFT)}


# ---------------------------------------------------------------------------------------------
# ours


def config(cap: float | None = None) -> AnalysisConfig:
    """The analysis as the service configures it; `cap` replaces the pooled percentile by a fixed
    cap (used once, untimed, to show what remains when both sides cap at the same value)."""
    return AnalysisConfig(control="control", expected_split={"control": 0.5, "treatment": 0.5}, alpha=ALPHA,
                          exclusions=ExclusionConfig(restricted_regions=RESTRICTED, winsor_percentile=WINSOR,
                                                     winsor_cap=cap, max_events_per_day=MAX_EVENTS_PER_DAY,
                                                     mad_threshold=MAD_THRESHOLD))


def ours(arms: dict[str, UnitData], cap: float | None = None) -> dict[str, Any]:
    result = analyse_units(arms, config(cap))
    arm = result["arms"]["treatment"]
    checks = {c["name"]: c["pValue"] for c in result["checks"]}
    low = arm["capped"]  # the published capped view; the decision's primary is uncapped
    return {"cuped": (low["primary"]["diff"], low["primary"]["se"], low["primary"]["pValue"]),
            "welch": (low["welch"]["diff"], low["welch"]["se"], low["welch"]["pValue"]),
            "raw_cuped": (arm["cuped"]["diff"], arm["cuped"]["se"], arm["cuped"]["pValue"]),
            "raw_welch": (arm["welch"]["diff"], arm["welch"]["se"], arm["welch"]["pValue"]),
            "theta": low["primary"]["extra"]["theta"],
            "srm_p": next(c["pValue"] for c in result["checks"] if c["name"] == "srm"),
            "cap": result["exclusions"]["winsorCap"],
            "kept": {a: result["inputs"]["stats"][a]["n"] for a in arms},
            "stats": {a: MomentStats.from_dict(s) for a, s in result["inputs"]["cappedStats"].items()},
            "trust": arm["recommendation"]["trust"],
            "balance_p": {f: (checks.get(f"exclusion_balance:{f}"), checks.get(f"region_exclusion_balance:{f}"))
                          for f in ("consent", "region", "fraud", "bot", "outlier_cap")}}


# ---------------------------------------------------------------------------------------------
# peer 1: statsmodels + scipy


def _balance_p(removed: np.ndarray, totals: np.ndarray) -> float | None:
    """chi-square of removed vs kept across the arms (None when nothing was removed)."""
    if removed.sum() == 0 or (totals - removed).sum() == 0 or (totals == 0).any():
        return None
    return float(stats.chi2_contingency(np.array([removed, totals - removed]), correction=False).pvalue)


def statsmodels_scipy(arms: dict[str, UnitData]) -> dict[str, Any]:
    """Exclusions with per-filter balance tests (overall and inside every region, Bonferroni),
    winsorizing with its own balance test, SRM, pre-period balance, Welch and OLS CUPED."""
    control, treatment = arms["control"], arms["treatment"]
    consenting = np.concatenate([control.consent, treatment.consent])
    events = np.concatenate([control.events, treatment.events])[consenting]  # no consent: not even a baseline
    median = np.median(events)
    scale = stats.median_abs_deviation(events, scale="normal")
    regions, codes = np.unique(np.concatenate([control.region, treatment.region]), return_inverse=True)
    arm_codes = (codes[:len(control)], codes[len(control):])

    def removed_by(d: UnitData) -> dict[str, np.ndarray]:
        rules = {"consent": ~d.consent, "region": np.isin(d.region, RESTRICTED), "fraud": d.fraud,
                 "bot": (d.events / np.maximum(d.active_days, 1) > MAX_EVENTS_PER_DAY)
                 | ((d.events - median) / scale > MAD_THRESHOLD)}
        out, taken = {}, np.zeros(len(d), dtype=bool)
        for name, rule in rules.items():  # counted under the first rule that removes a unit
            out[name], taken = rule & ~taken, taken | rule
        out["any"] = taken
        return out

    def balance(masks: tuple[np.ndarray, np.ndarray], scope: tuple[np.ndarray, np.ndarray]) -> tuple[Any, Any]:
        overall = _balance_p(np.array([m[s].sum() for m, s in zip(masks, scope, strict=True)]),
                             np.array([s.sum() for s in scope]))
        gone = np.array([np.bincount(c[m & s], minlength=regions.size)
                         for c, m, s in zip(arm_codes, masks, scope, strict=True)])
        total = np.array([np.bincount(c[s], minlength=regions.size) for c, s in zip(arm_codes, scope, strict=True)])
        per_region = [p for r in range(regions.size) if (p := _balance_p(gone[:, r], total[:, r])) is not None]
        return overall, min(1.0, min(per_region) * len(per_region)) if per_region else None

    gone_c, gone_t = removed_by(control), removed_by(treatment)
    everyone = (np.ones(len(control), dtype=bool), np.ones(len(treatment), dtype=bool))
    balance_p = {name: balance((gone_c[name], gone_t[name]), everyone) for name in ("consent", "region", "fraud",
                                                                                     "bot")}
    keep_c, keep_t = ~gone_c["any"], ~gone_t["any"]
    raw_c, raw_t = control.value[keep_c], treatment.value[keep_t]
    raw = np.concatenate([raw_c, raw_t])
    cap = float(np.asarray(mstats.winsorize(raw[raw > 0], limits=(0, 1 - WINSOR))).max())  # among payers
    pooled = np.minimum(raw, cap)
    capped_c, capped_t = np.zeros(len(control), dtype=bool), np.zeros(len(treatment), dtype=bool)
    capped_c[keep_c], capped_t[keep_t] = raw_c > cap, raw_t > cap
    balance_p["outlier_cap"] = balance((capped_c, capped_t), (keep_c, keep_t))
    y_c, y_t = pooled[:raw_c.size], pooled[raw_c.size:]
    pre_c, pre_t = control.pre[keep_c], treatment.pre[keep_t]

    srm = stats.chisquare([len(control), len(treatment)], [(len(control) + len(treatment)) / 2] * 2)
    pre_balance = stats.ttest_ind(pre_t, pre_c, equal_var=False)
    centre = np.concatenate([pre_c, pre_t]).mean()
    design = np.column_stack([np.ones(pre_c.size + pre_t.size), np.r_[np.zeros(pre_c.size), np.ones(pre_t.size)],
                              np.concatenate([pre_c, pre_t])])

    def compare(yc: np.ndarray, yt: np.ndarray) -> dict[str, Any]:
        welch = stats.ttest_ind(yt, yc, equal_var=False)
        welch_diff = yt.mean() - yc.mean()
        theta = float(sm.OLS(np.concatenate([yc, yt]), design).fit().params[2])  # pooled within-arm slope
        adj_c, adj_t = yc - theta * (pre_c - centre), yt - theta * (pre_t - centre)
        cuped = stats.ttest_ind(adj_t, adj_c, equal_var=False)
        diff = adj_t.mean() - adj_c.mean()
        return {"cuped": (float(diff), float(diff / cuped.statistic), float(cuped.pvalue)),
                "welch": (float(welch_diff), float(welch_diff / welch.statistic), float(welch.pvalue)),
                "theta": theta}

    capped, uncapped = compare(y_c, y_t), compare(raw_c, raw_t)
    return {**capped, "raw_cuped": uncapped["cuped"], "raw_welch": uncapped["welch"], "srm_p": float(srm.pvalue),
            "pre_balance_p": float(pre_balance.pvalue), "balance_p": balance_p, "cap": cap,
            "kept": {"control": y_c.size, "treatment": y_t.size},
            "_data": (pooled, np.r_[np.zeros(y_c.size), np.ones(y_t.size)], np.r_[pre_c, pre_t] - centre)}


# ---------------------------------------------------------------------------------------------
# peer 2: gbstats CUPED from the same sufficient statistics (runs in .venv-peers)

GBSTATS_CUPED = """
import json, sys, time
from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
from gbstats.models.statistics import RegressionAdjustedStatistic, SampleMeanStatistic
payload = json.load(sys.stdin)

def stat(s):
    n = int(s["n"])
    return RegressionAdjustedStatistic(
        n=n, post_statistic=SampleMeanStatistic(n=n, sum=s["sum_x"], sum_squares=s["sum_x2"]),
        pre_statistic=SampleMeanStatistic(n=n, sum=s["sum_pre"], sum_squares=s["sum_pre2"]),
        post_pre_sum_of_products=s["sum_xpre"], theta=0)

def once():
    test = TwoSidedTTest(stat(payload["control"]), stat(payload["treatment"]),
                         FrequentistConfig(alpha=payload["alpha"], difference_type="absolute"))
    return test, test.compute_result()

test, result = once()
best = float("inf")
for _ in range(payload["repeat"]):
    started = time.perf_counter()
    for _ in range(payload["calls"]):
        once()
    best = min(best, (time.perf_counter() - started) / payload["calls"])
print(json.dumps({"diff": float(result.expected), "se": float(result.uplift.stddev), "p": float(result.p_value),
                  "ci": [float(x) for x in result.ci], "theta": float(test.stat_a.theta),
                  "seconds_per_call": best}))
"""


def gbstats_cuped(stats: dict[str, MomentStats], repeat: int, calls: int) -> dict[str, Any]:
    payload = {"control": stats["control"].reshift().to_dict(), "treatment": stats["treatment"].reshift().to_dict(),
               "alpha": ALPHA,
               "repeat": repeat, "calls": calls}
    return peers.run(GBSTATS_CUPED, payload, timeout=900)


# ---------------------------------------------------------------------------------------------
# timing and comparison


def interleaved(fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, tuple[Any, float, list[float]]]:
    """Run each contender once per round (so a busy machine slows every side alike); per
    contender: last result, best time, all times."""
    out: dict[str, tuple[Any, float, list[float]]] = {}
    for _ in range(repeat):
        for name, fn in fns.items():
            started = time.perf_counter()
            result = fn()
            elapsed = time.perf_counter() - started
            times = [*out[name][2], elapsed] if name in out else [elapsed]
            out[name] = (result, min(times), times)
    return out


def differences(pairs: dict[str, tuple[float, float]]) -> dict[str, Any]:
    """Per quantity: absolute and relative difference; plus the largest of each."""
    rows = {}
    for name, (a, b) in pairs.items():
        rows[name] = {"ours": a, "peer": b, "abs": abs(a - b), "rel": abs(a - b) / abs(b) if b else None}
    largest_abs = max(rows, key=lambda k: rows[k]["abs"])
    largest_rel = max(rows, key=lambda k: rows[k]["rel"] or 0.0)
    return {"rows": rows, "max_abs": rows[largest_abs]["abs"], "max_abs_of": largest_abs,
            "max_rel": rows[largest_rel]["rel"], "max_rel_of": largest_rel}


def print_differences(peer: str, diff: dict[str, Any]) -> None:
    for name, row in diff["rows"].items():
        print(f"  {peer:18s} {name:11s} ours {row['ours']:+.10g}  peer {row['peer']:+.10g}  "
              f"|diff| {row['abs']:.3g}  rel {row['rel']:.3g}")
    print(f"  {peer:18s} largest |diff| {diff['max_abs']:.3g} ({diff['max_abs_of']}), largest relative "
          f"{diff['max_rel']:.3g} ({diff['max_rel_of']})")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench analysis")
    parser.add_argument("--units", type=int, default=1_000_000, help="units per arm (before exclusions)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each pipeline (best is reported)")
    parser.add_argument("--seed", type=int, default=20261124)
    parser.add_argument("--quick", action="store_true", help="100,000 units per arm")
    args = parser.parse_args(argv)
    n = 100_000 if args.quick else args.units

    started = time.perf_counter()
    arms = generate(n, args.seed)
    print(f"generated {len(arms['control']):,} control + {len(arms['treatment']):,} treatment units "
          f"in {time.perf_counter() - started:.2f} s (seed {args.seed}, true lift {TRUE_LIFT:.0%})")

    runs = interleaved({"ours": lambda: ours(arms), "statsmodels_scipy": lambda: statsmodels_scipy(arms)},
                       args.repeat)
    mine, ours_s, ours_times = runs["ours"]
    ref, peer_s, peer_times = runs["statsmodels_scipy"]
    y, t, c = ref.pop("_data")
    # untimed: the model y ~ 1 + T + c with HC2 errors, the robust reference
    hc2_se = float(sm.OLS(y, np.column_stack([np.ones_like(t), t, c])).fit(cov_type="HC2").bse[1])

    calls = 2000
    ours_step = float("inf")
    docs = {arm: s.to_dict() for arm, s in mine["stats"].items()}
    for _ in range(args.repeat):
        step_started = time.perf_counter()
        for _ in range(calls):  # from the stored sums each call, as gbstats builds its statistics each call
            cuped(MomentStats.from_dict(docs["control"]), MomentStats.from_dict(docs["treatment"]), ALPHA)
        ours_step = min(ours_step, (time.perf_counter() - step_started) / calls)
    try:
        gb = gbstats_cuped(mine["stats"], args.repeat, calls)
    except peers.PeerUnavailable as exc:
        print(f"gbstats unavailable: {exc}")
        gb = None

    print(f"\nexclusions kept {mine['kept']} (peer {ref['kept']}); winsor cap ours {mine['cap']:.4f} "
          f"(np.quantile of the non-zero values) vs mstats.winsorize of the non-zero values {ref['cap']:.4f}")
    print(f"SRM p ours {mine['srm_p']:.6f} vs scipy chisquare {ref['srm_p']:.6f}; trust {mine['trust']}")
    print(f"CUPED pooled theta: ours {mine['theta']}, statsmodels {ref['theta']}"
          + (f", gbstats {gb['theta']:.6f}" if gb else ""))
    balance_gap = max((abs(a - b) for f, pair in mine["balance_p"].items()
                       for a, b in zip(pair, ref["balance_p"][f], strict=True) if a is not None and b is not None),
                      default=None)
    print(f"exclusion-balance p-values (overall, per region) ours {mine['balance_p']}\n"
          f"  peer {ref['balance_p']}\n  largest |diff| {balance_gap} (outlier_cap counts differ with the cap)")
    print(f"CUPED se: ours (per-arm adjusted variances) {mine['cuped'][1]:.6g}, statsmodels y ~ 1 + T + pre "
          f"HC2 {hc2_se:.6g} (ratio {hc2_se / mine['cuped'][1]:.6f})\n")

    def pairs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, tuple[float, float]]:
        return {f"{key.replace('_', ' ')} {part}": (a[key][i], b[key][i])
                for key in ("cuped", "welch", "raw_cuped", "raw_welch") for i, part in ((0, "diff"), (1, "se"))}

    vs_sm = differences(pairs(mine, ref))
    print_differences("statsmodels_scipy", vs_sm)
    same_cap = ours(arms, cap=ref["cap"])  # untimed: is the winsorizing convention the whole difference?
    vs_sm_same_cap = differences(pairs(same_cap, ref))
    print(f"  with ours capping at mstats' cap too: largest |diff| {vs_sm_same_cap['max_abs']:.3g}, "
          f"relative {vs_sm_same_cap['max_rel']:.3g}")
    vs_gb = None
    if gb:
        vs_gb = differences({"cuped diff": (mine["cuped"][0], gb["diff"]), "cuped se": (mine["cuped"][1], gb["se"])})
        print_differences("gbstats", vs_gb)

    print(f"\nfull analysis, best of {args.repeat}: ours {ours_s:.3f} s, statsmodels+scipy {peer_s:.3f} s "
          f"-> ours {peer_s / ours_s:.2f}x faster")
    if gb:
        print(f"CUPED from sufficient statistics, per call: ours {ours_step * 1e6:.1f} us, "
              f"gbstats {gb['seconds_per_call'] * 1e6:.1f} us -> ours {gb['seconds_per_call'] / ours_step:.2f}x faster")

    emit("analysis", "seconds (full analysis)", round(ours_s, 4), {"statsmodels_scipy": round(peer_s, 4)},
         {"units_per_arm": n, "assigned": {a: len(d) for a, d in arms.items()}, "repeat": args.repeat,
          "seed": args.seed, "winsor_percentile": WINSOR, "restricted_regions": list(RESTRICTED)},
         higher_is_better=False,
         extra={
             "times_s": {"ours": [round(t, 4) for t in ours_times],
                         "statsmodels_scipy": [round(t, 4) for t in peer_times],
                         "ours_median": round(statistics.median(ours_times), 4),
                         "statsmodels_scipy_median": round(statistics.median(peer_times), 4)},
             "stats_step_us": {"ours_cuped": round(ours_step * 1e6, 2),
                               "gbstats_cuped": round(gb["seconds_per_call"] * 1e6, 2) if gb else None},
             "ratio_vs_stats_step": {"gbstats": round(gb["seconds_per_call"] / ours_step, 4) if gb else None},
             "max_diff": {
                 "statsmodels_scipy": {"abs": vs_sm["max_abs"], "abs_of": vs_sm["max_abs_of"], "rel": vs_sm["max_rel"],
                                       "rel_of": vs_sm["max_rel_of"]},
                 "statsmodels_scipy_same_cap": {"abs": vs_sm_same_cap["max_abs"], "rel": vs_sm_same_cap["max_rel"]},
                 "gbstats": ({"abs": vs_gb["max_abs"], "abs_of": vs_gb["max_abs_of"], "rel": vs_gb["max_rel"],
                              "rel_of": vs_gb["max_rel_of"]} if vs_gb else None),
             },
             "estimates": {"ours": {"cuped": mine["cuped"], "welch": mine["welch"], "theta": mine["theta"]},
                           "statsmodels_scipy": {"cuped": ref["cuped"], "welch": ref["welch"], "theta": ref["theta"],
                                                 "cuped_hc2_se": hc2_se},
                           "gbstats": ({"cuped": [gb["diff"], gb["se"], gb["p"]], "theta": gb["theta"]}
                                       if gb else None)},
             "checks": {"winsor_cap": {"ours": mine["cap"], "statsmodels_scipy": ref["cap"]},
                        "kept": {"ours": mine["kept"], "statsmodels_scipy": ref["kept"]},
                        "srm_p": {"ours": mine["srm_p"], "statsmodels_scipy": ref["srm_p"]},
                        "exclusion_balance_p": {"ours": mine["balance_p"], "statsmodels_scipy": ref["balance_p"]},
                        "trust": mine["trust"]},
         })
    return 0
