"""Fixed-horizon two-arm tests from sufficient statistics.

Every function returns an `Estimate` whose `to_dict()` is strict JSON (no NaN/Inf): degenerate
inputs give a coded status instead of an exception, so a sweep over hundreds of experiments
never dies on one empty arm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from functions.core.stats.sufficient import MomentStats, RatioStats

OK, EMPTY_ARM, INSUFFICIENT_DATA, ZERO_VARIANCE = "OK", "EMPTY_ARM", "INSUFFICIENT_DATA", "ZERO_VARIANCE"


def finite(value: Any) -> Any:
    """None for NaN/Inf (JSON has no such numbers); numpy scalars become Python ones."""
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class Estimate:
    method: str
    status: str
    n_control: float
    n_treatment: float
    control_mean: float | None = None
    treatment_mean: float | None = None
    diff: float | None = None
    diff_ci: tuple[float, float] | None = None
    se: float | None = None
    p_value: float | None = None
    lift: float | None = None
    lift_ci: tuple[float, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == OK

    def to_dict(self) -> dict[str, Any]:
        return finite({
            "method": self.method, "status": self.status, "nControl": self.n_control, "nTreatment": self.n_treatment,
            "controlMean": self.control_mean, "treatmentMean": self.treatment_mean, "diff": self.diff,
            "diffCi": list(self.diff_ci) if self.diff_ci else None, "se": self.se, "pValue": self.p_value,
            "lift": self.lift, "liftCi": list(self.lift_ci) if self.lift_ci else None, "extra": self.extra,
        })


def _degenerate(method: str, a_n: float, b_n: float, minimum: int = 2) -> Estimate | None:
    if a_n == 0 or b_n == 0:
        return Estimate(method, EMPTY_ARM, a_n, b_n)
    if a_n < minimum or b_n < minimum:
        return Estimate(method, INSUFFICIENT_DATA, a_n, b_n)
    return None


def relative_lift(mean_a: float, var_mean_a: float, mean_b: float, var_mean_b: float,
                  alpha: float = 0.05) -> tuple[float | None, tuple[float, float] | None]:
    """(mb - ma) / ma with its delta-method CI; var_mean_* are variances of the arm means."""
    if mean_a == 0:
        return None, None
    lift = (mean_b - mean_a) / mean_a
    var = var_mean_b / mean_a**2 + var_mean_a * mean_b**2 / mean_a**4
    z = stats.norm.ppf(1 - alpha / 2)
    half = z * math.sqrt(max(var, 0.0))
    return lift, (lift - half, lift + half)


def welch(control: MomentStats, treatment: MomentStats, alpha: float = 0.05) -> Estimate:
    """Welch's unequal-variance t-test on the difference of means (= scipy ttest_ind(equal_var=False))."""
    bad = _degenerate("welch", control.n, treatment.n)
    if bad:
        return bad
    va, vb = control.var / control.n, treatment.var / treatment.n
    diff = treatment.mean - control.mean
    se = math.sqrt(va + vb)
    common = {"n_control": control.n, "n_treatment": treatment.n, "control_mean": control.mean,
              "treatment_mean": treatment.mean, "diff": diff}
    if se == 0:
        return Estimate("welch", ZERO_VARIANCE, **common)
    df = (va + vb) ** 2 / (va**2 / (control.n - 1) + vb**2 / (treatment.n - 1))
    t = diff / se
    p = 2 * stats.t.sf(abs(t), df)
    half = stats.t.ppf(1 - alpha / 2, df) * se
    lift, lift_ci = relative_lift(control.mean, va, treatment.mean, vb, alpha)
    return Estimate("welch", OK, **common, diff_ci=(diff - half, diff + half), se=se, p_value=p, lift=lift,
                    lift_ci=lift_ci, extra={"t": t, "df": df})


def two_proportion_z(conv_control: float, n_control: float, conv_treatment: float, n_treatment: float,
                     alpha: float = 0.05) -> Estimate:
    """Pooled z statistic (= statsmodels proportions_ztest), unpooled CI for the difference."""
    bad = _degenerate("two_proportion_z", n_control, n_treatment, minimum=1)
    if bad:
        return bad
    pa, pb = conv_control / n_control, conv_treatment / n_treatment
    pooled = (conv_control + conv_treatment) / (n_control + n_treatment)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_control + 1 / n_treatment))
    common = {"n_control": n_control, "n_treatment": n_treatment, "control_mean": pa, "treatment_mean": pb,
              "diff": pb - pa}
    if se_pooled == 0:
        return Estimate("two_proportion_z", ZERO_VARIANCE, **common)
    z = (pb - pa) / se_pooled
    var_a, var_b = pa * (1 - pa) / n_control, pb * (1 - pb) / n_treatment
    se = math.sqrt(var_a + var_b)
    half = stats.norm.ppf(1 - alpha / 2) * se
    lift, lift_ci = relative_lift(pa, var_a, pb, var_b, alpha)
    return Estimate("two_proportion_z", OK, **common, diff_ci=(pb - pa - half, pb - pa + half), se=se,
                    p_value=2 * stats.norm.sf(abs(z)), lift=lift, lift_ci=lift_ci, extra={"z": z})


