"""Seeded simulations: A/A false positives, power at the planned sample, and bias correction."""

from __future__ import annotations

import numpy as np
from scipy import stats

from functions.core.stats import power
from functions.core.stats.corrections import ExclusionConfig, UnitData
from functions.core.stats.inference import welch
from functions.core.stats.pipeline import AnalysisConfig, analyse_units, replay_stats
from functions.core.stats.sufficient import MomentStats


def test_aa_false_positive_rate_is_nominal():
    r = np.random.default_rng(7)
    sims = 2000
    hits = sum(
        welch(MomentStats.from_arrays(r.lognormal(2, 1, 300)), MomentStats.from_arrays(r.lognormal(2, 1, 300))).p_value
        < 0.05
        for _ in range(sims)
    )
    assert stats.binomtest(hits, sims, 0.05).pvalue > 0.001
    assert 0.035 < hits / sims < 0.065


def test_true_five_percent_lift_is_detected_at_planned_sample_about_80_percent():
    r = np.random.default_rng(8)
    mean, sd = 50.0, 20.0
    n = int(np.ceil(power.sample_size_per_arm(sd, 0.05 * mean)))
    sims = 600
    detected = sum(
        welch(MomentStats.from_arrays(r.normal(mean, sd, n)), MomentStats.from_arrays(r.normal(mean * 1.05, sd, n)))
        .p_value < 0.05
        for _ in range(sims)
    )
    assert 0.74 < detected / sims < 0.86


def _arm(r, n, mean, whales=0):
    value = r.gamma(2.0, mean / 2.0, n)
    fraud = np.zeros(n, dtype=bool)
    if whales:
        value[:whales] = 5000.0
        fraud[:whales] = True
    return UnitData(value=value, pre=value * 0.5 + r.normal(0, 1, n), fraud=fraud, consent=np.ones(n, dtype=bool),
                    region=np.array(["DE"] * n), events=r.poisson(20, n).astype(float))


def test_fraudulent_whales_move_the_naive_estimate_not_the_corrected_one():
    r = np.random.default_rng(9)
    control, treatment = _arm(r, 4000, 20.0), _arm(r, 4000, 20.0, whales=15)
    naive = welch(MomentStats.from_arrays(control.value), MomentStats.from_arrays(treatment.value))
    cfg = AnalysisConfig(control="control", expected_split={"control": 0.5, "treatment": 0.5},
                         exclusions=ExclusionConfig())
    result = analyse_units({"control": control, "treatment": treatment}, cfg)
    corrected = result["arms"]["treatment"]["primary"]
    assert naive.lift > 0.5  # 15 fake whales fake a >50% lift
    assert abs(corrected["lift"]) < 0.05 and corrected["pValue"] > 0.01
    assert result["exclusions"]["removed"]["fraud"] == {"control": 0, "treatment": 15}
    # and the uneven fraud removal is itself flagged
    fraud_check = next(c for c in result["checks"] if c["name"] == "exclusion_balance:fraud")
    assert fraud_check["status"] == "FAIL"
    assert result["arms"]["treatment"]["recommendation"]["trust"] == "UNTRUSTWORTHY"


def test_consent_is_applied_before_anything_and_replay_reproduces_the_verdict():
    r = np.random.default_rng(10)
    control, treatment = _arm(r, 3000, 20.0), _arm(r, 3000, 21.5)
    control.consent[:100] = False
    treatment.consent[:100] = False
    cfg = AnalysisConfig(control="control", expected_split={"control": 0.5, "treatment": 0.5})
    result = analyse_units({"control": control, "treatment": treatment}, cfg)
    assert result["exclusions"]["removed"]["consent"] == {"control": 100, "treatment": 100}
    assert result["inputs"]["stats"]["control"]["n"] == 3000 - 100
    replayed = replay_stats(result)
    assert replayed["fingerprint"] == result["fingerprint"]
    assert replayed["arms"] == result["arms"]


def test_srm_uses_the_stage_split():
    r = np.random.default_rng(12)
    control, treatment = _arm(r, 5000, 20.0), _arm(r, 100, 20.0)  # a 1% stage against 50% control
    at_stage = AnalysisConfig(control="control", expected_split={"control": 0.5, "treatment": 0.01})
    naive_split = AnalysisConfig(control="control", expected_split={"control": 0.5, "treatment": 0.5})
    ok = analyse_units({"control": control, "treatment": treatment}, at_stage)
    bad = analyse_units({"control": control, "treatment": treatment}, naive_split)
    assert next(c for c in ok["checks"] if c["name"] == "srm")["status"] == "PASS"
    assert next(c for c in bad["checks"] if c["name"] == "srm")["status"] == "FAIL"
