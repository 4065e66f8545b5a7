"""Seeded Monte-Carlo simulations of the statistical engine's operating characteristics.

The unit tests run them small (tests/unit/stats); `python -m bench simulations` runs the same
functions with more replications and prints each rate with its Monte-Carlo confidence interval.
Every function takes a numpy Generator and draws from it in a fixed order, so a seed pins the
result. Pure numpy/scipy plus the engine itself: no cloud clients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from functions.core.stats import power
from functions.core.stats.corrections import ExclusionConfig, UnitData
from functions.core.stats.inference import Estimate, welch
from functions.core.stats.pipeline import AnalysisConfig, analyse_units
from functions.core.stats.sequential import relative_guardrail
from functions.core.stats.sufficient import MomentStats


@dataclass(frozen=True)
class Rate:
    """hits out of sims, with a Wilson score interval for the true rate."""

    hits: int
    sims: int

    @property
    def rate(self) -> float:
        return self.hits / self.sims if self.sims else math.nan

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        if not self.sims:
            return math.nan, math.nan
        z = float(stats.norm.ppf(0.5 + level / 2))
        p, n = self.rate, self.sims
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)

    def to_dict(self) -> dict[str, Any]:
        low, high = self.ci()
        return {"hits": self.hits, "sims": self.sims, "rate": self.rate, "ci95": [low, high]}


@dataclass(frozen=True)
class Mean:
    """Monte-Carlo mean of a per-replication quantity with its normal-approximation interval."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    def ci(self, level: float = 0.95) -> tuple[float, float]:
        if len(self.values) < 2:
            return math.nan, math.nan
        half = float(stats.norm.ppf(0.5 + level / 2)) * float(np.std(self.values, ddof=1)) / math.sqrt(
            len(self.values))
        return self.mean - half, self.mean + half

    def to_dict(self) -> dict[str, Any]:
        low, high = self.ci()
        return {"mean": self.mean, "sims": len(self.values), "ci95": [low, high]}


def _known(est: Estimate, value: float | None) -> float:
    """A figure of a simulated test; the simulations draw data no test can refuse, so None is a bug."""
    if value is None:
        raise ValueError(f"the simulated {est.method} test came back {est.status}")
    return value


def _significant(est: Estimate, alpha: float) -> bool:
    return _known(est, est.p_value) < alpha


def aa_false_positives(rng: np.random.Generator, sims: int = 2000, n: int = 300, alpha: float = 0.05) -> Rate:
    """A/A on a skewed (lognormal) metric: how often the fixed-horizon Welch test says p < alpha."""
    hits = sum(
        _significant(welch(MomentStats.from_arrays(rng.lognormal(2, 1, n)),
                           MomentStats.from_arrays(rng.lognormal(2, 1, n))), alpha)
        for _ in range(sims)
    )
    return Rate(int(hits), sims)


def power_at_planned_sample(rng: np.random.Generator, sims: int = 600, mean: float = 50.0, sd: float = 20.0,
                            mde_relative: float = 0.05, alpha: float = 0.05,
                            target_power: float = 0.8) -> tuple[Rate, int]:
    """A true `mde_relative` lift at the sample size power.sample_size_per_arm plans: the share
    detected should be about `target_power`. Returns (detections, units per arm)."""
    n = int(np.ceil(power.sample_size_per_arm(sd, mde_relative * mean, alpha, target_power)))
    hits = sum(
        _significant(welch(MomentStats.from_arrays(rng.normal(mean, sd, n)),
                           MomentStats.from_arrays(rng.normal(mean * (1 + mde_relative), sd, n)), alpha), alpha)
        for _ in range(sims)
    )
    return Rate(int(hits), sims), n


def cumulative_sums(x: np.ndarray, per_look: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, Σx, Σx²) after each sweep of `per_look` new units: what the sweep's shards add up to."""
    looks = x.size // per_look
    counts = per_look * np.arange(1, looks + 1, dtype=float)
    return counts, np.cumsum(x)[per_look - 1::per_look][:looks], np.cumsum(x * x)[per_look - 1::per_look][:looks]


def naive_greater_p_values(a: np.ndarray, b: np.ndarray, per_look: int) -> np.ndarray:
    """One-sided Welch p-values (H1: mean b > mean a) at every sweep, vectorised; each equals
    scipy.stats.ttest_ind(b[:k], a[:k], equal_var=False, alternative="greater").pvalue."""
    na, sa, sa2 = cumulative_sums(a, per_look)
    nb, sb, sb2 = cumulative_sums(b, per_look)
    va = (sa2 - sa**2 / na) / (na - 1) / na
    vb = (sb2 - sb**2 / nb) / (nb - 1) / nb
    t = (sb / nb - sa / na) / np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
    return stats.t.sf(t, df)


