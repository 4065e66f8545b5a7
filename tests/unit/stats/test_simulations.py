"""Seeded simulations: A/A false positives, power at the planned sample, and bias correction.
The simulation functions live in bench/simulation.py; `python -m bench
simulations` runs them with more replications."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.proportion import proportion_confint

from bench.simulation import (
    Rate,
    aa_false_positives,
    fraud_whales,
    naive_greater_p_values,
    power_at_planned_sample,
    whale_arm,
)
from functions.core.stats.corrections import ExclusionConfig
from functions.core.stats.inference import welch
from functions.core.stats.pipeline import AnalysisConfig, analyse_units, replay_stats
from functions.core.stats.sufficient import MomentStats


def test_aa_false_positive_rate_is_nominal():
    result = aa_false_positives(np.random.default_rng(7), sims=2000, n=300)
    assert stats.binomtest(result.hits, result.sims, 0.05).pvalue > 0.001
    assert 0.035 < result.rate < 0.065
    low, high = result.ci()
    assert low < 0.05 < high


def test_true_five_percent_lift_is_detected_at_planned_sample_about_80_percent():
    result, n = power_at_planned_sample(np.random.default_rng(8), sims=600, mean=50.0, sd=20.0, mde_relative=0.05)
    assert n > 100
    assert 0.74 < result.rate < 0.86



def test_naive_peeking_p_values_equal_scipy_at_every_look():
    r = np.random.default_rng(14)
    a, b = r.exponential(10.0, 400), r.exponential(10.3, 400)
    ours = naive_greater_p_values(a, b, per_look=40)
    ref = [stats.ttest_ind(b[:k], a[:k], equal_var=False, alternative="greater").pvalue for k in range(40, 401, 40)]
    assert np.allclose(ours, ref, rtol=1e-8, atol=0)


def test_monte_carlo_interval_is_wilson():
    for hits, sims in [(50, 1000), (3, 300), (590, 600)]:
        assert Rate(hits, sims).ci() == pytest.approx(proportion_confint(hits, sims, method="wilson"), rel=1e-9)
    assert Rate(0, 300).ci()[0] == pytest.approx(0.0, abs=1e-15) and Rate(0, 300).ci()[1] > 0

def test_fraudulent_whales_move_the_naive_estimate_not_the_corrected_one():
    r = np.random.default_rng(9)
    control, treatment = whale_arm(r, 4000, 20.0), whale_arm(r, 4000, 20.0, whales=15)
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


def test_fraud_whales_replicated_bias_is_removed_and_flagged_every_time():
    result = fraud_whales(np.random.default_rng(13), sims=5, n=4000, whales=15)
    assert result.naive_lift.mean > 0.5
    assert abs(result.corrected_lift.mean) < 0.05
    assert result.flagged_untrustworthy.hits == 5

def test_consent_is_applied_before_anything_and_replay_reproduces_the_verdict():
    r = np.random.default_rng(10)
    control, treatment = whale_arm(r, 3000, 20.0), whale_arm(r, 3000, 21.5)
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
    control, treatment = whale_arm(r, 5000, 20.0), whale_arm(r, 100, 20.0)  # a 1% stage against 50% control
    at_stage = AnalysisConfig(control="control", expected_split={"control": 0.5, "treatment": 0.01})
    naive_split = AnalysisConfig(control="control", expected_split={"control": 0.5, "treatment": 0.5})
    ok = analyse_units({"control": control, "treatment": treatment}, at_stage)
    bad = analyse_units({"control": control, "treatment": treatment}, naive_split)
    assert next(c for c in ok["checks"] if c["name"] == "srm")["status"] == "PASS"
    assert next(c for c in bad["checks"] if c["name"] == "srm")["status"] == "FAIL"
