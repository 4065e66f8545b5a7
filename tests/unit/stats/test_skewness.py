"""Third moments in the sufficient statistics and the skewness gate on the primary analysis:
known answers against numpy/scipy.stats at offsets up to 1e12, and the gate's arithmetic against
a direct computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from functions.core.stats.inference import (
    MAX_MEAN_SKEWNESS,
    SKEWED_INSUFFICIENT_DATA,
    difference_skewness,
    skew_gate,
    welch,
)
from functions.core.stats.pipeline import AnalysisConfig, analyse_stats, replay_stats
from functions.core.stats.sufficient import MomentStats

OFFSETS = (0.0, 1e3, 1e8, 1e12)


def _m3(x: np.ndarray) -> float:
    return float(scipy_stats.moment(x, 3) * x.size)


@pytest.mark.parametrize("offset", OFFSETS)
def test_third_moment_from_arrays_and_every_merge_equals_scipy(offset):
    r = np.random.default_rng(7)
    x = offset + r.lognormal(0, 1, 3000)
    whole = MomentStats.from_arrays(x)
    direct = _m3(x - offset)  # scipy on the exact deviations: the reference is not itself cancelled
    assert whole.m3 == pytest.approx(direct, rel=1e-9)
    # shards about different shifts (their own means), merged pairwise (Pébay) in uneven parts
    parts = [MomentStats.from_arrays(p) for p in np.split(x, [7, 1000, 1001, 2500])]
    merged = parts[0]
    for p in parts[1:]:
        merged = merged + p
    assert merged.n == x.size and merged.m3 == pytest.approx(direct, rel=1e-9)
    assert merged.mean == pytest.approx(x.mean(), rel=1e-15, abs=1e-9)
    # the other order (small part added to the large one) and shards with one shift add exactly
    backwards = parts[-1]
    for p in reversed(parts[:-1]):
        backwards = p + backwards
    assert backwards.m3 == pytest.approx(direct, rel=1e-9)
    assert MomentStats.of_values(2.0) + MomentStats.of_values(5.0) == MomentStats.from_arrays([2.0, 5.0]).reshift()
    # reshifting keeps the moment: about 0 (raw sums) at a small offset, about any shift always
    assert whole.reshift(offset + 1.0).m3 == pytest.approx(direct, rel=1e-9)
    # the unbiased cumulant and the skewness are scipy's
    assert whole.k3 == pytest.approx(float(scipy_stats.kstat(x - offset, 3)), rel=1e-9)


@pytest.mark.parametrize("shift", [0.0, 2.0, 50.0])
def test_a_stored_document_without_the_third_moment_reads_as_symmetric(shift):
    skewed = MomentStats.from_arrays([0.0, 0.0, 9.0])
    assert MomentStats.from_dict(skewed.to_dict()) == skewed and skewed.m3 != 0
    # legacy documents: raw sums (shift 0) or sums about a shift, without sum_x3
    legacy = skewed.reshift(shift).to_dict()
    del legacy["sum_x3"]
    read = MomentStats.from_dict(legacy)
    assert read.m3 == pytest.approx(0.0, abs=1e-9 * max(1.0, shift) ** 3) and read.var == pytest.approx(skewed.var)
    assert skew_gate(welch(read, read), read, read).ok


def test_non_finite_cubes_are_a_coded_status():
    huge = MomentStats.from_arrays([0.0, 1e120, 2e120])
    assert not huge.is_finite
    assert welch(MomentStats.from_arrays([1.0, 2.0, 3.0]), huge).status == "NON_FINITE_INPUT"


def _g(x: np.ndarray) -> float:
    """scipy's adjusted Fisher-Pearson skewness (= k3 / k2^1.5) less twice its standard error."""
    n = x.size
    g = float(scipy_stats.skew(x, bias=False))
    se = math.sqrt(6.0 * n * (n - 1) / ((n - 2) * (n + 1) * (n + 3)))
    return math.copysign(max(abs(g) - 2 * se, 0.0), g)