def peeking_false_kills(rng: np.random.Generator, sims: int = 300, looks: int = 50, per_look: int = 40,
                        alpha: float = 0.05) -> tuple[Rate, Rate]:
    """A/A with a harmful-INCREASE guardrail (margin 0) checked after each of `looks` sweeps.

    Returns (always-valid guardrail kills, naive kills), where the naive monitor runs a one-sided
    Welch t-test at every sweep and kills at p < alpha. Each sweep sees cumulative sufficient
    statistics, as the production sweep does."""
    seq_kills = naive_kills = 0
    for _ in range(sims):
        a = rng.exponential(10.0, looks * per_look)
        b = rng.exponential(10.0, looks * per_look)  # A/A: no true difference
        na, sa, sa2 = cumulative_sums(a, per_look)
        nb, sb, sb2 = cumulative_sums(b, per_look)
        seq_kills += any(
            relative_guardrail(MomentStats(n, x, x2), MomentStats(m, y, y2), "INCREASE", 0.0, alpha).breached
            for n, x, x2, m, y, y2 in zip(na.tolist(), sa.tolist(), sa2.tolist(), nb.tolist(), sb.tolist(),
                                          sb2.tolist(), strict=True)
        )
        naive_kills += bool((naive_greater_p_values(a, b, per_look) < alpha).any())
    return Rate(int(seq_kills), sims), Rate(int(naive_kills), sims)


def whale_arm(rng: np.random.Generator, n: int, mean: float, whales: int = 0) -> UnitData:
    """One arm of a revenue-like (gamma) KPI with a correlated pre-period covariate; the first
    `whales` units are fraudulent 5,000 purchases that the fraud signal flagged."""
    value = rng.gamma(2.0, mean / 2.0, n)
    fraud = np.zeros(n, dtype=bool)
    if whales:
        value[:whales] = 5000.0
        fraud[:whales] = True
    return UnitData(value=value, pre=value * 0.5 + rng.normal(0, 1, n), fraud=fraud,
                    consent=np.ones(n, dtype=bool), region=np.array(["DE"] * n),
                    events=rng.poisson(20, n).astype(float))


@dataclass(frozen=True)
class WhaleBias:
    naive_lift: Mean  # Welch on raw values: biased by the fake whales
    corrected_lift: Mean  # the bias-corrected pipeline's primary (CUPED) lift
    naive_significant: Rate  # naive p < alpha although the true effect is zero
    corrected_significant: Rate  # corrected p < alpha (should be about alpha)
    flagged_untrustworthy: Rate  # exclusion-balance check catches the one-sided fraud

    def to_dict(self) -> dict[str, Any]:
        return {"naiveLift": self.naive_lift.to_dict(), "correctedLift": self.corrected_lift.to_dict(),
                "naiveSignificant": self.naive_significant.to_dict(),
                "correctedSignificant": self.corrected_significant.to_dict(),
                "flaggedUntrustworthy": self.flagged_untrustworthy.to_dict()}


def fraud_whales(rng: np.random.Generator, sims: int = 1, n: int = 4000, whales: int = 15, mean: float = 20.0,
                 alpha: float = 0.05) -> WhaleBias:
    """No true effect; `whales` flagged fake purchases land in the treatment arm only."""
    naive_lift, corrected_lift = [], []
    naive_sig = corrected_sig = untrusted = 0
    cfg = AnalysisConfig(control="control", expected_split={"control": 0.5, "treatment": 0.5}, alpha=alpha,
                         exclusions=ExclusionConfig())
    for _ in range(sims):
        control, treatment = whale_arm(rng, n, mean), whale_arm(rng, n, mean, whales=whales)
        naive = welch(MomentStats.from_arrays(control.value), MomentStats.from_arrays(treatment.value), alpha)
        arm = analyse_units({"control": control, "treatment": treatment}, cfg)["arms"]["treatment"]
        naive_lift.append(float(_known(naive, naive.lift)))
        corrected_lift.append(float(arm["primary"]["lift"]))
        naive_sig += _significant(naive, alpha)
        corrected_sig += arm["primary"]["pValue"] < alpha
        untrusted += arm["recommendation"]["trust"] == "UNTRUSTWORTHY"
    return WhaleBias(Mean(tuple(naive_lift)), Mean(tuple(corrected_lift)), Rate(int(naive_sig), sims),
                     Rate(int(corrected_sig), sims), Rate(int(untrusted), sims))
