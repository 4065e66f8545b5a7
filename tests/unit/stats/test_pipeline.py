"""The analysis pipeline's parts beyond the plain tests: lift CIs, conversions, ratios, bots,
exclusion balance per arm and region, the spillover-excluded estimate, data quality, degenerate data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from statsmodels.stats.proportion import proportions_ztest

from functions.core.stats import quality
from functions.core.stats.corrections import ExclusionConfig, UnitData
from functions.core.stats.inference import cuped, delta_ratio, welch
from functions.core.stats.pipeline import PROPORTION, RATIO, AnalysisConfig, analyse_units, replay_stats
from functions.core.stats.sufficient import MomentStats, RatioStats

SPLIT = {"control": 0.5, "treatment": 0.5}


def _cfg(**kw) -> AnalysisConfig:
    return AnalysisConfig(control="control", expected_split=SPLIT, **kw)


def _check(result: dict, name: str) -> dict:
    return next(c for c in result["checks"] if c["name"] == name)


def test_welch_lift_ci_matches_a_bootstrap_of_the_ratio_of_means():
    r = np.random.default_rng(21)
    a, b = r.lognormal(2, 1, 3000), r.lognormal(2.2, 1, 3000)
    est = welch(MomentStats.from_arrays(a), MomentStats.from_arrays(b))
    boots = [b[r.integers(0, 3000, 3000)].mean() / a[r.integers(0, 3000, 3000)].mean() - 1 for _ in range(2000)]
    assert est.lift == pytest.approx(b.mean() / a.mean() - 1, rel=1e-12)
    half = (est.lift_ci[1] - est.lift_ci[0]) / 2
    assert half / 1.959963984540054 == pytest.approx(np.std(boots), rel=0.08)


def test_cuped_lift_ci_is_delta_method_on_adjusted_means_and_matches_a_bootstrap():
    r = np.random.default_rng(22)
    n = 2500
    pre_a, pre_b = r.gamma(2, 10, n), r.gamma(2, 10, n)
    ya = 5 + 0.8 * pre_a + r.normal(0, 6, n)
    yb = 5 + 0.8 * pre_b + r.normal(0, 6, n) + 6.0  # a large lift: the control mean's own noise matters

    def lift(ia, ib):
        e = cuped(MomentStats.from_arrays(ya[ia], pre_a[ia]), MomentStats.from_arrays(yb[ib], pre_b[ib]))
        return e.lift

    full = np.arange(n)
    est = cuped(MomentStats.from_arrays(ya, pre_a), MomentStats.from_arrays(yb, pre_b))
    theta = est.extra["theta"]  # one pooled within-arm slope
    pooled = np.r_[pre_a, pre_b].mean()
    ma = ya.mean() - theta * (pre_a.mean() - pooled)
    mb = yb.mean() - theta * (pre_b.mean() - pooled)
    assert est.lift == pytest.approx(mb / ma - 1, rel=1e-9) == pytest.approx(lift(full, full), rel=1e-12)
    boots = [lift(r.integers(0, n, n), r.integers(0, n, n)) for _ in range(1500)]
    half = (est.lift_ci[1] - est.lift_ci[0]) / 2
    assert half / 1.959963984540054 == pytest.approx(np.std(boots), rel=0.08)
    # wider than dividing the difference's CI by a fixed control mean, which ignores the denominator
    assert half > (est.diff_ci[1] - est.diff_ci[0]) / 2 / ma


def test_conversions_use_the_z_test_and_are_never_winsorized():
    r = np.random.default_rng(23)
    a, b = r.binomial(1, 0.008, 20000).astype(float), r.binomial(1, 0.011, 20000).astype(float)
    result = analyse_units({"control": UnitData(a), "treatment": UnitData(b)}, _cfg(metric_type=PROPORTION))
    arm = result["arms"]["treatment"]
    z, p = proportions_ztest([b.sum(), a.sum()], [b.size, a.size])
    assert arm["primary"]["method"] == "two_proportion_z"
    assert arm["primary"]["extra"]["z"] == pytest.approx(z, rel=1e-9)
    assert arm["primary"]["pValue"] == pytest.approx(p, rel=1e-9)
    # a 99th-percentile cap on 0/1 data under a 1% rate would have zeroed every conversion
    assert result["exclusions"]["winsorCap"] is None
    assert MomentStats.from_dict(result["inputs"]["stats"]["treatment"]).total_x == pytest.approx(b.sum(), rel=1e-12)


def test_ratio_kpis_use_the_delta_method_after_exclusions_and_replay():
    r = np.random.default_rng(24)

    def arm(n, rate):
        den = (r.poisson(3, n) + 1).astype(float)
        return UnitData(r.binomial(den.astype(int), rate).astype(float), denominator=den,
                        fraud=np.arange(n) < 10)

    control, treatment = arm(3000, 0.10), arm(3000, 0.12)
    result = analyse_units({"control": control, "treatment": treatment}, _cfg(metric_type=RATIO))
    expected = delta_ratio(RatioStats.from_arrays(control.value[10:], control.denominator[10:]),
                           RatioStats.from_arrays(treatment.value[10:], treatment.denominator[10:]))
    primary = result["arms"]["treatment"]["primary"]
    assert primary["method"] == "delta_ratio" and primary["diff"] == pytest.approx(expected.diff, rel=1e-12)
    assert primary["se"] == pytest.approx(expected.se, rel=1e-12)
    assert result["arms"]["treatment"]["power"]["neededPerArm"] is not None
    again = replay_stats(result)
    assert again["fingerprint"] == result["fingerprint"] and again["arms"] == result["arms"]


def test_bots_by_rules_and_by_a_robust_activity_score():
    r = np.random.default_rng(25)
    n = 2000
    events = r.poisson(30, n).astype(float)
    days = np.full(n, 10.0)
    same_ts = np.zeros(n)
    value = r.gamma(2, 10, n)
    events[0] = 6000.0  # 600 events a day: the rate rule
    same_ts[1] = 0.9  # nine in ten events share one timestamp
    value[2] = 1e7  # an impossible purchase
    events[3] = 400.0  # 40 a day passes the rate rule but is far out on the median/MAD score
    consent = np.ones(n, dtype=bool)
    consent[4:14] = False
    events[4:14] = 1e6  # non-consenting units never enter the activity baseline (nor the result)
    control = UnitData(value, events=events, active_days=days, identical_timestamp_share=same_ts, consent=consent)
    treatment = UnitData(r.gamma(2, 10, n), events=r.poisson(30, n).astype(float), active_days=np.full(n, 10.0),
                         identical_timestamp_share=np.zeros(n), consent=np.ones(n, dtype=bool))
    cfg = _cfg(exclusions=ExclusionConfig(max_value=1e5))
    result = analyse_units({"control": control, "treatment": treatment}, cfg)
    assert result["exclusions"]["removed"]["bot"] == {"control": 4, "treatment": 0}
    assert result["exclusions"]["removed"]["consent"] == {"control": 10, "treatment": 0}
    activity = np.r_[events[consent], treatment.events]
    mad = np.median(np.abs(activity - np.median(activity)))
    assert 0.6745 * (400 - np.median(activity)) / mad > 6.0 > 0.6745 * (60 - np.median(activity)) / mad


def test_exclusion_balance_is_tested_per_arm_and_per_region_for_every_filter():
    n = 4000
    regions = np.array(["DE", "BR"] * (n // 2), dtype=object)
    fraud_c, fraud_t = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    fraud_c[np.flatnonzero(regions == "DE")[:80]] = True  # even overall (80 vs 80) ...
    fraud_t[np.flatnonzero(regions == "BR")[:80]] = True  # ... but each region loses one arm only
    r = np.random.default_rng(26)
    arms = {"control": UnitData(r.gamma(2, 10, n), fraud=fraud_c, region=regions),
            "treatment": UnitData(r.gamma(2, 10, n), fraud=fraud_t, region=regions)}
    result = analyse_units(arms, _cfg())
    names = {c["name"] for c in result["checks"]}
    for f in ("consent", "region", "fraud", "bot", "outlier_cap"):
        assert {f"exclusion_balance:{f}", f"region_exclusion_balance:{f}"} <= names
    assert _check(result, "exclusion_balance:fraud")["status"] == "PASS"
    by_region = _check(result, "region_exclusion_balance:fraud")
    assert by_region["status"] == "FAIL"
    assert by_region["details"]["regions"]["BR"]["removed"] == {"control": 0.0, "treatment": 80.0}
    rec = result["arms"]["treatment"]["recommendation"]
    assert "REGION_EXCLUSION_BALANCE_FRAUD_FAILED" in {x["code"] for x in rec["reasons"]}
    assert rec["trust"] == "CAUTION"


def test_winsorizing_reports_how_many_values_were_capped_per_arm():
    r = np.random.default_rng(27)
    a, b = r.lognormal(2, 1.5, 5000), r.lognormal(2, 1.5, 5000)
    result = analyse_units({"control": UnitData(a), "treatment": UnitData(b)}, _cfg())
    cap = np.quantile(np.r_[a, b], 0.99)
    assert result["exclusions"]["winsorCap"] == pytest.approx(cap, rel=1e-12)
    assert result["exclusions"]["capped"] == {"control": int((a > cap).sum()), "treatment": int((b > cap).sum())}
    stored = MomentStats.from_dict(result["inputs"]["cappedStats"]["control"])
    assert stored.total_x == pytest.approx(np.minimum(a, cap).sum(), rel=1e-12)
    assert MomentStats.from_dict(result["inputs"]["stats"]["control"]).total_x == pytest.approx(a.sum(), rel=1e-12)
    fixed = analyse_units({"control": UnitData(a), "treatment": UnitData(b)},
                          _cfg(exclusions=ExclusionConfig(winsor_percentile=None, winsor_cap=100.0)))
    assert fixed["exclusions"]["capped"]["control"] == int((a > 100).sum())


def test_spillover_excluded_estimate_beside_the_primary_one():
    r = np.random.default_rng(28)
    n = 6000
    control, treatment = r.normal(100, 20, n), r.normal(110, 20, n)
    linked_c, linked_t = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    linked_c[: n // 3] = linked_t[: n // 3] = True
    control[: n // 3] += 10  # treated neighbours pass the offer on: control units linked to them look treated
    arms = {"control": UnitData(control, crosses_arms=linked_c),
            "treatment": UnitData(treatment, crosses_arms=linked_t)}
    result = analyse_units(arms, _cfg(exclusions=ExclusionConfig(winsor_percentile=None)))
    primary = result["arms"]["treatment"]["primary"]["diff"]
    clean = result["spilloverExcluded"]["arms"]["treatment"]
    assert primary < 8.5  # diluted by spillover
    assert clean["diff"] == pytest.approx(treatment[n // 3:].mean() - control[n // 3:].mean(), rel=1e-9)
    assert 9.0 < clean["diff"] < 11.0
    assert result["spilloverExcluded"]["removed"] == {"control": n // 3, "treatment": n // 3}
    again = replay_stats(result)
    assert again["spilloverExcluded"] == result["spilloverExcluded"] and again["fingerprint"] == result["fingerprint"]


def test_missing_late_and_stale_data_are_checks_with_reasons():
    missing = quality.missing_data({"control": 100, "treatment": 300}, {"control": 2000, "treatment": 2000})
    assert missing.status == "FAIL" and missing.details["share"] == {"control": 0.05, "treatment": 0.15}
    assert quality.missing_data({"control": 100, "treatment": 104}, {"control": 2000, "treatment": 2000}).status \
        == "PASS"
    assert quality.late_data(60, 1000).status == "FAIL" and quality.late_data(10, 1000).status == "PASS"
    assert quality.late_data(0, 0).status == "INSUFFICIENT_DATA"
    stale = quality.staleness(3 * 86400, 86400)
    r = np.random.default_rng(29)
    arms = {"control": UnitData(r.normal(10, 2, 500)), "treatment": UnitData(r.normal(10, 2, 500))}
    result = analyse_units(arms, _cfg(), extra_checks=[missing, stale, quality.late_data(60, 1000)])
    codes = {x["code"]: x["severity"] for x in result["arms"]["treatment"]["recommendation"]["reasons"]}
    assert codes["MISSING_DATA_FAILED"] == codes["STALENESS_FAILED"] == codes["LATE_DATA_FAILED"] == "CAUTION"
    assert replay_stats(result)["arms"] == result["arms"]


def test_power_says_how_many_more_days():
    r = np.random.default_rng(30)
    arms = {"control": UnitData(r.normal(50, 20, 400)), "treatment": UnitData(r.normal(50, 20, 400))}
    result = analyse_units(arms, _cfg(daily_units_per_arm=100.0))
    report = result["arms"]["treatment"]["power"]
    assert report["underpowered"] is True
    assert report["daysMore"] == pytest.approx((report["neededPerArm"] - 400) / 100.0)
    assert report["message"].startswith("underpowered") and "more days" in report["message"]
    reasons = result["arms"]["treatment"]["recommendation"]["reasons"]
    assert any(x["code"] == "UNDERPOWERED" and "more days" in x["message"] for x in reasons)


@pytest.mark.parametrize("kind", ["MEAN", PROPORTION, RATIO])
def test_everything_excluded_or_empty_is_coded_and_json_safe(kind):
    every = np.ones(50, dtype=bool)
    arms = {"control": UnitData(np.ones(50), fraud=every, denominator=np.ones(50), region=np.array(["DE"] * 50)),
            "treatment": UnitData(np.zeros(0), denominator=np.zeros(0), region=np.array([], dtype=object))}
    result = analyse_units(arms, _cfg(metric_type=kind))
    json.dumps(result, allow_nan=False)
    arm = result["arms"]["treatment"]
    assert arm["primary"]["status"] == "EMPTY_ARM"
    assert arm["recommendation"]["trust"] == "UNTRUSTWORTHY"


def test_a_vanishing_exposure_rate_gives_no_days_rather_than_an_error():
    from functions.core.stats.power import power_report

    report = power_report(50.0, 20.0, 100, 100, 0.05, daily_units_per_arm=1e-320)
    assert report.underpowered and report.days_more is None
    json.dumps(report.to_dict(), allow_nan=False)


def _decision(control: np.ndarray, treatment: np.ndarray, direction: str = "INCREASE", pre=None, **kw) -> dict:
    pre_c, pre_t = pre if pre is not None else (None, None)
    arms = {"control": UnitData(control, pre=pre_c), "treatment": UnitData(treatment, pre=pre_t)}
    cfg = AnalysisConfig(control="control", direction=direction, expected_split=kw.pop("split", SPLIT),
                         exclusions=ExclusionConfig(winsor_percentile=None), **kw)
    rec = analyse_units(arms, cfg)["arms"]["treatment"]["recommendation"]
    return {"trust": rec["trust"], "decision": rec["decision"], "codes": {r["code"] for r in rec["reasons"]}}


def test_trust_and_decision_cover_every_outcome():
    r = np.random.default_rng(31)
    n = 20_000
    base = r.normal(50, 10, n)
    up = r.normal(52, 10, n)
    same = r.normal(50, 10, n)
    assert _decision(base, up) == {"trust": "TRUSTWORTHY", "decision": "SHIP", "codes": set()}
    assert _decision(base, up, direction="DECREASE")["decision"] == "DONT_SHIP"  # higher is worse here
    small = _decision(base[:120], same[:120])  # about 250 per arm are needed for a 5% effect
    assert small["trust"] == "CAUTION" and small["decision"] == "KEEP_RUNNING" and "UNDERPOWERED" in small["codes"]
    srm = _decision(base, up[: n // 2])  # half the treatment units went missing
    assert srm["trust"] == "UNTRUSTWORTHY" and srm["decision"] == "INVESTIGATE" and "SRM_FAILED" in srm["codes"]
    tiny = _decision(base[:40], up[:40], min_units_per_arm=100)
    assert "MINIMUM_SAMPLE_FAILED" in tiny["codes"]
    pre_c, pre_t = r.normal(10, 2, n), r.normal(10.5, 2, n)  # randomisation broken on the pre-period
    unbalanced = _decision(base + pre_c, up + pre_t, pre=(pre_c, pre_t))
    assert "PRE_PERIOD_BALANCE_FAILED" in unbalanced["codes"] and unbalanced["trust"] == "CAUTION"