def _direct_skewness(a: np.ndarray, b: np.ndarray) -> float:
    """The gate's two readings from scipy, written out."""
    na, nb = a.size, b.size
    null = _g(np.r_[a, b]) * (1 / nb**2 - 1 / na**2) / (1 / nb + 1 / na) ** 1.5
    va, vb = a.var(ddof=1), b.var(ddof=1)
    ga, gb = _g(a), _g(b)
    shape = max(abs(ga), abs(gb))
    own = (math.copysign(shape, gb) * vb**1.5 / nb**2 - math.copysign(shape, ga) * va**1.5 / na**2)
    own /= (va / na + vb / nb) ** 1.5
    return max(null, own, key=abs)


@pytest.mark.parametrize("offset", (0.0, 1e8))
def test_difference_skewness_equals_a_direct_computation(offset):
    r = np.random.default_rng(11)
    a, b = r.lognormal(0, 1.5, 5000), 2.0 * r.lognormal(0, 1.0, 300)
    ours = difference_skewness(MomentStats.from_arrays(offset + a), MomentStats.from_arrays(offset + b))
    assert ours == pytest.approx(_direct_skewness(a, b), rel=1e-6)
    # one small arm: Kohavi's skew / sqrt(n) of that arm's mean, within the arms' shape
    assert abs(ours) > MAX_MEAN_SKEWNESS


def test_the_gate_refuses_a_skewed_difference_and_says_what_data_it_needs():
    r = np.random.default_rng(12)
    control, treatment = (MomentStats.from_arrays(np.where(r.random(n) < 0.02, r.lognormal(2, 2, n), 0.0))
                          for n in (20000, 400))
    plain = welch(control, treatment)
    gated = skew_gate(plain, control, treatment)
    assert plain.ok and gated.status == SKEWED_INSUFFICIENT_DATA
    assert gated.diff == plain.diff and gated.diff_ci is None and gated.p_value is None and gated.lift_ci is None
    skew = gated.extra["skewness"]
    factor = (skew / MAX_MEAN_SKEWNESS) ** 2
    assert gated.extra["neededUnits"] == {"control": math.ceil(20000 * factor), "treatment": math.ceil(400 * factor)}
    # with that many units of the same shape, the difference's skewness is at the limit
    grown = MomentStats(control.n * factor, control.sum_x * factor, control.sum_x2 * factor,
                        shift_x=control.shift_x, sum_x3=control.sum_x3 * factor)
    grown_t = MomentStats(treatment.n * factor, treatment.sum_x * factor, treatment.sum_x2 * factor,
                          shift_x=treatment.shift_x, sum_x3=treatment.sum_x3 * factor)
    assert abs(difference_skewness(grown, grown_t)) == pytest.approx(MAX_MEAN_SKEWNESS, rel=1e-3)


@pytest.mark.parametrize(("n_control", "n_treatment"), [(20000, 400), (60, 11), (5, 3)])
def test_symmetric_data_pass_the_gate_unchanged_even_in_tiny_arms(n_control, n_treatment):
    r = np.random.default_rng(13)
    passed = 0
    for _ in range(200):
        control = MomentStats.from_arrays(r.normal(10, 3, n_control))
        treatment = MomentStats.from_arrays(r.uniform(5, 15, n_treatment))
        plain = welch(control, treatment)
        gated = skew_gate(plain, control, treatment)
        passed += gated.ok
        if gated.ok:
            assert (gated.diff, gated.diff_ci, gated.p_value) == (plain.diff, plain.diff_ci, plain.p_value)
    assert passed >= 190  # the skewness a few symmetric units show by chance is noise, not a refusal


def test_a_refused_primary_keeps_running_with_the_units_it_needs_and_replays():
    r = np.random.default_rng(14)
    stats = {arm: MomentStats.from_arrays(np.where(r.random(n) < 0.01, r.lognormal(2, 2, n), 0.0))
             for arm, n in (("control", 20000), ("treatment", 400))}
    doc = analyse_stats(stats, AnalysisConfig(control="control"))
    arm = doc["arms"]["treatment"]
    assert arm["primary"]["status"] == SKEWED_INSUFFICIENT_DATA and arm["welch"]["status"] == SKEWED_INSUFFICIENT_DATA
    rec = arm["recommendation"]
    assert rec["decision"] == "KEEP_RUNNING"
    reason = next(x for x in rec["reasons"] if x["code"] == SKEWED_INSUFFICIENT_DATA)
    assert reason["neededUnits"]["treatment"] > 400
    assert doc["inputs"]["stats"]["treatment"]["sum_x3"] == stats["treatment"].sum_x3
    assert replay_stats(doc) == doc


