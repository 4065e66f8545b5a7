"""bench calibration: its simulated data, its shortcuts and a reduced grid of its cells.

The shortcuts are checked against what they replace (exact sufficient statistics against their
expected moments, the scipy fast path against scipy, the bench's primary estimate against the
pipeline's), then the reduced grid asserts on the Wilson bounds of each cell."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench import calibration as cal
from bench.simulation import Rate
from functions.core.stats.pipeline import MEAN, PROPORTION, RATIO, AnalysisConfig, analyse_stats

SIMS = 1000


def _within(sample: np.ndarray, expected: float, sigmas: float = 5.0) -> bool:
    return abs(sample.mean() - expected) <= sigmas * sample.std(ddof=1) / math.sqrt(sample.size)


@pytest.mark.parametrize("family", [cal.FAMILIES[0], cal.FAMILIES[2], cal.FAMILIES[8], cal.FAMILIES[9],
                                    cal.FAMILIES[10]], ids=lambda f: f.name)
def test_drawn_sums_have_the_moments_of_unit_draws(family):
    rng = np.random.default_rng(1)
    n = 500
    arm = cal.BaseArm.draw(rng, family, n, 4000)
    ex2 = family.sd**2 + family.mean**2
    assert _within(arm.s1, n * family.mean) and _within(arm.s2, n * ex2)
    assert _within(arm.ee, n * family.sd**2) and _within(arm.e2, 0.0) and _within(arm.e1, 0.0)
    # Var(sum x e | x) = sd^2 sum x^2: the covariate noise is tied to the drawn units.
    some = arm.s2 > 0
    assert np.var(arm.e2[some] / np.sqrt(arm.s2[some])) == pytest.approx(family.sd**2, rel=0.1)


def test_ratio_support_is_exact_and_lifted():
    p, d, _ = cal.ratio_pmf(0.0)
    assert p.sum() == pytest.approx(1.0) and p @ d == pytest.approx(3.0, rel=1e-7)
    assert cal.ratio_truth(0.05) / cal.ratio_truth(0.0) - 1 == pytest.approx(0.05, rel=1e-6)


@pytest.mark.parametrize("family", [cal.FAMILIES[0], cal.FAMILIES[8], cal.FAMILIES[11], cal.FAMILIES[13]],
                         ids=lambda f: f.name)
def test_the_bench_primary_is_the_pipelines_primary(family):
    cells = [cal.PrimaryCell(family, "98/2", r, lift) for r in (["4"] if family.amount != "one" else ["1"])
             for lift in (0.0, 0.05)]
    if family.amount in ("one", "ratio"):
        cells = [cal.PrimaryCell(family, "98/2", "1", lift) for lift in (0.0, 0.05)]
    metric_type = RATIO if family.amount == "ratio" else PROPORTION if family.binary else MEAN
    cfg = AnalysisConfig(control="control", metric_type=metric_type)
    for cell, controls, treatments in cal.group_data(cells, 20, np.random.default_rng(3)):
        for control, treatment in zip(controls, treatments, strict=True):
            ours = cal.primary_estimate(cell.family, control, treatment).to_dict()
            theirs = analyse_stats({"control": control, "treatment": treatment}, cfg)["arms"]["treatment"]["primary"]
            assert ours == theirs


def _cells(only: str) -> list[dict]:
    groups = cal.grid(quick=True, only=only)
    return list(cal.run(groups, SIMS, seed=2026, workers=1))


@pytest.fixture(scope="module")
def guardrail_cells() -> list[dict]:
    return _cells("guardrail")


@pytest.fixture(scope="module")
def primary_cells() -> list[dict]:
    return _cells("primary")


@pytest.mark.slow
def test_guardrails_rarely_breach_at_the_null_boundary_in_either_direction(guardrail_cells):
    null = [c for c in guardrail_cells if c["effect"] == "null"]
    assert {c["harm"] for c in null} == {"INCREASE", "DECREASE"} and len(null) >= 40
    worst = max(null, key=lambda c: c["ci95"][1])
    assert worst["ci95"][1] <= 0.05, worst
    assert min(c["coverage"]["bound"]["rate"] for c in guardrail_cells) >= 0.95


@pytest.mark.slow
def test_guardrails_keep_their_power_where_the_data_carry_information(guardrail_cells):
    informative = [c for c in guardrail_cells if c["effect"] == "real" and c["family"] in ("normal", "bernoulli 2.0%")]
    normal = [c for c in informative if c["family"] == "normal"]
    assert normal and all(c["ci95"][0] >= 0.95 for c in normal)
    # 2% conversion, 100 units per arm per look: few events, yet a 20-point harm is sometimes caught.
    assert all(c["rate"] > 0.03 for c in informative if c["family"] == "bernoulli 2.0%")


def _lower(cell: dict, level: float) -> float:
    """Wilson lower bound at `level`: a dozen cells are asserted at once, so each at 99.9% (the
    benchmark's 4000-simulation run holds the 95% goals)."""
    return Rate(round(cell["rate"] * cell["sims"]), cell["sims"]).ci(level)[0]


@pytest.mark.slow
def test_primary_analysis_is_calibrated_when_the_treatment_keeps_the_variance(primary_cells):
    aa = [c for c in primary_cells if c["effect"] == "null" and c["varianceRatio"] == "1"]
    assert len(aa) >= 8
    for cell in aa:
        assert _lower(cell, 0.999) <= 0.05, cell


@pytest.mark.slow
def test_primary_analysis_is_calibrated_at_every_split_and_variance_ratio(primary_cells):
    """Heavy-tailed revenue in the small arm of a 98/2 split used to reject a true null 12-32% of
    the time; the skewness gate withholds the p-value there until the data can carry one."""
    aa = [c for c in primary_cells if c["effect"] == "null"]
    assert {c["varianceRatio"] for c in aa} == {"1/4", "1", "4"} and {c["allocation"] for c in aa} == {"50/50", "98/2"}
    worst = max(aa, key=lambda c: _lower(c, 0.999))
    assert _lower(worst, 0.999) <= 0.05, worst
    # the gate does not simply refuse everything: dense data keep every test
    dense = [c for c in primary_cells if c["family"] in ("normal", "ratio")]
    assert dense and all(c["noEstimate"] == 0 for c in dense)


@pytest.mark.slow
def test_the_skewness_gate_refuses_the_cells_that_broke(primary_cells):
    sparse_small_arm = [c for c in primary_cells if c["allocation"] == "98/2"
                        and c["family"] in ("lognormal s=2 payers=100%", "lognormal s=1 payers=20%")]
    assert sparse_small_arm and all(c["noEstimate"] >= 0.99 for c in sparse_small_arm)


@pytest.mark.slow
def test_every_published_interval_covers_at_the_claimed_rate(primary_cells):
    """With each mean KPI's historical skewness configured, or read automatically from a history
    as thin as the analysis accepts (a fresh one of 1 000 units per analysis), no published
    interval covers significantly below 95% (each cell at 99.9%, as a dozen are asserted at once).
    With the shape read from the samples, heavy-tailed cells at 50/50 with a variance change
    covered 38-75%."""
    published = [(cov, c["cell"]) for c in primary_cells if c["shape"] in ("history", "thin")
                 for cov in c["coverage"].values() if cov is not None and cov["n"] >= cal.MIN_COVERAGE_N]
    assert len(published) >= 20 and any("thin history" in cell for _, cell in published)
    for cov, cell in published:
        assert Rate(round(cov["rate"] * cov["n"]), cov["n"]).ci(0.999)[1] >= 0.95, (cell, cov)


@pytest.mark.slow
def test_the_history_keeps_the_heavy_tails_that_need_more_units_from_publishing(primary_cells):
    """Kohavi's rule on the smaller arm: lognormal sigma=2 with every unit paying (unit skewness in the
    hundreds) publishes nothing at 20 400 units, whatever its samples show."""
    heavy = [c for c in primary_cells if c["family"] == "lognormal s=2 payers=100%"]
    assert {c["shape"] for c in heavy} == {"history", "thin", "sample"}
    assert all(c["noEstimate"] == 1.0 for c in heavy if c["shape"] == "history")
    assert any(c["noEstimate"] < 1.0 for c in heavy if c["shape"] == "sample")
