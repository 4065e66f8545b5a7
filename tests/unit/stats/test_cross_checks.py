"""Every estimate against a reference implementation on generated data (fixed seeds)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import proportions_ztest

from functions.core.stats import multiple, power
from functions.core.stats.inference import cuped, delta_ratio, ratio_mean_and_var, two_proportion_z, welch
from functions.core.stats.sufficient import MomentStats, RatioStats

rng = np.random.default_rng(20261124)


def _exact(r: np.random.Generator, loc: float, scale: float, size: int) -> np.ndarray:
    """Normal draws on a 2^-10 grid: OFFSET + x is then exactly representable up to 1e12, so a
    reference computed on x alone sees the very same data (scipy's own sums lose digits there)."""
    return np.round(r.normal(loc, scale, size) * 1024) / 1024


OFFSETS = [0.0, 1e3, 1e8, 1e12]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_welch_equals_scipy(seed):
    r = np.random.default_rng(seed)
    a, b = r.lognormal(1, 1, 800), r.lognormal(1.05, 1.2, 1100)
    ours = welch(MomentStats.from_arrays(a), MomentStats.from_arrays(b))
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert ours.extra["t"] == pytest.approx(ref.statistic, rel=1e-9)
    ci = ref.confidence_interval(0.95)
    assert ours.diff_ci == pytest.approx((ci.low, ci.high), rel=1e-9)


@pytest.mark.parametrize("offset", OFFSETS)
def test_welch_equals_scipy_at_large_offsets(offset):
    """Raw Σx² lost the variance from mean/sd ~ 1e8 on and called 1e12 + N(0,1) ZERO_VARIANCE."""
    r = np.random.default_rng(7)
    a, b = _exact(r, 0.0, 1.0, 900), _exact(r, 0.15, 2.0, 1300)
    ours = welch(MomentStats.from_arrays(offset + a), MomentStats.from_arrays(offset + b))
    ref = stats.ttest_ind(b, a, equal_var=False)
    assert ours.status == "OK"
    assert ours.diff == pytest.approx(b.mean() - a.mean(), rel=1e-9)
    assert ours.se == pytest.approx(ref.statistic and (b.mean() - a.mean()) / ref.statistic, rel=1e-9)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    # merged shards (different shifts, Chan et al.) give the same test as the whole arm
    halves = MomentStats.from_arrays(offset + a[:300]) + MomentStats.from_arrays(offset + a[300:])
    assert welch(halves, MomentStats.from_arrays(offset + b)).p_value == pytest.approx(ref.pvalue, rel=1e-9)


def _cuped_references(ya, pa, yb, pb):
    """statsmodels OLS y ~ 1 + T + pre (its slope is the pooled within-arm theta), then scipy's Welch
    test on the adjusted values y - theta (pre - pooled mean); and the robust HC2 error of T."""
    t = np.r_[np.zeros(ya.size), np.ones(yb.size)]
    pre = np.r_[pa, pb]
    fit = sm.OLS(np.r_[ya, yb], np.column_stack([np.ones_like(t), t, pre])).fit(cov_type="HC2")
    theta, pooled = fit.params[2], pre.mean()
    adj_a, adj_b = ya - theta * (pa - pooled), yb - theta * (pb - pooled)
    return theta, adj_a, adj_b, stats.ttest_ind(adj_b, adj_a, equal_var=False), fit


@pytest.mark.parametrize("seed", [4, 5])
def test_cuped_equals_ols_slope_and_welch_on_adjusted_values(seed):
    r = np.random.default_rng(seed)
    n_a, n_b = 1500, 1700
    pre = r.gamma(2.0, 10.0, n_a + n_b)
    t = np.r_[np.zeros(n_a), np.ones(n_b)]
    y = 5 + 0.8 * pre + 1.5 * t + r.normal(0, 8, n_a + n_b)
    ours = cuped(MomentStats.from_arrays(y[:n_a], pre[:n_a]), MomentStats.from_arrays(y[n_a:], pre[n_a:]))
    theta, adj_a, adj_b, ref, fit = _cuped_references(y[:n_a], pre[:n_a], y[n_a:], pre[n_a:])
    assert ours.extra["theta"] == pytest.approx(theta, rel=1e-9)
    assert ours.diff == pytest.approx(adj_b.mean() - adj_a.mean(), rel=1e-9)
    assert ours.diff == pytest.approx(fit.params[1], rel=1e-9)  # the OLS coefficient of T
    assert ours.se == pytest.approx(ours.diff / ref.statistic, rel=1e-9)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert ours.se == pytest.approx(fit.bse[1], rel=2e-3)  # HC2 of the same model
    assert ours.extra["varianceReduction"] > 0.5  # the covariate explains most variance here


@pytest.mark.parametrize("offset", OFFSETS)
def test_cuped_matches_hc2_on_very_unequal_arms_and_large_offsets(offset):
    """20000:400 with the treatment's residual sd four times the control's: the pooled-variance
    OLS error (what CUPED used to report) is far off; ours equals Welch on the adjusted values and
    stays within 1% of HC2, at offsets up to 1e12."""
    r = np.random.default_rng(8)
    pa, pb = _exact(r, 0, 1, 20000), _exact(r, 0, 1, 400)
    ya, yb = 0.5 * pa + _exact(r, 0, 1, 20000), 0.75 * pb + _exact(r, 0, 4, 400)  # on the grid
    ours = cuped(MomentStats.from_arrays(offset + ya, offset + pa), MomentStats.from_arrays(offset + yb, offset + pb))
    theta, adj_a, adj_b, ref, fit = _cuped_references(ya, pa, yb, pb)
    assert ours.status == "OK" and "fallback" not in ours.extra
    assert ours.extra["theta"] == pytest.approx(theta, rel=1e-9)
    assert ours.diff == pytest.approx(adj_b.mean() - adj_a.mean(), rel=1e-9, abs=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert ours.se == pytest.approx(fit.bse[1], rel=1e-2)
    classical = sm.OLS(np.r_[ya, yb], sm.add_constant(np.column_stack([np.r_[np.zeros(20000), np.ones(400)],
                                                                         np.r_[pa, pb]]))).fit()
    assert classical.bse[1] < 0.6 * fit.bse[1]  # the old classical error: far too small here


def test_z_test_equals_statsmodels():
    ours = two_proportion_z(120, 2000, 150, 2100)
    z, p = proportions_ztest([150, 120], [2100, 2000])
    assert ours.extra["z"] == pytest.approx(z, rel=1e-9) and ours.p_value == pytest.approx(p, rel=1e-9)


def test_delta_ratio_ci_matches_a_bootstrap():
    r = np.random.default_rng(6)

    def arm(n, rate):
        den = r.poisson(3, n) + 1
        return r.binomial(den, rate).astype(float), den.astype(float)

    (ya, da), (yb, db) = arm(3000, 0.10), arm(3000, 0.12)
    ours = delta_ratio(RatioStats.from_arrays(ya, da), RatioStats.from_arrays(yb, db))
    boots = []
    for _ in range(2000):
        ia, ib = r.integers(0, 3000, 3000), r.integers(0, 3000, 3000)
        boots.append(yb[ib].sum() / db[ib].sum() - ya[ia].sum() / da[ia].sum())
    assert ours.se == pytest.approx(np.std(boots), rel=0.08)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    assert ours.diff_ci[0] == pytest.approx(lo, abs=0.15 * ours.se + 1e-3)
    assert ours.diff_ci[1] == pytest.approx(hi, abs=0.15 * ours.se + 1e-3)


def test_holm_and_bh_equal_statsmodels():
    p = rng.uniform(0, 0.2, 12).tolist()
    assert multiple.holm(p) == pytest.approx(multipletests(p, method="holm")[1].tolist())
    assert multiple.benjamini_hochberg(p) == pytest.approx(multipletests(p, method="fdr_bh")[1].tolist())


def test_power_matches_statsmodels():
    sd, mde = 12.0, 1.5
    ours = power.sample_size_per_arm(sd, mde)
    ref = NormalIndPower().solve_power(effect_size=mde / sd, alpha=0.05, power=0.8, ratio=1.0)
    assert ours == pytest.approx(ref, rel=1e-3)
    assert power.mde_absolute(sd, ref, ref) == pytest.approx(mde, rel=1e-3)


def test_degenerate_inputs_give_coded_json_safe_results():
    empty = MomentStats()
    one = MomentStats.from_arrays([3.0])
    flat = MomentStats.from_arrays([2.0] * 50)
    results = [welch(empty, flat), welch(one, flat), welch(flat, flat), cuped(flat, flat),
               two_proportion_z(0, 0, 1, 10), two_proportion_z(0, 10, 0, 10), delta_ratio(RatioStats(), RatioStats())]
    assert [r.status for r in results] == ["EMPTY_ARM", "INSUFFICIENT_DATA", "ZERO_VARIANCE", "ZERO_VARIANCE",
                                           "EMPTY_ARM", "ZERO_VARIANCE", "EMPTY_ARM"]
    json.dumps([r.to_dict() for r in results], allow_nan=False)


@pytest.mark.parametrize("offset", OFFSETS)
def test_delta_ratio_variance_equals_two_pass_numpy_at_large_offsets(offset):
    r = np.random.default_rng(9)
    num, den = offset + _exact(r, 0, 1, 700), offset + 5.0 + _exact(r, 0, 2, 700)
    ratio, var = ratio_mean_and_var(RatioStats.from_arrays(num, den))
    cov = np.cov(num - offset, den - offset)  # the same data without the offset (exact), two-pass
    mu_y, mu_d = offset + (num - offset).mean(), offset + (den - offset).mean()
    expected = (cov[0, 0] / mu_d**2 - 2 * mu_y * cov[0, 1] / mu_d**3 + mu_y**2 * cov[1, 1] / mu_d**4) / num.size
    assert ratio == pytest.approx(num.sum() / den.sum(), rel=1e-12)
    assert var == pytest.approx(expected, rel=1e-9)
    assert var > 0