def _whaleless_revenue(r: np.random.Generator, n: int, scale: float = 1.0) -> np.ndarray:
    """Lognormal(sigma=1) spend of every unit with its largest values missing: the data sets a gate
    reading the samples' shape let through (`bench calibration`, shape from sample)."""
    x = r.lognormal(0.0, 1.0, n)
    return scale * np.minimum(x, np.quantile(x, 0.995))


def test_a_known_shape_is_kohavis_rule_on_the_smaller_arm_whatever_the_samples_show():
    r = np.random.default_rng(15)
    for n_c, n_t, known in [(10_200, 10_200, 6.18), (20_000, 400, 6.18), (50, 7, 0.5)]:
        control, treatment = (MomentStats.from_arrays(r.normal(10, 3, n)) for n in (n_c, n_t))
        assert difference_skewness(control, treatment, known) == pytest.approx(known / math.sqrt(min(n_c, n_t)))
        # symmetric samples read no skewness of their own; the history decides
        assert abs(difference_skewness(control, treatment)) < MAX_MEAN_SKEWNESS


def test_a_sample_missing_its_whales_passes_on_its_own_shape_and_is_refused_with_the_history():
    """The selection the history closes: equal arms of 10 200 units of lognormal sigma=1 spend (unit
    skewness 6.18) whose samples missed their top 0.5% read a small skewness and a scale ratio
    that cancels; Kohavi's rule for 6.18 needs 355·6.18² = 13 559 units per arm."""
    r = np.random.default_rng(16)
    control = MomentStats.from_arrays(_whaleless_revenue(r, 10_200))
    treatment = MomentStats.from_arrays(_whaleless_revenue(r, 10_200, scale=2.0))
    plain = welch(control, treatment)
    assert skew_gate(plain, control, treatment).ok
    gated = skew_gate(plain, control, treatment, known_skewness=6.18)
    assert gated.status == SKEWED_INSUFFICIENT_DATA and gated.extra["shapeFrom"] == "history"
    assert gated.extra["neededUnits"]["control"] == math.ceil(355 * 6.18**2)
    # with enough units the history lets the same shape through
    grown = [MomentStats.from_arrays(_whaleless_revenue(r, 14_000, s)) for s in (1.0, 2.0)]
    assert skew_gate(welch(*grown), *grown, known_skewness=6.18).ok


@pytest.mark.parametrize("known", [float("nan"), float("inf"), 0.0])
def test_an_unusable_history_falls_back_to_the_samples(known):
    r = np.random.default_rng(17)
    control, treatment = (MomentStats.from_arrays(r.lognormal(0, 1.5, n)) for n in (5000, 300))
    assert difference_skewness(control, treatment, known) == difference_skewness(control, treatment)


@pytest.mark.parametrize("offset", [0.0, 1e6])
def test_a_units_skewness_is_scipys_adjusted_fisher_pearson_coefficient(offset: float) -> None:
    """`MomentStats.skewness` (what the gate, a metric's profile and the calibration's history read)
    equals scipy's bias-corrected G1, also far from zero and after shards merge."""
    rng = np.random.default_rng(11)
    x = offset + np.where(rng.random(5_000) < 0.2, rng.lognormal(2.0, 1.0, 5_000), 0.0)
    merged = MomentStats.from_arrays(x[:1_700]) + MomentStats.from_arrays(x[1_700:])
    expected = float(scipy_stats.skew(x, bias=False))
    for stats in (MomentStats.from_arrays(x), merged):
        assert stats.skewness == pytest.approx(expected, rel=1e-9)
    assert MomentStats.from_arrays(np.array([1.0, 2.0])).skewness is None  # fewer than three units
    assert MomentStats.from_arrays(np.full(10, 3.0)).skewness is None  # no spread