def cuped(control: MomentStats, treatment: MomentStats, alpha: float = 0.05) -> Estimate:
    """Regression adjustment y ~ 1 + T + pre with theta pooled across arms: the exact OLS
    solution and its classical standard error, computed from the per-arm sums."""
    bad = _degenerate("cuped", control.n, treatment.n)
    if bad:
        return bad
    a, b = control, treatment
    n = a.n + b.n
    xtx = np.array([
        [n, b.n, a.sum_pre + b.sum_pre],
        [b.n, b.n, b.sum_pre],
        [a.sum_pre + b.sum_pre, b.sum_pre, a.sum_pre2 + b.sum_pre2],
    ])
    xty = np.array([a.sum_x + b.sum_x, b.sum_x, a.sum_xpre + b.sum_xpre])
    common = {"n_control": a.n, "n_treatment": b.n, "control_mean": a.mean, "treatment_mean": b.mean}
    if n <= 3 or np.linalg.matrix_rank(xtx) < 3:
        # No usable covariate (constant pre-period): fall back to plain Welch, say so.
        plain = welch(a, b, alpha)
        return Estimate("cuped", plain.status if plain.status != OK else OK, **common, diff=plain.diff,
                        diff_ci=plain.diff_ci, se=plain.se, p_value=plain.p_value, lift=plain.lift,
                        lift_ci=plain.lift_ci, extra={"fallback": "welch", "reason": "covariate has no variance"})
    inv = np.linalg.inv(xtx)
    beta = inv @ xty
    rss = (a.sum_x2 + b.sum_x2) - float(beta @ xty)
    sigma2 = max(rss, 0.0) / (n - 3)
    se = math.sqrt(sigma2 * inv[1, 1])
    diff = float(beta[1])
    if se == 0:
        return Estimate("cuped", ZERO_VARIANCE, **common, diff=diff)
    dof = n - 3
    t = diff / se
    half = stats.t.ppf(1 - alpha / 2, dof) * se
    welch_se = welch(a, b, alpha).se
    reduction = 1 - (se / welch_se) ** 2 if welch_se else None
    theta = float(beta[2])
    lift, lift_ci = _adjusted_lift(a, b, theta, alpha)
    return Estimate("cuped", OK, **common, diff=diff, diff_ci=(diff - half, diff + half), se=se,
                    p_value=2 * stats.t.sf(abs(t), dof), lift=lift, lift_ci=lift_ci,
                    extra={"theta": theta, "varianceReduction": reduction, "df": dof})


def _adjusted_lift(a: MomentStats, b: MomentStats, theta: float,
                   alpha: float) -> tuple[float | None, tuple[float, float] | None]:
    """Relative lift of the CUPED-adjusted means, (mb' - ma') / ma' with m' = mean - theta (pre mean -
    pooled pre mean), and its delta-method CI: the control mean's own uncertainty counts too,
    which dividing the difference's CI by a fixed control mean would ignore."""
    pooled_pre = (a.sum_pre + b.sum_pre) / (a.n + b.n)

    def adjusted(s: MomentStats) -> tuple[float, float]:
        residual_var = s.var - 2 * theta * s.cov_x_pre + theta**2 * s.pre_var
        return s.mean - theta * (s.pre_mean - pooled_pre), max(residual_var, 0.0) / s.n

    (ma, va), (mb, vb) = adjusted(a), adjusted(b)
    return relative_lift(ma, va, mb, vb, alpha)


def ratio_mean_and_var(r: RatioStats) -> tuple[float, float]:
    """Ratio Σy/Σd and the delta-method variance of that ratio."""
    mu_y, mu_d = r.sum_num / r.n, r.sum_den / r.n
    var_y = (r.sum_num2 - r.sum_num**2 / r.n) / (r.n - 1)
    var_d = (r.sum_den2 - r.sum_den**2 / r.n) / (r.n - 1)
    cov = (r.sum_numden - r.sum_num * r.sum_den / r.n) / (r.n - 1)
    ratio = mu_y / mu_d
    var = (var_y / mu_d**2 - 2 * mu_y * cov / mu_d**3 + mu_y**2 * var_d / mu_d**4) / r.n
    return ratio, max(var, 0.0)


def delta_ratio(control: RatioStats, treatment: RatioStats, alpha: float = 0.05) -> Estimate:
    """Ratio metrics (refunds per purchase, revenue per session) by the delta method."""
    bad = _degenerate("delta_ratio", control.n, treatment.n)
    if bad:
        return bad
    if control.sum_den == 0 or treatment.sum_den == 0:
        return Estimate("delta_ratio", INSUFFICIENT_DATA, control.n, treatment.n,
                        extra={"reason": "denominator sums to zero"})
    ra, va = ratio_mean_and_var(control)
    rb, vb = ratio_mean_and_var(treatment)
    diff, se = rb - ra, math.sqrt(va + vb)
    common = {"n_control": control.n, "n_treatment": treatment.n, "control_mean": ra, "treatment_mean": rb,
              "diff": diff}
    if se == 0:
        return Estimate("delta_ratio", ZERO_VARIANCE, **common)
    half = stats.norm.ppf(1 - alpha / 2) * se
    lift, lift_ci = relative_lift(ra, va, rb, vb, alpha)
    return Estimate("delta_ratio", OK, **common, diff_ci=(diff - half, diff + half), se=se,
                    p_value=2 * stats.norm.sf(abs(diff / se)), lift=lift, lift_ci=lift_ci)
